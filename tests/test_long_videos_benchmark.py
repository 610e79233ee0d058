"""benchmarks/long_videos.py --keep: a rerun of some row sets keeps the others from the result JSON, and
says which run measured each."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import long_videos as bench  # noqa: E402


def row(half: str, length: float, strategy: str, r1: float) -> dict:
    return {"half": half, "length_s": length, "strategy": strategy, "R1@0.5": r1}


def test_keep_replaces_the_rows_rerun_and_keeps_the_others_with_their_run(tmp_path):
    out = tmp_path / "long_videos.json"
    old = [row("dev", 3600, "dense 2-s", 30.0), row("dev", 3600, "coarse-to-fine", 29.0),
           row("dev", 3600, "coarse-to-fine, budget 15%", 20.0), row("report", 3600, "dense 2-s", 31.0)]
    out.write_text(json.dumps({"command": "python benchmarks/long_videos.py", "date": "2026-11-30",
                               "load": {"note": "first"}, "rows": old}))
    rec = SimpleNamespace(out=out, command="python benchmarks/long_videos.py --keep", note="second",
                          before=[1.0, 1.0, 1.0])
    new = [row("dev", 3600, "dense 2-s", 30.0), row("dev", 3600, "coarse-to-fine, budget 15%", 27.0),
           row("dev", 1800, "dense 2-s", 40.0)]
    rows, extra = bench._kept(rec, new)
    assert [(r["length_s"], r["strategy"], r["R1@0.5"]) for r in rows] == [
        (3600, "dense 2-s", 30.0), (3600, "coarse-to-fine", 29.0), (3600, "coarse-to-fine, budget 15%", 27.0),
        (3600, "dense 2-s", 31.0), (1800, "dense 2-s", 40.0)]
    runs = extra["runs"]
    assert runs["dev|3600|coarse-to-fine"]["date"] == "2026-11-30"
    assert runs["dev|3600|coarse-to-fine, budget 15%"]["command"].endswith("--keep")
    assert runs["dev|1800|dense 2-s"]["load"]["note"] == "second" and "--keep" in extra["notes"][0]
    # a second --keep run keeps the first run's provenance for the rows it leaves alone
    out.write_text(json.dumps({"rows": rows, "runs": runs, "command": "x", "date": "2026-12-01", "load": {}}))
    _, again = bench._kept(rec, [row("dev", 1800, "dense 2-s", 40.0)])
    assert again["runs"]["dev|3600|coarse-to-fine"]["date"] == "2026-11-30"


def test_misses_tell_a_moment_never_refined_from_one_refined_and_passed_over():
    from pipelines.datasets import Query
    from vidground.types import GroundingResult, Interval

    def q(qid: str, window: tuple[float, float]) -> Query:
        return Query(qid, "long-0", "a dog runs", 600.0, (window,))

    def answer(start: float, end: float) -> GroundingResult:
        return GroundingResult(query="a dog runs", duration=600.0, intervals=[Interval(start=start, end=end)])

    queries = [q("never-refined", (100, 120)), q("refined", (300, 320)), q("gained", (500, 520)), q("both", (10, 20))]
    dense = {"never-refined": answer(100, 120), "refined": answer(300, 320), "gained": answer(0, 5),
             "both": answer(10, 20)}
    found = {"never-refined": answer(400, 420), "refined": answer(200, 220), "gained": answer(500, 520),
             "both": answer(10, 20)}
    frames = {"never-refined": [[108.0, 0, "coarse"], [410.0, 1, "candidate 1"]],  # only the sparse pass saw it
              "refined": [[308.0, 0, "coarse"], [310.0, 2, "candidate 2"]],
              "gained": [[508.0, 0, "coarse"]], "both": [[12.0, 0, "coarse"]]}
    assert bench.misses(queries, dense, found, frames) == {"lost_search": 1, "lost_reasoner": 1, "gained": 1,
                                                           "missed_search": 1, "missed_reasoner": 1}
