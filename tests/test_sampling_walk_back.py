"""A seek whose first frame lands past the wanted time (a gap in a variable-rate video, a damaged keyframe)
decodes on from the keyframe before, not from the start of the video; the frames are those a sequential decode
gives, and the warning says what happened (docs/reliability.md, item 10)."""

from __future__ import annotations

import logging
import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from _helpers_video import render_gop_video
from test_sampling_seek import _Container, decoded, wrap_containers  # noqa: F401 (decoded: a fixture)
import frame_describer.sampling as sampling
from frame_describer.sampling import sample_frames
from frame_describer.synthetic import draw_frame_number, read_frame_number

# 25 fps with a keyframe every 250 frames (0, 10, 20 s), then nothing for 10 s: the frame after the gap, at
# 40 s, is a keyframe that decodes at 29.92 s (its decoding time is in the index), so FFmpeg's seek to a time
# in the gap lands after the gap
GAP = [round(i * 0.04, 3) for i in range(750)] + [round(40.0 + i * 0.04, 3) for i in range(250)]
KEY = 250  # frames per group of pictures


def render_vfr_gop_video(path: Path, times: list[float], gop: int, size: tuple[int, int] = (96, 64)) -> Path:
    """Numbered frames shown at ``times`` (seconds), a keyframe every ``gop`` frames and nowhere else."""
    w, h = size
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.time_base = s.codec_context.time_base = Fraction(1, 1000)
        s.options = {"preset": "veryfast", "crf": "18", "g": str(gop), "x264-params": "scenecut=0", "threads": "1"}
        for i, t in enumerate(times):
            image = np.full((h, w, 3), 60 + (i * 37) % 120, np.uint8)
            draw_frame_number(image, i)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    return path


@pytest.fixture(scope="module")
def gap_video(tmp_path_factory) -> Path:
    return render_vfr_gop_video(tmp_path_factory.mktemp("walk") / "gap.mp4", GAP, KEY)


@pytest.fixture(scope="module")
def normal_video(tmp_path_factory) -> Path:
    """80 s at 10 fps, a keyframe every 10 s (0, 10, ..., 70)."""
    return render_gop_video(tmp_path_factory.mktemp("walk") / "normal.mp4", n_frames=800, fps=10, gop=100)


@pytest.fixture(scope="module")
def damaged_video(normal_video: Path) -> Path:
    """The normal video with its keyframe at 60 s unreadable: nothing decodes from 59.8 s (B-frames shown
    before it refer to it) to the next keyframe at 70 s."""
    return smash_keyframes(normal_video, normal_video.with_name("damaged.mp4"), (60.0,))


@pytest.fixture(scope="module")
def twice_damaged_video(normal_video: Path) -> Path:
    """The normal video with its keyframes at 50 s and 60 s unreadable: nothing decodes from 49.8 s to 70 s."""
    return smash_keyframes(normal_video, normal_video.with_name("twice.mp4"), (50.0, 60.0))


def smash_keyframes(src: Path, dst: Path, times: tuple[float, ...]) -> Path:
    """``src`` with the keyframes shown at ``times`` unreadable (their first NAL unit's length smashed)."""
    with av.open(str(src)) as c:
        s = c.streams.video[0]
        at = [p.pos for p in c.demux(s) if p.is_keyframe and p.pts is not None and float(p.pts * s.time_base) in times]
    assert len(at) == len(times)
    data = bytearray(src.read_bytes())
    for pos in at:
        data[pos:pos + 4] = b"\xff" * 4
    dst.write_bytes(bytes(data))
    return dst


def sequential(video: Path, fps: int) -> list:
    """Every frame that decodes, read straight through (no seek): the reference."""
    stream = sample_frames(video, fps=fps, max_side=None)
    frames = list(stream)
    assert stream.seeks == 0 and stream.fallbacks == 0
    return frames


@pytest.fixture(scope="module")
def gap_reference(gap_video) -> list:
    frames = sequential(gap_video, 25)
    assert [read_frame_number(f.image) for f in frames] == list(range(len(GAP)))  # every frame, once, in order
    assert [f.t for f in frames] == pytest.approx(GAP, abs=1e-6)
    return frames


@pytest.fixture(scope="module")
def damaged_reference(damaged_video) -> list:
    frames = sequential(damaged_video, 10)
    assert all(read_frame_number(f.image) == round(f.t * 10) for f in frames)  # each frame the one its time says
    return frames


@pytest.fixture(scope="module")
def normal_reference(normal_video) -> list:
    return sequential(normal_video, 10)


def nearest(reference: list, requested: list[float]) -> list:
    """The reference frame nearest each requested time (ties to the earlier), each once, in time order."""
    times = [f.t for f in reference]
    picks = (min(range(len(times)), key=lambda i: (abs(times[i] - t), i)) for t in sorted(requested))
    return [reference[i] for i in dict.fromkeys(picks)]


def same_frames(got: list, want: list) -> None:
    assert [f.t for f in got] == [f.t for f in want]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(got, want))


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name == sampling.__name__]


@pytest.mark.parametrize("wanted,frame", [(36.0, 750), (33.0, 749), (30.5, 749)])
def test_a_time_in_a_gap_gets_the_nearest_frame_from_the_keyframe_before(gap_video, gap_reference, decoded, caplog,
                                                                          wanted, frame):
    """Before: the seek to a time in the gap landed on the keyframe after it and the video was decoded again
    from the start (753 frames), with "the seek to 36.000s landed at 40.000s, past it"."""
    assert len(gap_reference) == len(GAP)
    with caplog.at_level(logging.WARNING, logger=sampling.__name__):
        stream = sample_frames(gap_video, times=[wanted], max_side=None)
        got = list(stream)
    same_frames(got, nearest(gap_reference, [wanted]))
    assert [read_frame_number(f.image) for f in got] == [frame]
    assert stream.fallbacks == 0 and stream._src.backs == 1
    # the group of pictures before the gap (250 frames at most) and the frames decoded where the first seek landed
    assert decoded[0] < KEY + 60
    assert warnings(caplog) == [f"gap.mp4: no frame from 29.960s to 40.000s (a gap of 10.04s in the video); "
                                f"{wanted:.3f}s gets the nearest frame"]


@pytest.mark.parametrize("kwargs,requested,before", [
    ({"fps": 0.25}, [k * 4.0 for k in range(13)], 1385),
    ({"times": [3.0, 31.0, 36.0, 44.0]}, [3.0, 31.0, 36.0, 44.0], 907),
])
def test_sampling_across_a_gap_matches_a_sequential_decode(gap_video, gap_reference, decoded, caplog, kwargs,
                                                           requested, before):
    """``before``: the frames decoded when a seek that landed past fell back to the start (a full decode is 1000)."""
    with caplog.at_level(logging.WARNING, logger=sampling.__name__):
        stream = sample_frames(gap_video, max_side=None, **kwargs)
        got = list(stream)
    same_frames(got, nearest(gap_reference, requested))
    assert stream.fallbacks == 0 and stream._src.backs == 1
    assert decoded[0] < min(before, len(GAP)) * 0.75
    told = warnings(caplog)
    assert len(told) == 1 and "no frame from 29.960s to 40.000s (a gap of 10.04s in the video)" in told[0]


DAMAGE_TOLD = r"damaged\.mp4: no frame could be decoded from 59\.\d\ds to 70\.00s \(damaged data\); {:.3f}s gets the " \
              r"nearest frame that decoded"


@pytest.mark.parametrize("wanted", [65.0, 64.0, 69.9])
def test_a_time_in_a_damaged_span_decodes_from_the_keyframe_before_it(damaged_video, damaged_reference, decoded,
                                                                       caplog, wanted):
    """Before: the seek landed on the damaged keyframe at 60 s, its first frame that decoded was at 70 s, and the
    video was decoded again from the start (601 frames), with "landed at 70.000s, past it"."""
    assert [f.t for f in damaged_reference if 59 < f.t <= 70] == pytest.approx([59.1 + k / 10 for k in range(7)] + [70])
    with caplog.at_level(logging.WARNING, logger=sampling.__name__):
        stream = sample_frames(damaged_video, times=[wanted], max_side=None)
        got = list(stream)
    same_frames(got, nearest(damaged_reference, [wanted]))
    assert stream.fallbacks == 0 and stream._src.backs == 1
    assert decoded[0] < 2 * 100  # the group of pictures from 50 s, and what decoded at 70 s after the first seek
    told = warnings(caplog)
    assert len(told) == 1 and re.fullmatch(DAMAGE_TOLD.format(wanted), told[0]), told
    assert len(stream.warnings) == 1 and "damaged.mp4 is damaged" in stream.warnings[0]  # the result's, as before


@pytest.mark.parametrize("kwargs,requested,before", [
    ({"fps": 1.0}, [float(k) for k in range(80)], None),
    ({"fps": 0.5}, [k * 2.0 for k in range(40)], None),
    ({"fps": 0.2}, [k * 5.0 for k in range(16)], 919),
    ({"times": [5.0, 65.0, 66.0, 78.0]}, [5.0, 65.0, 66.0, 78.0], 718),
])
def test_sampling_a_damaged_video_matches_a_sequential_decode(damaged_video, damaged_reference, decoded, kwargs,
                                                              requested, before):
    """Before, at 1 and 0.5 fps, 60.0 s got the frame at 70.0 s where 59.7 s decoded and is nearer: a frame
    skipped before the damage sent the decoder back to 60 s, that seek landed at 70 s, and the fall-back from
    the start forgot the frame it had just decoded at 59.7 s. ``before``: frames decoded then."""
    stream = sample_frames(damaged_video, max_side=None, **kwargs)
    same_frames(list(stream), nearest(damaged_reference, requested))
    assert stream.fallbacks == 0
    if before is not None:
        assert decoded[0] < before * 0.7


def test_a_normal_video_seeks_straight_to_its_keyframes_and_says_nothing(normal_video, normal_reference, decoded,
                                                                         caplog):
    requested = [5.0, 25.0, 26.0, 38.0]
    with caplog.at_level(logging.WARNING, logger=sampling.__name__):
        stream = sample_frames(normal_video, times=requested, max_side=None)
        got = list(stream)
    same_frames(got, nearest(normal_reference, requested))
    assert stream.seeks == 2 and stream._src.backs == 0 and stream.fallbacks == 0
    assert decoded[0] < 200  # 135 here before and after the change: from the start to 5 s, then from 20 and 30 s
    assert warnings(caplog) == [] and stream.warnings == []


def test_a_damaged_span_over_two_keyframes_walks_back_further(twice_damaged_video, decoded, caplog):
    """For 65 s the keyframe before the one landed on (60 s) is damaged too: the next step goes two keyframes
    further back (30 s). For 55 s one step back is enough (40 s)."""
    reference = sequential(twice_damaged_video, 10)
    assert all(read_frame_number(f.image) == round(f.t * 10) for f in reference)
    assert [f.t for f in reference if 49 < f.t <= 70] == pytest.approx([49.1 + k / 10 for k in range(7)] + [70])
    decoded[0] = 0
    for wanted, t, backs in ((65.0, 70.0, 2), (55.0, 49.7, 1)):
        with caplog.at_level(logging.WARNING, logger=sampling.__name__):
            stream = sample_frames(twice_damaged_video, times=[wanted], max_side=None)
            got = list(stream)
        same_frames(got, nearest(reference, [wanted]))
        assert [f.t for f in got] == [t] and stream.fallbacks == 0 and stream._src.backs == backs
    assert decoded[0] < 4 * 100 + 3 * 100  # from 30 s to 70 s, then 40 s to 70 s; from the start 2 * 700
    assert len(set(warnings(caplog))) == 2 and all("to 70.00s (damaged data)" in m for m in warnings(caplog))


class _RefusesSecondSeek(_Container):
    def seek(self, offset, **kwargs):
        self.seeks = getattr(self, "seeks", 0) + 1
        if self.seeks == 2:
            raise sampling.av.FFmpegError(1, "seek refused")
        return self._real.seek(offset, **kwargs)


def test_a_refused_walk_back_falls_back_to_the_start(gap_video, gap_reference, monkeypatch, caplog):
    wrap_containers(monkeypatch, lambda container: _RefusesSecondSeek(container, None))
    with caplog.at_level(logging.WARNING, logger=sampling.__name__):
        stream = sample_frames(gap_video, times=[5.0, 36.0, 44.0], max_side=None)
        got = list(stream)
    same_frames(got, nearest(gap_reference, [5.0, 36.0, 44.0]))
    assert stream.fallbacks == 1 and stream._src.backs == 1
    told = warnings(caplog)
    assert any("seeking to 36.000s failed (seek refused); decoding from the start" in m for m in told), told
    assert any("(a gap of 10.04s in the video); 36.000s gets the nearest frame" in m for m in told), told
