import logging
import math
from pathlib import Path

import numpy as np
import pytest

from _helpers_video import VFR_TIMES, cfr_video, video_dir, vfr_video  # noqa: F401 (fixtures)
from vidground.errors import ConfigurationError, VideoDecodeError
from frame_describer.sampling import FrameStream, probe_video, sample_frames
from frame_describer.synthetic import read_frame_number, render_numbered_video


def nearest(times, t):
    """Index of the frame nearest t (ties to the earlier frame), computed independently."""
    return min(range(len(times)), key=lambda i: (abs(times[i] - t), i))


def check(frames, times, requested):
    got = [read_frame_number(f.image) for f in frames]
    want = list(dict.fromkeys(nearest(times, t) for t in requested))  # no frame twice
    assert got == want
    for f, n in zip(frames, got):
        assert f.t == pytest.approx(times[n], abs=1e-3)  # the frame's real time, not index / fps
        assert f.source_index == n
    assert [f.index for f in frames] == list(range(len(frames)))


CFR = [i / 10 for i in range(60)]


@pytest.mark.parametrize("fps", [1.0, 3.0, 0.7, 2.5])
def test_rate_mode_returns_nearest_frame_cfr(cfr_video, fps):
    frames = list(sample_frames(cfr_video, fps=fps))
    check(frames, CFR, [k / fps for k in range(math.ceil(6 * fps - 1e-9))])


@pytest.mark.parametrize("fps", [1.0, 2.0, 5.0])
def test_rate_mode_returns_nearest_frame_vfr(vfr_video, fps):
    end = VFR_TIMES[-1] + (VFR_TIMES[-1] - VFR_TIMES[-2])
    frames = list(sample_frames(vfr_video, fps=fps))
    check(frames, VFR_TIMES, [k / fps for k in range(math.ceil(end * fps - 1e-9))])


def test_faster_than_the_video_yields_each_frame_once(cfr_video):
    frames = list(sample_frames(cfr_video, fps=25))
    assert [read_frame_number(f.image) for f in frames] == list(range(60))


def test_default_is_one_fps_and_default_bound_keeps_small_frames(cfr_video):
    stream = sample_frames(cfr_video)
    assert isinstance(stream, FrameStream) and stream.fps == 1.0 and stream.planned == 6
    frames = list(stream)
    assert [round(f.t, 3) for f in frames] == [0, 1, 2, 3, 4, 5]
    assert all(f.size == (320, 240) for f in frames)  # never upscaled


def test_count_mode_is_evenly_spaced(cfr_video, vfr_video):
    frames = list(sample_frames(cfr_video, num_frames=4))
    check(frames, CFR, [(k + 0.5) * 6 / 4 for k in range(4)])
    info = probe_video(vfr_video)
    frames = list(sample_frames(vfr_video, num_frames=5))
    # over the frames' real extent (5.12 s), not the container's claim (4.63 s: the MP4's durations follow decoding)
    check(frames, VFR_TIMES, [(k + 0.5) * info.extent / 5 for k in range(5)])


def test_cap_lowers_the_rate(cfr_video):
    stream = sample_frames(cfr_video, fps=5, max_frames=6)
    frames = list(stream)
    assert len(frames) == 6 and stream.fps == pytest.approx(1.0)
    check(frames, CFR, [k * 1.0 for k in range(6)])
    assert len(list(sample_frames(cfr_video, num_frames=20, max_frames=3))) == 3


def test_start_and_end_window(cfr_video):
    frames = list(sample_frames(cfr_video, fps=2, start=2.04, end=4.0))
    assert [read_frame_number(f.image) for f in frames] == [20, 25, 30, 35]
    assert [f.t for f in frames] == pytest.approx([2.0, 2.5, 3.0, 3.5], abs=1e-3)


@pytest.mark.parametrize("max_side", [100, 64, 17])
def test_resize_bound(cfr_video, max_side):
    for f in sample_frames(cfr_video, fps=1, max_side=max_side):
        assert max(f.size) == max_side and f.image.dtype == np.uint8
        assert abs(f.size[0] / f.size[1] - 4 / 3) < 0.1
    assert read_frame_number(next(sample_frames(cfr_video, fps=1, start=2.0, max_side=100)).image) == 20


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_metadata_is_applied(tmp_path: Path, rotation):
    p = render_numbered_video(tmp_path / "r.mp4", n_frames=10, fps=5, size=(160, 120), rotation=rotation)
    info = probe_video(p)
    assert (info.width, info.height) == (160, 120) and info.rotation % 360 == rotation % 360
    frames = list(sample_frames(p, fps=5, max_side=80))
    assert [f.size for f in frames] == [(80, 60)] * 10
    assert [read_frame_number(f.image) for f in frames] == list(range(10))


def test_streams_lazily(tmp_path: Path, monkeypatch):
    """The first frame arrives after decoding a handful of frames, not the whole file."""
    import frame_describer.sampling as sampling
    p = render_numbered_video(tmp_path / "long.mp4", n_frames=300, fps=30, size=(96, 64))
    decoded = []
    real = sampling._decode

    def counting(container, stream, path, hold=None, damage=None):
        for frame in real(container, stream, path, hold, damage):
            decoded.append(frame.pts)
            yield frame

    monkeypatch.setattr(sampling, "_decode", counting)
    stream = sample_frames(p, fps=1)
    first = next(stream)
    assert read_frame_number(first.image) == 0 and len(decoded) <= 3
    second = next(stream)
    assert read_frame_number(second.image) == 30 and len(decoded) <= 33
    stream.close()
    assert len(decoded) <= 33


# --- bad input -------------------------------------------------------------------------

def _png(path: Path) -> Path:
    import cv2
    ok, buf = cv2.imencode(".png", np.zeros((32, 32, 3), np.uint8))
    path.write_bytes(buf.tobytes())
    return path


def _audio_only(path: Path) -> Path:
    import av
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for i in range(4):
            frame.pts = i * 1024
            c.mux(s.encode(frame))
        c.mux(s.encode(None))
    return path


@pytest.mark.parametrize("case,reason", [
    ("missing", "no such file"),
    ("folder", "is a directory"),
    ("empty", "empty (0 bytes)"),
    ("text", "not a readable video"),
    ("png", "still image"),
    ("audio", "no video stream"),
    ("half_moov_at_end", "not a readable video"),
])
def test_bad_files_raise_typed_one_line_errors(tmp_path: Path, cfr_video, case, reason):
    p = tmp_path / f"{case}.mp4"
    if case == "folder":
        p.mkdir()
    elif case == "empty":
        p.write_bytes(b"")
    elif case == "text":
        p.write_text("this is not a video\n" * 50)
    elif case == "png":
        _png(p)
    elif case == "audio":
        _audio_only(tmp_path / "audio.m4a").rename(p)
    elif case == "half_moov_at_end":
        data = cfr_video.read_bytes()  # PyAV writes the index (moov) at the end
        p.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError) as err:
        sample_frames(p)
    assert err.value.path == str(p) and reason in err.value.reason
    assert "\n" not in str(err.value) and str(p) in str(err.value)


@pytest.mark.parametrize("case,reason", [
    ("fifo", "is a FIFO, not a regular video file"),
    ("device", "is a character device, not a regular video file"),
    ("loop", "cannot open the video file (Too many levels of symbolic links)"),
    ("dangling", "no such file"),
    ("through_a_file", "cannot open the video file (Not a directory)"),
])
def test_special_files_are_named_for_what_they_are(tmp_path: Path, case, reason):
    """A FIFO would block FFmpeg and a device never ends; neither is "empty", and a link loop exists."""
    import os

    p = tmp_path / f"{case}.mp4"
    if case == "fifo":
        os.mkfifo(p)
    elif case == "device":
        p = Path("/dev/zero")
    elif case == "loop":
        os.symlink(tmp_path / "other.mp4", p)
        os.symlink(p, tmp_path / "other.mp4")
    elif case == "dangling":
        os.symlink(tmp_path / "gone.mp4", p)
    else:
        (tmp_path / "plain").write_bytes(b"x")
        p = tmp_path / "plain" / "video.mp4"
    for call in (lambda: sample_frames(p), lambda: probe_video(p)):
        with pytest.raises(VideoDecodeError) as err:
            call()
        assert err.value.path == str(p) and err.value.reason.startswith(reason)


def test_unreadable_file_says_permission(tmp_path: Path, cfr_video):
    import os

    p = tmp_path / "locked.mp4"
    p.write_bytes(cfr_video.read_bytes())
    p.chmod(0)
    if os.access(p, os.R_OK):  # root reads anything
        pytest.skip("running as a user that bypasses file permissions")
    with pytest.raises(VideoDecodeError, match="cannot open the video file .Permission denied"):
        sample_frames(p)


def test_truncated_stream_decodes_what_is_there_and_clamps(tmp_path: Path, caplog):
    full = render_numbered_video(tmp_path / "full.mkv", n_frames=60, fps=10)
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="frame_describer.sampling"):
        stream = sample_frames(cut, fps=2)
        frames = list(stream)
    numbers = [read_frame_number(f.image) for f in frames]
    assert 5 <= len(numbers) < 12 and numbers == [5 * k for k in range(len(numbers))]
    # said once, in the stream's warnings (a result's); logged too, the command line printed it twice
    assert any("truncated" in w for w in stream.warnings)
    assert not any("truncated" in r.message or "clamped" in r.message for r in caplog.records)


@pytest.mark.parametrize("kwargs,needle", [
    ({"fps": 0}, "fps"), ({"fps": -1.0}, "fps"), ({"fps": float("nan")}, "fps"),
    ({"num_frames": 0}, "num_frames"), ({"fps": 2.0, "num_frames": 3}, "not both"),
    ({"max_frames": 0}, "max_frames"), ({"max_side": 4}, "max_side"),
    ({"start": -1.0}, "start"), ({"start": 3.0, "end": 2.0}, "end"), ({"start": 60.0}, "past the end"),
])
def test_bad_arguments_raise_configuration_error(cfr_video, kwargs, needle):
    with pytest.raises(ConfigurationError, match=needle):
        sample_frames(cfr_video, **kwargs)


@pytest.mark.parametrize("kind", ["cfr", "vfr"])
def test_absurdly_dense_requests_cost_what_the_frames_cost_and_return_every_frame(request, kind, caplog):
    """--fps 1e8 or --num-frames 1e9 used to walk every requested time between two frames (96 s for a
    5-s clip); now the walk jumps to the next time that can pick a new frame, with the same frames."""
    video = request.getfixturevalue(f"{kind}_video")
    with caplog.at_level(logging.WARNING, logger="frame_describer.sampling"):
        every = [(f.t, f.source_index) for f in sample_frames(video, fps=1000.0)]
    assert any("every frame is sampled" in r.getMessage() for r in caplog.records)
    n_frames = probe_video(video).frame_count
    assert len(every) == n_frames  # 1000 fps already picks each decoded frame once
    assert [(f.t, f.source_index) for f in sample_frames(video, fps=1e8)] == every
    # by count the times cover the container's duration (the VFR clip's stream runs past it)
    dense = [(f.t, f.source_index) for f in sample_frames(video, num_frames=100_000)]
    assert [(f.t, f.source_index) for f in sample_frames(video, num_frames=10**9)] == dense


def test_the_grid_skips_past_a_time_exactly():
    from frame_describer.sampling import _Grid, _rate_targets

    grid = _rate_targets(0.0, 10.0, 3.0)
    assert next(grid) == 0.0 and grid.skip_past(5.0) == pytest.approx(5 + 1 / 3)
    assert grid.skip_past(9.9) is None
    count = _Grid(lambda k: 1.0 + (k + 0.5) * 2.0, 2.0, count=4)  # 2, 4, 6, 8
    assert count.skip_past(4.0) == 6.0 and next(count) == 8.0 and next(count, None) is None


# --- random access: a list of times ----------------------------------------------------

@pytest.mark.parametrize("kind", ["cfr", "vfr"])
def test_times_in_any_order_come_back_in_time_order_as_the_nearest_frames(request, kind):
    video = request.getfixturevalue(f"{kind}_video")
    times = CFR if kind == "cfr" else VFR_TIMES
    wanted = [4.47, 0.0, 2.21, 2.21, 0.06, 5.05, 1.31, 0.49]  # any order, a duplicate
    stream = sample_frames(video, times=wanted)
    assert stream.fps is None and stream.planned == len(set(wanted))
    check(list(stream), times, sorted(wanted))


def test_times_between_two_frames_pick_the_nearer_and_a_frame_comes_once(cfr_video):
    frames = list(sample_frames(cfr_video, times=[1.04, 1.02, 1.0, 0.96]))  # 1.0 is nearest to all four
    assert [read_frame_number(f.image) for f in frames] == [10]
    frames = list(sample_frames(cfr_video, times=[1.04, 1.06]))
    assert [read_frame_number(f.image) for f in frames] == [10, 11]


def test_times_past_the_end_get_the_real_last_frame(cfr_video, tmp_path: Path):
    for wanted in ([3.0, 100.0, 5.9, 1e6], [3.0, 100.0]):
        frames = list(sample_frames(cfr_video, times=wanted))
        assert [read_frame_number(f.image) for f in frames] == [30, 59]
        assert frames[-1].t == pytest.approx(5.9, abs=1e-3)
    full = render_numbered_video(tmp_path / "full.mkv", n_frames=60, fps=10)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: len(full.read_bytes()) // 2])
    stream = sample_frames(cut, times=[0.5, 5.5])
    numbers = [read_frame_number(f.image) for f in stream]
    assert numbers[0] == 5 and 5 < numbers[-1] < 59 and len(numbers) == 2  # the real last frame
    assert stream.truncated_at is not None and stream.truncated_at < 5.0
    every = [read_frame_number(f.image) for f in sample_frames(cut, fps=1000.0)]
    assert numbers[-1] == every[-1]  # really the last frame that decodes


def test_times_keep_rotation_and_the_resize_bound(tmp_path: Path):
    p = render_numbered_video(tmp_path / "r.mp4", n_frames=20, fps=5, size=(160, 120), rotation=90)
    frames = list(sample_frames(p, times=[3.0, 0.4], max_side=80))
    assert [f.size for f in frames] == [(80, 60)] * 2
    assert [read_frame_number(f.image) for f in frames] == [2, 15]


def test_times_with_max_frames_stop_at_the_cap(cfr_video):
    frames = list(sample_frames(cfr_video, times=[5.0, 1.0, 3.0], max_frames=2))
    assert [read_frame_number(f.image) for f in frames] == [10, 30]


@pytest.mark.parametrize("kwargs,needle", [
    ({"times": []}, "empty"), ({"times": [1.0, -0.5]}, r"times\[1\]"), ({"times": [float("nan")]}, "finite"),
    ({"times": [float("inf")]}, "finite"), ({"times": ["1.0"]}, r"times\[0\] must be a number"),
    ({"times": [True]}, "number"), ({"times": 2.0}, "list of seconds"), ({"times": "1,2"}, "list of seconds"),
    ({"times": [1.0], "fps": 1.0}, "not both"), ({"times": [1.0], "num_frames": 2}, "not both"),
    ({"times": [1.0], "start": 1.0}, "start/end"), ({"times": [1.0], "end": 2.0}, "start/end"),
])
def test_bad_times_raise_configuration_error(cfr_video, kwargs, needle):
    with pytest.raises(ConfigurationError, match=needle):
        sample_frames(cfr_video, **kwargs)


# --- resizing in the decoder ----------------------------------------------------------

@pytest.mark.parametrize("rotation,max_side", [(None, 100), (None, None), (90, 77), (-90, 151), (180, 64)])
def test_the_scaler_gives_the_old_path_s_pixels_within_rounding(tmp_path: Path, rotation, max_side):
    """Shrinking in FFmpeg's scaler (one pass from YUV) instead of full RGB then cv2.INTER_AREA: same sizes,
    the same picture up to rounding at sharp edges (the drawn digits and bar code)."""
    import av
    from frame_describer.images import bounded
    from frame_describer.sampling import to_image

    p = render_numbered_video(tmp_path / "s.mp4", n_frames=3, fps=5, size=(334, 212), rotation=rotation)
    with av.open(str(p)) as c:
        frames = list(c.decode(video=0))
    for n, frame in enumerate(frames):
        k = ((rotation or 0) // 90) % 4
        old = bounded(np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"), k)), max_side)
        new = to_image(frame, rotation or 0, max_side)
        assert new.shape == old.shape and new.dtype == np.uint8 and new.flags.c_contiguous
        diff = np.abs(new.astype(int) - old)
        assert diff.mean() < 1.5 and np.percentile(diff, 99) <= 16  # rounding and edge weights, not a shifted picture
        if max_side is None:
            assert diff.max() == 0  # no scaling: the very same colour conversion
        assert read_frame_number(new) == n
