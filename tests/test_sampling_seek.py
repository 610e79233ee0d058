"""Sparse requests seek to the keyframe before each wanted time instead of decoding everything between;
the frames are the same ones a full decode would pick, and a seek that lands wrong falls back."""

import logging
from pathlib import Path

import numpy as np
import pytest

from _helpers_video import remux
import frame_describer.sampling as sampling
from frame_describer.sampling import probe_video, sample_frames
from frame_describer.synthetic import read_frame_number, render_numbered_video

FPS = 25
N = 1000  # 40 s; x264's default keyframe interval (250) puts keyframes at 0, 10, 20 and 30 s
rng = np.random.default_rng(7)
VFR = np.cumsum(np.concatenate([[0.0], rng.choice([0.02, 0.04, 0.1, 0.3, 0.9], size=599)])).round(3).tolist()


@pytest.fixture(scope="module")
def gop_video(tmp_path_factory) -> Path:
    return render_numbered_video(tmp_path_factory.mktemp("seek") / "gop.mp4", n_frames=N, fps=FPS, size=(96, 64))


@pytest.fixture(scope="module")
def vfr_gop_video(tmp_path_factory) -> Path:
    return render_numbered_video(tmp_path_factory.mktemp("seek") / "vfr.mp4", n_frames=len(VFR), fps=FPS,
                                 size=(96, 64), vfr_times=VFR)


@pytest.fixture
def decoded(monkeypatch):
    """How many frames the decoder produced, seeks included."""
    count = [0]
    real = sampling._decode

    def counting(container, stream, path, hold=None, damage=None):
        for frame in real(container, stream, path, hold, damage):
            count[0] += 1
            yield frame

    monkeypatch.setattr(sampling, "_decode", counting)
    return count


def nearest_numbers(times, requested):
    """Frame numbers nearest each requested time (ties to the earlier frame), each once, in order."""
    picks = (min(range(len(times)), key=lambda i: (abs(times[i] - t), i)) for t in sorted(requested))
    return list(dict.fromkeys(picks))


def check(stream, times, requested):
    frames = list(stream)
    numbers = [read_frame_number(f.image) for f in frames]
    assert numbers == nearest_numbers(times, requested)
    assert [f.t for f in frames] == pytest.approx([times[n] for n in numbers], abs=1e-3)
    assert [f.index for f in frames] == list(range(len(frames)))
    for f, n in zip(frames, numbers):
        assert f.source_index in (n, None)  # known while decoding from the start, None after a seek
    return frames


CFR = [i / FPS for i in range(N)]


@pytest.mark.parametrize("kwargs,requested", [
    ({"num_frames": 4}, [5.0, 15.0, 25.0, 35.0]),
    ({"fps": 0.1}, [0.0, 10.0, 20.0, 30.0]),
    ({"times": [39.9, 12.03, 25.5, 0.3, 31.0, 9.9, 9.99, 10.0]}, [39.9, 12.03, 25.5, 0.3, 31.0, 9.9, 9.99, 10.0]),
])
def test_sparse_requests_seek_and_return_the_nearest_frames(gop_video, decoded, kwargs, requested):
    stream = sample_frames(gop_video, **kwargs)
    check(stream, CFR, requested)
    assert stream.seeks >= 2 and stream.fallbacks == 0
    assert decoded[0] < N * 0.6  # what seeking saved: a full decode is N frames


def test_dense_requests_decode_on_without_seeking(gop_video, decoded):
    """Decoding on, frames no other refers to are skipped unless near a wanted time; source indices
    still count every frame of the stream."""
    stream = sample_frames(gop_video, fps=2)
    frames = check(stream, CFR, [k / 2 for k in range(80)])
    assert stream.seeks == 0 and [f.source_index for f in frames] == [read_frame_number(f.image) for f in frames]
    assert stream._src.redos == 0 and N * 0.3 < decoded[0] < N * 0.8
    every = sample_frames(gop_video, fps=FPS)  # every frame wanted: none skipped
    assert [f.source_index for f in every] == list(range(N))


def test_variable_frame_rate_with_long_gops(vfr_gop_video, decoded):
    requested = sorted(rng.uniform(0, VFR[-1] + 0.5, size=12).round(3).tolist()) + [VFR[300], VFR[301] - 0.001]
    stream = sample_frames(vfr_gop_video, times=requested)
    check(stream, VFR, requested)
    assert stream.seeks >= 1 and decoded[0] < len(VFR)


def test_rotation_after_a_seek(tmp_path: Path):
    p = render_numbered_video(tmp_path / "rot.mp4", n_frames=400, fps=FPS, size=(96, 64), rotation=90)
    stream = sample_frames(p, times=[14.0, 0.5], max_side=48)
    frames = list(stream)
    assert stream.seeks == 1 and [f.size for f in frames] == [(48, 32)] * 2
    assert [read_frame_number(f.image) for f in frames] == [12, 350]


class _Container:
    """A container whose seek goes wrong in a chosen way."""

    def __init__(self, real, how):
        self._real, self._how = real, how

    def __getattr__(self, name):
        return getattr(self._real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._real.close()

    def seek(self, offset, **kwargs):
        stream = kwargs["stream"]
        if self._how == "late":  # lands on the keyframe after the one asked for
            return self._real.seek(offset + int(10 / stream.time_base), **kwargs)
        if self._how == "early":  # lands at the start: correct, only slower
            return self._real.seek(0, **kwargs)
        if self._how == "past_end":
            return self._real.seek(offset + int(3600 / stream.time_base), **kwargs)
        raise sampling.av.FFmpegError(1, "seek refused")


def wrap_containers(monkeypatch, wrap) -> None:
    """Every container the sampler opens from now on comes wrapped: ``wrap(container)``."""
    real_open = sampling._open

    def opener(p):
        container, stream = real_open(p)
        return wrap(container), stream

    monkeypatch.setattr(sampling, "_open", opener)


@pytest.mark.parametrize("how", ["late", "early", "past_end", "error"])
def test_a_seek_that_goes_wrong_still_returns_the_nearest_frames(gop_video, monkeypatch, caplog, how):
    wrap_containers(monkeypatch, lambda container: _Container(container, how))
    requested = [12.5, 27.0, 36.04]
    with caplog.at_level(logging.WARNING, logger="frame_describer.sampling"):
        stream = sample_frames(gop_video, times=requested)
        check(stream, CFR, requested)
    told = [r.getMessage() for r in caplog.records]
    if how == "late":  # seeking to the keyframe before the one asked for lands where it should: no fall-back
        assert stream.fallbacks == 0 and stream._src.backs >= 1
        assert any("landed at" in m and "(an inexact seek)" in m for m in told)
        assert not any("from the start" in m for m in told)
    else:
        assert stream.fallbacks == (0 if how == "early" else 1)
    if how in ("past_end", "error"):
        assert any("decoding from the start" in m for m in told)
    if how == "error":
        assert stream.seeks == 0


def test_probe_is_unchanged_by_the_index(gop_video):
    info = probe_video(gop_video)
    assert info.frame_count == N and info.fps == pytest.approx(FPS)


def test_a_raw_stream_without_index_or_seeking_decodes_on(gop_video, tmp_path: Path):
    """A raw H.264 elementary stream: no container index, no duration, and FFmpeg refuses to seek it."""
    raw = remux(gop_video, tmp_path / "gop.h264", format="h264")
    assert probe_video(raw).duration == 0.0
    stream = sample_frames(raw, times=[35.0, 12.0])
    check(stream, CFR, [35.0, 12.0])
    assert stream.seeks == 0
    stream = sample_frames(raw, times=[58.4])  # past the end, after a refused seek: the real last frame
    check(stream, CFR, [58.4])


def test_a_frame_skipped_after_a_seek_that_may_be_nearest_is_decoded_after_all(gap_video, decoded):
    """After a seek, frames no other frame refers to (B-frames here) are skipped until just before the
    wanted time. Across a 5-s gap the frame before the wanted time is such a frame and far from it: the
    sampler sees it was held back, seeks again without skipping, and returns it."""
    for wanted in ([14.36], [12.5], [16.5], [11.98, 20.0]):
        stream = sample_frames(gap_video, times=wanted)
        check(stream, GAP, wanted)
    assert stream.fallbacks == 0
    held = sample_frames(gap_video, times=[14.36])
    assert [read_frame_number(f.image) for f in held] == [299]
    assert held._src.redos == 1 and held.seeks == 2


def test_skipping_after_a_seek_decodes_fewer_frames_than_the_seek_alone(gop_video, decoded):
    stream = sample_frames(gop_video, times=[19.0, 39.0])
    check(stream, CFR, [19.0, 39.0])
    assert stream.seeks == 2 and stream._src.redos == 0
    # without skipping: the first frames before the seek, then 10 s - 1 s of frames from each keyframe
    assert decoded[0] < 2 * 226 * 0.85


GAP = [round(i * 0.04, 3) for i in range(300)] + [round(16.96 + i * 0.04, 3) for i in range(300)]


@pytest.fixture(scope="module")
def gap_video(tmp_path_factory) -> Path:
    return render_numbered_video(tmp_path_factory.mktemp("seek") / "gap.mp4", n_frames=len(GAP), fps=FPS,
                                 size=(96, 64), vfr_times=GAP)


@pytest.mark.parametrize("kind", ["gop", "vfr_gop", "gap"])
def test_seeded_random_requests_by_times_rate_and_count_match_the_nearest_frames(request, kind):
    """Seeking, skipping and seeking back together, against the nearest frames computed independently."""
    video = request.getfixturevalue(f"{kind}_video")
    times = {"gop": CFR, "vfr_gop": VFR, "gap": GAP}[kind]
    duration = probe_video(video).duration
    end = times[-1] + (times[-1] - times[-2])
    r = np.random.default_rng(11)
    for _ in range(4):
        wanted = r.uniform(0, times[-1] + 1, size=int(r.integers(1, 25))).tolist()
        check(sample_frames(video, times=wanted), times, wanted)
        fps = float(r.uniform(0.05, 3))
        check(sample_frames(video, fps=fps), times, [k / fps for k in range(int(np.ceil(end * fps - 1e-9)))])
        n = int(r.integers(1, 40))
        check(sample_frames(video, num_frames=n), times, [(k + 0.5) * duration / n for k in range(n)])


# --- planning without decoding (cache lookups before decoding) ---------------------------

@pytest.mark.parametrize("kind", ["gop", "vfr_gop", "gap"])
def test_planned_times_are_the_times_decoding_returns(request, kind, decoded):
    from frame_describer.sampling import planned_times

    video = request.getfixturevalue(f"{kind}_video")
    r = np.random.default_rng(5)
    for kwargs in ({"fps": 1.0}, {"fps": 0.3}, {"num_frames": 7}, {"num_frames": 10**6}, {"fps": 2.0, "max_frames": 5},
                   {"fps": 1.0, "start": 3.3, "end": 9.0}, {"times": r.uniform(0, 80, size=9).tolist()}):
        decoded[0] = 0
        planned = planned_times(video, **kwargs)
        assert decoded[0] == 1  # the probe's first frame, nothing more
        assert planned == [f.t for f in sample_frames(video, **kwargs)]


def test_planning_a_stream_without_timestamps_or_with_bad_arguments_says_why(gop_video, tmp_path: Path):
    import av

    from frame_describer.sampling import planned_times
    from vidground.errors import ConfigurationError, VideoDecodeError

    raw = tmp_path / "gop.h264"
    with av.open(str(gop_video)) as src, av.open(str(raw), "w", format="h264") as out:
        o = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = o
                out.mux(packet)
    with pytest.raises(VideoDecodeError, match="no packets with timestamps"):
        planned_times(raw, fps=1.0)
    with pytest.raises(ConfigurationError, match="fps"):
        planned_times(gop_video, fps=0)
