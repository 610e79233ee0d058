"""A benchmark run of other settings than the defaults writes NAME.subset.json, not the published result file (U20:
`python benchmarks/events.py --sets nextgqa --no-demo` replaced benchmarks/results/events.json's both sets and demo
with the nextgqa rows; long_videos.py had the same fix, now shared: benchmarks/_results.parse_for_results)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _results  # noqa: E402


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()  # as benchmarks/events.py's
    p.add_argument("--sets", nargs="+", default=["nextgqa", "qvhighlights"])
    p.add_argument("--no-demo", action="store_true")
    _results.add_arguments(p, "events")
    return p


def test_a_subset_run_writes_beside_not_over_the_published_file(capsys):
    published = str(_results.RESULTS / "events.json")
    assert _results.parse_for_results(parser(), [], "events").json_out == published
    assert _results.parse_for_results(parser(), ["--load-note", "busy"], "events").json_out == published
    subset = _results.parse_for_results(parser(), ["--sets", "nextgqa", "--no-demo"], "events")
    assert subset.json_out == "events.subset.json"
    assert "--sets, --no-demo" in capsys.readouterr().err
    assert _results.parse_for_results(parser(), ["--no-demo", "--json", "x.json"], "events").json_out == "x.json"


def test_the_events_benchmark_uses_it():
    source = (Path(_results.__file__).parent / "events.py").read_text()
    assert 'parse_for_results(p, argv, "events")' in source and "p.parse_args(argv)" not in source
