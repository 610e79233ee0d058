"""docs/benchmarks.md is generated from benchmarks/results/*.json, so the page cannot drift from the data."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _make_page():
    spec = importlib.util.spec_from_file_location("make_page", ROOT / "benchmarks" / "make_page.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_page_is_what_make_page_renders_from_the_committed_json():
    rendered = _make_page().render(RESULTS)
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    assert page == rendered, "docs/benchmarks.md is out of date: run python benchmarks/make_page.py"


def test_every_result_says_how_it_was_made():
    files = sorted(RESULTS.glob("*.json"))
    assert {p.stem for p in files} >= {"pipeline_offline", "decode", "stage1_throughput", "local_models"}
    for path in files:
        data = json.loads(path.read_text())
        assert data["benchmark"] == path.stem and data["command"].startswith("python benchmarks/"), path
        assert data["rows"] and "settings" in data, path
        # measured here (machine, load, date) or transcribed from an earlier run, saying so
        assert data.get("source") or (data["machine"] and data["load"] and data["date"]), path


def test_an_unknown_result_gets_a_plain_table(tmp_path):
    (tmp_path / "other.json").write_text(json.dumps({"benchmark": "other", "command": "python benchmarks/other.py",
                                                     "rows": [{"a": 1, "b": "x|y"}]}))
    page = _make_page().render(tmp_path)
    assert "## other" in page and "| a | b |" in page and "| 1 | x\\|y |" in page
