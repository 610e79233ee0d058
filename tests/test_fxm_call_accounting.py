"""An eval counts every describer call it made once, across the invocations of a run folder (FX-M).

- ``--strategy coarse-to-fine`` stopped by a Ctrl-C while a query searched, then resumed: the stopped query's
  ``unfinished`` record said ``describe_calls`` 0 though its frames were sent (and paid), so the run folder's
  "describer calls" (summary, metrics.json, compare's spend rows, ``run_totals``) left them out.
- A query-aware describer (its descriptions made per query, and never cached) in an eval without coarse-to-fine:
  each result said 0 describer calls, and so did the run, though every query described the video; a Ctrl-C while
  a query described left its calls out too.
- A query whose search's reasoner failed after its frames were described: its failed record counted none of them.

The describer counts every frame it is sent (a module counter); calls the description cache answers on a rerun are
counted as saved, not made. The Ctrl-C is a SIGINT the describer sends itself at a counted frame; no clock is read.
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from _helpers_counting import counting_describer, static_video
from _helpers_eval import FakeReasoner, register_fakes
from frame_describer import describers
from pipelines.report import run_spend, write_report
from pipelines.runs import RunConfig, RunInterrupted, read_jsonl, run_eval, run_totals
from temporal_reasoner import reasoners
from vidground import interrupts
from vidground.errors import ProviderError
from vidground.types import FrameDescription

register_fakes()

COUNTS = {"frames": 0}
#: the frame (1-based, counted over the test) after which the describer sends itself a SIGINT; None: never
CTRL_C_AT: dict[str, int | None] = {"frame": None}
Counting = counting_describer("fxm-counting", COUNTS, CTRL_C_AT)


class Reasoner(FakeReasoner):
    name = "fxm-reasoner"


describers.register("fxm-counting", Counting)
reasoners.register("fxm-reasoner", Reasoner)


@pytest.fixture(autouse=True)
def fresh_counts():
    COUNTS["frames"] = 0
    CTRL_C_AT["frame"] = None
    yield
    CTRL_C_AT["frame"] = None
    interrupts.INTERRUPTED.clear()


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    return static_video(tmp_path_factory.mktemp("videos"))


def config(tmp_path: Path, videos: Path, queries: list[str], **kw: Any) -> RunConfig:
    path = tmp_path / "ds.jsonl"
    path.write_text("".join(json.dumps({"qid": f"q{k}", "video": "static", "query": q, "duration": 20.0,
                                        "windows": [[8.0, 12.0]]}) + "\n" for k, q in enumerate(queries)))
    kw = {"describer": "fxm-counting", **kw}
    return RunConfig(dataset="jsonl", dataset_path=str(path), videos=str(videos), reasoner="fxm-reasoner",
                     concurrency=1, cache=str(tmp_path / "c.sqlite"), **kw)


def needs_sigint() -> None:
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("needs Python's own SIGINT handler in the main thread")


def interrupted(cfg: RunConfig, out: Path, at: int) -> int:
    """Run ``cfg`` into ``out`` with a Ctrl-C after the ``at``-th frame; the frames sent by then."""
    CTRL_C_AT["frame"] = at
    try:
        with pytest.raises(RunInterrupted):
            run_eval(cfg, out)
    finally:
        interrupts.INTERRUPTED.clear()
        CTRL_C_AT["frame"] = None
    return COUNTS["frames"]


@pytest.mark.parametrize("queries, search, fps, at", [
    (["frame at 10.0"], {}, 2.0, 24),
    (["frame at 10.0", "frame at 2.0"], {"budget": 30}, 5.0, 1),
], ids=["first-query", "second-query"])
def test_a_search_stopped_by_ctrl_c_counts_its_calls_across_the_resume(tmp_path, videos, queries, search, fps, at):
    """Coarse to fine: a Ctrl-C in the one query's first refinement round (2 fps: 40 grid frames, a sparse pass of
    20; at the 24th frame), or at the second query's first call (5 fps, a budget of 30 frames: the first query makes
    30 calls, the second 2, the other 28 known): the stopped query's frames were sent, so the folder counts them as
    calls at once (they said 0); the resumed run gets them from the cache (saved, not made again), and the folder's
    total is every frame the describer was sent, once."""
    needs_sigint()
    search = {"strategy": "coarse-to-fine", **search}
    cfg = config(tmp_path, videos, queries, search=search, fps=fps)
    if len(queries) > 1:  # the first query's calls (counted in a folder and cache of their own), then ``at`` more
        (tmp_path / "dry").mkdir()
        run_eval(config(tmp_path / "dry", videos, queries[:1], search=search, fps=fps), tmp_path / "dry" / "run")
        at += COUNTS["frames"]
        COUNTS["frames"] = 0
    paid = interrupted(cfg, tmp_path / "run", at)
    assert paid == at
    unfinished = [v for v in read_jsonl(tmp_path / "run" / "videos.jsonl") if v.get("unfinished")]
    assert len(unfinished) == 1 and unfinished[0]["unfinished_query"] == f"q{len(queries) - 1}"
    finished = sum(r.get("describe_calls") or 0 for r in read_jsonl(tmp_path / "run" / "results.jsonl"))
    assert (unfinished[0]["describe_calls"], unfinished[0]["describe_saved"]) == (paid - finished, 0)
    assert run_totals(tmp_path / "run")["describe_calls"] == paid
    assert run_spend(tmp_path / "run")["describe_calls"] == paid  # compare's spend row, before any metrics.json

    resumed = run_eval(cfg, tmp_path / "run")
    assert resumed.ran == 1 and resumed.failed == 0
    made = COUNTS["frames"]
    assert resumed.describe_calls_now == made - paid  # this invocation's calls: none of the cached frames
    assert resumed.describe_saved_now >= paid - finished  # the stopped query's frames came from the cache
    assert resumed.describe_calls == made  # the folder's total: every call the describer got, once
    write_report(tmp_path / "run", bootstrap=0, max_plots=0)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["describe_calls"] == made
    assert run_spend(tmp_path / "run")["describe_calls"] == made


def test_a_query_aware_describer_counts_each_querys_calls(tmp_path, videos):
    """Two queries, each describing the video's 20 frames (1 fps) with its own words: 40 calls, on the results
    (they said 0). A query-aware describer's descriptions are in no description cache (the query is in its prompt):
    a rerun in a new folder sends the 40 again, and counts them as calls, none as saved."""
    cfg = config(tmp_path, videos, ["frame at 10.0", "frame at 2.0"], describer_options={"mode": "aware"})
    summary = run_eval(cfg, tmp_path / "run")
    assert COUNTS["frames"] == 40
    results = read_jsonl(tmp_path / "run" / "results.jsonl")
    assert [(r["describe_calls"], r["describe_saved"]) for r in results] == [(20, 0), (20, 0)]
    assert (summary.describe_calls, summary.describe_calls_now, summary.describe_saved) == (40, 40, 0)
    write_report(tmp_path / "run", bootstrap=0, max_plots=0)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["describe_calls"] == 40
    assert "describer calls made: 40, saved by the cache: 0" in (tmp_path / "run" / "report.md").read_text()
    assert run_spend(tmp_path / "run")["describe_calls"] == 40

    again = run_eval(cfg, tmp_path / "again")
    assert COUNTS["frames"] == 80
    assert (again.describe_calls, again.describe_saved, again.describe_calls_now) == (40, 0, 40)


def test_a_query_aware_describe_stopped_by_ctrl_c_counts_its_calls(tmp_path, videos):
    """A Ctrl-C at the second query's 5th frame: its 5 calls are the run folder's at once (they were not); the
    resumed run describes that query's 20 frames again (a query-aware describer's are not cached), and the folder
    counts the 45 calls the describer got, each once."""
    needs_sigint()
    cfg = config(tmp_path, videos, ["frame at 10.0", "frame at 2.0"], describer_options={"mode": "aware"})
    paid = interrupted(cfg, tmp_path / "run", 25)
    assert paid == 25
    (unfinished,) = [v for v in read_jsonl(tmp_path / "run" / "videos.jsonl") if v.get("unfinished")]
    assert (unfinished["unfinished_query"], unfinished["describe_calls"]) == ("q1", 5)
    assert run_totals(tmp_path / "run")["describe_calls"] == 25
    resumed = run_eval(cfg, tmp_path / "run")
    assert COUNTS["frames"] == 45
    assert (resumed.describe_calls_now, resumed.describe_saved_now) == (20, 0)
    assert resumed.describe_calls == 45 and run_totals(tmp_path / "run")["requests"] == 45 + 2  # and 2 reasoner's


def test_a_failed_searchs_calls_are_counted(tmp_path, videos):
    """The reasoner fails on the search's sparse pass (a ProviderError): the frames it described were calls, on
    the failed record; retried with the cache warm, they are saved, not made again."""
    cfg = config(tmp_path, videos, ["frame at FAIL"], search={"strategy": "coarse-to-fine"})
    summary = run_eval(cfg, tmp_path / "run")
    made = COUNTS["frames"]
    assert made > 0 and summary.failed == 1
    (record,) = read_jsonl(tmp_path / "run" / "results.jsonl")
    assert (record["status"], record["describe_calls"], record["describe_saved"]) == ("failed", made, 0)
    assert summary.describe_calls == summary.describe_calls_now == made
    again = run_eval(cfg, tmp_path / "run", retry_failed=True)
    assert COUNTS["frames"] == made
    assert (again.describe_calls_now, again.describe_saved_now, again.describe_calls) == (0, made, made)


# -- FX-M2 (RV-L on 3574338): a failed query-aware query, a failed video describe, a describer with no usage --------

class FailingAt6(Counting):
    """The counting describer, failing (a ProviderError) at the 6th frame it is sent of each describe: that frame's
    reply is never handed over (not paid), the 5 before it are; for a query-aware describe, only queries naming
    BROKEN fail (with ``only_broken``)."""

    name = "fxm-failing"
    only_broken = False

    def describe(self, frames, *, query=None):
        for i, d in enumerate(super().describe(frames, query=query)):
            if i == 5 and (not self.only_broken or (query and "BROKEN" in query)):
                raise ProviderError("fake describer outage", status=503, retryable=True)
            yield d


class FailingAware(FailingAt6):
    name = "fxm-failing-aware"
    only_broken = True


class NoUsage(Counting):
    """The counting describer reporting no usage (a plug-in's free describer): every description's ``usage`` None."""

    name = "fxm-nousage"

    def describe(self, frames, *, query=None):
        for d in super().describe(frames, query=query):
            yield FrameDescription(t=d.t, text=d.text, model="plug")


class FreeFailing(FailingAt6, NoUsage):
    """Failing at the 6th frame, and reporting no usage."""

    name = "fxm-free-failing"


describers.register("fxm-failing", FailingAt6)
describers.register("fxm-free-failing", FreeFailing)
describers.register("fxm-failing-aware", FailingAware)
describers.register("fxm-nousage", NoUsage)


def test_a_query_aware_query_whose_reasoner_failed_counts_its_calls(tmp_path, videos):
    """The second query's reasoner fails after its 20 frames were described (and paid): its failed record counts
    them (it said none: 20 of the 40 sent were counted); a --retry-failed rerun describes them again (a query-aware
    describer's are not cached) and counts those too: every frame the describer got, once."""
    cfg = config(tmp_path, videos, ["frame at 10.0", "frame at FAIL"], describer_options={"mode": "aware"})
    summary = run_eval(cfg, tmp_path / "run")
    assert COUNTS["frames"] == 40 and summary.failed == 1
    failed = read_jsonl(tmp_path / "run" / "results.jsonl")[1]
    assert (failed["status"], failed["describe_calls"], failed["describe_saved"]) == ("failed", 20, 0)
    assert failed["usage"]["paid"]["requests"] == 20
    assert summary.describe_calls == summary.describe_calls_now == 40
    assert run_totals(tmp_path / "run")["describe_calls"] == 40
    again = run_eval(cfg, tmp_path / "run", retry_failed=True)
    assert COUNTS["frames"] == 60
    assert (again.describe_calls_now, again.describe_calls) == (20, 60)
    assert run_totals(tmp_path / "run")["describe_calls"] == 60


def test_a_query_aware_describe_that_failed_counts_the_frames_it_paid(tmp_path, videos):
    """The describer fails at the second query's 6th frame: the 5 before it were paid and are calls of the failed
    record (it said none: 20 of 25 paid were counted)."""
    cfg = config(tmp_path, videos, ["frame at 10.0", "frame BROKEN 2.0"], describer="fxm-failing-aware",
                 describer_options={"mode": "aware"})
    summary = run_eval(cfg, tmp_path / "run")
    failed = read_jsonl(tmp_path / "run" / "results.jsonl")[1]
    assert (failed["status"], failed["error"]["type"]) == ("failed", "ProviderError")
    assert (failed["describe_calls"], failed["usage"]["paid"]["requests"]) == (5, 5)
    assert summary.describe_calls == run_totals(tmp_path / "run")["describe_calls"] == 25
    assert run_totals(tmp_path / "run")["requests"] == 25 + 1  # and the first query's reasoner's


def test_a_failed_video_describe_counts_its_calls_on_the_video_record(tmp_path, videos):
    """An agnostic describe failing at the 6th frame: the video record counts the 5 paid frames as calls (it said 0
    beside usage.requests 5), once: its failed queries count none of them."""
    cfg = config(tmp_path, videos, ["frame at 10.0", "frame at 2.0"], describer="fxm-failing")
    summary = run_eval(cfg, tmp_path / "run")
    (video,) = read_jsonl(tmp_path / "run" / "videos.jsonl")
    assert (video["error"]["type"], video["describe_calls"], video["usage"]["requests"]) == ("ProviderError", 5, 5)
    results = read_jsonl(tmp_path / "run" / "results.jsonl")
    assert [r["status"] for r in results] == ["failed", "failed"]
    assert all(not r.get("describe_calls") for r in results)
    assert summary.describe_calls == 5
    totals = run_totals(tmp_path / "run")
    assert (totals["describe_calls"], totals["requests"]) == (5, 5)


@pytest.mark.parametrize("describer", ["fxm-nousage", "cv"])
def test_query_aware_calls_are_frames_sent_as_agnostic_ones(tmp_path, videos, describer):
    """A describer that reports no usage (a plug-in's, the built-in cv) counts the frames it was sent in mode aware
    as in mode agnostic (20 agnostic, 0 aware though 40 were sent): 20 once for the video, 20 a query aware."""
    queries = ["frame at 10.0", "frame at 2.0"]
    counted = {}
    for mode in ("agnostic", "aware"):
        (tmp_path / mode).mkdir()
        cfg = config(tmp_path / mode, videos, queries, describer=describer, describer_options={"mode": mode})
        counted[mode] = run_eval(cfg, tmp_path / mode / "run").describe_calls
        assert run_totals(tmp_path / mode / "run")["requests"] == 2  # the reasoner's alone: the describer is free
    assert counted == {"agnostic": 20, "aware": 40}
    if describer == "fxm-nousage":
        assert COUNTS["frames"] == 60


def test_a_free_describer_that_failed_pays_no_request(tmp_path, videos):
    """A failed describe's calls with no usage (the describer reports none) are calls, not requests: the video
    record's usage says nothing paid, and the folder counts no request for them (a record with calls and no usage
    is read as one written before usage was kept, one request a call)."""
    run_eval(config(tmp_path, videos, ["frame at 10.0"], describer="fxm-free-failing"), tmp_path / "run")
    (video,) = read_jsonl(tmp_path / "run" / "videos.jsonl")
    assert video["describe_calls"] == 5 and not video["usage"].get("requests")
    totals = run_totals(tmp_path / "run")
    assert (totals["describe_calls"], totals["requests"]) == (5, 0)


def test_a_free_query_aware_describe_stopped_by_ctrl_c_counts_its_calls(tmp_path, videos):
    """A Ctrl-C at the second query's 5th frame of a describer reporting no usage: nothing was paid, but 5 frames
    were sent; the unfinished record counts them (none was written: the folder said 20 of 25), with no request."""
    needs_sigint()
    cfg = config(tmp_path, videos, ["frame at 10.0", "frame at 2.0"], describer="fxm-nousage",
                 describer_options={"mode": "aware"})
    assert interrupted(cfg, tmp_path / "run", 25) == 25
    (unfinished,) = [v for v in read_jsonl(tmp_path / "run" / "videos.jsonl") if v.get("unfinished")]
    assert (unfinished["unfinished_query"], unfinished["describe_calls"]) == ("q1", 5)
    totals = run_totals(tmp_path / "run")
    assert (totals["describe_calls"], totals["requests"]) == (25, 1)  # and the first query's reasoner's
