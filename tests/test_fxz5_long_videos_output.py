"""benchmarks/long_videos.py: a subset run (some lengths, videos or halves) leaves the published result JSON alone
unless asked (--keep merges into it, --json names a file); the full run still writes it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _results  # noqa: E402
import long_videos as bench  # noqa: E402

PUBLISHED = [{"half": "report", "length_s": 7200.0, "strategy": "dense 2-s", "R1@0.5": 30.09}]


@pytest.fixture
def bench_run(tmp_path, monkeypatch):
    """main() with the data, the reasoner and the measuring stubbed: each (half, length) gives one row; the published
    file lives in tmp_path/results, the current folder is tmp_path/cwd."""
    results = tmp_path / "results"
    results.mkdir()
    (results / "long_videos.json").write_text(json.dumps({"command": "python benchmarks/long_videos.py",
                                                          "rows": PUBLISHED}))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setattr(_results, "RESULTS", results)
    monkeypatch.setattr(bench, "qvh_captions", lambda: ({}, {}))
    monkeypatch.setattr(bench, "get_reasoner", lambda name: SimpleNamespace(encoder=None))
    monkeypatch.setattr(bench, "assemble", lambda *a, **k: [])
    monkeypatch.setattr(bench, "run_length", lambda args, half, length, *rest: [
        {"half": half, "length_s": length, "strategy": "dense 2-s", "R1@0.5": 1.0}])

    def run(*argv: str) -> dict:
        assert bench.main(list(argv)) == 0
        return json.loads((results / "long_videos.json").read_text())

    return run, results, tmp_path / "cwd"


def test_a_subset_run_leaves_the_published_rows(bench_run):
    run, results, cwd = bench_run
    published = run("--lengths", "1800", "--videos", "2", "--halves", "dev")
    assert published["rows"] == PUBLISHED  # before: the one dev 30-min row replaced every published row
    subset = json.loads((cwd / "long_videos.subset.json").read_text())
    assert [(r["half"], r["length_s"]) for r in subset["rows"]] == [("dev", 1800.0)]


def test_keep_merges_and_json_writes_where_asked(bench_run, tmp_path):
    run, results, cwd = bench_run
    merged = run("--lengths", "1800", "--videos", "2", "--halves", "dev", "--keep")
    assert [(r["half"], r["length_s"]) for r in merged["rows"]] == [("report", 7200.0), ("dev", 1800.0)]
    run("--halves", "dev", "--json", str(tmp_path / "mine.json"))
    assert [r["half"] for r in json.loads((tmp_path / "mine.json").read_text())["rows"]] == ["dev"] * 3
    assert not (cwd / "long_videos.subset.json").exists()


def test_the_full_run_writes_the_published_file(bench_run):
    run, results, cwd = bench_run
    full = run("--jobs", "1")  # how many processes measure it changes no figure
    assert [(r["half"], r["length_s"]) for r in full["rows"]] == [
        (h, n) for h in ("dev", "report") for n in (1800.0, 3600.0, 7200.0)]
    assert not (cwd / "long_videos.subset.json").exists()
