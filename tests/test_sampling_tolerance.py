"""sample_frames(times=..., tolerance=S): a keyframe within S seconds of a requested time answers it (decoded
alone); every other time gets its exact nearest frame (issue #19)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from _helpers_video import remux, render_gop_video, spy_decoding
from frame_describer.sampling import sample_frames
from frame_describer.synthetic import read_frame_number
from vidground.errors import ConfigurationError

FPS, N = 25, 1000  # 40 s


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """40 s, a keyframe every 10 s."""
    return render_gop_video(tmp_path_factory.mktemp("tol") / "gop.mp4", n_frames=N, fps=FPS, gop=250)


@pytest.fixture(scope="module")
def one_keyframe(tmp_path_factory) -> Path:
    """12 s whose only keyframe is the first (a keyframe interval longer than the video)."""
    return render_gop_video(tmp_path_factory.mktemp("tol") / "one_key.mp4", n_frames=300, fps=FPS, gop=100000)


def keyframe_times(path: Path) -> list[float]:
    """Read from the packets, independently of the sampler."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        origin = s.start_time or 0
        return sorted(float((p.pts - origin) * s.time_base) for p in c.demux(s) if p.is_keyframe and p.pts is not None)


def expected(keys: list[float], requested: list[float], tolerance: float, n: int) -> tuple[list[int], int]:
    """The frame numbers each time should get (each once, in order) and how many times a keyframe answers."""
    picks, snapped = [], 0
    for t in sorted(set(requested)):
        key = min(keys, key=lambda k: (abs(k - t), k))
        if abs(key - t) <= tolerance + 1e-9:
            picks.append(round(key * FPS))
            snapped += 1
        else:  # the exact nearest frame, ties to the earlier; past the end the last frame
            picks.append(min(max(int(np.ceil(t * FPS - 0.5)), 0), n - 1))
    return list(dict.fromkeys(picks)), snapped


def check(path: Path, requested: list[float], tolerance: float, n: int = N):
    keys = keyframe_times(path)
    stream = sample_frames(path, times=requested, tolerance=tolerance)
    frames = list(stream)
    want, snapped = expected(keys, requested, tolerance, n)
    numbers = [read_frame_number(f.image) for f in frames]
    assert numbers == want
    assert [f.t for f in frames] == pytest.approx([k / FPS for k in want], abs=1e-6)  # each frame's real time
    assert stream.snapped == snapped and stream.tolerance == tolerance
    return frames, stream


def test_the_video_has_keyframes_10_s_apart(video):
    assert keyframe_times(video) == pytest.approx([0.0, 10.0, 20.0, 30.0])  # the cases below rely on it


@pytest.mark.parametrize("requested,tolerance,snapped", [
    ([1.0, 9.0, 12.5, 17.0, 24.0, 33.9], 2.0, 2),  # 1 -> 0, 9 -> 10; the rest are over 2 s off: exact
    ([4.0, 16.0, 28.0], 4.0, 3),  # 4 -> 0 (4.0 s, the bound included), 16 -> 20, 28 -> 30
    ([5.0, 15.0, 25.0], 4.0, 0),  # no keyframe within 4 s: every frame exact, as without a tolerance
    ([5.0], 5.0, 1),  # equidistant from 0 and 10: the earlier keyframe
    ([0.0, 0.02, 0.04], 1.0, 3),  # three times, one keyframe: it comes once
])
def test_a_keyframe_within_the_tolerance_answers_otherwise_the_exact_frame(video, requested, tolerance, snapped):
    _, stream = check(video, requested, tolerance)
    assert stream.snapped == snapped


def test_tolerance_zero_is_the_exact_sampler(video):
    requested = [1.0, 9.0, 12.5, 17.0, 24.0, 33.9, 39.99, 50.0]
    exact = list(sample_frames(video, times=requested))
    zero_stream = sample_frames(video, times=requested, tolerance=0)
    zero = list(zero_stream)
    assert [f.t for f in zero] == [f.t for f in exact]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(zero, exact))
    assert zero_stream.snapped == 0


def test_times_near_and_past_the_end(video):
    # the last keyframe is at 30 s and the last frame at 39.96 s
    frames, _ = check(video, [33.0, 39.9, 41.0, 100.0], 3.0)  # 33 -> 30; 39.9 exact; 41 and 100: the last frame, once
    assert [read_frame_number(f.image) for f in frames] == [750, 997, N - 1]
    frames, _ = check(video, [39.0, 100.0], 10.0)  # 39 is 9 s after the last keyframe: it answers; 100 is too far
    assert [read_frame_number(f.image) for f in frames] == [750, N - 1]


def test_random_times_and_tolerances(video):
    rng = np.random.default_rng(11)
    for _ in range(6):
        requested = rng.uniform(0, 42, size=int(rng.integers(1, 14))).round(3).tolist()
        check(video, requested, float(rng.choice([0.3, 1.5, 3.0, 6.0])))


@pytest.mark.parametrize("container", ["mkv", "mpegts"])
def test_other_containers(video, tmp_path, container):
    """Neither has an index read in full before a seek (Matroska reads its cues then, MPEG-TS has none): the
    keyframes' times come from reading the packets."""
    other = remux(video, tmp_path / f"v.{container}", format="matroska" if container == "mkv" else container)
    check(other, [1.0, 9.0, 12.5, 17.0, 24.0, 33.9, 39.0], 2.0)


def test_a_video_whose_only_keyframe_is_the_first(one_keyframe):
    assert keyframe_times(one_keyframe) == [0.0]
    frames, stream = check(one_keyframe, [0.3, 5.0, 11.0, 20.0], 1.0, n=300)
    assert stream.snapped == 1 and frames[0].t == 0.0  # the rest come exact, decoded from the start


def test_keyframes_within_the_tolerance_cost_one_decode_each(video, monkeypatch):
    """Counted in frames the decoder produced, never in seconds: the keyframes alone against decoding from
    the keyframe to each exact frame."""
    decoded = spy_decoding(monkeypatch)
    requested = [8.0, 18.0, 28.0]  # 2 s before each keyframe
    exact = list(sample_frames(video, times=requested))
    exact_cost = sum(n for _, n in decoded)
    decoded.clear()
    stream = sample_frames(video, times=requested, tolerance=2.5)
    frames = list(stream)
    assert stream.snapped == 3 and [read_frame_number(f.image) for f in frames] == [250, 500, 750]
    assert [read_frame_number(f.image) for f in exact] == [200, 450, 700]
    assert sum(n for _, n in decoded) <= 3 * 2 and exact_cost > 3 * 100  # a keyframe (and at most one read ahead) each


@pytest.mark.parametrize("kwargs,match", [
    ({"times": [1.0], "tolerance": -1.0}, "tolerance must be a number of seconds >= 0"),
    ({"times": [1.0], "tolerance": float("nan")}, "tolerance must be"),
    ({"times": [1.0], "tolerance": "2"}, "tolerance must be"),
    ({"times": [1.0], "tolerance": True}, "tolerance must be"),
    ({"fps": 1.0, "tolerance": 2.0}, "tolerance applies to times"),
    ({"times": [1.0], "tolerance": 2.0, "keyframes_only": True}, "not both"),
])
def test_bad_tolerances_say_what_is_wrong(video, kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        sample_frames(video, **kwargs)
