"""How many torch threads the embedding model should use (issue #20: "with torch's default threads
beside other work a single query's encode took 14x longer than with one thread").

Encodes one query (the model's own forward, no cache) and a batch of 256 captions with torch's
intra-op threads set to each candidate (1, 2, 4 and torch's own default), rounds interleaving the
settings, in two conditions: as the machine is, and with ``--busy N`` processes spinning
(``python -c "while 1: pass"``) started by this script beside it, as an eval's other work or another
job would. Medians per setting, in wall time and, for one query, in this process's CPU time (threads
that spin waiting for each other burn it; threads that get a larger share of a loaded machine show
less wall time for the same CPU). The ratios to one thread are what the default in
:func:`vidground.models.torch_threads` is chosen from.

Run: python benchmarks/embedding_threads.py [--rounds 5] [--busy 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import Recorder, add_arguments, loadavg  # noqa: E402

CAPTIONS = ROOT.parent / "shared" / "data" / "qvhighlights" / "captions-minigptv2-val-dev"


def captions(n: int) -> list[str]:
    """``n`` distinct real captions (QVHighlights' shared MiniGPT-v2 captions), or made-up lines without them."""
    texts: dict[str, None] = {}
    for path in sorted(CAPTIONS.glob("*.jsonl")) if CAPTIONS.is_dir() else []:
        for line in path.read_text().splitlines():
            texts[json.loads(line)["description"]] = None
            if len(texts) >= n:
                return list(texts)
    return list(texts) + [f"a person walks across room number {i} and opens the door" for i in range(n - len(texts))]


def measure(model, settings: list[int], rounds: int, queries: int, batch: list[str]) -> dict[int, dict[str, float]]:
    import torch

    single: dict[int, list[float]] = {n: [] for n in settings}
    single_cpu: dict[int, list[float]] = {n: [] for n in settings}
    batched: dict[int, list[float]] = {n: [] for n in settings}
    for r in range(rounds):
        for n in settings[r % len(settings):] + settings[:r % len(settings)]:  # a different first setting each round
            torch.set_num_threads(n)
            times, cpu = [], []
            for k in range(queries):
                t0, c0 = time.perf_counter(), time.process_time()
                model.encode([f"someone opens the door in round {r} query {k}"], convert_to_numpy=True,
                             normalize_embeddings=True, show_progress_bar=False)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            single[n].append(statistics.median(times))
            single_cpu[n].append(statistics.median(cpu))
            t0 = time.perf_counter()
            model.encode(batch, batch_size=128, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
            batched[n].append(time.perf_counter() - t0)
    return {n: {"query_ms": round(1000 * statistics.median(single[n]), 2),
                "query_cpu_ms": round(1000 * statistics.median(single_cpu[n]), 2),
                "batch256_ms": round(1000 * statistics.median(batched[n]), 1)} for n in settings}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--queries", type=int, default=10, help="single-query encodes per setting and round (median)")
    p.add_argument("--busy", type=int, default=2, help="spinning processes in the busy condition")
    add_arguments(p, "embedding_threads")
    args = p.parse_args()
    import torch

    from temporal_reasoner.embedding import _default_model_path, _load_model

    default = torch.get_num_threads()
    settings = sorted({1, 2, 4, default})
    rec = Recorder("embedding_threads", args, {"rounds": args.rounds, "queries": args.queries, "busy": args.busy,
                                               "settings": settings, "torch_default_threads": default,
                                               "cpus_available": len(os.sched_getaffinity(0)),
                                               "torch": torch.__version__, "model": "all-MiniLM-L6-v2"})
    model = _load_model(_default_model_path(), "cpu")
    batch = captions(256)
    model.encode(batch[:8], show_progress_bar=False)  # warm up
    rows = []
    for condition in ("as is", "busy"):
        spinners = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(args.busy)] \
            if condition == "busy" else []
        try:
            before = loadavg()
            result = measure(model, settings, args.rounds, args.queries, batch)
        finally:
            for proc in spinners:
                proc.kill()
                proc.wait()
        one = result[1]
        for n, r in result.items():
            row = {"condition": condition + (f" ({args.busy} spinning processes)" if spinners else ""), "threads": n,
                   "default": n == default, **r, "query_vs_1_thread": round(r["query_ms"] / one["query_ms"], 2),
                   "batch_vs_1_thread": round(r["batch256_ms"] / one["batch256_ms"], 2), "loadavg_before": before}
            rows.append(row)
            print(json.dumps(row))
    rec.write(rows)


if __name__ == "__main__":
    main()
