"""`vidground report` and `vidground compare` on `eval activitynet-events` run folders: they said "not a run folder
(no config.json / queries.jsonl)" though config.json was there. report prints the run's recorded scores (an events
run has no pages), compare compares two events runs' scores and says when they are over other videos or references,
and an events run beside a grounding run is refused, saying why."""

from __future__ import annotations

import json
import shutil

import pytest

from test_events import _anet_args, _anet_fixture, no_caption_scorers  # noqa: F401
from vidground.errors import InputError


def _events_run(tmp_path):
    from pipelines.cli import main

    root = _anet_fixture(tmp_path)  # descriptions for v_a and v_b; v_c has none
    assert main(_anet_args(root)) == 0
    return root / "run"


def test_report_on_an_events_run_prints_its_scores_and_writes_no_pages(tmp_path, capsys, no_caption_scorers):  # noqa: F811
    from pipelines.cli import main
    from pipelines.report import write_report

    run = _events_run(tmp_path)
    capsys.readouterr()
    metrics = json.loads((run / "metrics.json").read_text())
    assert main(["report", str(run)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "is an `eval activitynet-events` run: it has no report pages" in out and "not a run folder" not in out
    f1 = metrics["localisation"]["f1@0.5"]
    assert f"{f1:.2f}" in out and "activitynet-events: 2 videos (1 without input, 0 failed)" in out
    assert sorted(p.name for p in run.iterdir()) == [".vidground.lock", "config.json", "events.jsonl",
                                                     "metrics.json"]  # nothing written (the lock is the eval's)
    with pytest.raises(InputError, match="an `eval activitynet-events` run has no report pages"):
        write_report(run)
    (run / "metrics.json").unlink()  # killed before it was scored
    assert main(["report", str(run)]) == 1
    assert "no scores yet (no metrics.json): run the same eval command again" in capsys.readouterr().err


def test_compare_two_events_runs_and_refuse_an_events_run_beside_a_grounding_run(tmp_path, capsys,
                                                                                 no_caption_scorers):  # noqa: F811
    from pipelines.cli import main
    from pipelines.report import compare_runs

    run = _events_run(tmp_path)
    other = tmp_path / "other"
    shutil.copytree(run, other)
    rows = (other / "events.jsonl").read_text().splitlines()
    (other / "events.jsonl").write_text(rows[0] + "\n")  # one video fewer
    metrics = json.loads((other / "metrics.json").read_text())
    metrics["localisation"]["f1@0.5"] -= 10.0
    (other / "metrics.json").write_text(json.dumps(metrics))
    capsys.readouterr()
    assert main(["compare", str(run), str(other)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "(eval activitynet-events, 2 videos)" in out and "(eval activitynet-events, 1 video)" in out
    assert "settings: the same" in out
    assert "warning: the runs scored other videos (1 in both, 1 only in A, 0 only in B)" in out
    assert "f1@0.5" in out and "-10.00" in out
    c = compare_runs(run, other)
    assert c["kind"] == "events" and c["metrics_b"]["f1@0.5"] == pytest.approx(c["metrics_a"]["f1@0.5"] - 10.0)

    grounding = tmp_path / "grounding"
    grounding.mkdir()
    (grounding / "config.json").write_text("{}")
    (grounding / "queries.jsonl").write_text("")
    assert main(["compare", str(run), str(grounding)]) == 1
    assert "is an `eval activitynet-events` run and run B" in capsys.readouterr().err
