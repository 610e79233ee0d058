"""Stage 2 on a 2-hour, 7,200-line transcript: seconds per query and peak memory of the embedding reasoner.

    python benchmarks/long_transcripts.py                  # 7,200 lines, 50 queries
    python benchmarks/long_transcripts.py --lines 7200 --queries 50 --reasoner embedding

The transcript is made of real captions: the MiniGPT-v2 captions of 96 QVHighlights val videos (75 clip
captions each, ``qvhighlights/captions-minigptv2-val-dev``), chosen with a fixed seed and laid one per
second (a 2-hour video described at 1 fps). The queries are QVHighlights queries of those videos. This
measures speed and memory only (the captions are re-timed, so no accuracy is scored; see
``long_videos.py`` for that). The reasoner is built and one query answered first (loading the model and
encoding the captions, or reading them from the on-disk embedding cache); then every query is timed.
Peak memory is the process's peak resident set (``ru_maxrss``), model included when it was loaded: with a
warm on-disk embedding cache (QVHighlights captions and queries) the model is not needed at all, and
a second row loads it anyway, as a query never seen before would, and times the queries again.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _results import Recorder, add_arguments  # noqa: E402
from frame_describer import read_descriptions  # noqa: E402
from long_videos import qvh_captions  # noqa: E402
from temporal_reasoner import Transcript, get_reasoner  # noqa: E402
from vidground.types import FrameDescription  # noqa: E402


def peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=7200)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reasoner", default="embedding")
    ap.add_argument("--load-model", action=argparse.BooleanOptionalAction, default=True,
                    help="then load the embedding model and time again, as for queries never seen before (default on)")
    add_arguments(ap, "long_transcripts")
    args = ap.parse_args(argv)
    rec = Recorder("long_transcripts", args, {k: v for k, v in vars(args).items() if k not in ("json_out", "load_note")})
    by_video, files = qvh_captions()
    rng = random.Random(args.seed)
    pool = sorted(files)
    rng.shuffle(pool)
    texts: list[str] = []
    queries: list[str] = []
    for vid in pool:
        if len(texts) >= args.lines:
            break
        texts += [d.text for d in read_descriptions(files[vid])]
        queries += [q.query for q in by_video[vid]]
    texts = texts[:args.lines]
    descs = [FrameDescription(t=k + 0.5, text=t) for k, t in enumerate(texts)]
    queries = rng.sample(queries, min(args.queries, len(queries)))
    transcript = Transcript.from_descriptions(descs, duration=float(len(descs)))
    reasoner = get_reasoner(args.reasoner)
    rows = []
    for phase in ("as needed", "loaded"):
        if phase == "loaded":  # a query never seen before needs the model: count its memory and its speed
            if not args.load_model:
                break
            reasoner.encoder.model  # noqa: B018
        started = time.perf_counter()
        reasoner.ground(queries[0], transcript)  # the captions encoded or read from the cache
        first = time.perf_counter() - started
        times = []
        for q in queries:
            t0 = time.perf_counter()
            reasoner.ground(q, transcript)
            times.append(time.perf_counter() - t0)
        row = {"reasoner": args.reasoner, "model": phase, "lines": len(descs), "entries": len(transcript.entries),
               "queries": len(queries), "model_loaded": bool(getattr(getattr(reasoner, "encoder", None), "loaded", False)),
               "first_query_s": round(first, 3), "median_s_per_query": round(statistics.median(times), 4),
               "max_s_per_query": round(max(times), 4), "mean_s_per_query": round(statistics.fmean(times), 4),
               "peak_rss_mb": peak_mb()}
        print("  ".join(f"{k} {v}" for k, v in row.items()), flush=True)
        rows.append(row)
    rec.write(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
