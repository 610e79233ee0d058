"""Run reports for comparing frame-choosing strategies (user task FX-J): an eval's report.md names its search and
skip-unchanged settings, and ``vidground compare`` shows what each run spent (describer calls, frames from the cache,
cost). Each test fails on b828a10."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.report import compare_runs, format_compare, write_report
from pipelines.runs import RunConfig, run_eval

from _helpers_eval import cli, register_fakes, render_toy_videos, write_toy_dataset

register_fakes()


def _run(tmp_path: Path, name: str, **settings) -> Path:
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=1, duration=3.0)
    videos = render_toy_videos(tmp_path / "videos", ["vid0"])
    out = tmp_path / name
    run_eval(RunConfig(dataset="jsonl", dataset_path=str(ds), videos=str(videos), describer="fake",
                       reasoner="fake-reasoner", fps=2.0, cache=str(tmp_path / f"{name}.sqlite"), **settings), out)
    write_report(out, bootstrap=0, plots=False)
    return out


def _configuration(out: Path) -> list[str]:
    text = (out / "report.md").read_text()
    return text.split("## Configuration\n", 1)[1].split("\n## ", 1)[0].strip().splitlines()


def test_report_md_names_the_search_and_skip_unchanged_settings(tmp_path):
    searched = _run(tmp_path, "searched", search={"strategy": "coarse-to-fine", "budget": 4})
    lines = _configuration(searched)
    assert "- search.strategy: `coarse-to-fine`" in lines and "- search.budget: `4`" in lines  # b828a10: absent
    skipping = _run(tmp_path, "skipping", skip_unchanged=3.0)
    assert "- skip_unchanged: `3.0`" in _configuration(skipping)
    plain = _configuration(_run(tmp_path, "plain"))  # a uniform run without them lists none
    assert not [line for line in plain if line.startswith(("- search", "- skip_unchanged", "- motion"))]


def test_compare_shows_each_runs_describer_calls_cache_frames_and_cost(tmp_path, capsys):
    a = _run(tmp_path, "a")
    b = _run(tmp_path, "b", search={"strategy": "coarse-to-fine", "budget": 4})
    ma, mb = (json.loads((run / "metrics.json").read_text()) for run in (a, b))
    c = compare_runs(a, b)
    assert c["spend_a"] == {"describe_calls": ma["describe_calls"], "describe_saved": ma["describe_saved"],
                            "cost": f"${ma['cost_usd']:.4f}"}
    assert c["spend_b"]["describe_calls"] == mb["describe_calls"] and mb["describe_calls"] <= 4 < ma["describe_calls"]
    assert cli("compare", a, b) == 0
    text = capsys.readouterr().out
    rows = {line[:34].strip(): line[34:].split() for line in text.splitlines()
            if line.startswith(("describer calls made", "frames from the cache", "cost "))}
    assert rows["describer calls made"] == [str(ma["describe_calls"]), str(mb["describe_calls"]),
                                            f"{mb['describe_calls'] - ma['describe_calls']:+d}"]
    assert rows["frames from the cache"][:2] == [str(ma["describe_saved"]), str(mb["describe_saved"])]
    assert rows["cost"] == [f"${ma['cost_usd']:.4f}", f"${mb['cost_usd']:.4f}"]


def test_compare_says_unknown_for_a_folder_that_did_not_record_its_spending(tmp_path):
    a, b = _run(tmp_path, "a"), _run(tmp_path, "b")
    old = json.loads((a / "metrics.json").read_text())
    spent = ("describe_calls", "describe_saved", "cost_usd", "requests", "unpriced_requests", "usage")
    for key in spent[:-1]:
        del old[key]  # a folder from before vidground counted them: its records carry no usage either
    (a / "metrics.json").write_text(json.dumps(old))
    for records in ("videos.jsonl", "results.jsonl"):
        rows = [json.loads(line) for line in (a / records).read_text().splitlines() if line.strip()]
        (a / records).write_text("".join(json.dumps({k: v for k, v in r.items() if k not in spent}) + "\n"
                                         for r in rows))
    (b / "metrics.json").write_text("{not json")  # damaged: not needed to compare
    c = compare_runs(a, b)
    assert c["spend_a"] == {"describe_calls": None, "describe_saved": None, "cost": None}
    # b's metrics.json is damaged, but its records say what it spent (RV-G: read from them first)
    assert c["spend_b"]["describe_calls"] > 0 and c["spend_b"]["cost"].startswith("$")
    text = format_compare(c)
    assert "describer calls made" in text
    assert [line.split()[-2] for line in text.splitlines() if line.startswith("cost ")] == ["unknown"]


def test_compare_counts_what_an_interrupted_run_paid_from_its_records(tmp_path):
    """RV-G: an eval a Ctrl-C stopped writes no metrics.json (run_eval raises before the report), so compare showed
    'unknown' or an earlier invocation's totals; the folder's records (run_totals) hold what it paid."""
    a, b = _run(tmp_path, "a"), _run(tmp_path, "b")
    full = json.loads((a / "metrics.json").read_text())
    (a / "metrics.json").unlink()  # as a Ctrl-C leaves it
    (b / "metrics.json").write_text(json.dumps({**json.loads((b / "metrics.json").read_text()),
                                                "describe_calls": 0, "cost_usd": 0.0}))  # stale: an earlier run's
    c = compare_runs(a, b)
    assert c["spend_a"]["describe_calls"] == full["describe_calls"] > 0
    assert c["spend_a"]["cost"] == f"${full['cost_usd']:.4f}"
    assert c["spend_b"]["describe_calls"] == full["describe_calls"]
