"""The motion stream: per sample, a short text summary of what moved since the previous sample.

A describer that looks at one frame at a time cannot tell "the ball rolls left" from "the ball rolls
right", nor "the camera pans" from "the person walks". Beside each frame's appearance, this stream
measures the change from the previous sample with OpenCV on small grey images (``FLOW_WIDTH`` pixels
wide) and says it in words:

* **camera motion**: the global translation (phase correlation), accepted only when shifting the previous
  image by it explains most of the change; the picture sliding left is the camera panning right;
* **object motion**: what still differs once the camera's motion is taken out, with where it is in the
  picture (left / centre / right, top / bottom), which way it goes (DIS dense optical flow, relative to
  the camera) and how much of the picture it covers.

:class:`MotionDescriber` wraps any describer and appends the summary to each description
(``"... Motion: the camera pans to the right."``). It streams: only the previous small grey image is
kept. It is meant to sit *outside* the description cache (the session puts it there), so the cache
holds the inner describer's own descriptions and serves them to runs with or without motion; the
summary is recomputed from the frames every time, which costs a few milliseconds per frame.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from vidground.types import Frame, FrameDescription

FLOW_WIDTH = 160
#: Goes into the wrapped describer's settings: a change to the summaries' wording or thresholds bumps it.
MOTION_VERSION = "motion-2"
#: Camera speed (picture widths per second) below which the camera is said to be still.
CAMERA_SPEED = 0.04
#: Share of the picture that must move for object motion to be reported.
MOVING_SHARE = 0.005


def small_grey(image: np.ndarray, width: int = FLOW_WIDTH) -> np.ndarray:
    """``image`` (RGB) as a ``width``-wide grey image, the size the motion measurements use."""
    h, w = image.shape[:2]
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (width, max(8, round(h * width / w))), interpolation=cv2.INTER_AREA)


def measure_motion(prev: np.ndarray, cur: np.ndarray, *, method: str = "farneback",
                   ) -> tuple[tuple[float, float] | None, np.ndarray, np.ndarray]:
    """Camera motion and local motion between two small grey images: ``(shift, moved, flow)``.

    The global translation comes from phase correlation and counts as camera motion (``shift``, pixels)
    only when shifting the previous image by it explains the change (the aligned difference is less than
    half the raw one). Local motion (``moved``, a mask) is what still differs after that alignment; its
    direction comes from dense optical flow (``flow``), relative to the camera's motion: ``"dis"``
    (OpenCV's DIS, a patch search, right about small objects that move further than their own size
    between samples, as at one sample a second) or ``"farneback"`` (what the ``cv`` describer's
    sentences were written with; such objects can come out going the wrong way).
    """
    a, b = prev.astype(np.float32), cur.astype(np.float32)
    h, w = a.shape
    (sx, sy), response = cv2.phaseCorrelate(a, b, cv2.createHanningWindow((w, h), cv2.CV_32F))
    raw = cv2.absdiff(prev, cur)
    shift: tuple[float, float] | None = None
    aligned = raw
    if response > 0.05 and np.hypot(sx, sy) >= 1.0:
        warped = cv2.warpAffine(prev, np.float32([[1, 0, sx], [0, 1, sy]]), (w, h), borderValue=0)
        covered = cv2.warpAffine(np.full_like(prev, 255), np.float32([[1, 0, sx], [0, 1, sy]]), (w, h))
        valid = covered > 0
        diff = cv2.absdiff(warped, cur)
        if valid.mean() > 0.3 and diff[valid].mean() < 0.5 * raw[valid].mean():
            # the residual only where the shifted image covers fully, a little in from its edge: at the
            # edge, the interpolation mixes in the black border, and that difference read as an object
            # moving (at the camera's speed, the other way) in every panned sample
            inside = cv2.erode((covered == 255).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
            shift, aligned = (float(sx), float(sy)), np.where(inside, diff, 0).astype(np.uint8)
    moved = cv2.morphologyEx((cv2.GaussianBlur(aligned, (5, 5), 0) > 25).astype(np.uint8),
                             cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
    if method == "dis":
        flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(prev, cur, None)
    else:
        flow = cv2.calcOpticalFlowFarneback(prev, cur, None, 0.5, 4, 15, 3, 5, 1.2, 0)
    if shift is not None:
        flow = flow - np.float32(shift)
    return shift, moved, flow


def place(x_centre: float, width: float) -> str:
    """``"on the left"`` / ``"in the centre"`` / ``"on the right"`` for a horizontal position."""
    r = x_centre / width
    return "on the left" if r < 0.36 else "on the right" if r > 0.64 else "in the centre"


def direction(dx: float, dy: float) -> str:
    """The compass word(s) for an image-space motion (``y`` grows downwards)."""
    if abs(dx) >= 2 * abs(dy):
        return "right" if dx > 0 else "left"
    if abs(dy) >= 2 * abs(dx):
        return "down" if dy > 0 else "up"
    return ("down" if dy > 0 else "up") + " and " + ("right" if dx > 0 else "left")


@dataclass(frozen=True)
class Motion:
    """What moved between two samples. Speeds are picture widths per second."""

    camera: str | None = None  # "right", "up and left"... the way the camera turns
    camera_speed: float = 0.0
    moving_share: float = 0.0  # of the picture, after the camera's motion is taken out
    where: str | None = None  # "in the centre", "at the bottom on the left"...
    way: str | None = None  # the moving part's direction, relative to the camera
    speed: float = 0.0

    def text(self) -> str:
        """One sentence: ``"Motion: the camera pans to the right; something in the centre moves to the left."``"""
        parts = []
        if self.camera:
            pace = "quickly" if self.camera_speed >= 0.12 else "slowly"
            verb = "pans" if self.camera in ("left", "right") else "tilts" if self.camera in ("up", "down") else "moves"
            parts.append(f"the camera {verb} {pace} {'to the ' if verb == 'pans' else ''}{self.camera}")
        if self.where:
            way = f" to the {self.way}" if self.way in ("left", "right") else f" {self.way}" if self.way else ""
            parts.append(f"something {self.where} moves{way}")
        return "Motion: " + ("; ".join(parts) if parts else "nothing moves") + "."


class MotionStream:
    """Feed it frames in time order; :meth:`update` says what moved since the previous one (``None`` for
    the first frame, or after a frame of another size). Only the previous small grey image is kept."""

    def __init__(self) -> None:
        self._prev: tuple[float, np.ndarray] | None = None

    def update(self, frame: Frame) -> Motion | None:
        cur = small_grey(frame.image)
        prev, self._prev = self._prev, (frame.t, cur)
        if prev is None or prev[1].shape != cur.shape:
            return None
        dt = max(frame.t - prev[0], 1e-3)
        shift, moved, flow = measure_motion(prev[1], cur, method="dis")
        h, w = cur.shape
        camera, camera_speed = None, 0.0
        if shift is not None:
            camera_speed = float(np.hypot(*shift)) / w / dt
            if camera_speed >= CAMERA_SPEED:
                camera = direction(-shift[0], -shift[1])  # the picture slides one way, the camera turns the other
        share = float(moved.mean())
        if share < MOVING_SHARE:
            return Motion(camera=camera, camera_speed=camera_speed, moving_share=share)
        ys, xs = np.nonzero(moved)
        dx, dy = (float(v) for v in flow[moved].mean(axis=0))
        y = ys.mean() / h
        where = place(xs.mean() + 0.5, w)
        if y < 0.33 or y > 0.67:
            where = f"at the {'top' if y < 0.33 else 'bottom'} {where.replace('in the centre', 'in the middle')}"
        speed = float(np.hypot(dx, dy)) / w / dt
        return Motion(camera=camera, camera_speed=camera_speed, moving_share=share, where=where,
                      way=direction(dx, dy) if np.hypot(dx, dy) >= 1.0 else None, speed=speed)


class MotionDescriber:
    """``describer``'s descriptions with a motion summary appended to each (see the module).

    The same name with ``+motion``, the same mode, and settings that record the stream's version, so
    runs and provenance tell the two apart. Descriptions are paired with their frames by time, so an
    inner describer may buffer or answer some frames from a cache.
    """

    uses_previous_frame = True

    def __init__(self, describer: Any):
        self.inner = describer
        self.name = f"{getattr(describer, 'name', type(describer).__name__)}+motion"
        self.mode = getattr(describer, "mode", "agnostic")

    def settings(self) -> dict[str, Any]:
        return {**self.inner.settings(), "name": self.name, "motion": MOTION_VERSION}

    def describe(self, frames: Iterable[Frame], *, query: str | None = None) -> Iterator[FrameDescription]:
        stream = MotionStream()
        pending: dict[float, str] = {}  # summaries of frames handed to the inner describer, not yet described
        lock = threading.Lock()  # the inner describer may pull frames from another thread

        def measured() -> Iterator[Frame]:
            for frame in frames:
                motion = stream.update(frame)
                if motion is not None:
                    with lock:
                        pending[frame.t] = motion.text()
                yield frame

        for d in self.inner.describe(measured(), query=query):
            with lock:
                summary = pending.pop(d.t, None)
            yield d if summary is None else d.model_copy(update={"text": f"{d.text} {summary}".strip()})


__all__ = ["FLOW_WIDTH", "MOTION_VERSION", "Motion", "MotionDescriber", "MotionStream", "direction",
           "measure_motion", "place", "small_grey"]
