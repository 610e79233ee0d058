"""The motion stream: per sample, a short text summary of what moved since the previous sample.

A describer that looks at one frame at a time cannot tell "the ball rolls left" from "the ball rolls
right", nor "the camera pans" from "the person walks". Beside each frame's appearance, this stream
measures the change from the previous sample with OpenCV on small grey images (``FLOW_WIDTH`` pixels
wide) and says it in words:

* **camera motion**: the global translation (phase correlation), accepted only when shifting the previous
  image by it explains most of the change; the picture sliding left is the camera panning right;
* **object motion**: what still differs once the camera's motion is taken out, where it is in the picture
  (left / centre / right, top / bottom), which way it goes relative to the camera and how much of the
  picture it covers. The way is the shift under which the changed pixels of each image are found in the
  other (:func:`region_shift`: a thing shows at its new place now and at its old place before); where no
  shift explains them (a thing appeared or vanished, or several went different ways), the mean of DIS
  dense optical flow over them, which smooths over a small thing that moves further than its own size;
* **what moved** (:func:`moving_thing`, :class:`Appearance`): the largest moving region where it is *now*,
  summed up from its pixels in words any picture can earn: its dominant colour name, its shape (round,
  tall, wide), its size (small, large) and where it is. "a small round red object at the bottom in the
  middle moves to the right" and "a tall blue figure on the left moves to the right" then say two
  different things where both were "something ... moves to the right". The words come from geometry and
  colour only (a tall region is a "figure", anything else an "object"); nothing is recognised, and the
  noun never names a kind of thing. Limits: a plain thing that moves less than its own size between
  samples changes only at its leading and trailing edges, and on a busy background those edges may be
  all that is found (its shape word can then be wrong or missing); a plain bar sliding along its own
  length is found by its ends;
* **not motion** (:func:`scene_change`, ``motion-5``): a change over most of the picture that is the same
  picture darker or brighter is a change of light, one whose two samples are unlike under any shift and any
  zoom, with no detailed part of the picture left as it was and other greys in other amounts, a cut
  (``motion-6``: a zoom or a large thing moving is not one); either is said as such (``"Motion: none; the view cuts to another scene."``), not as something moving.

:class:`MotionDescriber` wraps any describer and appends the summary to each description
(``"... Motion: the camera pans to the right."``). It streams: only the previous sample's small images
are kept. It is meant to sit *outside* the description cache (the session puts it there), so the cache
holds the inner describer's own descriptions and serves them to runs with or without motion; the
summary is recomputed from the frames every time, which costs a few milliseconds per frame.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from vidground.types import MOTION_MARK, Frame, FrameDescription

from .base import DescriptionStream, StreamState, leftovers

FLOW_WIDTH = 160
#: Goes into the wrapped describer's settings: a change to the summaries' wording or thresholds bumps it.
MOTION_VERSION = "motion-6"
#: Camera speed (picture widths per second) below which the camera is said to be still.
CAMERA_SPEED = 0.04
#: Camera speed (picture widths per second) from which the camera moves "quickly" (below it "slowly").
FAST_CAMERA = 0.12
#: Share of the picture's width or height across which a global shift must line detail up to be the camera's
#: (:func:`lined_up_extent`): a camera moves everything in view, a thing alone on a plain background only itself.
CAMERA_EXTENT = 0.5
#: Share of the picture that must move for object motion to be reported.
MOVING_SHARE = 0.005
#: Smallest moving region (share of the picture) whose appearance is described.
THING_SHARE = 0.002
#: Changed share of the picture above which no one thing is described (a change of light, a cut, many things).
THING_MAX_CHANGE = 0.4
#: Brightness-normalised correlation of two samples (blurred grey) from which a widespread change is a change of
#: light (the same picture, darker or brighter): the demo's lights going out and coming back on give 0.994.
LIGHT_CORR = 0.9
#: Mean grey jump (levels of 255) a change of light needs: below it, a widespread change at a high correlation
#: is left to the motion measurement.
LIGHT_STEP = 15.0
#: Brightness-normalised correlation (after the global shift that matches best) below which a widespread change
#: is a cut to another view: the demo's cut gives 0.33; a pan over the demo's room, unaligned, 0.79-0.81.
CUT_CORR = 0.5
#: Enlargements of one sample's centre tried against the other (:func:`zoomed`): a zoom in or out by one of
#: them, or near it, lines the two up (correlation from :data:`ZOOM_CORR`) and is not a cut.
ZOOMS = (1.2, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0)
#: Correlation (:func:`zoomed`) from which one sample is the other zoomed: zooms of x1.3-3.0 give 0.98-1.00; cuts
#: between unlike views 0.13-0.31, and 0.57 between two views letterboxed by bars a sixth of the picture high (the bars line up enlarged).
ZOOM_CORR = 0.8
#: Side, in ``FLOW_WIDTH``-scale pixels, of the blocks :func:`still_share` compares.
STILL_BLOCK = 8
#: Share of the picture whose detail stays put (:func:`still_share`) from which a widespread change is
#: something large moving in front of the scene, not a cut.
STILL_SHARE = 0.1
#: Grey-histogram distance (:func:`_grey_distance`) below which two samples show the same content.
SAME_HIST = 0.05
#: Grey standard deviation (blurred) below which a sample is plain: it has no detail to correlate (a black frame).
PLAIN_STD = 2.0
#: Colour names, in alphabetical order (ties between equally common names go to the first); "" for none.
COLOUR_NAMES = ("", "beige", "black", "blue", "brown", "cyan", "green", "grey", "orange", "pink", "purple", "red",
                "white", "yellow")
_CODE = {name: i for i, name in enumerate(COLOUR_NAMES)}
# (name, hue range in OpenCV's 0..180 scale) for saturated pixels
_HUES = (("red", 0, 8), ("orange", 8, 20), ("yellow", 20, 34), ("green", 34, 85), ("cyan", 85, 100),
         ("blue", 100, 130), ("purple", 130, 150), ("pink", 150, 170), ("red", 170, 181))


def colour_codes(hsv: np.ndarray) -> np.ndarray:
    """Each pixel's colour name (HSV in OpenCV's scales) as an index into :data:`COLOUR_NAMES`: black
    (dark), white / grey (unsaturated), a hue name, then brown and beige over the warm hues they cover."""
    h, s, v = (hsv[..., i].astype(np.int16) for i in range(3))
    codes = np.zeros(h.shape, dtype=np.uint8)
    codes[v < 50] = _CODE["black"]
    low = (v >= 50) & (s < 40)
    codes[low & (v >= 190)] = _CODE["white"]
    codes[low & (v < 190)] = _CODE["grey"]
    coloured = (v >= 50) & (s >= 40)
    for name, lo, hi in _HUES:
        codes[coloured & (h >= lo) & (h < hi)] = _CODE[name]
    codes[coloured & (h < 25) & (v < 170) & (s >= 60)] = _CODE["brown"]
    codes[(v >= 150) & (s >= 40) & (s < 90) & (h < 30)] = _CODE["beige"]
    return codes


def lined_up_extent(raw: np.ndarray, aligned: np.ndarray, inside: np.ndarray) -> float:
    """How far across the picture a global shift lines detail up: the extent, as a share of the picture's
    width or height (the larger), of the pixels in ``inside`` where the shift lowers the grey difference
    (``raw`` without it, ``aligned`` with it; 3x3 means) by more than 10 levels, isolated pixels left out.
    A camera that moves moves all the detail in view: over the benchmark's room and the demo's it is
    0.72-0.77 (the rest of the picture plain, or its stripes too faint), over a textured scene about 1.
    A thing moving alone on a plain background is the only detail the shift lines up: 0.06-0.28 for the
    held-out clips' discs (their old and new places)."""
    gain = cv2.blur(raw.astype(np.float32), (3, 3)) - cv2.blur(aligned.astype(np.float32), (3, 3))
    support = cv2.morphologyEx(((gain > 10) & inside).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    _, _, bw, bh = cv2.boundingRect(support)
    h, w = raw.shape
    return max(bw / w, bh / h)


def measure_motion(prev: np.ndarray, cur: np.ndarray) -> tuple[tuple[float, float] | None, np.ndarray]:
    """Camera motion and local motion between two small grey images: ``(shift, moved)``.

    The global translation comes from phase correlation and counts as camera motion (``shift``, pixels)
    only when shifting the previous image by it explains the change (the aligned difference is less than
    half the raw one) and it lines detail up across at least :data:`CAMERA_EXTENT` of the picture
    (:func:`lined_up_extent`). On a plain background a lone moving thing is the only detail in view, and
    shifting the previous image by the thing's own move explains all of the change: before ``motion-4``
    that read as the camera ("the camera tilts slowly down" for a white disc moving up; "nothing moves"
    for one drifting slower than :data:`CAMERA_SPEED`, its move taken out as the camera's). A pan over a
    scene whose only detail is one small thing is now read as that thing moving: the pixels cannot tell
    the two apart. Local motion (``moved``, a mask) is what still differs after that alignment (its
    way: :func:`region_shift`, else :func:`mean_flow`, DIS rather than Farneback). Farneback flow, which the
    ``cv`` describer used until ``cv-sentences-2``, says the opposite way for a thing that moves about its own size or more between samples (a 14-px disc moved 13-20 px: mean flow
    -2.9 to -4.2 px), as a rolling ball does at one sample a second.
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
        # only where the shifted image covers fully, a little in from its edge: at the edge, the
        # interpolation mixes in the black border, and that difference read as an object moving (at the
        # camera's speed, the other way) in every panned sample
        inside = cv2.erode((covered == 255).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        if valid.mean() > 0.3 and diff[valid].mean() < 0.5 * raw[valid].mean() \
                and lined_up_extent(raw, diff, inside) >= CAMERA_EXTENT:
            shift, aligned = (float(sx), float(sy)), np.where(inside, diff, 0).astype(np.uint8)
    moved = cv2.morphologyEx((cv2.GaussianBlur(aligned, (5, 5), 0) > 25).astype(np.uint8),
                             cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
    return shift, moved


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two float images (brightness and contrast normalised away)."""
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).mean() / max(float(a.std() * b.std()), 1e-6))


def scene_change(prev: np.ndarray, cur: np.ndarray, moved: np.ndarray) -> str | None:
    """Whether the change between two small grey images is the picture's as a whole, not something moving:
    ``"cut"`` (another view), ``"darker"`` / ``"brighter"`` (a change of light, a fade), or ``None``.

    Only a widespread change counts: more than :data:`THING_MAX_CHANGE` of the picture in ``moved`` (what
    still differs once the camera's motion is taken out, :func:`measure_motion`). It is a change of light
    when the two samples are the same picture once brightness and contrast are normalised (correlation of
    the blurred greys at least :data:`LIGHT_CORR`) and the mean moved by :data:`LIGHT_STEP` levels or more,
    and a cut when they are unlike under any global shift (correlation below :data:`CUT_CORR`, unshifted and
    shifted by phase correlation's best, which a pan the camera check refused still passes) and nothing says
    the scene stayed: not one sample the other zoomed (:func:`zoomed` under :data:`ZOOM_CORR`), not a tenth
    of the picture's detail left as it was (:func:`still_share` under :data:`STILL_SHARE`: the scene behind a
    large thing that moved), not the same greys in the same amounts (grey-histogram distance from
    :data:`SAME_HIST`: a figure walking across a plain dark view). In doubt, it is motion: ``motion-5`` had
    none of these three, and called zooms of x1.6 and more a sample, a 180-px box moving 140 px over a room
    and a 140-px figure walking 120 px across a near-black view (320 x 240) cuts. A plain sample
    (a black frame) has no detail to compare: a mean jump to or from it is a change of light (a fade to
    black is not a cut), detail appearing or vanishing at the same brightness a cut. Anything else (many
    things moving) is left to the motion measurement.
    """
    if float(moved.mean()) <= THING_MAX_CHANGE:
        return None
    a = cv2.GaussianBlur(prev, (5, 5), 0).astype(np.float32)
    b = cv2.GaussianBlur(cur, (5, 5), 0).astype(np.float32)
    step = float(b.mean() - a.mean())
    light = "brighter" if step > 0 else "darker"
    if min(float(a.std()), float(b.std())) < PLAIN_STD:
        return light if abs(step) >= LIGHT_STEP else "cut"
    corr = _correlation(a, b)
    if corr >= LIGHT_CORR:
        return light if abs(step) >= LIGHT_STEP else None
    if corr >= CUT_CORR:
        return None
    h, w = a.shape
    # on copies: OpenCV applies the window to its float32 inputs in place
    (sx, sy), _ = cv2.phaseCorrelate(a.copy(), b.copy(), cv2.createHanningWindow((w, h), cv2.CV_32F))
    dx, dy = int(round(sx)), int(round(sy))
    if (dx or dy) and abs(dx) < w // 2 and abs(dy) < h // 2:  # prev moved by (dx, dy) over cur, where they overlap
        shifted = _correlation(a[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)],
                               b[max(0, dy):h - max(0, -dy), max(0, dx):w - max(0, -dx)])
        if shifted >= CUT_CORR:
            return None
    if zoomed(a, b) >= ZOOM_CORR or still_share(a, b) >= STILL_SHARE or _grey_distance(prev, cur) < SAME_HIST:
        return None  # a zoom, a large thing moving over a scene that stays, the same content rearranged
    return "cut"


def zoomed(a: np.ndarray, b: np.ndarray) -> float:
    """The best brightness-normalised correlation of two blurred grey images when one is the other's centre
    enlarged by one of :data:`ZOOMS` (a zoom in, or the other way a zoom out): a zoom has no global shift,
    and from about x1.5 a sample it changes most of the picture (x1.6 and x2.0 read as cuts in ``motion-5``);
    a zoom gives 0.98-1.00 at its own scale, a cut between two unlike views 0.13-0.31 at the best of them
    (0.57 between two letterboxed ones, their black bars lined up)."""
    h, w = a.shape
    best = -1.0
    for scale in ZOOMS:
        cw, ch = round(w / scale), round(h / scale)
        x, y = (w - cw) // 2, (h - ch) // 2
        for small, big in ((a, b), (b, a)):
            best = max(best, _correlation(cv2.resize(small[y:y + ch, x:x + cw], (w, h)), big))
    return best


def still_share(a: np.ndarray, b: np.ndarray) -> float:
    """The share of the picture, in blocks of :data:`STILL_BLOCK` pixels, that has detail (grey standard
    deviation over 3 levels in either image) and did not change (a mean difference under 4 levels): the
    scene behind a large thing that moved stays (a 180-px box moving 140 px over a 320 x 240 room: 0.16),
    while a cut to another view changes nearly every block with detail (0.00-0.013 over the tests' cuts).
    Plain blocks do not count: black bars or a black sky stay put across a cut too."""
    h, w = a.shape
    n = STILL_BLOCK
    still = 0
    for y in range(0, h - n + 1, n):
        for x in range(0, w - n + 1, n):
            pa, pb = a[y:y + n, x:x + n], b[y:y + n, x:x + n]
            if max(float(pa.std()), float(pb.std())) > 3 and float(np.abs(pa - pb).mean()) < 4:
                still += 1
    return still / max(1, (h // n) * (w // n))


def _grey_distance(prev: np.ndarray, cur: np.ndarray) -> float:
    """Bhattacharyya distance of two grey images' 32-bin histograms: under :data:`SAME_HIST` the two show
    the same greys in the same amounts (a figure walking across a plain dark scene: 0.00-0.02), while
    a cut to another view, even one as bright, changes them (0.07-0.99 over the tests' views)."""
    hists = [cv2.normalize(cv2.calcHist([g], [0], None, [32], [0, 256]), None, 1.0, norm_type=cv2.NORM_L1)
             for g in (prev, cur)]
    return float(cv2.compareHist(hists[0], hists[1], cv2.HISTCMP_BHATTACHARYYA))


def mean_flow(prev: np.ndarray, cur: np.ndarray, shift: tuple[float, float] | None,
              moved: np.ndarray) -> tuple[float, float]:
    """The mean dense optical flow (OpenCV's DIS, a patch search) over ``moved``, relative to the camera's
    ``shift``: the way of local motion where the changed pixels' own shift (:func:`region_shift`) finds none.
    Only then is it computed: it is about a third of a sample's cost."""
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(prev, cur, None)
    if shift is not None:
        flow = flow - np.float32(shift)
    dx, dy = (float(v) for v in flow[moved].mean(axis=0))
    return dx, dy


def way_words(way: str | None) -> str:
    """A way as it follows a verb: ``" to the left"``, ``" up"``, ``" down and right"``, ``""`` for none."""
    return f" to the {way}" if way in ("left", "right") else f" {way}" if way else ""


def _verb(stem: str, progressive: bool) -> str:
    """``pan`` -> ``"pans"`` or ``"is panning"``; ``move`` -> ``"moves"`` or ``"is moving"``."""
    if not progressive:
        return stem + "s"
    return "is " + (stem + "ning" if stem == "pan" else stem[:-1] + "ing" if stem.endswith("e") else stem + "ing")


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


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every region it encloses filled in."""
    padded = np.pad(mask.astype(np.uint8), 1)
    cv2.floodFill(padded, None, (0, 0), 2)  # the outside, reached from the padded corner
    return (padded != 2)[1:-1, 1:-1]


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pixel, the sum over the colour channels of ``|a - b|`` (float32 images)."""
    return cv2.transform(cv2.absdiff(a, b), np.ones((1, 3), np.float32))


def _local_mean(image: np.ndarray, weight: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean of ``image`` over the ``weight`` pixels in a ``size``-wide box around each pixel, and the
    share of the box they fill."""
    share = cv2.blur(weight, (size, size))
    mean = cv2.blur(image * weight[..., None], (size, size)) / np.maximum(share, 1e-6)[..., None]
    return mean, share


def _shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``image`` moved by ``(dx, dy)`` pixels, its edge repeated into the uncovered strip."""
    h, w = image.shape[:2]
    return cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_REPLICATE)


def _shift_scores(a: np.ndarray, b: np.ndarray, weight: np.ndarray, box: tuple[int, int, int, int],
                  centre: tuple[int, int], reach: tuple[int, int]) -> np.ndarray:
    """For each shift ``d`` within ``reach`` of ``centre``: how badly ``b`` (now) over ``box`` (weighted)
    matches ``a`` (before) moved on by ``d``, plus how badly ``a`` over it matches ``b`` moved back by ``d``.
    Index ``(oy, ox)`` is the shift ``(cx + rx - ox, cy + ry - oy)``; images are edge-padded as needed."""
    x, y, bw, bh = box
    (cx, cy), (rx, ry) = centre, reach
    px, py = abs(cx) + rx, abs(cy) + ry
    a, b = (cv2.copyMakeBorder(i, py, py, px, px, cv2.BORDER_REPLICATE) for i in (a, b))
    x, y = x + px, y + py
    forward = cv2.matchTemplate(a[y - cy - ry:y - cy + ry + bh, x - cx - rx:x - cx + rx + bw], b[y:y + bh, x:x + bw],
                                cv2.TM_SQDIFF, mask=weight)
    backward = cv2.matchTemplate(b[y + cy - ry:y + cy + ry + bh, x + cx - rx:x + cx + rx + bw], a[y:y + bh, x:x + bw],
                                 cv2.TM_SQDIFF, mask=weight)
    scores = forward + backward[::-1, ::-1]
    scores[~np.isfinite(scores)] = np.inf
    return scores


def region_shift(prev: np.ndarray, cur: np.ndarray, moved: np.ndarray) -> tuple[float, float] | None:
    """How far what changed moved (pixels, ``prev`` to ``cur``, small grey images): the shift under which
    the changed pixels of ``cur`` are found in ``prev`` and those of ``prev`` in ``cur`` the other way,
    searched within the changed area's own size (a thing's old and new places both lie inside it) up to a
    quarter of the picture, at half size first and then to the pixel; ``None`` when no shift matches them
    four times better than none does (a thing that appeared or vanished: one of the two images then shows only
    background there, which matches background anywhere on a plain floor, but not both ways).

    The moving thing shows in ``cur`` at its new place and in ``prev`` at its old one, so the shift that
    matches most of the changed pixels is the thing's. Dense flow smooths over a small thing that moves
    further than its own size between samples, and can say it goes nowhere or the wrong way.
    """
    h, w = moved.shape
    lx, ly = w // 4, h // 4
    a, b = prev.astype(np.float32), cur.astype(np.float32)
    weight = moved.astype(np.float32)
    half = [cv2.resize(i, (w // 2, h // 2), interpolation=cv2.INTER_AREA) for i in (a, b, weight)]
    x, y, bw, bh = cv2.boundingRect((half[2] > 0).astype(np.uint8))
    rx, ry = min(bw, lx // 2), min(bh, ly // 2)
    coarse = _shift_scores(half[0], half[1], half[2][y:y + bh, x:x + bw], (x, y, bw, bh), (0, 0), (rx, ry))
    oy, ox = np.unravel_index(int(np.argmin(coarse)), coarse.shape)
    centre = (2 * (rx - ox), 2 * (ry - oy))
    x, y, bw, bh = cv2.boundingRect(moved.astype(np.uint8))
    fine = _shift_scores(a, b, weight[y:y + bh, x:x + bw], (x, y, bw, bh), centre, (2, 2))
    oy, ox = np.unravel_index(int(np.argmin(fine)), fine.shape)
    still = 2 * float((weight * (a - b) ** 2).sum())  # the same score for no shift at all
    # a thing that moved matched at 0.01-0.04 of that on the benchmark's room, 0.12-0.16 on a blurred
    # texture; one that vanished or appeared at 0.36-0.37 (a shift that lines background up with background)
    if not fine[oy, ox] < 0.25 * still:
        return None
    return float(centre[0] + 2 - ox), float(centre[1] + 2 - oy)


def moving_thing(prev: np.ndarray, cur: np.ndarray, moved: np.ndarray, shift: tuple[float, float] | None = None,
                 ) -> tuple[np.ndarray | None, tuple[float, float] | None]:
    """Where the largest moving region is in ``cur`` (a mask, or ``None`` when nothing that large moved),
    and how far what changed moved (:func:`region_shift`, relative to the camera).

    ``prev`` and ``cur`` are the small colour images, ``moved`` the change between them and ``shift`` the
    camera's (from :func:`measure_motion`; a change of colour beside it counts too); the work is done
    within the changed area and a sixth of the picture around it. Each changed pixel shows the moving
    thing in one of the two images and the background in the other. Two votes say which: whether ``cur``
    there matches ``prev`` from a thing's move back (it arrived) or ``prev`` there matches ``cur`` a move on
    (it left), which decides on a textured background; and which of the two looks less like the still
    pixels around it (their mean in a box a tenth, else a third, of the picture wide), which decides on a
    plain one. The region it now covers is the changed area, its enclosed parts filled (a uniform thing's
    middle does not change when it moves less than its size), less the pixels it has left.
    """
    if shift is not None:
        prev = _shifted(prev, *shift)
    full = moved.shape
    width = full[1]
    went = region_shift(cv2.cvtColor(prev, cv2.COLOR_RGB2GRAY), cv2.cvtColor(cur, cv2.COLOR_RGB2GRAY), moved)
    # everything below within the changed area and a sixth of the picture around it (the background's box)
    x, y, bw, bh = cv2.boundingRect(moved.astype(np.uint8))
    m = max(3, width // 6)
    roi = np.s_[max(0, y - m):y + bh + m, max(0, x - m):x + bw + m]
    prev, cur, moved = prev[roi], cur[roi], moved[roi]
    a, b = prev.astype(np.float32), cur.astype(np.float32)
    # beside the grey change, a change of colour at the same brightness (red over a brown floor), next to it
    hue_change = cv2.GaussianBlur(_distance(a, b), (5, 5), 0) > 75
    moved = moved | (hue_change & (cv2.dilate(moved.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0))
    still = (~moved).astype(np.float32)
    background, share = _local_mean(b, still, max(3, width // 10) | 1)
    thin = (share <= 0.2) & moved
    if thin.any():  # the near box holds too little background: a third of the picture
        far, _ = _local_mean(b, still, max(5, width // 3) | 1)
        background[thin] = far[thin]
    vote = _distance(b, background) - _distance(a, background)
    if went is not None:
        came_from = _shifted(a, *went)  # prev moved on by the thing's shift: the thing where it is now
        went_to = _shifted(b, -went[0], -went[1])  # cur moved back: the thing where it was
        vote += _distance(a, went_to) - _distance(b, came_from)
    arrived = vote > 0
    closed = cv2.morphologyEx(moved.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0
    now = _fill_holes(closed) & ~(moved & ~arrived)
    now = cv2.morphologyEx(now.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(now, connectivity=8)
    if n < 2:
        return None, went
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    if stats[biggest, cv2.CC_STAT_AREA] < THING_SHARE * full[0] * full[1]:
        return None, went
    mask = np.zeros(full, bool)
    mask[roi] = labels == biggest
    return mask, went


@dataclass(frozen=True)
class Appearance:
    """A moving region summed up from its pixels: ``colour`` (a name of :data:`COLOUR_NAMES`, "dark ..."
    when the region is mostly dark), ``shape`` (``"round"``, ``"tall"``, ``"wide"`` or ``None``), ``size``
    (``"small"``, ``"large"`` or ``None``) and ``share`` (of the picture)."""

    colour: str | None = None
    shape: str | None = None
    size: str | None = None
    share: float = 0.0

    #: Thresholds: a side this many times the other is tall / wide; the picture's share below / above which
    #: a region is small / large.
    ELONGATED = 1.8
    SMALL, LARGE = 0.02, 0.15

    @classmethod
    def of(cls, mask: np.ndarray, image: np.ndarray) -> "Appearance":
        """The appearance of the ``mask`` pixels of ``image`` (small RGB)."""
        area = int(mask.sum())
        x, y, bw, bh = cv2.boundingRect(mask.astype(np.uint8))
        shape = None
        if bh >= cls.ELONGATED * bw:
            shape = "tall"
        elif bw >= cls.ELONGATED * bh:
            shape = "wide"
        else:
            box = mask[y:y + bh, x:x + bw]
            c = max(1, round(min(bw, bh) / 5))
            corners = (box[:c, :c].mean() + box[:c, -c:].mean() + box[-c:, :c].mean() + box[-c:, -c:].mean()) / 4
            # a disc or an ellipse fills about pi/4 of its box and little of the box's corners (a fifth of
            # its side square); a square fills both, a cross or an L much less of the box
            if bh <= 1.4 * bw and bw <= 1.4 * bh and 0.65 <= area / (bw * bh) <= 0.9 and corners < 0.5:
                shape = "round"
        share = area / mask.size
        size = "small" if share < cls.SMALL else "large" if share >= cls.LARGE else None
        pixels = cv2.cvtColor(image[mask][None], cv2.COLOR_RGB2HSV)[0]
        counts = np.bincount(colour_codes(pixels), minlength=len(COLOUR_NAMES))
        code = int(np.argmax(counts))
        colour = COLOUR_NAMES[code] or None
        if colour and colour not in ("black", "white", "grey") and np.median(pixels[:, 2]) < 90:
            colour = f"dark {colour}"
        return cls(colour=colour, shape=shape, size=size, share=round(share, 4))

    def phrase(self) -> str:
        """``"a small round red object"``, ``"a tall blue figure"``: a tall region is a figure."""
        words = [w for w in (self.size, self.shape, self.colour) if w]
        return "a " + " ".join([*words, "figure" if self.shape == "tall" else "object"])


@dataclass(frozen=True)
class Motion:
    """What moved between two samples. Speeds are picture widths per second."""

    camera: str | None = None  # "right", "up and left"... the way the camera turns
    camera_speed: float = 0.0
    moving_share: float = 0.0  # of the picture, after the camera's motion is taken out
    where: str | None = None  # "in the centre", "at the bottom on the left"...
    way: str | None = None  # the moving part's direction, relative to the camera
    speed: float = 0.0
    thing: Appearance | None = None  # what the largest moving region looks like, where it is now
    change: str | None = None  # "cut", "darker", "brighter": the picture changed as a whole (scene_change)

    def camera_clause(self, progressive: bool = False) -> str | None:
        """``"the camera pans quickly to the right"`` (``"tilts slowly up"``, ``"moves slowly up and left"``;
        quickly from :data:`FAST_CAMERA`), ``None`` when the camera is still; ``progressive``: ``"is panning"``,
        as the ``cv`` describer's sentences say it."""
        if not self.camera:
            return None
        verb = "pan" if self.camera in ("left", "right") else "tilt" if self.camera in ("up", "down") else "move"
        pace = "quickly" if self.camera_speed >= FAST_CAMERA else "slowly"
        return f"the camera {_verb(verb, progressive)} {pace}{way_words(self.camera)}"

    def thing_clause(self, progressive: bool = False) -> str | None:
        """``"a small round red object in the centre moves to the left"`` (``"something ..."`` when what moved
        was too small or scattered to describe), ``None`` when nothing moved besides the camera."""
        if not self.where:
            return None
        what = self.thing.phrase() if self.thing else "something"
        return f"{what} {self.where} {_verb('move', progressive)}{way_words(self.way)}"

    def text(self) -> str:
        """One sentence: ``"Motion: the camera pans slowly to the right; a small round red object in the centre
        moves to the left."``, or ``"Motion: nothing moves."``; across a cut or a change of light, which is not
        motion, ``"Motion: none; the view cuts to another scene."`` or ``"Motion: none; the light changes and the
        picture gets darker."``."""
        if self.change == "cut":
            return f"{MOTION_MARK} none; the view cuts to another scene."
        if self.change:
            return f"{MOTION_MARK} none; the light changes and the picture gets {self.change}."
        parts = [c for c in (self.camera_clause(), self.thing_clause()) if c]
        return f"{MOTION_MARK} " + ("; ".join(parts) if parts else "nothing moves") + "."


@dataclass(frozen=True)
class Sample:
    """A frame as the motion measurements see it: its time, the ``FLOW_WIDTH``-wide colour (RGB) image and
    that image's grey."""

    t: float
    colour: np.ndarray
    grey: np.ndarray

    @classmethod
    def of(cls, t: float, image: np.ndarray) -> "Sample":
        """``image`` (RGB, any size) reduced to ``FLOW_WIDTH`` pixels wide; the grey of the small image: one
        resize, not two."""
        h0, w0 = image.shape[:2]
        colour = cv2.resize(image, (FLOW_WIDTH, max(8, round(h0 * FLOW_WIDTH / w0))), interpolation=cv2.INTER_AREA)
        return cls(float(t), colour, cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY))


def motion_between(prev: Sample, cur: Sample) -> tuple[Motion, np.ndarray]:
    """What moved from ``prev`` to ``cur`` (samples of the same size), and the mask of what changed once the
    camera's motion is taken out (``FLOW_WIDTH`` scale; the ``moved`` of :func:`measure_motion`).

    The camera's way and speed (phase correlation); when at least :data:`MOVING_SHARE` of the picture still
    changes, where the largest moving region is now, what it looks like (:class:`Appearance`, when it is
    large enough and the change not too widespread) and its way: the shift under which the changed pixels
    are found in the other sample (:func:`region_shift`), else the mean DIS flow over them. This is the one
    measurement of object motion: the stream's summaries and the ``cv`` describer's own sentences both
    come from it.
    """
    dt = max(cur.t - prev.t, 1e-3)
    shift, moved = measure_motion(prev.grey, cur.grey)
    h, w = cur.grey.shape
    camera, camera_speed = None, 0.0
    if shift is not None:
        camera_speed = float(np.hypot(*shift)) / w / dt
        if camera_speed >= CAMERA_SPEED:
            camera = direction(-shift[0], -shift[1])  # the picture slides one way, the camera turns the other
    share = float(moved.mean())
    change = scene_change(prev.grey, cur.grey, moved)
    if change is not None:  # a cut or a change of light: nothing to say about motion
        return Motion(moving_share=share, change=change), moved
    if share < MOVING_SHARE:
        return Motion(camera=camera, camera_speed=camera_speed, moving_share=share), moved
    mask, went = moving_thing(prev.colour, cur.colour, moved, shift) if share <= THING_MAX_CHANGE else (None, None)
    thing = None if mask is None else Appearance.of(mask, cur.colour)
    # the way what changed went, found where it went (see region_shift), else the mean flow over it
    dx, dy = went if went is not None else mean_flow(prev.grey, cur.grey, shift, moved)
    ys, xs = np.nonzero(moved if mask is None else mask)  # the thing where it is now
    y = ys.mean() / h
    where = place(xs.mean() + 0.5, w)
    if y < 0.33 or y > 0.67:
        where = f"at the {'top' if y < 0.33 else 'bottom'} {where.replace('in the centre', 'in the middle')}"
    speed = float(np.hypot(dx, dy)) / w / dt
    return Motion(camera=camera, camera_speed=camera_speed, moving_share=share, where=where,
                  way=direction(dx, dy) if np.hypot(dx, dy) >= 1.0 else None, speed=speed, thing=thing), moved


class MotionStream:
    """Feed it frames in time order; :meth:`update` says what moved since the previous one (``None`` for
    the first frame, or after a frame of another size). Only the previous sample's small images are kept."""

    def __init__(self) -> None:
        self._prev: Sample | None = None

    def update(self, frame: Frame) -> Motion | None:
        cur = Sample.of(frame.t, frame.image)
        prev, self._prev = self._prev, cur
        if prev is None or prev.grey.shape != cur.grey.shape:
            return None
        return motion_between(prev, cur)[0]


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
        """The wrapped describer's descriptions, each with what moved. Stopped early, it passes on what the
        wrapped describer finished and did not hand over (its stream's ``unread``:
        :class:`~frame_describer.base.DescriptionStream`), for a description cache in front to keep."""
        return DescriptionStream(lambda out: self._stream(frames, query, out))

    def _stream(self, frames: Iterable[Frame], query: str | None,
                out: StreamState) -> Generator[FrameDescription, None, None]:
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

        def with_motion(d: FrameDescription) -> FrameDescription:
            with lock:
                summary = pending.get(d.t)
            return d if summary is None else d.model_copy(update={"text": f"{d.text} {summary}".strip()})

        inner = self.inner.describe(measured(), query=query)
        try:
            for d in inner:
                out.handed = with_motion(d)
                with lock:  # only once it is handed over: a Ctrl-C before finds its summary still here
                    pending.pop(d.t, None)
                yield out.handed
        finally:
            try:
                getattr(inner, "close", lambda: None)()  # a stream stopped early waits for its requests in flight
            finally:  # the one handed over is in out.handed, with its summary
                handed = None if out.handed is None else out.handed.t
                out.unread.extend(with_motion(d) for d in leftovers(inner) if d.t != handed)


__all__ = ["CAMERA_EXTENT", "CAMERA_SPEED", "COLOUR_NAMES", "CUT_CORR", "FAST_CAMERA", "FLOW_WIDTH", "LIGHT_CORR",
           "LIGHT_STEP", "MOTION_VERSION", "PLAIN_STD", "SAME_HIST", "STILL_BLOCK", "STILL_SHARE", "ZOOM_CORR", "ZOOMS", "Appearance", "Motion", "MotionDescriber", "MotionStream",
           "Sample", "colour_codes", "direction", "lined_up_extent", "mean_flow", "measure_motion", "motion_between",
           "moving_thing", "place", "region_shift", "scene_change", "still_share", "way_words", "zoomed"]
