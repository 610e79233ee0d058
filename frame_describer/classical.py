"""The offline classical-vision describer: OpenCV's own detectors and measurements, as sentences.

No model download, no randomness: the same frames always give the same text. Per frame it
measures

* people: OpenCV's built-in HOG pedestrian detector (``HOGDescriptor_getDefaultPeopleDetector``),
  confirmed detections only (SVM score >= ``person_score``), plus frontal faces from the Haar
  cascade shipped in ``cv2.data``; where a person stands (left / centre / right);
* motion between this sample and the previous one, measured as the motion stream measures it
  (:func:`frame_describer.motion.motion_between`, on 160-px-wide images): the global translation is
  the camera's motion (a pan or tilt, when shifting the picture by it explains the change); what
  still changes is local motion, said in the stream's words: what moved (``"a small round red
  object"``, ``"a tall blue figure"``, else ``"something"``), where it is now and its way, the shift
  under which the changed pixels of each sample are found in the other. (Until ``cv-sentences-2``
  the way was the mean Farneback flow over those pixels, which says the opposite way for a thing
  that moves about its own size or more between samples, as a rolling ball does at 1 fps.)
* brightness (mean luma: dark / dim, said only when notable) and the dominant named colours;
* scene cuts: the motion measurement's (:func:`frame_describer.motion.scene_change`: most of the
  picture changed and the two samples are unlike under any global shift, whatever their brightness, so
  a cut to a dark view is one), or, between two lit samples, a large hue-saturation histogram difference;
  a change of light or a fade to black is neither a cut nor motion.

Sentences only say what was measured; nothing is said about what was not detected (a text
reasoner that matches meaning would confuse "no person" with "person").
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from .base import PROMPT_MODES, BaseDescriber, PromptMode
from .images import bounded
from .motion import (COLOUR_NAMES, FLOW_WIDTH, Motion, Sample, colour_codes, measure_motion, motion_between,
                     place as _place, scene_change, way_words)
from vidground.errors import ConfigurationError
from vidground.options import check_all, flag, number
from vidground.types import MOTION_MARK, Frame, FrameDescription

#: Goes into the settings (and so the description cache's key): a change to what the sentences say bumps it.
#: 2: local motion's way, what moved and where from :func:`frame_describer.motion.motion_between` (was Farneback).
#: 3: the motion sentence starts with ``Motion:`` like the motion stream's summary, so the embedding reasoner's
#: direction term (``polarity_scope="motion"``, its default) reads the measured motion and not the other sentences.
#: 4: the measurement's ``motion-4``: a lone thing moving on a plain background is that thing's motion, no longer
#: the camera's (its sentences change there; the words are the stream's, one source, :meth:`Motion.camera_clause`).
#: 5: ``motion-5``: a cut is the measurement's (:func:`frame_describer.motion.scene_change`) as well as a lit
#: histogram jump's, so a cut to a dark or much darker view is one; a change of light is never a cut nor motion.
#: 6: ``motion-6``: a zoom, a large thing moving in front of a scene that stays and the same content rearranged
#: (a figure walking across a plain dark view) are no longer cuts (:func:`frame_describer.motion.scene_change`).
TEMPLATES_VERSION = "cv-sentences-6"


@dataclass
class _Prev:
    small: Sample  # FLOW_WIDTH-wide colour and grey images
    hist: np.ndarray  # normalised hue-saturation histogram
    luma: float
    people: list[float] = field(default_factory=list)  # detected people's centre x, 0..1


def _count(n: int, one: str, many: str) -> str:
    words = {1: "One", 2: "Two", 3: "Three", 4: "Four"}
    return f"{words.get(n, str(n))} {one if n == 1 else many}"


class ClassicalDescriber(BaseDescriber):
    """Deterministic, offline describer built on OpenCV (spec name ``cv``).

    ``mode="aware"`` adds one sentence saying which of the query's words match what was
    detected in the frame (people, faces, darkness, motion, a cut, colours); in ``"agnostic"``
    mode (the default) the query is ignored and descriptions are reusable across queries.
    """

    name = "cv"
    #: descriptions depend on the previous sample (motion, cuts): a cache must key on the sampling step
    uses_previous_frame = True

    #: building one loads OpenCV's two small detectors: an eval builds one up front to check the option values
    #: (vidground.registry.Registry.check)
    lazy = True

    def __init__(self, arg: str | None = None, *, mode: PromptMode = "agnostic", person_score: float = 0.5,
                 detect_faces: bool = True, cut_threshold: float = 0.55, dark_luma: float = 45.0,
                 dim_luma: float = 80.0, max_side: int = 400, motion: bool = True):
        if arg:
            raise ConfigurationError(f"the cv describer takes no model argument, got 'cv:{arg}'")
        if mode not in PROMPT_MODES:
            raise ConfigurationError(f"mode must be one of {', '.join(PROMPT_MODES)}; got {mode!r}")
        # kind and range checked, all faults said at once: the values key the description cache, and bool('False')
        # is True
        check_all(lambda: number("person_score", person_score, low=0),  # the HOG SVM's margin: 0 keeps all it finds
                  lambda: flag("detect_faces", detect_faces),
                  lambda: number("cut_threshold", cut_threshold, low=0, high=1, low_open=True, high_open=True),
                  lambda: number("dark_luma", dark_luma, low=0, high=255, high_open=True),
                  lambda: number("dim_luma", dim_luma, low=0, high=255, low_open=True),
                  lambda: number("max_side", max_side, low=16, whole=True, allow_none=True, unit="pixels"),
                  lambda: flag("motion", motion))
        if not dark_luma < dim_luma:
            raise ConfigurationError(f"need 0 <= dark_luma < dim_luma <= 255, got {dark_luma}, {dim_luma}")
        self.mode: PromptMode = mode
        self.person_score = float(person_score)
        self.detect_faces = bool(detect_faces)  # true/false or JSON 0/1 (checked above): keyed as before, True/False
        self.cut_threshold = float(cut_threshold)
        self.dark_luma, self.dim_luma = float(dark_luma), float(dim_luma)
        self.max_side = None if max_side is None else int(max_side)
        self.motion = bool(motion)
        self._local = threading.local()  # OpenCV's detectors are not shared across threads
        self._detectors()  # a missing cascade fails here, not at the first frame

    def _detectors(self) -> tuple[Any, Any]:
        """This thread's (HOG people detector, Haar face cascade), built on first use in the thread."""
        found = getattr(self._local, "detectors", None)
        if found is None:
            hog = cv2.HOGDescriptor()
            hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
            faces = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
            if faces.empty():
                raise ConfigurationError("OpenCV's Haar face cascade is missing from cv2.data; "
                                         "install opencv-python-headless<5")
            found = self._local.detectors = (hog, faces)
        return found

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode, "version": TEMPLATES_VERSION,
                "opencv": cv2.__version__.split(".")[0], "person_score": self.person_score,
                "detect_faces": self.detect_faces, "cut_threshold": self.cut_threshold,
                "dark_luma": self.dark_luma, "dim_luma": self.dim_luma, "max_side": self.max_side,
                **({} if self.motion else {"motion": False})}  # the default keeps the keys cached before

    # --- measurements -------------------------------------------------------------------
    def _people(self, grey: np.ndarray) -> list[tuple[int, int, int, int]]:
        # The detector's window is 64x128: a smaller image crashes OpenCV (a segfault, not an
        # exception), so small frames are enlarged to fit and the boxes scaled back.
        h, w = grey.shape[:2]
        up = max(1.0, 128 / h, 64 / w)
        if up > 1.0:
            grey = cv2.resize(grey, (int(np.ceil(w * up)), int(np.ceil(h * up))), interpolation=cv2.INTER_LINEAR)
        boxes, scores = self._detectors()[0].detectMultiScale(grey, winStride=(4, 4), padding=(8, 8), scale=1.05)
        if up > 1.0 and len(boxes):
            boxes = np.round(np.asarray(boxes, dtype=float) / up).astype(int)
        kept = [tuple(int(v) for v in b) for b, s in zip(boxes, np.ravel(scores)) if s >= self.person_score]
        if len(kept) > 1:
            rects, _ = cv2.groupRectangles([list(b) for b in kept] * 2, 1, 0.3)
            kept = [tuple(int(v) for v in r) for r in rects]
        return sorted(kept)  # type: ignore[return-value]

    def _faces_in(self, grey: np.ndarray) -> list[tuple[int, int, int, int]]:
        if not self.detect_faces:
            return []
        side = max(24, min(grey.shape) // 12)
        found = self._detectors()[1].detectMultiScale(grey, scaleFactor=1.1, minNeighbors=6, minSize=(side, side))
        return sorted(tuple(int(v) for v in f) for f in found)  # type: ignore[misc]

    @staticmethod
    def _colours(hsv: np.ndarray) -> list[str]:
        counts = np.bincount(colour_codes(hsv).ravel(), minlength=len(COLOUR_NAMES))
        order = np.argsort(-counts, kind="stable")  # COLOUR_NAMES is alphabetical: ties go to the first name
        total = counts.sum()
        return [COLOUR_NAMES[i] for i in order[:3] if counts[i] / total >= 0.15 and COLOUR_NAMES[i]]

    # --- sentences ----------------------------------------------------------------------
    def _describe_one(self, frame: Frame, prev: _Prev | None) -> tuple[str, _Prev, set[str]]:
        image = bounded(frame.image, self.max_side)
        h, w = image.shape[:2]
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
        luma = float(grey.mean())
        hist = cv2.calcHist([hsv], [0, 1], None, [30, 32], [0, 180, 0, 256])
        hist = cv2.normalize(hist, None, alpha=1.0, norm_type=cv2.NORM_L1)
        small = Sample.of(frame.t, image)
        state = _Prev(small, hist, luma)
        found: set[str] = set()
        sentences: list[str] = []
        dark = luma < self.dark_luma

        same_size = prev is not None and prev.small.grey.shape == small.grey.shape
        cut = False
        measured: Motion | None = None
        moved: np.ndarray | None = None  # FLOW_WIDTH-scale mask of what moved in the scene
        if same_size:
            if self.motion:  # the one measurement: its change (scene_change) and, below, its motion
                measured, moved = motion_between(prev.small, small)  # type: ignore[union-attr]
                change = measured.change
            else:  # only what scene_change needs
                change = scene_change(prev.small.grey, small.grey, measure_motion(prev.small.grey, small.grey)[1])  # type: ignore[union-attr]
            lit = not dark and prev.luma >= self.dark_luma and abs(luma - prev.luma) < 60  # type: ignore[union-attr]
            distance = cv2.compareHist(prev.hist, hist, cv2.HISTCMP_BHATTACHARYYA)  # type: ignore[union-attr]
            # a cut to a dark or much darker (brighter) view too (scene_change), but never a change of light
            cut = change == "cut" or (change is None and lit and distance >= self.cut_threshold)
        if cut:
            sentences.append("The view changed completely: a scene cut.")
            found.add("cut")

        people = [] if dark else self._people(grey)
        state.people = [(x + bw / 2) / w for x, _, bw, _ in people]
        motion: str | None = None
        local = False  # the motion sentence is about something in the scene, not the camera
        # no motion across a cut or a change of light (measured.change), nor in the dark
        if measured is None or measured.change or cut or dark or prev.luma < self.dark_luma:  # type: ignore[union-attr]
            moved = None
        elif measured.camera:  # the stream's words, "is panning" for "pans"
            motion = f"{MOTION_MARK} {measured.camera_clause(progressive=True)}."
            found.add("camera")
        elif measured.where and measured.moving_share >= 0.01:
            found.add("motion")
            local = True
            motion = f"{MOTION_MARK} {measured.thing_clause(progressive=True)}."

        if people:
            places = [_place(x + bw / 2, w) for x, _, bw, _ in people]
            found.add("person")
            if len(people) == 1:
                x, y, bw, bh = people[0]
                sx0, sx1 = int(x * FLOW_WIDTH / w), int((x + bw) * FLOW_WIDTH / w) + 1
                sy0, sy1 = int(y * FLOW_WIDTH / w), int((y + bh) * FLOW_WIDTH / w) + 1
                walking = moved is not None and float(moved[sy0:sy1, sx0:sx1].mean() if sx1 > sx0 else 0) >= 0.08
                if walking:
                    centre = (x + bw / 2) / w
                    heading = ""
                    if prev is not None and prev.people:
                        before = min(prev.people, key=lambda c: abs(c - centre))
                        if abs(centre - before) >= 0.05:
                            heading = way_words("right" if centre > before else "left")
                    sentences.append(f"A person {places[0]} is walking{heading}.")
                    motion = None if local else motion  # the person's own sentence says it
                else:
                    sentences.append(f"A person is standing {places[0]}.")
            else:
                where = ", ".join(dict.fromkeys(places))
                sentences.append(f"{_count(len(people), 'person', 'people')} are visible ({where}).")
        faces = [] if dark else self._faces_in(grey)
        if faces:
            found.add("face")
            sentences.append(f"{_count(len(faces), 'face is', 'faces are')} visible "
                             f"{_place(faces[0][0] + faces[0][2] / 2, w) if len(faces) == 1 else ''}".rstrip() + ".")
        if motion:
            sentences.append(motion)
        if dark:
            sentences.append("The scene is dark; the lights seem to be off.")
            found.add("dark")
        elif luma < self.dim_luma:
            sentences.append("The scene is dimly lit.")
            found.add("dim")
        else:
            colours = self._colours(hsv)
            if colours:
                found.update(colours)
                listed = colours[0] if len(colours) == 1 else ", ".join(colours[:-1]) + " and " + colours[-1]
                sentences.append(f"The main colours are {listed}.")
        if not sentences:
            sentences.append("A still view.")
        return " ".join(sentences), state, found

    def describe(self, frames: Iterable[Frame], *, query: str | None = None) -> Iterator[FrameDescription]:
        """Yield one description per frame as it arrives; only the previous sample is kept."""
        words = _query_concepts(query) if self.mode == "aware" and query else None
        prev: _Prev | None = None
        for frame in frames:
            text, prev, found = self._describe_one(frame, prev)
            if words is not None:
                text += " " + _match_sentence(words, found)
            yield FrameDescription(t=frame.t, text=text)


# query words -> the detector result that answers them
_CONCEPTS: dict[str, tuple[str, ...]] = {
    "person": ("person", "people", "man", "woman", "men", "women", "someone", "somebody", "figure",
               "human", "pedestrian", "boy", "girl", "child", "he", "she", "they"),
    "face": ("face", "faces"),
    "dark": ("dark", "darkness", "lights", "light", "night", "black"),
    "camera": ("camera", "pan", "pans", "panning", "tilt", "tilts", "pov"),
    "motion": ("moves", "moving", "move", "walks", "walking", "runs", "running", "enters", "leaves"),
    "cut": ("cut", "cuts", "scene", "transition", "switches", "changes"),
}
_COLOURS = {"red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "brown", "white", "grey",
            "gray", "black", "beige"}


def _query_concepts(query: str) -> dict[str, str]:
    """Map each query word we can check to the measurement that checks it."""
    out: dict[str, str] = {}
    for word in (w.strip(".,!?;:'\"()").lower() for w in query.split()):
        for concept, vocab in _CONCEPTS.items():
            if word in vocab:
                out.setdefault(word, concept)
        if word in _COLOURS:
            out.setdefault(word, "grey" if word == "gray" else word)
    return out


def _match_sentence(words: dict[str, str], found: set[str]) -> str:
    matched = [w for w, c in words.items() if c in found or (c == "motion" and ("person" in found and "motion" in found))]
    if matched:
        return "Query words matched here: " + ", ".join(matched) + "."
    return "Nothing the query asks about was detected here."


__all__ = ["ClassicalDescriber", "TEMPLATES_VERSION"]
