"""Motion stream benchmark: events that differ only in motion, found with and without the stream, and its cost.

It renders a video (320x240, 10 fps, 40 s) whose four events look the same in any single frame and
differ only in how things move: a red ball rolls to the left, later back to the right, the camera pans
over the room while a person stands, and the person walks. Each query is grounded with the offline
``embedding`` reasoner on descriptions by the ``cv`` describer (1 fps) in four settings: without any motion
(``cv`` with ``motion=False``, the single-frame view a per-frame image model has), that plus the motion
stream (:mod:`frame_describer.motion`), ``cv`` with its own motion sentences, and that plus the stream;
the two settings with the stream again with the reasoner's direction term off (``polarity=0``, see
:mod:`temporal_reasoner.polarity`). A query is a hit when the best interval's IoU with the drawn truth is
at least 0.5.

It also times :class:`~frame_describer.motion.MotionStream` per frame on frames of three sizes, in a
sliding random texture and in this video's ball and person scenes (the stream's own cost, beside decoding
and describing), counts, per event, the samples whose motion sentence says the right direction (the
stream's, and the ``cv`` describer's own, which since ``cv-sentences-2`` come from the same measurement)
and what the stream said moved ("a small round red object"...), and, for the two ball events, how far the
asked direction's peak score stands above the opposite event's. Exits non-zero when the stream turns no
miss of the motion-free describer into a hit, or the stream or ``cv``'s own sentences say a direction the
wrong way, or when the direction term loses a hit of the stream's, or neither turns a miss into a hit nor
widens both ball margins.

Run: python benchmarks/motion.py [--fps 1] [--load-note TEXT]  (about a minute). Writes
benchmarks/results/motion.json (``--json``), rendered into docs/benchmarks.md by make_page.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _results import Recorder, add_arguments  # noqa: E402

SIZE = (320, 240)
FPS = 10.0
DURATION = 40.0
PANORAMA = 3 * SIZE[0]
#: (name, query, start, end): what happens when, in the rendered video
EVENTS = [
    ("ball left", "the ball rolls to the left", 5.0, 10.0),
    ("ball right", "the ball rolls to the right", 15.0, 20.0),
    ("camera pan", "the camera pans across the room", 25.0, 30.0),
    ("person walks", "the person walks", 34.0, 39.0),
]
_FLOOR = 200
_BALL_R = 14
#: Events that differ from another only in direction: how far each one's peak stands above the other's is
#: what the reasoner's direction term is for
OPPOSITE = {"ball left": "ball right", "ball right": "ball left"}


def _scene(seed: int = 3) -> np.ndarray:
    """A wide, textured room (irregular stripes and frames, so a pan has something to track)."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = SIZE[1], PANORAMA
    img = np.full((h, w, 3), (205, 195, 172), np.uint8)
    x = 0
    while x < w:
        stripe, gap = int(rng.integers(3, 9)), int(rng.integers(8, 30))
        img[:_FLOOR - 20, x:x + stripe] = (188, 176, 150)
        x += stripe + gap
    for _ in range(9):
        x0, y0 = int(rng.integers(0, w - 60)), int(rng.integers(20, 110))
        cv2.rectangle(img, (x0, y0), (x0 + int(rng.integers(30, 60)), y0 + int(rng.integers(25, 50))),
                      tuple(int(c) for c in rng.integers(40, 160, 3)), -1)
    img[_FLOOR - 20:] = (150, 110, 70)
    for x in range(0, w, 41):
        img[_FLOOR - 20:, x:x + 2] = (120, 85, 50)
    return img


def _ball_x(t: float) -> float:
    """The ball's centre (px in the view): centre, rolls left, rests, rolls right, rests."""
    right, left = 0.7 * SIZE[0], 0.3 * SIZE[0]
    if t < 5:
        return right
    if t < 10:
        return right + (left - right) * (t - 5) / 5
    if t < 15:
        return left
    if t < 20:
        return left + (right - left) * (t - 15) / 5
    return right


def _view_x(t: float) -> float:
    """Where the view starts in the panorama: still, pans right during 25-30 s, still."""
    return 0.0 if t < 25 else min(t - 25, 5.0) / 5 * (PANORAMA - SIZE[0])


def _person_x(t: float) -> float:
    """The person (in the room from 30 s) stands on the left, walks to the right during 34-39 s."""
    a, b = 0.2 * SIZE[0], 0.8 * SIZE[0]
    return a if t < 34 else a + (b - a) * min(t - 34, 5.0) / 5


def frame_at(t: float, scene: np.ndarray) -> np.ndarray:
    import cv2

    from frame_describer.synthetic import draw_person

    vx = int(round(_view_x(t)))
    img = np.ascontiguousarray(scene[:, vx:vx + SIZE[0]])
    if t < 25:  # the ball's part of the video, before the pan
        cv2.circle(img, (int(round(_ball_x(t))), _FLOOR - _BALL_R), _BALL_R, (200, 30, 30), -1)
    if t >= 30:  # the person's part, after it: standing, then walking
        draw_person(img, _person_x(t), _FLOOR + 20, 125, phase=t * 6 if 34 <= t < 39 else 0.0)
    return img


def render_motion_video(path: Path) -> Path:
    """Encode the benchmark's video at ``path`` (H.264 where available)."""
    import av

    from frame_describer.synthetic import default_codec

    scene = _scene()
    n = int(DURATION * FPS)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(default_codec(), rate=Fraction(int(FPS)))
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.codec_context.thread_count = 1
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(frame_at(i / FPS, scene), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def ground_all(video: Path, describer, motion: bool, fps: float, polarity: float | None = None) -> dict:
    from pipelines.session import Session

    options = {} if polarity is None else {"polarity": polarity}
    with Session(describer=describer, reasoner="embedding", reasoner_options=options, sampling={"fps": fps},
                 cache=False, motion=motion) as session:
        described = session.describe(video)
        rows = []
        truth = {name: (start, end) for name, _, start, end in EVENTS}
        for name, query, start, end in EVENTS:
            result = session.ground(described, query)
            best = result.best
            iou = best.iou((start, end)) if best else 0.0
            row = {"event": name, "query": query, "truth": [start, end],
                   "prediction": [round(best.start, 2), round(best.end, 2)] if best else None,
                   "iou": round(iou, 3), "hit": iou >= 0.5}
            if name in OPPOSITE and result.curve:
                def peak(window: tuple[float, float]) -> float:
                    return max((v for t, v in result.curve if window[0] <= t <= window[1]), default=float("nan"))
                row["margin"] = round(peak(truth[name]) - peak(truth[OPPOSITE[name]]), 4)
            rows.append(row)
        return {"describer": described.describer, "rows": rows, "hits": sum(r["hit"] for r in rows),
                "descriptions": [(d.t, d.text) for d in described.descriptions]}


#: What a right motion sentence says in each event, and what a wrong one would (the other direction)
SAYS = {"ball left": (r"mov\w* to the left", r"mov\w* to the right"),
        "ball right": (r"mov\w* to the right", r"mov\w* to the left"),
        "camera pan": (r"camera (?:is )?pan\w* (?:\w+ )?to the right", r"camera (?:is )?pan\w* (?:\w+ )?to the left"),
        "person walks": (r"(?:walking|mov\w*) to the right", r"(?:walking|mov\w*) to the left")}


def motion_sentences_right(descriptions: list, part: str) -> dict:
    """For each event, how many samples inside it (motion since a sample also inside) have a motion
    sentence saying the right direction, and how many the opposite one. ``part``: ``"stream"`` reads the
    text after ``Motion:`` (the stream's summary, on a describer without motion of its own), ``"own"`` the
    whole text of a run without the stream (``cv``'s own sentences; its motion sentence is marked ``Motion:``
    too, since ``cv-sentences-3``)."""
    import re

    out = {}
    for name, _, start, end in EVENTS:
        right = wrong = n = 0
        for t, text in descriptions:
            if start < t <= end:
                n += 1
                said = text.partition("Motion:")[2] if part == "stream" else text
                good, bad = SAYS[name]
                right += bool(re.search(good, said))
                wrong += bool(re.search(bad, said))
        out[name] = {"samples": n, "right": right, "opposite": wrong}
    return out


def things_said(descriptions: list) -> dict:
    """For each event, what the stream said moved in its samples (``"a small round red object"``,
    ``"something"``...) and how often: the appearance words should be the same sample after sample."""
    import re

    out = {}
    for name, _, start, end in EVENTS:
        said: dict[str, int] = {}
        for t, text in descriptions:
            if start < t <= end:
                m = re.search(r"Motion:.*?(?:; )?((?:a|an) [a-z ]+?(?:object|figure)|something) ", text)
                key = m.group(1) if m else "none"
                said[key] = said.get(key, 0) + 1
        out[name] = said
    return out


def _object_frames(w: int, h: int) -> list[np.ndarray]:
    """The benchmark video's frames at 1 fps while the ball rolls and the person walks, at ``w`` x ``h``."""
    import cv2

    scene = _scene()
    return [cv2.resize(frame_at(float(t), scene), (w, h), interpolation=cv2.INTER_LINEAR)
            for t in [*range(5, 21), *range(33, 40)]]


def stream_cost(sizes: list[tuple[int, int]], frames: int = 60, rounds: int = 3) -> list[dict]:
    """Median milliseconds per :meth:`MotionStream.update` in two scenes: ``"texture"``, random-texture
    frames sliding 2 px a frame (what was timed before what moved was described), and ``"objects"``, the
    ball rolling and the person walking at 1 fps on this benchmark's still room (each sample describes
    what moved). The sizes and scenes are timed in turn, ``rounds`` times over."""
    from frame_describer.motion import MotionStream
    from vidground.types import Frame

    rng = np.random.default_rng(0)
    scenes = {}
    for w, h in sizes:
        base = rng.integers(0, 255, (h, w * 2, 3), dtype=np.uint8)
        scenes[("texture", w, h)] = [np.ascontiguousarray(base[:, i * 2:i * 2 + w]) for i in range(frames)]
        scenes[("objects", w, h)] = _object_frames(w, h)
    times: dict[tuple, list[float]] = {k: [] for k in scenes}
    for _ in range(rounds):
        for key, images in scenes.items():
            stream = MotionStream()
            for i, image in enumerate(images):
                frame = Frame(t=float(i), index=i, image=image)
                t0 = time.perf_counter()
                stream.update(frame)
                if i:  # the first frame only keeps its small images
                    times[key].append(time.perf_counter() - t0)
    return [{"scene": scene, "size": f"{w}x{h}", "median_ms": round(statistics.median(ts) * 1000, 2),
             "p90_ms": round(sorted(ts)[int(0.9 * (len(ts) - 1))] * 1000, 2)}
            for (scene, w, h), ts in times.items()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fps", type=float, default=1.0, help="sampling rate for describing (default 1)")
    add_arguments(ap, "motion")
    args = ap.parse_args()
    rec = Recorder("motion", args, {"describer": "cv", "reasoner": "embedding", "fps": args.fps,
                                    "video": f"{SIZE[0]}x{SIZE[1]}, {FPS:g} fps, {DURATION:g} s, rendered",
                                    "events": [list(e) for e in EVENTS], "hit": "IoU >= 0.5"})
    from frame_describer.classical import ClassicalDescriber

    with tempfile.TemporaryDirectory() as tmp:
        video = render_motion_video(Path(tmp) / "motion.mp4")
        runs = []
        for label, own, stream, polarity in (
                ("cv, no motion", False, False, None), ("cv, no motion + stream", False, True, None),
                ("cv", True, False, None), ("cv + stream", True, True, None),
                ("cv, no motion + stream, polarity off", False, True, 0.0), ("cv + stream, polarity off", True, True, 0.0)):
            r = ground_all(video, ClassicalDescriber(motion=own), stream, args.fps, polarity)
            runs.append({"setting": label, **r})
            print(f"{label:<37} hits {r['hits']}/{len(EVENTS)}  " + "  ".join(
                f"{x['event']}: {x['iou']:.2f}" for x in r["rows"]))
    sentences = {"motion stream": motion_sentences_right(runs[1]["descriptions"], "stream"),
                 "cv's own sentences": motion_sentences_right(runs[2]["descriptions"], "own")}
    for who, per in sentences.items():
        print(f"{who:<20} " + "  ".join(f"{e}: {v['right']}/{v['samples']} right, {v['opposite']} opposite"
                                         for e, v in per.items()))
    cost = stream_cost([(320, 240), (640, 360), (1280, 720)])
    things = things_said(runs[1]["descriptions"])
    print("what the stream said moved: " + "; ".join(f"{e}: {v}" for e, v in things.items()))
    for c in cost:
        print(f"motion stream, {c['scene']:<8} {c['size']:>9}: {c['median_ms']:.2f} ms/frame (p90 {c['p90_ms']:.2f})")
    base, with_stream = runs[0], runs[1]
    turned = [a["event"] for a, b in zip(base["rows"], with_stream["rows"]) if not a["hit"] and b["hit"]]
    lost = [a["event"] for a, b in zip(base["rows"], with_stream["rows"]) if a["hit"] and not b["hit"]]
    print(f"misses turned into hits by the stream: {turned or 'none'}; hits lost: {lost or 'none'}")
    # the reasoner's direction term (temporal_reasoner.polarity): what the stream's direction words are worth
    off = runs[4]
    by_polarity = [a["event"] for a, b in zip(off["rows"], with_stream["rows"]) if not a["hit"] and b["hit"]]
    lost_by_polarity = [a["event"] for a, b in zip(off["rows"], with_stream["rows"]) if a["hit"] and not b["hit"]]
    print(f"misses turned into hits by the reasoner's direction term: {by_polarity or 'none'}; "
          f"hits lost: {lost_by_polarity or 'none'}")
    # where the stream alone already hits both directions, the term's worth is how much further the asked
    # direction's peak stands above the opposite one's
    margins = {a["event"]: {"with": a.get("margin"), "without": b.get("margin")}
               for a, b in zip(with_stream["rows"], off["rows"]) if a["event"] in OPPOSITE}
    print("peak over the opposite direction's, with / without the direction term: " + "  ".join(
        f"{e}: {m['with']} / {m['without']}" for e, m in margins.items()))
    widened = all(m["with"] is not None and m["without"] is not None and m["with"] > m["without"]
                  for m in margins.values())
    wrong_way = sum(v["opposite"] for per in sentences.values() for v in per.values())
    ok = bool(turned) and wrong_way == 0 and (bool(by_polarity) or widened) and not lost_by_polarity
    rec.write([{"setting": r["setting"], "describer": r["describer"], "hits": r["hits"],
                **{x["event"]: x["iou"] for x in r["rows"]}} for r in runs],
              details=[{k: v for k, v in r.items() if k != "descriptions"} for r in runs],
              sentences=sentences, things=things, cost=cost, turned=turned, lost=lost, turned_by_polarity=by_polarity,
              lost_by_polarity=lost_by_polarity, margins=margins, ok=ok)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
