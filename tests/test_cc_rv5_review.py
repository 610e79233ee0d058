"""Reviewer RV5's findings on the "paid usage counted once" commits (4c1b897, 1e92009):

1. a describer's requests in flight when its stream ends with an error, which themselves failed with a billed error
   (a reply cut off at max_tokens, one with ``choices: []``), were paid and counted nowhere;
4. a failed query's usage in an eval record was filed under "reason" even when it was describe cost.

Every request goes to a local OpenAI-compatible server that counts them (tests/_helpers_openai_server.py)."""

from __future__ import annotations

import json
import threading

import pytest

from _helpers_eval import render_toy_videos, write_toy_dataset
from _helpers_openai_server import Reply, openai_server  # noqa: F401
from test_y_paid_usage_review import NO_CHOICES, ONE_REQUEST_USD, PROMPT, describer, is_frame, paid
from vidground.errors import IncompleteOutputError, ProviderError

CUT_OFF_USD = ONE_REQUEST_USD  # a cut-off reply is billed as the same 1000 + 100 tokens
#: a failed query's usage key when it described its own frames (pipelines.executors.PAID_ACROSS_STAGES)
PAID_ACROSS_STAGES = "paid"


def cut_off() -> Reply:
    return Reply.chat("", finish_reason="length", prompt_tokens=PROMPT, completion_tokens=100)


def _gate(n: int, reply):
    """A responder that answers nothing until ``n`` requests are under way (all in flight together), then
    ``reply(k)`` for the k-th request (from 1)."""
    lock, count, all_sent = threading.Lock(), [0], threading.Event()

    def answer(req):
        with lock:
            count[0] += 1
            k = count[0]
        if k >= n:
            all_sent.set()
        all_sent.wait(30)
        return reply(k)

    return answer


# --- 1. billed failures among the requests in flight ------------------------------------------

def test_requests_in_flight_that_failed_billed_are_on_the_streams_error(tmp_path, openai_server):
    """4 requests in flight together: a 503 (unpaid), a reply without choices (prompt billed) and cut-off replies
    (billed). Whichever the stream waited on first raises; the error carries every billed one: it carried 1 (its
    own, or none when the 503 was first) however many were billed."""
    from pipelines.session import Session

    videos = render_toy_videos(tmp_path / "v", ["vid0"], n_frames=30, fps=10.0)  # 3 s: 12 frames at 4 fps
    replies = {2: lambda: Reply.error(503, "overloaded"), 3: lambda: Reply(body=NO_CHOICES)}
    openai_server.responder = _gate(4, lambda k: replies.get(k, cut_off)())
    session = Session(describer=describer(openai_server, concurrency=4), reasoner="naive", sampling={"fps": 4})
    with pytest.raises((ProviderError, IncompleteOutputError)) as err:  # whichever was waited on first
        session.describe(videos / "vid0.mp4")
    sent = len(openai_server.requests)
    assert sent >= 4  # all 4 in flight at once; one more may have left before the stream stopped
    billed = sent - 1  # all but the 503
    assert err.value.usage is not None and err.value.usage.requests == billed
    # the reply without choices bills its prompt alone
    assert err.value.usage.prompt_tokens == billed * PROMPT
    assert err.value.usage.completion_tokens == (billed - 1) * 100
    assert err.value.usage.cost_usd == pytest.approx((billed - 1) * CUT_OFF_USD + PROMPT * 0.15 / 1e6)


def test_the_raised_errors_own_usage_is_not_counted_twice(tmp_path, openai_server):
    """Every reply cut off: the error raised is one of them and carries its own usage; the others in flight are
    added once each, not the raised one again."""
    from pipelines.session import Session

    videos = render_toy_videos(tmp_path / "v", ["vid0"], n_frames=30, fps=10.0)
    openai_server.responder = _gate(4, lambda k: cut_off())
    session = Session(describer=describer(openai_server, concurrency=4), reasoner="naive", sampling={"fps": 4})
    with pytest.raises(IncompleteOutputError) as err:
        session.describe(videos / "vid0.mp4")
    sent = len(openai_server.requests)
    assert sent >= 4 and err.value.usage.requests == sent
    assert err.value.usage.cost_usd == pytest.approx(sent * CUT_OFF_USD)


def test_an_eval_whose_describe_is_cut_off_counts_every_billed_reply(tmp_path, openai_server):
    """max_tokens too low: every frame's reply is cut off (billed). The run counted 1 of the replies in flight
    (the reviewer's r3b: 1 of 8 at the default concurrency)."""
    from pipelines.runs import RunConfig, run_eval

    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=2)
    videos = render_toy_videos(tmp_path / "videos", ["vid0"], n_frames=60, fps=10.0)  # 6 s
    openai_server.responder = _gate(4, lambda k: cut_off())
    remote = {"base_url": openai_server.base_url, "api_key": "sk-test", "max_retries": 0}
    summary = run_eval(RunConfig(dataset="jsonl", dataset_path=str(ds), videos=str(videos), concurrency=1,
                                 describer="openai:gpt-4o-mini",
                                 describer_options={**remote, "concurrency": 4},
                                 reasoner="openai:gpt-4o-mini", reasoner_options=remote), tmp_path / "run")
    sent = len(openai_server.requests)
    assert sent >= 4 and all(is_frame(r) for r in openai_server.requests)
    assert summary.requests == sent
    assert summary.cost_usd == pytest.approx(sent * CUT_OFF_USD, abs=1e-6)


# --- 4. the stage of a failed query's usage ------------------------------------------------------

def _fail_the_reasoner(server):
    server.responder = lambda req: paid() if is_frame(req) else Reply.error(503, "the server is overloaded")


def _eval_failing(tmp_path, server, search=None, **describer_options):
    from pipelines.runs import RunConfig, run_eval

    _fail_the_reasoner(server)
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=2)
    videos = render_toy_videos(tmp_path / "videos", ["vid0"])
    remote = {"base_url": server.base_url, "api_key": "sk-test", "max_retries": 0}
    summary = run_eval(RunConfig(dataset="jsonl", dataset_path=str(ds), videos=str(videos), concurrency=1,
                                 describer="openai:gpt-4o-mini", describer_options={**remote, **describer_options},
                                 reasoner="openai:gpt-4o-mini", reasoner_options=remote, search=search),
                       tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    return summary, records


def test_a_failed_querys_own_describe_is_not_filed_as_reasoning(tmp_path, openai_server):
    """A query-aware describer: each query describes its 3 frames, then its reasoner request fails (503, unpaid).
    The record filed the 3 describe requests under "reason" (0 reasoner requests were answered); now under
    "paid" (the error's one sum across stages), and the run's totals are what they were."""
    summary, records = _eval_failing(tmp_path, openai_server, mode="aware")
    assert [r["status"] for r in records] == ["failed", "failed"]
    for rec in records:
        assert set(rec["usage"]) == {PAID_ACROSS_STAGES}
        assert rec["usage"][PAID_ACROSS_STAGES]["requests"] == 3
        assert rec["cost_usd"] == pytest.approx(3 * ONE_REQUEST_USD, abs=1e-8)
    assert sum(is_frame(r) for r in openai_server.requests) == 6
    assert (summary.requests, summary.failed_requests) == (6, 6)
    assert summary.cost_usd == pytest.approx(6 * ONE_REQUEST_USD, abs=1e-6)
    from pipelines.executors import PAID_ACROSS_STAGES as key

    assert key == PAID_ACROSS_STAGES


def test_a_coarse_to_fine_searchs_failed_query_files_its_frames_as_paid(tmp_path, openai_server):
    """A coarse-to-fine search describes per query what that query needs: its failed record's usage is the
    frames it paid for, not reasoning."""
    summary, records = _eval_failing(tmp_path, openai_server, search={"strategy": "coarse-to-fine"})
    frames = sum(is_frame(r) for r in openai_server.requests)
    assert frames > 0 and all(r["status"] == "failed" for r in records)
    assert all(set(r["usage"]) == {PAID_ACROSS_STAGES} for r in records)
    assert sum(r["usage"][PAID_ACROSS_STAGES]["requests"] for r in records) == frames
    assert summary.requests == frames


def test_a_failed_query_on_a_video_described_once_keeps_reason(tmp_path, openai_server):
    """An agnostic describer describes the video once (its record pays); a failed query then paid for its reasoning
    alone (its replies cut off, billed): that stays "reason", and every request is counted once."""
    openai_server.responder = lambda req: paid() if is_frame(req) else cut_off()  # the reasoner's reply: billed
    from pipelines.runs import RunConfig, run_eval

    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=2)
    videos = render_toy_videos(tmp_path / "videos", ["vid0"])
    remote = {"base_url": openai_server.base_url, "api_key": "sk-test", "max_retries": 0}
    summary = run_eval(RunConfig(dataset="jsonl", dataset_path=str(ds), videos=str(videos), concurrency=1,
                                 describer="openai:gpt-4o-mini", describer_options=remote,
                                 reasoner="openai:gpt-4o-mini", reasoner_options=remote), tmp_path / "run")
    records = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert all(r["status"] == "failed" and set(r["usage"]) == {"reason"} for r in records)
    assert summary.requests == len(openai_server.requests)
