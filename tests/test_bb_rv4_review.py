"""Reviewer RV4's findings on 360f8ae (the up-front backend check, the exit-1 rule) and 02704db
(run_in_transaction), each pinned by a test that fails on the code before the fix."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipelines.cli import main
from pipelines.runs import RunConfig, is_run_wide, run_eval
from temporal_reasoner import reasoners
from temporal_reasoner.base import BaseReasoner
from vidground.errors import ConfigurationError, ProviderError
from vidground.types import GroundingResult, Interval

from _helpers_eval import write_toy_dataset

# --------------------------------------------------------------------------- 1. the exit-1 rule


class _Picky(BaseReasoner):
    """Grounds every query but the coffee one, whose reply never parses (a hard query); ``bb-picky:down`` fails
    every query as a server that cannot be reached does, ``bb-picky:hard`` every query for a query's own reason."""

    name = "bb-picky"

    def __init__(self, arg: str | None = None, **_: Any):
        self.arg = arg

    def settings(self) -> dict[str, Any]:
        return {"name": self.name}

    def ground(self, query: str, transcript: Any) -> Any:
        if self.arg == "down":
            raise ProviderError("openai:m: connection failed (ConnectError)", retryable=True)
        if self.arg == "unauthorized":
            raise ProviderError("openai:m: HTTP 401: Incorrect API key provided")
        if self.arg == "hard" or "coffee" in query:
            raise ProviderError("no interval in the model's reply after 3 attempts")
        return GroundingResult(query=query, duration=transcript.duration,
                               intervals=[Interval(start=0, end=2, score=1.0)], reasoner=self.name)


reasoners.register("bb-picky", _Picky)


def _eval(ds, desc, out, reasoner: str = "bb-picky", *extra: str) -> int:
    return main(["eval", "jsonl", "--dataset-file", str(ds), "--descriptions", str(desc), "--reasoner", reasoner,
                 "--out", str(out), "--no-report", "--quiet", *extra])


def _only(ds, tmp_path, word: str):
    rows = [json.loads(line) for line in ds.read_text().splitlines()]
    path = tmp_path / f"only-{word}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows if word in r["query"]))
    return path


def test_retrying_one_hard_query_that_fails_again_exits_0_when_the_run_has_results(tmp_path, capsys):
    """HEAD: exit 1, 'this run has no result ... run the same command with --retry-failed', with 2 ok rows."""
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=3)  # vid0-1: the person drink coffee
    out = tmp_path / "run"
    assert _eval(ds, desc, out) == 0
    assert _eval(ds, desc, out, "bb-picky", "--retry-failed") == 0
    assert "1 run now (1 failed)" in capsys.readouterr().out
    # a plain resume whose one new query fails: the folder has results too
    rows = [json.loads(line) for line in ds.read_text().splitlines()]
    ds.write_text(ds.read_text() + json.dumps({**rows[1], "qid": "vid0-coffee-again"}) + "\n")
    assert _eval(ds, desc, out) == 0
    assert "1 run now (1 failed)" in capsys.readouterr().out


def test_a_run_of_one_hard_query_exits_0_but_one_with_a_run_wide_error_exits_1(tmp_path, capsys):
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=3)
    one = _only(ds, tmp_path, "coffee")
    assert _eval(one, desc, tmp_path / "hard") == 0  # HEAD: 1, 'no result'
    capsys.readouterr()
    for arg in ("down", "unauthorized"):
        assert _eval(one, desc, tmp_path / arg, f"bb-picky:{arg}") == 1
        err = capsys.readouterr().err
        assert "the one query run failed with the same error, so this run has no result: ProviderError" in err
        assert "run the same command with --retry-failed" in err


def test_two_or_more_failing_with_one_error_and_no_result_in_the_folder_exit_1_without_advising_what_ran(
        tmp_path, capsys):
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=3)
    out = tmp_path / "run"
    assert _eval(ds, desc, out, "bb-picky:hard") == 1
    assert "every one of the 3 queries run failed" in capsys.readouterr().err
    assert _eval(ds, desc, out, "bb-picky:hard", "--retry-failed") == 1
    err = capsys.readouterr().err
    assert "every one of the 3 queries run failed with the same error" in err
    assert "--retry-failed" not in err and "run the same command again" in err  # HEAD advised --retry-failed


def test_which_errors_are_the_runs():
    assert is_run_wide("ConfigurationError", "anything") and is_run_wide("MissingDependencyError", "x")
    assert is_run_wide("ProviderError", "openai:m: connection failed (ConnectError)")
    assert is_run_wide("ProviderError", "Connection refused")
    for status in (401, 403, 404):
        assert is_run_wide("ProviderError", f"openai:m: HTTP {status}: no")
    assert not is_run_wide("ProviderError", "openai:m: HTTP 400: bad request")
    assert not is_run_wide("ProviderError", "openai:m: HTTP 4010 is not a status")
    assert not is_run_wide("OutputValidationError", "no interval in the model's reply after 3 attempts")


def test_run_eval_reports_no_cause_for_one_hard_query(tmp_path):
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=3)
    summary = run_eval(RunConfig(dataset="jsonl", dataset_path=str(_only(ds, tmp_path, "coffee")),
                                 descriptions=str(desc), reasoner="bb-picky"), tmp_path / "run")
    assert summary.failed == summary.ran == 1 and summary.same_error is None
