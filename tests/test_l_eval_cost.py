"""What an eval run says about its cost: the requests paid for failed queries count, and a model without a
price gives an unknown cost, not $0.0000."""

from __future__ import annotations

from typing import Any

from pipelines.runs import RunConfig, read_jsonl, run_eval, run_totals
from temporal_reasoner import reasoners
from temporal_reasoner.base import BaseReasoner
from vidground.errors import OutputValidationError
from vidground.types import GroundingResult, Interval, Usage

from _helpers_eval import cli, register_fakes, write_toy_dataset

register_fakes()


class _PaidReasoner(BaseReasoner):
    """``paid-reasoner:PRICE`` (``none``: a model without a price). A query holding 'coffee' fails after 3 paid
    attempts, as the chat reasoners' OutputValidationError does; the others cost one request."""

    name = "paid-reasoner"
    fail_coffee = True  # a test sets it False to have a --retry-failed succeed

    def __init__(self, arg: str | None = None, **_: Any):
        self.price = None if arg in (None, "none") else float(arg)

    def settings(self) -> dict[str, Any]:
        return {"name": self.name}

    def _usage(self, n: int) -> Usage:
        return Usage(requests=n, prompt_tokens=100 * n, completion_tokens=10 * n,
                     cost_usd=None if self.price is None else self.price * n)

    def ground(self, query: str, transcript: Any) -> GroundingResult:
        if "coffee" in query and self.fail_coffee:
            raise OutputValidationError("paid-reasoner: no usable answer after 3 attempt(s)", attempts=3,
                                        raw_outputs=["x", "y", "z"], usage=self._usage(3))
        return GroundingResult(query=query, duration=transcript.duration, reasoner=self.name,
                               intervals=[Interval(start=0.0, end=2.0, score=1.0)], usage={"reason": self._usage(1)})


reasoners.register("paid-reasoner", _PaidReasoner)


def _run(tmp_path, reasoner: str):
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=3)
    config = RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner=reasoner,
                       concurrency=1)
    return ds, desc, run_eval(config, tmp_path / "run")


def test_a_failed_query_keeps_the_usage_of_its_paid_attempts(tmp_path):
    """results.jsonl had no usage on a failed row: 3 paid attempts per failure were missing from the totals."""
    _, _, summary = _run(tmp_path, "paid-reasoner:0.01")
    rows = read_jsonl(tmp_path / "run" / "results.jsonl")
    failed = [r for r in rows if r["status"] != "ok"]
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(failed) == 2 and len(ok) == 4  # 'drink coffee' is asked once in each toy video
    assert all(r["usage"]["reason"]["requests"] == 3 and r["cost_usd"] == 0.03 for r in failed)
    totals = run_totals(tmp_path / "run")
    assert totals["requests"] == 2 * 3 + 4 and totals["failed_requests"] == 6 and totals["unpriced_requests"] == 0
    assert abs(totals["cost_usd"] - (6 + 4) * 0.01) < 1e-9 and summary.cost_usd == totals["cost_usd"]
    assert summary.cost_text == "$0.1000"


def test_the_eval_summary_says_the_cost_is_unknown_without_a_price(tmp_path, capsys):
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=3)
    assert cli("eval", "jsonl", "--dataset-file", ds, "--descriptions", desc, "--reasoner", "paid-reasoner:none",
               "--out", tmp_path / "run", "--no-report", "--quiet") == 0
    out = capsys.readouterr().out
    assert "cost $0.0000" not in out
    assert "cost unknown (10 request(s) without a price or token counts" in out
    assert "6 of the 10 answered requests were for query attempts that ended in an error" in out
    totals = run_totals(tmp_path / "run")
    assert (totals["requests"], totals["unpriced_requests"], totals["cost_usd"]) == (10, 10, 0.0)



def test_after_a_retry_that_fixed_every_query_the_cost_line_does_not_say_queries_failed(tmp_path, capsys, monkeypatch):
    """The line read '6 of 12 requests paid for queries that failed' under '(0 failed)': the 6 were paid by the
    attempts --retry-failed redid, and no query had failed; it names those attempts, and the requests it counts
    (answered ones)."""
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=3)
    argv = ("eval", "jsonl", "--dataset-file", ds, "--descriptions", desc, "--reasoner", "paid-reasoner:0.01",
            "--out", tmp_path / "run", "--no-report", "--quiet")
    assert cli(*argv) == 0
    capsys.readouterr()
    monkeypatch.setattr(_PaidReasoner, "fail_coffee", False)
    assert cli(*argv, "--retry-failed") == 0
    out = capsys.readouterr().out
    assert "2 run now (0 failed)" in out
    assert "queries that failed" not in out
    assert "6 of the 12 answered requests were for query attempts that ended in an error" in out

def test_a_run_without_model_requests_still_costs_nothing(tmp_path, capsys):
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=2)
    assert cli("eval", "jsonl", "--dataset-file", ds, "--descriptions", desc, "--reasoner", "fake-reasoner",
               "--out", tmp_path / "run", "--no-report", "--quiet") == 0
    assert "cost $0.0010" in capsys.readouterr().out  # 2 priced requests of $0.0005


def test_the_report_states_an_unknown_cost(tmp_path):
    from pipelines.report import write_report

    _run(tmp_path, "paid-reasoner:none")
    write_report(tmp_path / "run")
    text = (tmp_path / "run" / "report.md").read_text()
    assert "- cost: unknown (10 request(s) without a price or token counts" in text
    assert "10 answered requests, 6 of them for query attempts that ended in an error" in text


def test_a_video_described_once_is_counted_once_not_once_per_query(tmp_path):
    """Each result repeats its video's describe usage: only videos.jsonl's is counted (as its cost is)."""
    from _helpers_eval import render_toy_videos

    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=3)
    videos = render_toy_videos(tmp_path / "videos", ["vid0", "vid1"], n_frames=30, fps=10.0)
    config = RunConfig(dataset="jsonl", dataset_path=str(ds), videos=str(videos), describer="fake",
                       reasoner="paid-reasoner:0.01", cache=str(tmp_path / "cache.sqlite"), concurrency=1)
    summary = run_eval(config, tmp_path / "run")
    totals = run_totals(tmp_path / "run")
    frames = summary.describe_calls  # 3 frames a video at 1 fps, each one priced request of the fake describer
    assert frames == 6 and summary.describe_saved == 0
    assert totals["requests"] == frames + 4 + 2 * 3 and totals["unpriced_requests"] == 0
    assert abs(totals["cost_usd"] - (frames * 0.001 + 10 * 0.01)) < 1e-9
