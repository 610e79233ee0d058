"""What a query costs once the transcript is known ("describe once, ask many", issue #20).

Two ratios, each measured within one run so that the machine's load cancels out:

* **repeat query in a session**: ``Session.ground`` of a new query on a long transcript the session
  has already read and embedded, against the bare similarity (encoding the query and one matrix
  product with the transcript's cached unit vectors). Rounds interleave the two, each going first in
  every other round; medians.
* **second CLI call**: ``vidground ground --descriptions FILE QUERY`` run twice in fresh processes
  with a fresh embedding cache: the first encodes the transcript, the second finds it on disk.
  Measured for the same query and for a new one (a new query loads the model to encode it).

A new query's encoding takes the numpy forward pass (temporal_reasoner/bert_numpy.py) while torch is
not imported, so neither CLI call after the first loads torch; ``torch_imported`` records whether each
call did.

Run: python benchmarks/repeat_query.py [--hours 2] [--rounds 15] [--json FILE]
(default FILE: benchmarks/results/repeat_query.json; '-': none)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._results import Recorder, add_arguments  # noqa: E402

WORDS = ("person kitchen opens door table cup drinks walks sits chair phone laptop reads book window "
         "light dog runs car street woman man child plays ball garden water cooks food talks").split()


def write_transcript(path: Path, seconds: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w") as f:
        for t in range(seconds):
            words = " ".join(rng.choice(WORDS) for _ in range(8))
            f.write(json.dumps({"t": t, "text": f"a {words}."}) + "\n")


def session_ratio(path: Path, rounds: int) -> dict[str, float]:
    import numpy as np

    from pipelines import Session
    from temporal_reasoner.spans import text_units

    with Session(reasoner="embedding") as s:
        s.ground(descriptions=path, query="warm up: a person opens the door")  # reads, embeds, loads the model
        transcript = s.load(path).transcript()
        encoder = s.reasoner.encoder
        texts = [e.text for e in transcript.entries]
        units, _ = encoder.grouped(texts, text_units)  # the transcript's cached unit vectors

        def bare(query: str) -> None:
            q = encoder.encode([query])[0]
            np.asarray(units @ q)

        def repeat(query: str) -> None:
            s.ground(descriptions=path, query=query)

        bare_s, ground_s = [], []
        for k in range(rounds):  # every query new, so each pays its own encoding; which goes first alternates
            pair = [(bare, f"someone walks the dog in step {k}", bare_s),  # as many words as the other
                    (repeat, f"someone walks the dog in round {k}", ground_s)]
            for call, query, times in (pair if k % 2 == 0 else pair[::-1]):
                t0 = time.perf_counter()
                call(query)
                times.append(time.perf_counter() - t0)
    b, g = statistics.median(bare_s), statistics.median(ground_s)
    return {"entries": len(texts), "bare_ms": round(1000 * b, 1), "repeat_query_ms": round(1000 * g, 1),
            "ratio": round(g / b, 2)}


def cli_ratio(path: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "VIDGROUND_EMBEDDING_CACHE": str(Path(tmp) / "embeddings.sqlite")}

        # the CLI's own entry point, run in a fresh process that then says whether torch got imported
        code = ("import sys; from pipelines.cli import main\ntry:\n    sys.exit(main(sys.argv[1:]))\nfinally:\n"
                "    sys.stderr.write('TORCH=%s' % ('torch' in sys.modules))")

        def run(query: str) -> tuple[float, bool]:
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", code, "ground", "--descriptions", str(path), query],
                                 env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True)
            return time.perf_counter() - t0, "TORCH=True" in out.stderr

        first, first_torch = run("a person opens the door")
        same, same_torch = run("a person opens the door")
        new, new_torch = run("a child plays with a ball")
    return {"first_s": round(first, 2), "second_same_query_s": round(same, 2), "second_new_query_s": round(new, 2),
            "same_ratio": round(same / first, 3), "new_ratio": round(new / first, 3),
            "torch_imported": {"first": first_torch, "second_same_query": same_torch, "second_new_query": new_torch}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=2.0, help="transcript length, one line a second (default 2)")
    ap.add_argument("--rounds", type=int, default=15)
    add_arguments(ap, "repeat_query")
    args = ap.parse_args()
    rec = Recorder("repeat_query", args, {"hours": args.hours, "rounds": args.rounds})
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["VIDGROUND_EMBEDDING_CACHE"] = str(Path(tmp) / "session-embeddings.sqlite")
        path = Path(tmp) / "long.jsonl"
        write_transcript(path, int(args.hours * 3600))
        session = session_ratio(path, args.rounds)
        cli = cli_ratio(path)
    print(f"transcript: {session['entries']} lines ({args.hours:g} h); load average at start {load:.1f}")
    print(f"repeat query in a session: {session['repeat_query_ms']} ms vs bare similarity {session['bare_ms']} ms "
          f"= {session['ratio']}x (target <= 2x)")
    print(f"CLI: first {cli['first_s']} s; second, same query {cli['second_same_query_s']} s = {cli['same_ratio']:.1%}"
          f"; second, new query {cli['second_new_query_s']} s = {cli['new_ratio']:.1%} (target <= 10%); "
          f"torch imported: {cli['torch_imported']}")
    met = {"session_2x": session["ratio"] <= 2.0, "cli_same_10pct": cli["same_ratio"] <= 0.10,
           "cli_new_10pct": cli["new_ratio"] <= 0.10}
    print(f"targets met: {met}")
    rec.write([{"what": "repeat query in a session", "seconds": session["repeat_query_ms"] / 1000,
                "against": "bare similarity", "against_seconds": session["bare_ms"] / 1000, "ratio": session["ratio"]},
               {"what": "second CLI call, same query", "seconds": cli["second_same_query_s"], "against": "first call",
                "against_seconds": cli["first_s"], "ratio": cli["same_ratio"],
                "torch_imported": cli["torch_imported"]["second_same_query"]},
               {"what": "second CLI call, new query", "seconds": cli["second_new_query_s"], "against": "first call",
                "against_seconds": cli["first_s"], "ratio": cli["new_ratio"],
                "torch_imported": cli["torch_imported"]["second_new_query"]}],
              entries=session["entries"], session=session, cli=cli, met=met)
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
