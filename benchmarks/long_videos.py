"""Long videos for a fraction of the describer calls: coarse-to-fine against dense, on real captions.

    python benchmarks/long_videos.py                       # 30-min, 1-h and 2-h sets, both halves
    python benchmarks/long_videos.py --lengths 3600 --videos 4 --latency 1.0 --concurrency 8
    python benchmarks/long_videos.py --halves dev --set regions=8 --set zoom=4   # try settings on dev
    # a run of other settings than the defaults (a subset) writes ./long_videos.subset.json, not the published file
    python benchmarks/long_videos.py --strategies "coarse-to-fine, budget 15%" --keep   # rerun one row set

Long "videos" are assembled from real captions: the MiniGPT-v2 captions of every 2-s clip of
QVHighlights val videos (``qvhighlights/captions-minigptv2-val-dev``, 150 s each) are concatenated, in a
seeded order, into 30-minute (12 clips), 1-hour (24) and 2-hour (48) timelines; no constituent appears
twice in one length's set. The constituent videos are first split, by a seeded hash of their ids (the
split of ``real_captions.py``), into a *dev* half, where the search's settings are chosen (``--set``),
and a *report* half, reported only; each half's timelines are assembled from its own videos. A
QVHighlights query of a constituent keeps its GT windows shifted by that constituent's offset; the
other constituents are distractors. A query is dropped when its text is too close to a query of another
constituent of the same timeline (cosine similarity of their all-MiniLM-L6-v2 embeddings above
``--max-similarity``, 0.8 by default), since the GT would then name one of two moments that match it
equally.

Describing is replayed (the ``replay`` describer answers each requested time with the caption of the
clip holding it), so the call counts are exact and nothing is paid. Rows: dense 2-s sampling (every
caption described), then each strategy, per length: R1@0.3/0.5/0.7, R5@0.5 and mIoU over the kept
queries; describer calls per query (each query searched alone) and per video (every query of a
timeline sharing one description cache, so a later query reuses what earlier ones described); and the
wall time per query with a simulated per-call latency (``--latency`` seconds, ``--concurrency`` calls
in flight: each pass of a search waits for the one before) plus the reasoner's measured time. The dense
rows also give stage 2 alone on the whole transcript (2-h: 3,600 lines of 2-s clips): the reasoner's
seconds per query and the process's peak memory. Each strategy row's ``misses`` says where it loses to
dense sampling (:func:`misses`): a query dense answers (IoU >= 0.5) and the search does not is a *search*
miss when no refinement looked inside its GT window (only the sparse pass saw the moment), a *reasoner*
miss when one did and the reasoner still chose another moment.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _results import Recorder, add_arguments, parse_for_results  # noqa: E402
from real_captions import HALVES, half_of  # noqa: E402
from frame_describer import read_descriptions  # noqa: E402
from frame_describer.replay import ReplayDescriber, timeline_frames  # noqa: E402
from pipelines.datasets import Query, data_root, load_dataset  # noqa: E402
from pipelines.metrics import compute_metrics, score_query  # noqa: E402
from pipelines.runs import find_descriptions  # noqa: E402
from pipelines.search import Search, coarse_to_fine, request  # noqa: E402
from temporal_reasoner import Transcript, get_reasoner  # noqa: E402
from vidground.types import FrameDescription  # noqa: E402

CLIP_SECONDS = 150.0
LENGTHS = (1800, 3600, 7200)
#: the strategies compared with dense sampling: a name and the search settings (a budget given as a
#: fraction of the dense calls is resolved per length)
STRATEGIES: dict[str, dict[str, Any]] = {
    "coarse-to-fine": {},
    "coarse-to-fine, budget 25%": {"budget_fraction": 0.25},
    "coarse-to-fine, budget 15%": {"budget_fraction": 0.15},
}


@dataclass
class Timeline:
    """One assembled long video: its captions (times shifted) and its kept queries (GT shifted)."""

    name: str
    duration: float
    descriptions: list[FrameDescription]
    queries: list[Query]
    constituents: list[str] = field(default_factory=list)
    dropped: int = 0


def qvh_captions() -> tuple[dict[str, list[Query]], dict[str, Path]]:
    """QVHighlights val queries by video, and the caption file of each video that has one."""
    root = data_root()
    by_video: dict[str, list[Query]] = {}
    for q in load_dataset("qvhighlights", root=root).queries:
        by_video.setdefault(q.video, []).append(q)
    files, _ = find_descriptions(by_video, root / "qvhighlights" / "captions-minigptv2-val-dev")
    return by_video, files


def assemble(length: float, count: int, pool: list[str], files: dict[str, Path], by_video: dict[str, list[Query]],
             rng: random.Random, encoder: Any, max_similarity: float) -> list[Timeline]:
    """``count`` timelines of ``length`` seconds from distinct constituents drawn from ``pool``."""
    per = int(length // CLIP_SECONDS)
    if count * per > len(pool):
        raise SystemExit(f"{count} timelines of {per} clips need {count * per} distinct videos; the pool has {len(pool)}")
    order = rng.sample(pool, count * per)  # every constituent of a length's set is a different video
    out = []
    for k in range(count):
        chosen = order[k * per:(k + 1) * per]
        descs: list[FrameDescription] = []
        queries: list[Query] = []
        for j, vid in enumerate(chosen):
            offset = j * CLIP_SECONDS
            for d in read_descriptions(files[vid]):
                descs.append(FrameDescription(t=round(d.t + offset, 3), text=d.text))
            for q in by_video[vid]:
                queries.append(Query(f"{q.qid}@{k}", f"long{int(length)}-{k}", q.query, per * CLIP_SECONDS,
                                     [(s + offset, e + offset) for s, e in q.windows], extra={"constituent": j}))
        kept, dropped = _distinct(queries, encoder, max_similarity)
        out.append(Timeline(f"long{int(length)}-{k}", per * CLIP_SECONDS, descs, kept, chosen, dropped))
    return out


def _distinct(queries: list[Query], encoder: Any, max_similarity: float) -> tuple[list[Query], int]:
    """The queries whose text is not closer than ``max_similarity`` (cosine) to another constituent's query."""
    vecs = encoder.encode([q.query for q in queries])
    sims = vecs @ vecs.T
    owner = np.array([q.extra["constituent"] for q in queries])
    sims[owner[:, None] == owner[None, :]] = -1.0  # a constituent's own queries are not distractors
    keep = sims.max(axis=1) <= max_similarity
    return [q for q, k in zip(queries, keep) if k], int((~keep).sum())


def simulated_seconds(pass_calls: list[int], latency: float, concurrency: int) -> float:
    """Describing time with ``latency`` s per call and ``concurrency`` calls in flight, pass after pass."""
    return sum(math.ceil(n / concurrency) * latency for n in pass_calls if n)


def run_dense(tl: Timeline, reasoner: Any) -> tuple[dict[str, Any], float]:
    transcript = Transcript.from_descriptions(tl.descriptions, duration=tl.duration)
    preds = {}
    started = time.perf_counter()
    for q in tl.queries:
        preds[q.qid] = reasoner.ground(q.query, transcript)
    return preds, time.perf_counter() - started


def run_search(tl: Timeline, reasoner: Any, search: Search, shared: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every query of ``tl`` searched with ``search``; ``shared``: frames described for earlier queries are
    known to later ones (one cache per video)."""
    replay = ReplayDescriber(tl.descriptions, duration=tl.duration)
    grid = replay.times
    known: dict[tuple[float, float], FrameDescription] = {}  # each request answered so far: its description
    preds, calls, passes, reason_s, stops, frames = {}, [], [], 0.0, {}, {}

    for q in tl.queries:
        per_pass: dict[int, int] = {}

        def describe(times: list[float]) -> Any:
            return replay.describe(timeline_frames(times))

        before = set(known)
        started = time.perf_counter()
        outcome, _ = coarse_to_fine(q.query, reasoner, describe, grid, tl.duration, search,
                                    known=known if shared else None)
        reason_s += time.perf_counter() - started
        preds[q.qid] = outcome.result
        frames[q.qid] = outcome.frames
        calls.append(outcome.calls)
        for t, p, why in outcome.frames:
            if request(t) not in before:
                per_pass[p] = per_pass.get(p, 0) + 1
        passes.append([per_pass.get(p, 0) for p in range(max(per_pass, default=-1) + 1)])
        stops[outcome.stop] = stops.get(outcome.stop, 0) + 1
        if shared:
            known.update(outcome.answers)
    return preds, {"calls": calls, "passes": passes, "reason_seconds": reason_s, "stops": stops,
                   "described": replay.calls, "frames": frames}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lengths", type=float, nargs="+", default=list(LENGTHS), metavar="SECONDS")
    ap.add_argument("--videos", type=int, nargs="+", default=[0], metavar="N",
                    help="timelines per length and half, one number for all or one per length (default 0: as many as "
                         "the half's distinct 150-s videos fill, so every length draws on the whole half: 8 2-h, 16 1-h "
                         "and 32 30-min timelines on dev; 12 6 3 was the default before 2026-12-01, 144 constituents "
                         "per length and half)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the dev/report split and of the assembly")
    ap.add_argument("--max-similarity", type=float, default=0.8)
    ap.add_argument("--latency", type=float, default=1.0, help="simulated seconds per describer call")
    ap.add_argument("--concurrency", type=int, default=8, help="simulated describer calls in flight")
    ap.add_argument("--reasoner", default="embedding")
    ap.add_argument("--per-video", action=argparse.BooleanOptionalAction, default=True,
                    help="also search every timeline with its queries sharing what earlier ones described (default on)")
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES))
    ap.add_argument("--halves", nargs="+", default=list(HALVES), choices=HALVES,
                    help="the seeded halves of the constituent videos to run: choose settings on dev, report on "
                         "report (default both)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a search setting for every strategy (coarse, regions, explore, margin, rounds, zoom), e.g. --set regions=5")
    ap.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="run the (half, length) row sets in N processes (default 1); the figures are the same, the "
                         "reasoner's timings are measured beside one another")
    ap.add_argument("--keep", action="store_true",
                    help="keep the rows of the result JSON that this run does not produce (other strategies, halves or "
                         "lengths), each set with the command, date and load of the run that measured it")
    add_arguments(ap, "long_videos")
    args = parse_for_results(ap, argv, "long_videos")
    rec = Recorder("long_videos", args, {k: v for k, v in vars(args).items() if k not in ("json_out", "load_note")})

    by_video, files = qvh_captions()
    # constituents: 150-s videos with a full set of 75 clip captions
    pool = sorted(v for v, p in files.items() if abs((by_video[v][0].duration or 0) - CLIP_SECONDS) < 1e-6)
    reasoner = get_reasoner(args.reasoner)
    encoder = reasoner.encoder
    overrides = _overrides(ap, args.overrides)
    rows = []
    if len(args.videos) not in (1, len(args.lengths)):
        ap.error("--videos takes one number or one per length")
    counts = args.videos * len(args.lengths) if len(args.videos) == 1 else args.videos
    pools = {h: [v for v in pool if half_of(v, args.seed) == h] for h in HALVES}
    work = []
    for half in args.halves:
        rng = random.Random(f"{args.seed}:{half}")  # each half assembled on its own: no video in both
        for length, videos in zip(args.lengths, counts):
            count = videos or len(pools[half]) // int(length // CLIP_SECONDS)
            work.append((half, length, assemble(length, count, pools[half], files, by_video, rng, encoder,
                                                args.max_similarity)))
    if args.jobs > 1:  # one (half, length) row set per process, each with its own reasoner; rows in the usual order
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.jobs) as executor:
            for part in list(executor.map(_run_part, [(args, h, n, tls, overrides) for h, n, tls in work])):
                rows += part
    else:
        for half, length, timelines in work:
            rows += run_length(args, half, length, timelines, reasoner, overrides)
    extra: dict[str, Any] = {}
    if args.keep:
        rows, extra = _kept(rec, rows)
    rec.write(rows, max_similarity=args.max_similarity, pool=len(pool),
              pool_by_half={h: len(pools[h]) for h in HALVES}, overrides=overrides, **extra)
    return 0


def _kept(rec: Recorder, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``rows`` with the earlier JSON's rows this run did not produce, in the earlier order, and ``runs``: which
    run (command, date, load) measured each (half, length, strategy). The dense rows' accuracy is deterministic, so
    a kept row's share of dense holds against the new dense row."""
    import datetime
    import json

    from _results import loadavg

    key = lambda r: (r["half"], r["length_s"], r["strategy"])  # noqa: E731
    this = {"command": rec.command, "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
            "load": {"note": rec.note, "loadavg_1_5_15_before": rec.before, "loadavg_1_5_15_after": loadavg()}}
    old = json.loads(rec.out.read_text()) if rec.out is not None and rec.out.exists() else {"rows": []}
    earlier = dict(old.get("runs") or {})
    default_run = {k: old.get(k) for k in ("command", "date", "load")}
    new = {key(r): r for r in rows}
    merged, runs = [], {}
    for r in old["rows"]:
        k = key(r)
        name = "|".join(str(x) for x in k)
        if k in new:
            merged.append(new.pop(k))
            runs[name] = this
        else:
            merged.append(r)
            runs[name] = earlier.get(name, default_run)
    for k, r in new.items():
        merged.append(r)
        runs["|".join(str(x) for x in k)] = this
    return merged, {"runs": runs, "notes": ["--keep: rows this run did not produce are kept from earlier runs "
                                            "(runs: each row's command, date and load)"]}



def _run_part(job: tuple[argparse.Namespace, str, float, list[Timeline], dict[str, Any]]) -> list[dict[str, Any]]:
    args, half, length, timelines, overrides = job
    return run_length(args, half, length, timelines, get_reasoner(args.reasoner), overrides)


def run_length(args: argparse.Namespace, half: str, length: float, timelines: list[Timeline], reasoner: Any,
               overrides: dict[str, Any]) -> list[dict[str, Any]]:
    """The dense row and one row per strategy for one half's timelines of one length."""
    queries = [q for tl in timelines for q in tl.queries]
    dropped = sum(tl.dropped for tl in timelines)
    n_dense = sum(len(tl.descriptions) for tl in timelines) / len(timelines)
    print(f"\n{half}, {length / 60:.0f} min: {len(timelines)} timelines, {len(queries)} queries kept, {dropped} "
          f"dropped as too similar to another constituent's", flush=True)
    dense_preds, reason_s = {}, 0.0
    for tl in timelines:
        p, s = run_dense(tl, reasoner)
        dense_preds.update(p)
        reason_s += s
    base = _row(half, length, "dense 2-s", dense_preds, queries, calls_q=n_dense, calls_v=n_dense,
                wall=simulated_seconds([int(n_dense)], args.latency, args.concurrency) + reason_s / len(queries),
                dropped=dropped, dense=n_dense, reason_s_per_query=round(reason_s / len(queries), 4),
                transcript_lines=int(n_dense), peak_rss_mb=_peak_rss_mb())
    rows = [base]
    for name in args.strategies:
        opts = dict(STRATEGIES[name])
        fraction = opts.pop("budget_fraction", None)
        settings = {"strategy": "coarse-to-fine", **opts, **overrides}
        if fraction is not None:
            settings["budget"] = max(1, int(fraction * n_dense))
        search = Search.of(settings)
        preds, calls, walls, shared_calls, stops, frames = {}, [], [], [], {}, {}
        for tl in timelines:
            p, info = run_search(tl, reasoner, search, shared=False)
            preds.update(p)
            frames.update(info["frames"])
            calls += info["calls"]
            share = info["reason_seconds"] / max(1, len(info["passes"]))
            walls += [simulated_seconds(ps, args.latency, args.concurrency) + share for ps in info["passes"]]
            for k, v in info["stops"].items():
                stops[k] = stops.get(k, 0) + v
            if args.per_video and name == args.strategies[0]:  # one row is enough to show the sharing
                _, shared_info = run_search(tl, reasoner, search, shared=True)
                shared_calls.append(shared_info["described"])
        rows.append(_row(half, length, name, preds, queries, calls_q=float(np.mean(calls)),
                         calls_v=float(np.mean(shared_calls)) if shared_calls else None, wall=float(np.mean(walls)),
                         dropped=dropped, dense=n_dense, base=base, search=search.model_dump(exclude_defaults=True),
                         stops=stops, misses=misses(queries, dense_preds, preds, frames)))
    return rows


def misses(queries: list[Query], dense: dict[str, Any], found: dict[str, Any], frames: dict[str, list[list[Any]]],
           threshold: float = 0.5) -> dict[str, int]:
    """Where a strategy's top-1 answers differ from dense sampling's at IoU ``threshold``: ``lost_search``, the
    queries dense answers and the search does not, whose GT moment the search never refined (no frame a refinement
    asked for lies in a GT window: only the sparse pass saw it); ``lost_reasoner``, the same but refined (the
    reasoner, shown the moment's frames, chose another); ``gained``, answered by the search and not by dense;
    ``missed_search``/``missed_reasoner``: every query the search misses, split the same way."""
    out = dict.fromkeys(("lost_search", "lost_reasoner", "gained", "missed_search", "missed_reasoner"), 0)
    for q in queries:
        hit_dense = score_query(q, dense[q.qid]).iou >= threshold
        hit = score_query(q, found[q.qid]).iou >= threshold
        if hit:
            out["gained"] += not hit_dense
            continue
        refined = any(p > 0 and any(s <= t <= e for s, e in q.windows) for t, p, _ in frames[q.qid])
        kind = "reasoner" if refined else "search"
        out[f"missed_{kind}"] += 1
        if hit_dense:
            out[f"lost_{kind}"] += 1
    return out


def _overrides(ap: argparse.ArgumentParser, items: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as checked search settings (numbers parsed; ``none`` for adaptive)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in ("coarse", "regions", "explore", "margin", "rounds", "zoom"):
            ap.error(f"--set takes coarse=, regions=, explore=, margin=, rounds= or zoom=, got {item!r}")
        try:
            out[key] = None if value.lower() == "none" else float(value) if key == "margin" else int(value)
        except ValueError:
            ap.error(f"--set {key} takes a number, got {value!r}")
    Search.of({"strategy": "coarse-to-fine", **out})  # a bad value is named before any work
    return out


def _peak_rss_mb() -> float:
    """This process's peak resident memory so far (MB): the model, the captions and every transcript."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _row(half: str, length: float, name: str, preds: dict[str, Any], queries: list[Query], *, calls_q: float, calls_v: float | None,
         wall: float, dropped: int, dense: float, base: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    m = compute_metrics(preds, queries, bootstrap=0, baselines=False).values
    row = {"half": half, "length_s": length, "strategy": name, "queries": len(queries), "dropped": dropped,
           **{k: round(float(m[k]), 2) for k in ("R1@0.3", "R1@0.5", "R1@0.7", "R5@0.5", "mIoU") if k in m},
           "calls_per_query": round(calls_q, 1), "calls_fraction": round(calls_q / dense, 4),
           **({} if calls_v is None else {"calls_per_video": round(calls_v, 1),
                                          "calls_fraction_video": round(calls_v / dense, 4)}),
           "wall_s_per_query": round(wall, 2), **extra}
    if base is not None and base.get("R1@0.5"):
        row["R1@0.5_of_dense"] = round(row.get("R1@0.5", 0.0) / base["R1@0.5"], 4)
    line = "  ".join(f"{k} {row[k]}" for k in ("half", "strategy", "R1@0.3", "R1@0.5", "R1@0.7", "R5@0.5", "mIoU",
                                                  "calls_per_query", "calls_fraction", "calls_per_video",
                                                  "wall_s_per_query", "R1@0.5_of_dense", "misses") if k in row)
    print("  " + line, flush=True)
    return row


if __name__ == "__main__":
    raise SystemExit(main())
