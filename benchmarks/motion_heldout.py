"""The motion stream on held-out videos: rendered clips unlike benchmarks/motion.py's room, with known truth.

The stream's thresholds (frame_describer/motion.py) were set on benchmarks/motion.py's own video. This
renders short clips (seeded, no downloads; 320x240, 10 fps, 6 s, H.264 through
``frame_describer.synthetic``) that differ from it in what moves (discs, squares, a triangle, bars, a
figure; 10 to 60 px across; red, green, yellow, white, purple, orange, cyan, pink, grey, blue), how fast
(10 to 50 px a second at 320 px wide), which way (left, right, up, down, diagonals), over what (plain
backgrounds, blob textures, stripes) and who moves (a pan or a tilt over a still scene, a pan with a thing
moving against it, two things moving opposite ways, a lone thing on a plain background, noise and strong
compression, a still control). Each clip is sampled at 1 fps with the project's sampler and fed to
:class:`frame_describer.motion.MotionStream`; every pair of samples is scored from the stream's sentence
against the clip's truth, which holds for the whole clip:

* **who** (camera or object): right when the sentence names the camera exactly when the camera moves and a
  moving thing exactly when a thing moves ("nothing moves" for the still control);
* **direction**, per true mover (the camera's way; a thing's way relative to the scene): ``right``,
  ``wrong`` (``opposite`` counted among them) or ``none`` (that mover not named, or named without a way);
  where two things move, either one's way is right.

The ``cv`` describer's own motion sentence (the same measurement, its 1% gate) is scored the same way.
The first run, before any change (kept as ``before`` in the JSON), is the held-out figure; ``motion-4``'s
``CAMERA_EXTENT`` was chosen after seeing these clips, so later runs are not held out for it.

Run: python benchmarks/motion_heldout.py [--label TEXT] [--load-note TEXT]  (about half a minute). Writes
benchmarks/results/motion_heldout.json (``--json``); ``--keep PATH`` keeps the first run's figures from
an earlier file beside the new ones (``before``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _results import Recorder, add_arguments  # noqa: E402

W, H = 320, 240
FPS = 10.0
DURATION = 6.0
SAMPLE_FPS = 1.0


@dataclass
class Thing:
    """Something drawn: ``shape`` (disc, square, rect, triangle, figure), size in px, RGB colour, its start
    (scene coordinates) and velocity (px a second, ``y`` down)."""

    shape: str
    size: tuple[int, int]
    colour: tuple[int, int, int]
    start: tuple[float, float]
    velocity: tuple[float, float]

    def words(self) -> tuple[str, str | None]:
        """The colour name (names joined by "/" where either is right) and shape word the stream should earn
        for it (``None``: no shape word)."""
        import cv2

        from frame_describer.motion import COLOUR_NAMES, Appearance, colour_codes

        if self.shape == "figure":  # draw_person: a blue shirt over dark trousers, taller than wide
            return "black/blue", "tall"
        hsv = cv2.cvtColor(np.uint8([[self.colour]]), cv2.COLOR_RGB2HSV)
        colour = COLOUR_NAMES[int(colour_codes(hsv)[0, 0])]
        a, b = self.size
        shape = "round" if self.shape == "disc" else "tall" if b >= Appearance.ELONGATED * a else "wide" if a >= Appearance.ELONGATED * b else None
        return colour, shape

    def at(self, t: float) -> tuple[float, float]:
        return self.start[0] + self.velocity[0] * t, self.start[1] + self.velocity[1] * t

    def draw(self, img: np.ndarray, x: float, y: float) -> None:
        import cv2

        from frame_describer.synthetic import draw_person

        cx, cy, (a, b) = int(round(x)), int(round(y)), self.size
        if self.shape == "disc":
            cv2.circle(img, (cx, cy), a, self.colour, -1, cv2.LINE_AA)
        elif self.shape in ("square", "rect"):
            cv2.rectangle(img, (cx - a // 2, cy - b // 2), (cx + a // 2, cy + b // 2), self.colour, -1)
        elif self.shape == "triangle":
            pts = np.array([(cx, cy - b // 2), (cx - a // 2, cy + b // 2), (cx + a // 2, cy + b // 2)], np.int32)
            cv2.fillConvexPoly(img, pts, self.colour, cv2.LINE_AA)
        elif self.shape == "figure":
            draw_person(img, x, y, b, phase=x / 7)
        else:
            raise ValueError(self.shape)


@dataclass
class Clip:
    """A held-out clip: a background (wider or taller than the view when the camera moves), the camera's
    velocity over it (px a second), the things, per-frame noise and the encoder's quality; and its truth."""

    name: str
    background: Callable[[], np.ndarray]
    things: list[Thing] = field(default_factory=list)
    camera: tuple[float, float] = (0.0, 0.0)
    noise: float = 0.0
    crf: int = 18
    note: str = ""

    def truth(self) -> dict:
        from frame_describer.motion import direction

        cam = direction(*self.camera) if self.camera != (0.0, 0.0) else None
        return {"camera": cam, "objects": sorted({direction(*t.velocity) for t in self.things}),
                "what": sorted({t.words() for t in self.things}, key=str)}

    def frame(self, i: int, scene: np.ndarray) -> np.ndarray:
        t = i / FPS
        vx, vy = (int(round(c * t)) for c in self.camera)
        x0, y0 = max(vx, 0) if self.camera[0] >= 0 else scene.shape[1] - W + vx, \
            max(vy, 0) if self.camera[1] >= 0 else scene.shape[0] - H + vy
        img = scene[y0:y0 + H, x0:x0 + W].copy()  # a copy: drawing must not touch the scene
        for thing in self.things:
            x, y = thing.at(t)
            thing.draw(img, x - x0, y - y0)
        if self.noise:
            rng = np.random.default_rng(1000 + i)
            img = np.clip(img + rng.normal(0, self.noise, img.shape), 0, 255).astype(np.uint8)
        return img


def _plain(colour: tuple[int, int, int], w: int = W, h: int = H) -> Callable[[], np.ndarray]:
    return lambda: np.full((h, w, 3), colour, np.uint8)


def _blobs(seed: int, w: int = W, h: int = H, n: int = 60) -> Callable[[], np.ndarray]:
    """A busy background: random filled ellipses over a mid-tone, slightly blurred."""
    def make() -> np.ndarray:
        import cv2

        rng = np.random.default_rng(seed)
        img = np.full((h, w, 3), (120, 125, 110), np.uint8)
        for _ in range(n * w * h // (W * H)):
            centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            axes = (int(rng.integers(4, 30)), int(rng.integers(4, 30)))
            cv2.ellipse(img, centre, axes, float(rng.integers(0, 180)), 0, 360,
                        tuple(int(c) for c in rng.integers(30, 230, 3)), -1)
        return cv2.GaussianBlur(img, (0, 0), 1.2)
    return make


def _stripes(w: int = W, h: int = H) -> Callable[[], np.ndarray]:
    """Irregular green/grey horizontal stripes (a hedge, a fence seen sideways)."""
    def make() -> np.ndarray:
        rng = np.random.default_rng(11)
        img = np.full((h, w, 3), (90, 120, 80), np.uint8)
        y = 0
        while y < h:
            band, gap = int(rng.integers(2, 7)), int(rng.integers(6, 20))
            img[y:y + band] = (60, 80, 60)
            y += band + gap
        return img
    return make


def clips() -> list[Clip]:
    """The held-out clips (what moves, which way, over what)."""
    return [
        Clip("blue square up, blobs", _blobs(1), [Thing("square", (30, 30), (30, 60, 200), (160, 200), (0, -25))]),
        Clip("green disc drifts right, plain", _plain((170, 170, 170)),
             [Thing("disc", (10, 10), (40, 170, 60), (80, 120), (10, 0))], note="lone mover on plain, slow"),
        Clip("yellow disc fast left, plain", _plain((60, 60, 90)),
             [Thing("disc", (12, 12), (230, 210, 40), (290, 150), (-50, 0))], note="lone mover on plain, fast"),
        Clip("white disc up, plain", _plain((70, 100, 140)),
             [Thing("disc", (16, 16), (245, 245, 245), (160, 200), (0, -28))], note="lone mover on plain"),
        Clip("purple bar down-right, blobs", _blobs(2), [Thing("rect", (60, 20), (120, 40, 160), (60, 50), (22, 22))],
             note="diagonal"),
        Clip("orange triangle up-left, stripes", _stripes(),
             [Thing("triangle", (40, 40), (240, 130, 20), (260, 200), (-25, -25))], note="diagonal"),
        Clip("pan left, still blobs", _blobs(3, w=2 * W), camera=(-40, 0), note="camera only"),
        Clip("tilt down, still blobs", _blobs(4, h=2 * H), camera=(0, 30), note="camera only"),
        Clip("pan right, red disc moves left", _blobs(5, w=2 * W), camera=(30, 0),
             things=[Thing("disc", (14, 14), (210, 30, 30), (330, 150), (-25, 0))], note="camera and object"),
        Clip("two things, opposite ways, plain", _plain((200, 190, 160)),
             [Thing("disc", (14, 14), (30, 190, 200), (60, 80), (30, 0)),
              Thing("square", (26, 26), (220, 80, 160), (260, 170), (-30, 0))], note="two movers"),
        Clip("figure walks left, blobs", _blobs(6),
             [Thing("figure", (0, 150), (0, 0, 0), (260, 215), (-20, 0))], note="large, tall (draw_person)"),
        Clip("red disc right, noise + crf 40", _blobs(7),
             [Thing("disc", (12, 12), (200, 40, 40), (60, 120), (30, 0))], noise=10.0, crf=40,
             note="noise, compression"),
        Clip("tiny grey dot fast down, plain", _plain((30, 30, 30)),
             [Thing("disc", (5, 5), (160, 160, 160), (200, 20), (0, 35))], note="tiny"),
        Clip("still blobs, noise + crf 40", _blobs(8), noise=10.0, crf=40, note="control: nothing moves"),
    ]


_CAMERA = re.compile(r"^the camera (?:is )?(?:pan|tilt|mov)\w* (?:quickly|slowly) (?:to the )?(.+)$")
_THING = re.compile(r"^(.*?) (?:is )?(?:moves|moving)(?: to the)?(?: (.+))?$")


def read_sentence(text: str) -> dict:
    """What a motion sentence (after ``Motion:``) says: the camera's way, and each moving thing's way
    (``None``: named without a way)."""
    said = text.rpartition("Motion:")[2].strip().rstrip(".")
    out: dict = {"camera": None, "objects": []}
    if not said or said == "nothing moves":
        return out
    for part in said.split("; "):
        m = _CAMERA.match(part)
        if m:
            out["camera"] = m.group(1)
            continue
        m = _THING.match(part)
        if m:
            out["objects"].append(m.group(2))
            out.setdefault("what", []).append(m.group(1))
    return out


_OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}


def opposite(a: str, b: str) -> bool:
    """Whether way ``a`` is the reverse of ``b`` in at least one axis and agrees in none."""
    wa, wb = set(a.split(" and ")), set(b.split(" and "))
    return all(_OPPOSITE[x] in wb for x in wa)


def score(truth: dict, said: dict) -> dict:
    """One pair of samples: who (right / wrong, and which confusion) and each mover's direction."""
    kinds_true = {k for k in ("camera", "objects") if truth[k]}
    kinds_said = {k for k in ("camera", "objects") if said[k]}
    out = {"who": "right" if kinds_true == kinds_said else
           f"said {'+'.join(sorted(kinds_said)) or 'nothing'} for {'+'.join(sorted(kinds_true)) or 'nothing'}"}
    if truth["camera"]:
        way = said["camera"]
        out["camera"] = "none" if way is None else "right" if way == truth["camera"] else \
            "opposite" if opposite(way, truth["camera"]) else "wrong"
    if truth["objects"]:
        ways = [w for w in said["objects"] if w]
        out["object"] = "none" if not ways else "right" if any(w in truth["objects"] for w in ways) else \
            "opposite" if all(opposite(w, t) for w in ways for t in truth["objects"]) else "wrong"
    if truth.get("what") and said.get("what"):
        # what the first named thing is said to be: its colour word and its shape word against the truth's
        phrase = said["what"][0].split()
        colours = {name for c, _ in truth["what"] for name in c.split("/")}
        out["colour"] = "none" if phrase[0] == "something" else "right" if colours & set(phrase) else "wrong"
        shapes = {s for _, s in truth["what"]}
        said_shape = next((w for w in phrase if w in ("round", "tall", "wide")), None)
        out["shape"] = "none" if phrase[0] == "something" else "right" if said_shape in shapes else "wrong"
    return out


def render(clip: Clip, path: Path) -> Path:
    from frame_describer.synthetic import _write

    scene = clip.background()
    n = int(DURATION * FPS)
    return _write(path, lambda i: clip.frame(i, scene), [i / FPS for i in range(n)], fps=FPS, codec=None,
                  rotation=None, crf=clip.crf)


def measure(videos: list[tuple[Clip, Path]]) -> list[dict]:
    """Every pair of 1-fps samples of every clip: the stream's sentence and cv's own, read and scored."""
    from frame_describer.classical import ClassicalDescriber
    from frame_describer.motion import MotionStream
    from frame_describer.sampling import sample_frames

    rows = []
    cv = ClassicalDescriber()
    for clip, path in videos:
        truth = clip.truth()
        frames = list(sample_frames(path, fps=SAMPLE_FPS, max_side=None))
        stream = MotionStream()
        summaries = [stream.update(f) for f in frames]
        own = [d.text for d in cv.describe(frames)]
        for f, motion, cv_text in zip(frames, summaries, own):
            if motion is None:
                continue
            text = motion.text()
            cv_motion = re.search(r"Motion:[^.]*\.", cv_text)
            cv_said = read_sentence(cv_motion.group(0)) if cv_motion else {"camera": None, "objects": []}
            rows.append({"clip": clip.name, "t": round(f.t, 2), "truth": truth, "stream": text,
                         "stream_score": score(truth, read_sentence(text)),
                         "cv": cv_motion.group(0) if cv_motion else None, "cv_score": score(truth, cv_said)})
    return rows


def totals(rows: list[dict], key: str) -> dict:
    """Counts over all pairs: who right/wrong (and the confusions), and directions right/wrong/opposite/none."""
    out: dict = {"pairs": len(rows), "who_right": 0, "confusions": {}, "direction": {}}
    for r in rows:
        s = r[key]
        if s["who"] == "right":
            out["who_right"] += 1
        else:
            out["confusions"][s["who"]] = out["confusions"].get(s["who"], 0) + 1
        for mover in ("camera", "object"):
            if mover in s:
                d = out["direction"].setdefault(mover, {"right": 0, "wrong": 0, "opposite": 0, "none": 0})
                d[s[mover]] += 1
        for word in ("colour", "shape"):
            if word in s:
                d = out.setdefault("what", {}).setdefault(word, {"right": 0, "wrong": 0, "none": 0})
                d[s[word]] += 1
    return out


def per_clip(rows: list[dict], key: str) -> list[dict]:
    out = []
    for name in dict.fromkeys(r["clip"] for r in rows):
        mine = [r for r in rows if r["clip"] == name]
        t = totals(mine, key)
        dirs = {m: f"{d['right']}/{sum(d.values())}" for m, d in t["direction"].items()}
        out.append({"clip": name, "pairs": t["pairs"], "who_right": t["who_right"], **dirs})
    return out


def summary_line(t: dict) -> str:
    d = "; ".join(f"{m}: {v['right']} right, {v['wrong'] + v['opposite']} wrong ({v['opposite']} opposite), "
                  f"{v['none']} none" for m, v in t["direction"].items())
    what = "; ".join(f"{w}: {v['right']} right, {v['wrong']} wrong, {v['none']} 'something'"
                     for w, v in t.get("what", {}).items())
    return f"who right {t['who_right']}/{t['pairs']}; {d}" + (f"; what (of those named): {what}" if what else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", default="", help="what this run measures (e.g. the code's state)")
    ap.add_argument("--keep", metavar="PATH", help="an earlier result file whose first run to keep as 'before'")
    add_arguments(ap, "motion_heldout")
    args = ap.parse_args()
    from frame_describer.classical import TEMPLATES_VERSION
    from frame_describer.motion import MOTION_VERSION

    before = None
    if args.keep:
        earlier = json.loads(Path(args.keep).read_text())
        before = earlier.get("before") or {k: earlier[k] for k in ("label", "versions", "summary", "rows")}
    all_clips = clips()
    rec = Recorder("motion_heldout", args, {
        "video": f"{W}x{H}, {FPS:g} fps, {DURATION:g} s, rendered (H.264), {len(all_clips)} clips",
        "sampling": f"{SAMPLE_FPS:g} fps"})
    with tempfile.TemporaryDirectory() as tmp:
        videos = [(c, render(c, Path(tmp) / f"{i:02d}.mp4")) for i, c in enumerate(all_clips)]
        rows = measure(videos)
    summary = {"stream": totals(rows, "stream_score"), "cv": totals(rows, "cv_score")}
    stream_clips = per_clip(rows, "stream_score")
    for row in stream_clips:
        print(f"{row['clip']:<38} who {row['who_right']}/{row['pairs']}  " +
              "  ".join(f"{m} {row[m]}" for m in ("camera", "object") if m in row))
    for key, t in summary.items():
        print(f"{key:<7} {summary_line(t)}")
    if before:
        print(f"before  ({before['label']}): stream {summary_line(before['summary']['stream'])}")
    versions = {"motion": MOTION_VERSION, "cv": TEMPLATES_VERSION}
    rec.write(stream_clips, label=args.label, versions=versions, summary=summary,
              clips=[{"name": c.name, "truth": c.truth(), "note": c.note} for c in all_clips],
              per_clip_cv=per_clip(rows, "cv_score"), details=rows,
              **({"before": before} if before else {}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
