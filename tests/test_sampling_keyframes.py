"""sample_frames(keyframes_only=True): each requested time answered by the nearest keyframe, for sparse
passes where the exact frame does not matter (issue #19)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from _helpers_video import spy_decoding
from frame_describer.sampling import sample_frames
from frame_describer.synthetic import read_frame_number, render_numbered_video

FPS, N = 25, 1000  # 40 s


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return render_numbered_video(tmp_path_factory.mktemp("keys") / "gop.mp4", n_frames=N, fps=FPS, size=(96, 64))


@pytest.fixture(scope="module")
def keyframes(video) -> list[float]:
    """The keyframes' times, read from the packets independently of the sampler."""
    with av.open(str(video)) as c:
        s = c.streams.video[0]
        origin = s.start_time or 0
        return sorted(float((p.pts - origin) * s.time_base) for p in c.demux(s) if p.is_keyframe and p.pts is not None)


def nearest_keys(keys, requested):
    picks = (min(keys, key=lambda k: (abs(k - t), k)) for t in sorted(requested))
    return list(dict.fromkeys(picks))


def check(stream, keys, requested):
    frames = list(stream)
    assert [f.t for f in frames] == pytest.approx(nearest_keys(keys, requested), abs=1e-6)
    assert [read_frame_number(f.image) for f in frames] == [round(f.t * FPS) for f in frames]  # the real frame
    assert [f.index for f in frames] == list(range(len(frames)))
    return frames


def test_the_video_has_several_keyframes(keyframes):
    assert len(keyframes) >= 4 and keyframes[0] == 0.0  # else the tests below would prove little


@pytest.mark.parametrize("kwargs,requested", [
    ({"fps": 0.25}, [4.0 * k for k in range(10)]),
    ({"num_frames": 3}, [(k + 0.5) * 40 / 3 for k in range(3)]),
    ({"times": [31.0, 4.0, 5.0, 14.9, 15.1, 39.9]}, [31.0, 4.0, 5.0, 14.9, 15.1, 39.9]),
    ({"times": [100.0]}, [100.0]),  # past the end: the last keyframe
])
def test_each_time_gets_its_nearest_keyframe_with_its_real_time(video, keyframes, kwargs, requested):
    stream = sample_frames(video, keyframes_only=True, **kwargs)
    assert stream.keyframes_only
    check(stream, keyframes, requested)


def test_random_times(video, keyframes):
    rng = np.random.default_rng(3)
    for _ in range(5):
        requested = rng.uniform(0, 42, size=int(rng.integers(1, 12))).round(3).tolist()
        check(sample_frames(video, times=requested, keyframes_only=True), keyframes, requested)


def test_max_frames_caps_and_default_is_exact(video, keyframes):
    frames = list(sample_frames(video, fps=1, max_frames=2, keyframes_only=True))
    assert len(frames) == 2 and all(f.t in keyframes for f in frames)
    exact = list(sample_frames(video, times=[5.0]))  # not asked for: the exact frame, not a keyframe
    assert read_frame_number(exact[0].image) == 125 and exact[0].t not in keyframes


def test_only_the_picked_keyframes_are_decoded(video, monkeypatch):
    """The point of the option: no frame is decoded but the keyframes returned."""
    stream = sample_frames(video, times=[4.0, 26.0], keyframes_only=True)  # probes; decoding starts lazily
    decoded = spy_decoding(monkeypatch)
    frames = list(stream)
    assert len(frames) == 2 and len(decoded) == 2  # one packet decoded per frame returned
