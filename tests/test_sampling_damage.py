"""Damaged and truncated videos: decoding goes on past bad packets, and the stream and the result say
what was lost (issue #18)."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import pytest

from _helpers_video import remux
from frame_describer.sampling import sample_frames
from frame_describer.synthetic import read_frame_number, render_numbered_video

N, FPS = 400, 10  # 40 s, a frame number drawn on each


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    return render_numbered_video(tmp_path_factory.mktemp("damage") / "clean.mp4", n_frames=N, fps=FPS, size=(96, 64))


@pytest.fixture(scope="module")
def corrupt(clean: Path) -> Path:
    """3000 bytes overwritten in the middle of the file (frame data: the container's index is intact)."""
    out = clean.with_name("corrupt.mp4")
    shutil.copy(clean, out)
    with out.open("r+b") as fh:
        fh.seek(clean.stat().st_size // 2)
        fh.write(b"\x5a" * 3000)
    return out


@pytest.fixture(scope="module")
def truncated(clean: Path) -> Path:
    """The clean video remuxed with its index first (``faststart``, as streamed files are), cut at 60%."""
    data = remux(clean, clean.with_name("fast.mp4"), options={"movflags": "faststart"}).read_bytes()
    cut = clean.with_name("cut.mp4")
    cut.write_bytes(data[: len(data) * 6 // 10])
    return cut


def numbered(frames) -> list[tuple[int, int]]:
    """(drawn number, number the frame's time says) per frame: equal when each frame is the real one."""
    return [(read_frame_number(f.image), round(f.t * FPS)) for f in frames]


@pytest.mark.parametrize("kwargs", [{"fps": 1}, {"fps": 10}, {"times": [5, 30, 39.9, 22, 10]}])
def test_frames_after_damage_come_with_their_true_numbers(corrupt, kwargs):
    stream = sample_frames(corrupt, **kwargs)
    frames = list(stream)
    pairs = numbered(frames)
    assert all(drawn == timed for drawn, timed in pairs)
    assert pairs[-1][0] >= 390  # decoding went on to the end instead of stopping at the damage
    assert stream.bad_packets > 0 and stream.damage
    # nothing comes from inside the damage: frames there are lost, or built on what was lost
    assert not [n for n, _ in pairs if any(x <= n / FPS < y for x, y in stream.damage)]
    assert 0 < stream.lost_seconds < 15 and stream.truncated_at is None
    assert len(stream.warnings) == 1 and "damaged" in stream.warnings[0] and "corrupt.mp4" in stream.warnings[0]
    if kwargs.get("fps") == 10:  # every frame asked for: all but those in the damage come
        lost = {n for n in range(N) if any(x <= n / FPS < y for x, y in stream.damage)}
        assert [n for n, _ in pairs] == [n for n in range(N) if n not in lost]


def test_requested_times_in_the_damage_get_the_nearest_good_frame(corrupt):
    stream = sample_frames(corrupt, fps=10)
    good = [f.t for f in stream]
    a, b = stream.damage[0]
    mid = (a + b) / 2
    frames = list(sample_frames(corrupt, times=[mid]))
    assert len(frames) == 1
    assert frames[0].t == pytest.approx(min(good, key=lambda t: (abs(t - mid), t)), abs=1e-6)
    assert read_frame_number(frames[0].image) == round(frames[0].t * FPS)


def test_a_sound_file_has_no_damage(clean):
    stream = sample_frames(clean, fps=2)
    assert len(list(stream)) == 80
    assert stream.bad_packets == 0 and stream.damage == [] and stream.lost_seconds == 0 and stream.warnings == []


def test_truncated_file_keeps_what_is_there_and_says_so(truncated):
    stream = sample_frames(truncated, fps=1)
    pairs = numbered(stream)
    assert all(drawn == timed for drawn, timed in pairs)
    assert 15 <= len(pairs) <= 30 and pairs[-1][0] >= 150  # the frames before the cut all come
    assert stream.truncated_at is not None and stream.truncated_at == pytest.approx(pairs[-1][0] / FPS, abs=1.0)
    assert stream.lost_seconds == pytest.approx(40 - stream.truncated_at, abs=0.2)
    assert any("truncated" in w and "40.00s" in w for w in stream.warnings)


class _DemuxFailsOnce:
    """A container whose demuxer raises once, after ``after`` packets (a damaged container: FFmpeg's
    own demuxers mostly resynchronise by themselves, so this is provoked)."""

    def __init__(self, real, after: int):
        self.real, self.after, self.failed, self.seeks = real, after, False, []

    def demux(self, stream):
        for i, packet in enumerate(self.real.demux(stream)):
            if not self.failed and i == self.after:
                self.failed = True
                raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")
            yield packet

    def seek(self, offset, **kw):
        self.seeks.append(offset)
        return self.real.seek(offset, **kw)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_a_demux_error_mid_file_is_skipped_to_the_next_keyframe(clean, monkeypatch):
    import frame_describer.sampling as sampling

    real_open, made = sampling._open, []

    def flaky_open(p):
        container, stream = real_open(p)
        made.append(_DemuxFailsOnce(container, after=120))  # about 12 s in
        return made[-1], stream

    stream = sample_frames(clean, fps=10)  # probes the file as it is; the decoding opens it lazily
    monkeypatch.setattr(sampling, "_open", flaky_open)
    pairs = numbered(stream)
    assert all(drawn == timed for drawn, timed in pairs)
    assert pairs[-1][0] == N - 1  # decoding went on to the end
    assert len(made) == 1 and len(made[0].seeks) == 1  # skipped by one seek forward, not from the start
    (a, b), = stream.damage
    got = {n for n, _ in pairs}
    assert set(range(N)) - got == {n for n in range(N) if a <= n / FPS < b} and 5 < a < b <= 40
    assert any("could not be read in 1 place" in w for w in stream.warnings)
