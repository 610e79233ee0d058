"""Dense events on real captions: how well the offline change-point path finds known event boundaries.

No real video here has annotated dense events *and* captions, so the truth is made: real caption files of
different videos (QVHighlights dev, MiniGPT-v2 captions of 2-s clips; NExT-GQA dev, captions of every
second) are concatenated, in a seeded random order, into long transcripts whose true boundaries are the
joins. Reported per caption set, over ``--trials`` transcripts of ``--videos`` videos each:

- boundary precision / recall / F1 at +-``--tolerance`` s (a predicted boundary within the tolerance of
  a join, each join matched once), micro-averaged over the transcripts;
- event recall at tIoU 0.3 / 0.5 / 0.7: the fraction of the source videos matched by a predicted event;
- the same with ``nested`` events (the coarse scale added where it differs: overlapping events), and for
  a *uniform* baseline that cuts each transcript into as many equal parts as the detector found events (it
  knows the count, not where), so the figures say what the boundaries' placement adds.

A join is the easiest boundary there is to see (a new video), but real videos also change scene inside:
those count as false boundaries here, so precision is a lower bound. Plus the rendered demo video
(``vidground demo``'s, with four known events) through both stages offline.

    python benchmarks/events.py                    # both caption sets, 30 transcripts of 6 videos each
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _results import Recorder, add_arguments, parse_for_results  # noqa: E402
from pipelines.api import load_descriptions  # noqa: E402
from pipelines.event_metrics import boundary_f1, event_recall  # noqa: E402
from temporal_reasoner import Transcript, get_reasoner  # noqa: E402
from temporal_reasoner.events import MIN_EVENT_SECONDS, THRESHOLD, WINDOW_SECONDS, offline_events  # noqa: E402
from vidground.types import FrameDescription  # noqa: E402

SETS = {"qvhighlights": ("qvhighlights/captions-minigptv2-val-dev", "*.jsonl"),
        "nextgqa": ("nextgqa/captions-1fps-val-dev", "*_cap.json")}
TIOUS = (0.3, 0.5, 0.7)


def concatenated(files: list[Path]) -> tuple[Transcript, list[tuple[float, float]]]:
    """The transcript of ``files`` played one after another, and each source video's true span in it."""
    descs: list[FrameDescription] = []
    spans, offset = [], 0.0
    for f in files:
        video = load_descriptions(f)
        duration = video.transcript().duration
        descs += [FrameDescription(t=offset + d.t, text=d.text) for d in video.descriptions]
        spans.append((offset, offset + duration))
        offset += duration
    return Transcript.from_descriptions(descs, duration=offset), spans


def uniform(duration: float, n: int) -> list[tuple[float, float]]:
    return [(duration * i / n, duration * (i + 1) / n) for i in range(n)]


def run_set(name: str, root: Path, encoder: Any, *, trials: int, videos: int, seed: int, tolerance: float,
            options: dict[str, Any]) -> dict[str, Any]:
    folder, pattern = SETS[name]
    files = sorted((root / folder).glob(pattern))
    if len(files) < videos:
        raise SystemExit(f"{root / folder}: {len(files)} caption files, fewer than --videos {videos}")
    rng = random.Random(f"{seed}:{name}")
    methods = {"detector": "change points (offline)", "nested": "change points, nested (two scales)",
               "uniform": "uniform, same count"}
    totals = {k: [0, 0, 0] for k in methods}  # hits, predicted, true
    recalls: dict[str, dict[float, list[float]]] = {k: {t: [] for t in TIOUS} for k in totals}
    n_events = {"detector": 0, "nested": 0}
    seconds = {"detector": 0.0, "nested": 0.0}
    durations = []
    for _ in range(trials):
        transcript, spans = concatenated(rng.sample(files, videos))
        predicted = {}
        for kind in n_events:
            started = time.perf_counter()
            found = offline_events(encoder, transcript, **options, nested=kind == "nested")
            seconds[kind] += time.perf_counter() - started
            predicted[kind] = [(e.start, e.end) for e in found.events]
            n_events[kind] += len(found.events)
        predicted["uniform"] = uniform(transcript.duration, len(predicted["detector"]))
        joins = [s for s, _ in spans[1:]]
        for kind, events in predicted.items():
            cuts = sorted({t for ev in events for t in ev} - {0.0, transcript.duration})
            b = boundary_f1(cuts, joins, tolerance)
            for i, k in enumerate(("hits", "predicted", "true")):
                totals[kind][i] += b[k]
            for t in TIOUS:
                recalls[kind][t].append(event_recall(events, spans, t))
        durations.append(transcript.duration)
    rows = []
    for kind, (hits, pred, true) in totals.items():
        p, r = hits / pred if pred else 0.0, hits / true
        row = {"set": name, "method": methods[kind],
               "boundary_precision": round(100 * p, 2), "boundary_recall": round(100 * r, 2),
               "boundary_f1": round(100 * (2 * p * r / (p + r) if p + r else 0.0), 2)}
        row.update({f"event_recall@{t:g}": round(100 * sum(v) / len(v), 2) for t, v in recalls[kind].items()})
        if kind in n_events:
            row.update({"events_per_transcript": round(n_events[kind] / trials, 2),
                        "mean_duration_s": round(sum(durations) / trials, 1),
                        "seconds_per_transcript": round(seconds[kind] / trials, 3)})
        rows.append(row)
    return {"rows": rows, "files": len(files)}


#: The demo's events last 1 to 8 s in a 36-s video: the defaults (8-s windows) are also run at a scale that fits.
DEMO_SETTINGS = ({}, {"window_seconds": 3.0, "min_event_seconds": 2.0},
                 {"window_seconds": 3.0, "min_event_seconds": 2.0, "nested": True})


def demo(encoder_reasoner: Any, tolerance: float) -> list[dict[str, Any]]:
    """The rendered demo video through both stages (cv describer, offline events) against its known events:
    each event's start and end are true boundaries."""
    from frame_describer.synthetic import render_demo_video
    from pipelines.session import Session

    rows = []
    with tempfile.TemporaryDirectory(prefix="vidground-events-") as tmp:
        video = Path(tmp) / "demo.mp4"
        truth = render_demo_video(video)
        with Session(describer="cv", reasoner=encoder_reasoner, cache=False) as session:  # a temporary video
            for settings in DEMO_SETTINGS:
                result = session.events(video, **settings)
                events = [(e.start, e.end) for e in result.events]
                true_bounds = sorted({t for ev in truth for t in (ev.start, ev.end)})
                rows.append({"settings": settings or "defaults", "truth": [[ev.name, ev.start, ev.end] for ev in truth],
                             "found": [[e.start, e.end, e.score, e.caption] for e in result.events],
                             "boundary": boundary_f1([s for s, _ in events[1:]], true_bounds, tolerance),
                             "event_recall@0.5": event_recall(events, [(ev.start, ev.end) for ev in truth], 0.5)})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    p.add_argument("--trials", type=int, default=30, help="transcripts per caption set (default 30)")
    p.add_argument("--videos", type=int, default=6, help="videos per transcript (default 6)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tolerance", type=float, default=2.0, help="boundary tolerance in seconds (default 2)")
    p.add_argument("--window-seconds", type=float, default=WINDOW_SECONDS)
    p.add_argument("--min-event-seconds", type=float, default=MIN_EVENT_SECONDS)
    p.add_argument("--threshold", type=float, default=THRESHOLD)
    p.add_argument("--no-demo", action="store_true", help="skip the rendered demo video")
    add_arguments(p, "events")
    args = parse_for_results(p, argv, "events")
    options = {"window_seconds": args.window_seconds, "min_event_seconds": args.min_event_seconds,
               "threshold": args.threshold}
    rec = Recorder("events", args, {"trials": args.trials, "videos": args.videos, "seed": args.seed,
                                    "tolerance_s": args.tolerance, **options, "reasoner": "embedding"})
    reasoner = get_reasoner("embedding")
    rows, files = [], {}
    for name in args.sets:
        out = run_set(name, Path(args.data_root), reasoner.encoder, trials=args.trials, videos=args.videos,
                      seed=args.seed, tolerance=args.tolerance, options=options)
        rows += out["rows"]
        files[name] = out["files"]
    cols = ["set", "method", "boundary_precision", "boundary_recall", "boundary_f1",
            *(f"event_recall@{t:g}" for t in TIOUS)]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))
    extra: dict[str, Any] = {"caption_files": files}
    if not args.no_demo:
        extra["demo"] = demo(reasoner, args.tolerance)
        for d in extra["demo"]:
            print(f"demo video ({d['settings']}): boundary F1 {d['boundary']['f1']:.2f} at +-{args.tolerance:g} s, "
                  f"event recall@0.5 {d['event_recall@0.5']:.2f}")
    rec.write(rows, **extra)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
