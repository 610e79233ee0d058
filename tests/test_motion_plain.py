"""The motion stream on a plain background: a lone moving thing is the thing's motion, not the camera's.

Before ``motion-4`` the global shift of phase correlation was taken as the camera's whenever shifting the
previous image by it explained the change, and on a plain background a lone thing's own move does: the
held-out clips' (benchmarks/motion_heldout.py) white disc moving up read "the camera tilts slowly down",
a yellow disc moving left "the camera pans quickly to the right", all 20 lone-mover pairs of the four
plain clips read as the camera. A camera moves all the detail in view; a lone thing only itself.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from frame_describer.motion import CAMERA_EXTENT, Sample, lined_up_extent, measure_motion
from test_motion import _motions


def _disc_on_plain(centres: list[tuple[int, int]], radius: int = 16, colour=(245, 245, 245),
                   background=(70, 100, 140)) -> list[np.ndarray]:
    images = []
    for c in centres:
        img = np.full((240, 320, 3), background, np.uint8)
        cv2.circle(img, c, radius, colour, -1, cv2.LINE_AA)
        images.append(img)
    return images


@pytest.mark.parametrize("centres, way", [
    ([(160, 200), (160, 172), (160, 144)], "up"),  # the held-out white disc: "the camera tilts slowly down"
    ([(250, 150), (200, 150), (150, 150)], "left"),  # the held-out yellow disc: "the camera pans quickly to the right"
    ([(100, 60), (125, 85), (150, 110)], "down and right"),
])
def test_a_lone_disc_on_a_plain_background_moves_and_the_camera_is_still(centres, way):
    motions = _motions(_disc_on_plain(centres))
    assert all(m.camera is None and m.way == way for m in motions), [m.text() for m in motions]
    assert all(m.thing is not None and m.thing.shape == "round" and m.thing.colour == "white" for m in motions)
    assert all("camera" not in m.text() for m in motions)


def test_a_slow_lone_disc_is_not_taken_out_as_a_still_camera_s_shift():
    # 12 px a second at 320 px wide is under CAMERA_SPEED: the disc's move was aligned away as a camera
    # too slow to mention, and the sample said "nothing moves"
    a, b = (Sample.of(0.0, im).grey for im in _disc_on_plain([(100, 120), (112, 120)], radius=20))
    shift, moved = measure_motion(a, b)
    assert shift is None and moved.any()
    (m,) = _motions(_disc_on_plain([(100, 120), (112, 120)], radius=20))
    assert m.way == "right" and m.camera is None, m.text()


def test_lined_up_extent_tells_a_pan_from_a_lone_thing():
    rng = np.random.default_rng(4)
    texture = cv2.GaussianBlur(cv2.resize(rng.integers(0, 255, (15, 40), dtype=np.uint8), (320, 120),
                                          interpolation=cv2.INTER_NEAREST), (0, 0), 1.5)
    before, after = texture[:, 40:200], texture[:, 60:220]  # the view moves 20 px: the picture slides left
    shifted = np.roll(before, -20, axis=1)
    inside = np.ones(before.shape, bool)
    inside[:, -22:] = False
    pan = lined_up_extent(cv2.absdiff(before, after), cv2.absdiff(shifted, after), inside)
    disc_a, disc_b = np.full((120, 160), 90, np.uint8), np.full((120, 160), 90, np.uint8)
    cv2.circle(disc_a, (60, 60), 8, 240, -1)
    cv2.circle(disc_b, (80, 60), 8, 240, -1)
    lone = lined_up_extent(cv2.absdiff(disc_a, disc_b), cv2.absdiff(np.roll(disc_a, 20, axis=1), disc_b),
                           np.ones(disc_a.shape, bool))
    assert pan > 0.9 and lone < 0.3 and lone < CAMERA_EXTENT < pan, (pan, lone)
