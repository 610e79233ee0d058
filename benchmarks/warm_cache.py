"""A warm description cache against a descriptions file (issue #20: "warm-cache `ground VIDEO` on a
30-minute video: <= 1.2x `ground --descriptions FILE`").

The rendered 30-minute 640x360 video of benchmarks/sampling.py is described once at 1 fps into a
fresh description cache (``--describer replay:CAPTIONS``: made-up captions answered by time, so the
cold run costs the decoding, not a model), and the same descriptions are written to a file. Then
rounds interleave, as fresh processes, ``vidground ground VIDEO QUERY --cache C`` with the same
describer (every frame in the cache: nothing decoded) and ``vidground ground --descriptions FILE
QUERY``, with the query of the cold run (its vector cached: no model loads) and with a new query
for each (the model loads to encode it, in both), the embedding cache warm for the captions; which
runs first alternates by round. Medians of each round's ratio, in wall time and in CPU time (the
child processes' user + system). The two answers to the same query are checked to be the same
intervals, and the script exits 1 when they differ.

Run: python benchmarks/warm_cache.py [--rounds 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import Recorder, add_arguments, run_timed  # noqa: E402
from benchmarks.repeat_query import WORDS  # noqa: E402
from benchmarks.sampling import VIDEOS, render  # noqa: E402

TARGET = 1.2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--videos", default="/tmp/vidground-sampling-bench", help="where the rendered videos are cached")
    add_arguments(p, "warm_cache")
    args = p.parse_args()
    name = "30min_360p"
    w, h, fps, seconds, gop = VIDEOS[name]
    video = render(Path(args.videos) / f"{name}_g{gop}.mp4", w, h, fps, seconds, gop)
    rec = Recorder("warm_cache", args, {"video": name, "seconds": seconds, "sampling_fps": 1, "rounds": args.rounds,
                                        "describer": "replay (captions by time)", "reasoner": "embedding"})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rng = random.Random(0)
        captions = tmp / "captions.jsonl"
        captions.write_text("".join(json.dumps({"t": t, "text": "a " + " ".join(rng.choice(WORDS) for _ in range(8))})
                                    + "\n" for t in range(seconds)))
        cache, described = tmp / "cache.sqlite", tmp / "described.jsonl"
        stage1 = ["--describer", f"replay:{captions}", "--cache", str(cache)]
        cold = run_timed(["ground", str(video), "a person opens the door", *stage1], ROOT)
        run_timed(["describe", str(video), *stage1, "-o", str(described)], ROOT)
        print(f"cold (decodes the video): {cold[0]:.1f} s wall, {cold[1]:.1f} s CPU")
        for k in range(args.rounds):
            for kind in ("same query", "new query"):
                queries = {which: "a person opens the door" if kind == "same query" else f"someone walks dog {k} ({which})"
                           for which in ("cache", "file")}  # a new query for each: each loads the model
                args = {"cache": ["ground", str(video), queries["cache"], *stage1, "--json"],
                        "file": ["ground", "--descriptions", str(described), queries["file"], "--json"]}
                order = ("cache", "file") if k % 2 == 0 else ("file", "cache")  # neither always runs first
                pair = {which: run_timed(args[which], ROOT) for which in order}
                answers = {which: json.loads(out)["intervals"] for which, (_, _, out) in pair.items()}
                if kind == "same query" and answers["cache"] != answers["file"]:
                    sys.exit(f"round {k}: the warm cache and the file gave different intervals: {answers}")
                row = {"round": k, "query": kind,
                       "cache_wall_s": round(pair["cache"][0], 3), "cache_cpu_s": round(pair["cache"][1], 3),
                       "file_wall_s": round(pair["file"][0], 3), "file_cpu_s": round(pair["file"][1], 3),
                       "ratio_wall": round(pair["cache"][0] / pair["file"][0], 3),
                       "ratio_cpu": round(pair["cache"][1] / pair["file"][1], 3)}
                print(json.dumps(row))
                rows.append(row)
    medians = []
    for kind in ("same query", "new query"):
        mine = [r for r in rows if r["query"] == kind]
        med = {"what": "median", "query": kind,
               **{k: round(statistics.median(r[k] for r in mine), 3) for k in mine[0] if k not in ("round", "query")}}
        medians.append(med)
        print(f"{kind}: warm --cache {med['cache_wall_s']} s wall / {med['cache_cpu_s']} s CPU, --descriptions "
              f"{med['file_wall_s']} s / {med['file_cpu_s']} s: {med['ratio_wall']}x wall, {med['ratio_cpu']}x CPU "
              f"(target <= {TARGET})")
    rec.write(medians + rows, cold_wall_s=round(cold[0], 1), cold_cpu_s=round(cold[1], 1), target=TARGET,
              met=all(max(m["ratio_wall"], m["ratio_cpu"]) <= TARGET for m in medians))


if __name__ == "__main__":
    main()
