"""Videos whose container misstates their length, corrupt MPEG-TS data, and warnings said once.

Every strategy plans over the video's real length (the packets at the end of the file say where the frames stop,
read without decoding), a demuxer's corrupt flag counts as damage, and a warning is printed once."""

from __future__ import annotations

import logging
import random
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from _helpers_eval import FakeDescriber, register_fakes
from _helpers_video import remux
from frame_describer.sampling import probe_video, sample_frames
from frame_describer.synthetic import read_frame_number, render_numbered_video
from pipelines import Session

register_fakes()

N, FPS = 400, 10  # 40 s, a frame number drawn on each
VFR_TIMES = [0, 0.1, 0.2, 3.0, 3.05, 7.5, 10.0, 10.2, 10.4, 14.0, 19.5, 19.9]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("f3")
    clean = render_numbered_video(d / "clean.mp4", n_frames=N, fps=FPS, size=(96, 64))
    mkv = remux(clean, d / "whole.mkv", format="matroska").read_bytes()
    (d / "half.mkv").write_bytes(mkv[: len(mkv) // 2])  # its cues (at the end) and second half gone
    ts = bytearray(remux(clean, d / "clean.ts", format="mpegts").read_bytes())
    rng = random.Random(0)
    a, b = len(ts) * 4 // 10, len(ts) * 5 // 10
    ts[a:b] = bytes(rng.getrandbits(8) for _ in range(b - a))
    (d / "corrupt.ts").write_bytes(bytes(ts))
    # frames to 19.92 s, but the MP4's duration says 14.24 s (its durations follow decoding times)
    with av.open(str(d / "vfr.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt, s.time_base = 160, 120, "yuv420p", Fraction(1, 1000)
        for t in VFR_TIMES:
            f = av.VideoFrame.from_ndarray(np.full((120, 160, 3), 20 if t < 10 else 240, np.uint8), format="rgb24")
            f.pts, f.time_base = int(t * 1000), Fraction(1, 1000)
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return {"clean": clean, "half": d / "half.mkv", "ts": d / "corrupt.ts", "vfr": d / "vfr.mp4"}


def _decoded_end(path: Path) -> float:
    with sample_frames(path, fps=FPS * 2, max_side=32) as frames:
        last = [f.t for f in frames][-1]
        return frames.truncated_at or max(frames.info.duration, last)


def test_the_probe_reads_the_real_end_both_ways(videos):
    """A truncated MKV claims 40 s; the VFR MP4 claims 14.24 s of frames that run to 19.92 s. The probe's extent is
    what decoding the whole file finds (before: the claim, which only decoding corrected)."""
    half, vfr = probe_video(videos["half"]), probe_video(videos["vfr"])
    assert half.duration == pytest.approx(40.0) and half.extent < 30
    assert half.extent == pytest.approx(_decoded_end(videos["half"]), abs=0.01)
    assert vfr.duration == pytest.approx(14.24, abs=0.01) and vfr.extent == pytest.approx(19.92, abs=0.01)
    clean = probe_video(videos["clean"])
    assert clean.truncated_at is None and clean.extent == pytest.approx(clean.duration)


def test_a_count_spreads_over_the_real_length(videos):
    """num_frames=7 on the truncated MKV gave 3 frames (7 times over the claimed 40 s), on the VFR MP4 6 frames
    ending at 14.0 s; now 7 over the frames that exist, and the last VFR frame is reached."""
    with sample_frames(videos["half"], num_frames=7, max_side=32) as frames:
        half = [f.t for f in frames]
        assert any("truncated" in w for w in frames.warnings)  # said though the stream was not read to its end
    assert len(half) == 7 and half[-1] < probe_video(videos["half"]).extent
    with sample_frames(videos["vfr"], num_frames=7, max_side=32) as frames:
        assert [f.t for f in frames][-1] > 19


@pytest.mark.parametrize("name", ["half", "vfr"])
def test_every_strategy_agrees_on_the_length(videos, name):
    """Coarse-to-fine planned its grid over the claim: on the truncated MKV it answered past the real end (grid times
    there 'answered by' the last frame), on the VFR MP4 it stopped at 14.24 s."""
    path = videos[name]
    out = {}
    for strategy in ("uniform", "coarse-to-fine"):
        with Session(describer=FakeDescriber(), reasoner="fake-reasoner", sampling={"fps": 1}, cache=False,
                     search=strategy) as s:
            out[strategy] = s.ground(path, "frame at 1.0")
    uniform, searched = out["uniform"], out["coarse-to-fine"]
    assert searched.duration == pytest.approx(uniform.duration, abs=0.05)
    assert searched.duration == pytest.approx(probe_video(path).extent, abs=0.05)
    assert all(i.end <= searched.duration + 1e-6 for i in searched.intervals)
    assert [w for w in searched.warnings if "truncated" in w] == [w for w in uniform.warnings if "truncated" in w]


def test_a_corrupt_mpegts_stretch_is_dropped_and_named(videos):
    """FFmpeg's MPEG-TS demuxer flags the packet where data was lost and the decoder conceals the loss up to the next
    keyframe without an error: frames came back wrong with no warning. Now those frames are dropped as after a packet
    that fails to decode, and the warning names the stretch."""
    with sample_frames(videos["ts"], fps=1, max_side=None) as frames:
        got = [(read_frame_number(f.image), round(f.t * FPS)) for f in frames]
        warnings, damage = frames.warnings, frames.damage
    assert damage and any("corrupt" in w and f"{damage[0][0]:.2f}" in w for w in warnings)
    assert all(drawn == number for drawn, number in got)  # every frame that comes is the real one
    with sample_frames(videos["clean"], fps=1, max_side=None) as frames:
        assert [f.t for f in frames] and frames.warnings == []


def test_warnings_are_printed_once(videos, tmp_path, caplog):
    """fps above the video's rate was logged by the cache's plan and again by the sampling; a truncated file's end was
    logged by the sampler and again as the result's warning (the command line prints both)."""
    with caplog.at_level(logging.WARNING):
        with Session(describer=FakeDescriber(), reasoner="fake-reasoner", sampling={"fps": 100},
                     cache=tmp_path / "c.sqlite") as s:
            s.ground(shutil.copy(videos["clean"], tmp_path / "v.mp4"), "frame at 1.0")
        with Session(describer=FakeDescriber(), reasoner="fake-reasoner", sampling={"fps": 1}, cache=False) as s:
            result = s.ground(videos["half"], "frame at 1.0")
    logged = [r.getMessage() for r in caplog.records]
    assert sum("asks for more frames" in m for m in logged) == 1
    assert not any("truncated" in m or "stream ends at" in m for m in logged)
    assert sum("truncated" in w for w in result.warnings) == 1


def test_a_frame_flagged_corrupt_is_named(videos, tmp_path):
    """60 bytes overwritten in an MP4's frame data: the decoder flags one frame corrupt and raises nothing. The frame
    was dropped (its time got the one before) with empty warnings; now the warning names it."""
    out = shutil.copy(videos["clean"], tmp_path / "flagged.mp4")
    with open(out, "r+b") as fh:
        fh.seek(videos["clean"].stat().st_size // 2)
        fh.write(b"\x5a" * 60)
    with sample_frames(out, fps=FPS, max_side=None) as frames:
        got = [(read_frame_number(f.image), round(f.t * FPS)) for f in frames]
        warnings, damage = frames.warnings, frames.damage
    assert len(got) == N - 1 and all(drawn == number for drawn, number in got)
    assert len(damage) == 1 and any("corrupt" in w and f"{damage[0][0]:.2f}" in w for w in warnings)


def test_describe_prints_a_truncated_files_warning_once(videos, tmp_path, capsys):
    """`vidground describe` on a truncated file: the sampler keeps the truncation in the described video's warnings
    (it no longer logs it), so the command prints them, once each."""
    from pipelines.cli import main

    assert main(["describe", str(videos["half"]), "--fps", "1", "--no-cache", "-o", str(tmp_path / "d.jsonl")]) == 0
    err = capsys.readouterr().err
    assert sum(line.startswith("warning:") and "truncated" in line for line in err.splitlines()) == 1
