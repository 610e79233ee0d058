"""Synthetic test videos, rendered locally in a second or two; their pixels are deterministic.

What is drawn is fixed (seeded noise, no clock); the encoded file is not promised byte for
byte: in a long test process, two renders of the demo video have differed by a few dozen
bytes (CI, twice; never reproduced in a fresh process), so tests compare decoded frames.

Two renderers, both package code because the test suite *and* ``vidground demo`` use them:

* :func:`render_numbered_video` draws each frame's number twice: as big digits for people and
  as a 14-bit bar code that survives compression, resizing and rotation for
  :func:`read_frame_number`. Tests use it to check that the sampler returns the frame
  nearest each requested time, with constant or variable frame rate and rotation metadata.
* :func:`render_demo_video` renders a ~36 s scene with known events (a person walking in,
  standing and leaving; the lights going out; a fast camera pan; a scene cut) and returns
  their true intervals as :class:`DemoEvent` objects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from pydantic import BaseModel, Field

from vidground.errors import ConfigurationError

BITS = 14  # frame numbers 0..16383
_CELLS = BITS + 2  # a white guard cell, the bits (least significant first), a black guard cell
_TB = Fraction(1, 1000)  # millisecond timestamps for variable frame rate


def default_codec() -> str:
    """libx264 where the local FFmpeg has it, else the always-built-in mpeg4 encoder."""
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def draw_frame_number(image: np.ndarray, n: int) -> np.ndarray:
    """Draw ``n`` onto an RGB image in place: big digits, and a bar code in the bottom fifth."""
    if not 0 <= n < 2**BITS:
        raise ConfigurationError(f"frame number {n} out of range 0..{2**BITS - 1}")
    h, w = image.shape[:2]
    band = max(8, h // 5)
    cell = w / _CELLS
    values = [1] + [(n >> i) & 1 for i in range(BITS)] + [0]
    for i, bit in enumerate(values):
        x0, x1 = int(round(i * cell)), int(round((i + 1) * cell))
        image[h - band:, x0:x1] = 255 if bit else 0
    scale = h / 90.0
    cv2.putText(image, str(n), (int(w * 0.08), int(h * 0.55)), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), max(1, int(scale * 2.5)), cv2.LINE_AA)
    return image


def read_frame_number(image: np.ndarray) -> int:
    """Decode the bar code drawn by :func:`draw_frame_number` from an upright RGB (or grey) image.

    Raises ``ValueError`` when the guard cells are not where they belong (a rotated, cropped
    or foreign image), so a wrong orientation can never read as a plausible number.
    """
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    h, w = grey.shape
    band = max(8, h // 5) if h >= 40 else max(2, h // 5)
    y0, y1 = h - band + band // 4, h - band // 4
    cell = w / _CELLS
    means = []
    for i in range(_CELLS):
        x0 = int(i * cell + cell * 0.3)
        x1 = max(x0 + 1, int((i + 1) * cell - cell * 0.3))
        means.append(float(grey[y0:max(y1, y0 + 1), x0:x1].mean()))
    white, black = means[0], means[-1]
    if white - black < 80:
        raise ValueError(f"no frame-number bar code found (guard cells {white:.0f}/{black:.0f})")
    mid = (white + black) / 2
    return sum(1 << i for i, m in enumerate(means[1:-1]) if m > mid)


def _write(path: str | Path, frames: Callable[[int], np.ndarray], times: Sequence[float], *,
           fps: float, codec: str | None, rotation: int | None, crf: int = 18) -> Path:
    """Encode RGB frames ``frames(i)`` with presentation times ``times`` (seconds)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = codec or default_codec()
    first = frames(0)
    h, w = first.shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        stream.time_base = _TB
        stream.codec_context.time_base = _TB
        # one encoder thread: encoder threads are one less source of variation between renders,
        # and clips this small gain nothing from more (their setup costs more than it saves)
        stream.codec_context.thread_count = 1
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
        else:
            stream.bit_rate = 2_000_000
        if rotation:
            stream.set_display_rotation(rotation)
        last_pts = -1
        for i, t in enumerate(times):
            image = first if i == 0 else frames(i)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            pts = int(round(t / _TB))
            if pts <= last_pts:
                raise ConfigurationError(f"frame times must increase by at least 1 ms (frame {i}: {t}s)")
            frame.pts, frame.time_base, last_pts = pts, _TB, pts
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def render_numbered_video(path: str | Path, *, n_frames: int, fps: float = 10.0,
                          size: tuple[int, int] = (320, 240), vfr_times: Sequence[float] | None = None,
                          rotation: int | None = None, codec: str | None = None) -> Path:
    """Render ``n_frames`` frames, each showing its own number (see :func:`read_frame_number`).

    ``size`` is the upright (display) size (width, height). ``vfr_times`` gives every frame's
    presentation time in seconds (variable frame rate); otherwise frame ``i`` is at ``i / fps``.
    ``rotation`` (a multiple of 90, counter-clockwise, as FFmpeg's display matrix) stores the
    pixels turned the other way and writes the display matrix, so a player that honours the
    metadata shows the frames upright.
    """
    if n_frames < 1 or fps <= 0:
        raise ConfigurationError(f"need n_frames >= 1 and fps > 0, got {n_frames}, {fps}")
    if rotation is not None and rotation % 90:
        raise ConfigurationError(f"rotation must be a multiple of 90 degrees, got {rotation}")
    if vfr_times is not None and len(vfr_times) != n_frames:
        raise ConfigurationError(f"vfr_times has {len(vfr_times)} times for {n_frames} frames")
    times = list(vfr_times) if vfr_times is not None else [i / fps for i in range(n_frames)]
    w, h = size
    k = -(rotation or 0) // 90

    def frame(i: int) -> np.ndarray:
        shade = 60 + (i * 37) % 120  # the background changes every frame
        image = np.full((h, w, 3), (shade, 90, 150 - shade // 2), np.uint8)
        draw_frame_number(image, i)
        return np.rot90(image, k) if k % 4 else image

    return _write(path, frame, times, fps=fps, codec=codec, rotation=rotation)


class DemoEvent(BaseModel):
    """A known event of the demo video: what happens, how a user would ask, and when (seconds)."""

    name: str
    query: str
    start: float = Field(ge=0)
    end: float

    def as_interval(self) -> tuple[float, float]:
        return self.start, self.end


# The demo's timeline (seconds). Module constants so that tests and the demo share one truth.
DEMO_FPS = 10.0
DEMO_SIZE = (320, 240)
DEMO_DURATION = 36.0
PERSON_ENTER, PERSON_STOP, PERSON_GO, PERSON_GONE = 4.0, 6.8, 11.0, 13.8
WALK_SPEED = 65.0  # px/s
DARK_START, DARK_END = 17.0, 21.0
PAN_START, PAN_END, PAN_SPEED = 23.0, 29.0, 70.0  # px/s, rightwards
CUT_AT = 31.0
_PERSON_H, _FLOOR_Y = 125, 225


def _person_x(t: float) -> float | None:
    """The figure's centre x (px) at time t, or None when it is not in the room."""
    if t < PERSON_ENTER or t >= PERSON_GONE:
        return None
    if t < PERSON_STOP:
        return -25 + WALK_SPEED * (t - PERSON_ENTER)
    centre = -25 + WALK_SPEED * (PERSON_STOP - PERSON_ENTER)
    return centre if t < PERSON_GO else centre + WALK_SPEED * (t - PERSON_GO)


def _visible(margin: float = 28.0) -> tuple[float, float]:
    """When the whole figure is inside the frame (its half width is about 22 px)."""
    w = DEMO_SIZE[0]
    enter = PERSON_ENTER + (margin + 25) / WALK_SPEED
    leave = PERSON_GO + (w - margin - _person_x(PERSON_GO)) / WALK_SPEED  # type: ignore[operator]
    return round(enter, 1), round(leave, 1)


def demo_events() -> list[DemoEvent]:
    """The true events of :func:`render_demo_video` with its default timeline."""
    p0, p1 = _visible()
    return [
        DemoEvent(name="person", query="a person walks into the room and stands in the middle",
                  start=p0, end=p1),
        DemoEvent(name="lights off", query="the lights go out and the room is dark",
                  start=DARK_START, end=DARK_END),
        DemoEvent(name="camera pan", query="the camera pans quickly to the right",
                  start=PAN_START, end=PAN_END),
        # a cut is instantaneous: its truth is the one-second window centred on the instant
        DemoEvent(name="scene cut", query="the video cuts to a completely different scene",
                  start=CUT_AT - 0.5, end=CUT_AT + 0.5),
    ]


def draw_person(img: np.ndarray, cx: float, foot_y: float, height: float, phase: float = 0.0) -> None:
    """A pedestrian-proportioned figure (head, torso, arms, legs apart), as seen from the front."""
    s = height / 170.0

    def p(x: float, y: float) -> tuple[int, int]:
        return int(round(cx + x * s)), int(round(foot_y - y * s))

    skin, shirt, pants, hair, shoes = (210, 160, 130), (40, 70, 150), (40, 40, 50), (40, 30, 20), (20, 20, 20)
    stride = 8 + 6 * abs(np.sin(phase))  # legs never cross: the detector wants them apart
    leg = max(2, int(13 * s))
    cv2.line(img, p(-6, 88), p(-stride, 4), pants, leg)
    cv2.line(img, p(6, 88), p(stride, 4), pants, leg)
    cv2.ellipse(img, p(-stride - 3, 3), (int(9 * s), int(4 * s)), 0, 0, 360, shoes, -1)
    cv2.ellipse(img, p(stride + 3, 3), (int(9 * s), int(4 * s)), 0, 0, 360, shoes, -1)
    cv2.fillConvexPoly(img, np.array([p(-17, 142), p(17, 142), p(14, 86), p(-14, 86)], np.int32), shirt)
    arm = max(2, int(9 * s))
    cv2.line(img, p(-17, 138), p(-22, 92), shirt, arm)
    cv2.line(img, p(17, 138), p(22, 92), shirt, arm)
    cv2.circle(img, p(-22, 90), max(1, int(4 * s)), skin, -1)
    cv2.circle(img, p(22, 90), max(1, int(4 * s)), skin, -1)
    cv2.line(img, p(0, 142), p(0, 150), skin, max(2, int(7 * s)))
    cv2.ellipse(img, p(0, 160), (int(10 * s), int(12 * s)), 0, 0, 360, skin, -1)
    cv2.ellipse(img, p(0, 166), (int(10 * s), int(7 * s)), 0, 180, 360, hair, -1)


def _room_panorama(width: int, h: int) -> np.ndarray:
    """A wide beige room: wallpaper stripes, framed pictures, a window, a wooden floor."""
    rng = np.random.default_rng(7)
    img = np.zeros((h, width, 3), np.uint8)
    img[:] = (205, 195, 172)
    x = 0
    while x < width:  # irregular wallpaper stripes: no period for motion estimates to alias on
        stripe, gap = int(rng.integers(3, 9)), int(rng.integers(8, 30))
        img[: int(h * 0.75), x:x + stripe] = (188, 176, 150)
        x += stripe + gap
    floor = int(h * 0.75)
    img[floor:] = (125, 92, 60)
    for x in range(0, width, 40):
        cv2.line(img, (x, floor), (x - 30, h), (105, 76, 48), 2)
    for x in range(30, width - 60, 110):
        pw, ph = int(rng.integers(36, 60)), int(rng.integers(28, 44))
        y = int(rng.integers(20, 60))
        colour = tuple(int(c) for c in rng.integers(40, 220, 3))
        cv2.rectangle(img, (x, y), (x + pw, y + ph), (90, 60, 35), 4)
        cv2.rectangle(img, (x + 4, y + 4), (x + pw - 4, y + ph - 4), colour, -1)
        cv2.circle(img, (x + pw // 2, y + ph // 2), ph // 5, tuple(255 - c for c in colour), -1)
    return img


def _outdoor(w: int, h: int) -> np.ndarray:
    """A different place: blue sky, green meadow, a tree and a sun."""
    img = np.zeros((h, w, 3), np.uint8)
    horizon = int(h * 0.55)
    for y in range(horizon):
        img[y] = (70 + y // 3, 130 + y // 3, 235)
    img[horizon:] = (60, 150, 50)
    cv2.circle(img, (int(w * 0.8), int(h * 0.18)), h // 10, (250, 230, 80), -1)
    tx = int(w * 0.25)
    # a broad crown on a short trunk: a tall thin tree (a round head on a narrow "body") scored
    # just above the HOG pedestrian detector's threshold once compression noise was added
    cv2.rectangle(img, (tx - 9, horizon - 25), (tx + 9, horizon + 20), (100, 65, 30), -1)
    cv2.ellipse(img, (tx, horizon - 45), (h // 4, h // 8), 0, 0, 360, (30, 110, 35), -1)
    return img


def render_demo_video(path: str | Path, *, fps: float = DEMO_FPS, codec: str | None = None) -> list[DemoEvent]:
    """Render the demo video (320x240, 36 s) to ``path`` and return its true events.

    Timeline: an empty room; a person walks in from the left (4 s), stands in the middle and
    walks out to the right (gone at 13.8 s); the lights go out from 17 s to 21 s; the camera
    pans quickly to the right from 23 s to 29 s; at 31 s the video cuts to an outdoor scene.
    """
    if fps < 2:
        raise ConfigurationError(f"the demo needs fps >= 2, got {fps}")
    w, h = DEMO_SIZE
    room = _room_panorama(w + int(PAN_SPEED * (PAN_END - PAN_START)) + 2, h)
    outdoor = _outdoor(w, h)
    n = int(round(DEMO_DURATION * fps))
    rng = np.random.default_rng(3)
    noise = rng.integers(-3, 4, (h, w, 3), dtype=np.int16)

    def frame(i: int) -> np.ndarray:
        t = i / fps
        if t >= CUT_AT:
            return outdoor.copy()
        offset = int(round(PAN_SPEED * min(max(t - PAN_START, 0.0), PAN_END - PAN_START)))
        img = room[:, offset:offset + w].copy()
        x = _person_x(t)
        if x is not None:
            walking = not (PERSON_STOP <= t < PERSON_GO)
            draw_person(img, x, _FLOOR_Y, _PERSON_H, phase=t * 6.0 if walking else 0.0)
        if DARK_START <= t < DARK_END:
            img = np.clip(img.astype(np.int16) // 12 + noise, 0, 255).astype(np.uint8)
        return img

    _write(path, frame, [i / fps for i in range(n)], fps=fps, codec=codec, rotation=None)
    return demo_events()


__all__ = [
    "DemoEvent", "render_numbered_video", "render_demo_video", "read_frame_number", "draw_frame_number",
    "draw_person", "demo_events", "default_codec", "DEMO_DURATION", "DEMO_FPS", "DEMO_SIZE",
]
