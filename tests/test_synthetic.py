from pathlib import Path

import numpy as np
import pytest

from vidground.errors import ConfigurationError
from frame_describer.synthetic import (DEMO_DURATION, demo_events, draw_frame_number, read_frame_number,
                                       render_demo_video, render_numbered_video)
from frame_describer.sampling import probe_video, sample_frames


@pytest.mark.parametrize("n", [0, 1, 5, 255, 1000, 16383])
def test_frame_number_round_trip_survives_downscaling(n):
    import cv2
    img = np.full((240, 320, 3), 90, np.uint8)
    draw_frame_number(img, n)
    assert read_frame_number(img) == n
    small = cv2.resize(img, (80, 60), interpolation=cv2.INTER_AREA)
    assert read_frame_number(small) == n


def test_read_frame_number_rejects_foreign_or_rotated_images():
    img = np.full((240, 320, 3), 90, np.uint8)
    draw_frame_number(img, 77)
    with pytest.raises(ValueError):
        read_frame_number(np.full((240, 320, 3), 128, np.uint8))
    with pytest.raises(ValueError):
        read_frame_number(np.ascontiguousarray(np.rot90(img)))
    with pytest.raises(ConfigurationError):
        draw_frame_number(img, 1 << 14)


def test_render_numbered_video_metadata(tmp_path: Path):
    p = render_numbered_video(tmp_path / "v.mp4", n_frames=12, fps=4, size=(160, 120))
    info = probe_video(p)
    assert (info.width, info.height, info.rotation) == (160, 120, 0)
    assert info.fps == pytest.approx(4)
    assert info.duration == pytest.approx(3.0, abs=0.01)


def test_render_rejects_bad_arguments(tmp_path: Path):
    with pytest.raises(ConfigurationError):
        render_numbered_video(tmp_path / "a.mp4", n_frames=3, vfr_times=[0, 1])
    with pytest.raises(ConfigurationError):
        render_numbered_video(tmp_path / "a.mp4", n_frames=3, vfr_times=[0, 1, 1])
    with pytest.raises(ConfigurationError):
        render_numbered_video(tmp_path / "a.mp4", n_frames=3, rotation=45)


@pytest.mark.slow
def test_demo_video_is_deterministic_and_events_are_separated(tmp_path: Path):
    a = render_demo_video(tmp_path / "a.mp4")
    b = render_demo_video(tmp_path / "b.mp4")
    assert a == b == demo_events()
    # the same frames, up to the encoder (its bytes are not promised: see the module docstring)
    fa = [f.image.astype(np.int16) for f in sample_frames(tmp_path / "a.mp4", fps=2)]
    fb = [f.image.astype(np.int16) for f in sample_frames(tmp_path / "b.mp4", fps=2)]
    assert len(fa) == len(fb) == 72
    assert max(float(np.abs(x - y).mean()) for x, y in zip(fa, fb)) < 1.0
    info = probe_video(tmp_path / "a.mp4")
    assert info.duration == pytest.approx(DEMO_DURATION, abs=0.11)
    spans = sorted(e.as_interval() for e in a)
    for (s0, e0), (s1, e1) in zip(spans, spans[1:]):
        assert e0 + 1.0 < s1, "events must be at least a second apart"
    assert all(e.query and e.end > e.start for e in a)
