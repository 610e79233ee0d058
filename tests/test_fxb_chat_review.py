"""Defects a reviewer confirmed in the chat side (FX-B): an answer replaced by numbers in the prose after it, a
stray </think>, a deadlock in the shared limiter's finalizer, a learned context size unused by ask/events or
grown again, the unknown-cost wording, and a --json list lost on an unexpected error."""

from __future__ import annotations

import json

import pytest

from temporal_reasoner.parsing import ReplyError, parse_reply_detailed

from _helpers_openai_server import Reply, openai_server, serve_small_context  # noqa: F401

ANSWER = (17.0, 21.0)


# --- 1. the answer, not the prose after it ----------------------------------------------------------------------

@pytest.mark.parametrize("reply", [
    'The event happens at {"intervals": [{"start": 17, "end": 21, "score": 0.9}]}. The video spans [0, 36].',
    'Answer: {"intervals": [[17, 21, 0.9]]}\n(frames [3, 4] were ambiguous)',
    '{"intervals": [{"start": 17, "end": 21}]}\nFormat used: {"intervals": [{"start": 0, "end": 36}]}',
    'The video spans [0, 36]. The event: {"intervals": [[17, 21]]}',  # a whole answer over a fragment before it
    '{"intervals": [[17, 21]]} (the final frames [30, 36] are dark)',  # a fragment corrects no whole answer
])
def test_prose_after_the_answer_does_not_replace_it(reply):
    parsed = parse_reply_detailed(reply, duration=36)
    assert [(i.start, i.end) for i in parsed.intervals] == [ANSWER]
    assert not any("used the last" in w for w in parsed.warnings)


def test_a_marked_correction_still_wins():
    parsed = parse_reply_detailed('{"intervals": [[0, 36]]} no: {"intervals": [[17, 21]]}', duration=36)
    assert [(i.start, i.end) for i in parsed.intervals] == [ANSWER]
    assert any("used the last" in w for w in parsed.warnings)
    parsed = parse_reply_detailed('<think>Draft {"intervals":[[0,36]]}</think>{"intervals":[[17,21]]}', duration=36)
    assert [(i.start, i.end) for i in parsed.intervals] == [ANSWER] and parsed.warnings == []


def test_a_stray_closing_think_tag_after_the_answer_keeps_it():
    parsed = parse_reply_detailed('{"intervals":[[17,21]]} (I removed my </think> block)', duration=36)
    assert [(i.start, i.end) for i in parsed.intervals] == [ANSWER]
    assert any("</think>" in w for w in parsed.warnings)
    # a block the template opened still hides its draft when an answer follows the tag
    parsed = parse_reply_detailed('Draft {"intervals":[[0,36]]}</think>{"intervals":[[17,21]]}', duration=36)
    assert [(i.start, i.end) for i in parsed.intervals] == [ANSWER] and parsed.warnings == []
    with pytest.raises(ReplyError):
        parse_reply_detailed("no JSON </think> none here", duration=36)


# --- 7. ask and events: the same rule -----------------------------------------------------------------------------

def test_an_answer_followed_by_a_json_looking_value_in_prose_is_kept():
    from temporal_reasoner.events import parse_events
    from temporal_reasoner.qa import parse_answer

    parsed = parse_answer('{"answer": "yes", "intervals": [[17, 21]]}\nFormat: {"answer": "...", '
                          '"intervals": [[0, 36]]}', choices=None, duration=36)
    assert parsed.answer == "yes" and [(i.start, i.end) for i in parsed.intervals] == [ANSWER]
    events, _ = parse_events('{"events": [{"start": 3, "end": 5, "caption": "b"}]} e.g. '
                             '{"events": [{"start": 0, "end": 10, "caption": "example"}]}', lo=0, hi=10)
    assert [(e.start, e.end, e.caption) for e in events] == [(3, 5, "b")]
    events, _ = parse_events('[{"start": 3, "end": 5, "caption": "b"}] (times in [0, 10])', lo=0, hi=10)
    assert [(e.start, e.end, e.caption) for e in events] == [(3, 5, "b")]


# --- 2. a backend collected while the shared limiter's lock is held -----------------------------------------------

class _Owner:
    """A backend's stand-in: what holds limits on a shared limiter."""


def test_the_limit_finalizer_takes_no_lock_and_the_hold_is_released_at_the_next_call():
    import threading

    from vidground import ratelimit

    url = "http://fxb-gc.invalid/v1"
    owner = _Owner()
    limiter = ratelimit.shared_limiter(url, "k", max_in_flight=1, owner=owner)
    (_, finalizer), = ratelimit._OWNED[id(owner)]
    done = threading.Event()

    def collected():  # what a garbage collection inside `with _SHARED_LOCK:` (in shared_limiter) runs
        finalizer()
        done.set()
    with ratelimit._SHARED_LOCK:
        worker = threading.Thread(target=collected, daemon=True)
        worker.start()
        worker.join(30)
        finished = done.is_set()
    assert finished  # before: the finalizer waited for the lock held here, for ever
    assert limiter.max_in_flight == 1  # only queued ...
    other = _Owner()
    fresh = ratelimit.shared_limiter(url, "k", max_in_flight=3, owner=other)
    assert fresh is not limiter and fresh.max_in_flight == 3  # ... and released by the next call, first
    ratelimit.release_limits(other)


def test_a_collected_backends_hold_is_released_before_the_next_request_of_another():
    import gc

    from vidground import ratelimit

    url = "http://fxb-gc2.invalid/v1"
    tight, loose = _Owner(), _Owner()
    limiter = ratelimit.shared_limiter(url, "k", rpm=2, owner=tight)
    ratelimit.shared_limiter(url, "k", rpm=50, owner=loose)
    del tight
    gc.collect()
    with limiter.slot():
        assert limiter.rpm == 50
    ratelimit.release_limits(loose)


# --- 3, 4, 8. the context a server stated: used by ask and events, learned there too, never grown ----------------

YES = '{"answer": "yes", "intervals": [{"start": 10, "end": 14, "score": 0.8}]}'


def _sent(server, since: int = 0) -> list[int]:
    return [sum(len(m["content"]) for m in q.json["messages"]) for q in server.requests[since:]]


@pytest.fixture
def repetitive():
    from temporal_reasoner.transcript import Transcript
    from vidground.types import FrameDescription

    # 300 lines of 6 scenes: too long for the server, short once near-duplicate spans are merged
    return Transcript.from_descriptions([FrameDescription(t=i * 2.0, text=f"scene {i // 50}: a person stands in "
                                                          f"room number {i // 50} near the window, frame {i}")
                                         for i in range(300)])


def test_ask_uses_the_context_ground_learned(openai_server, repetitive):
    from temporal_reasoner.openai_reasoner import OpenAIReasoner

    serve_small_context(openai_server, reply=YES)
    r = OpenAIReasoner("m", base_url=openai_server.base_url, api_key="k", max_tokens=256)
    r.ground("a person", repetitive)
    assert r.learned_context_tokens == 2048
    sent = len(openai_server.requests)
    a = r.answer("is there a person?", repetitive)  # before: sent whole at 100,000 tokens and refused
    assert a.answer == "yes" and all(c <= 6000 for c in _sent(openai_server, sent))
    assert any("merged near-duplicate spans" in w for w in a.warnings)


def test_ask_and_events_learn_the_context_from_their_own_overflow(openai_server, repetitive):
    from temporal_reasoner.openai_reasoner import OpenAIReasoner

    serve_small_context(openai_server, reply=YES)
    r = OpenAIReasoner("m", base_url=openai_server.base_url, api_key="k", max_tokens=256)
    a = r.answer("is there a person?", repetitive)  # before: ProviderError on the first refusal
    assert a.answer == "yes" and r.learned_context_tokens == 2048
    assert any("context is 2048 tokens" in w and "answered again" in w for w in a.warnings)
    assert a.usage["reason"].requests == len(openai_server.requests) - 1  # the refused one was not answered

    serve_small_context(openai_server, reply='{"events": [{"start": 10, "end": 14, "caption": "a person stands"}]}')
    r = OpenAIReasoner("m", base_url=openai_server.base_url, api_key="k", max_tokens=256)
    sent = len(openai_server.requests)
    ev = r.events(repetitive)
    sizes = _sent(openai_server, sent)
    assert sizes[0] > 6000 and all(c <= 6000 for c in sizes[1:]) and len(sizes) > 2  # refused, then in chunks
    assert r.learned_context_tokens == 2048 and ev.events
    assert any("found events again" in w for w in ev.warnings)


def test_a_learned_context_never_grows_again(openai_server, long_transcript_fxb):
    from temporal_reasoner.openai_reasoner import OpenAIReasoner

    r = OpenAIReasoner("m", base_url=openai_server.base_url, api_key="k", max_tokens=256)
    first = [True]

    def respond(req):
        if first[0]:  # another thread's request learns a smaller size while this one is refused
            first[0] = False
            r.learned_context_tokens = 1500
            return Reply.error(400, "This model's maximum context length is 2048 tokens.")
        return Reply.chat('{"intervals": [{"start": 10, "end": 14, "score": 0.8}]}')
    openai_server.responder = respond
    r.ground("thing number 5", long_transcript_fxb)
    assert r.learned_context_tokens == 1500  # before: 2048, the size grown again


@pytest.fixture
def long_transcript_fxb():
    import hashlib

    from temporal_reasoner.transcript import Transcript
    from vidground.types import FrameDescription

    return Transcript.from_descriptions([FrameDescription(t=i * 2.0, text=f"line {i}: thing number {i} "
                                                          f"{hashlib.sha1(str(i).encode()).hexdigest()[:20]}")
                                         for i in range(400)])


def test_the_chunking_log_names_the_learned_size_not_a_setting(openai_server, long_transcript_fxb, caplog):
    import logging

    from temporal_reasoner import context as ctx
    from temporal_reasoner.openai_reasoner import OpenAIReasoner

    serve_small_context(openai_server)
    r = OpenAIReasoner("fxb-log", base_url=openai_server.base_url, api_key="k", max_tokens=256)
    ctx._WARNED.discard(r.name)
    with caplog.at_level(logging.WARNING):
        r.ground("thing number 5", long_transcript_fxb)
    said = " ".join(rec.getMessage() for rec in caplog.records if "exceeds the model's context" in rec.getMessage())
    assert "the size the server stated" in said and "the setting is context_tokens=100000" in said
    assert "set by context_tokens=2048" not in said  # before: named a setting nobody gave


# --- 5. the unknown cost names both causes ---------------------------------------------------------------------

def test_a_priced_model_whose_server_sent_no_usage_is_not_called_a_model_without_a_price():
    from pipelines.cli import _paid_note
    from pipelines.runs import format_cost
    from vidground.errors import ProviderError
    from vidground.pricing import with_cost
    from vidground.types import Usage

    usage = with_cost(Usage(requests=36), "gpt-4o")  # gpt-4o has a price; the server sent no token counts
    text = format_cost(usage.cost_usd or 0.0, usage.requests, usage.unpriced_requests)
    assert text == "unknown (36 request(s) without a price or token counts; see vidground.pricing)"
    assert "to a model without a price" not in _paid_note(ProviderError("x", usage=usage))


# --- 6. an unexpected error in query k keeps the finished --json list ---------------------------------------------

def test_an_unexpected_error_prints_the_finished_json_list_then_is_raised(capsys):
    import argparse

    from pipelines.cli import _print_many
    from vidground.types import Interval, GroundingResult

    def answer(query):
        if query == "b":
            raise RuntimeError("a bug in query 2")
        return GroundingResult(query=query, duration=10, intervals=[Interval(start=1, end=2, score=0.5)], reasoner="r")
    with pytest.raises(RuntimeError, match="a bug in query 2"):
        _print_many(argparse.Namespace(json=True), ["a", "b", "c"], answer)
    printed = json.loads(capsys.readouterr().out)  # before: nothing printed, query 1's paid answer lost
    assert [r["query"] for r in printed] == ["a"]


# --- 9. a closed describer's concurrency bound no longer binds the next one ----------------------------------------

def test_a_closed_tight_describer_no_longer_bounds_the_requests_in_flight(openai_server):
    import threading

    import numpy as np

    from frame_describer.openai_describer import OpenAIDescriber
    from vidground.types import Frame

    lock, state = threading.Lock(), {"now": 0, "most": 0}
    together = threading.Barrier(3, timeout=10)

    def respond(req):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        try:
            together.wait()  # the first 3 requests meet here when 3 may be in flight
        except threading.BrokenBarrierError:
            pass
        with lock:
            state["now"] -= 1
        return Reply.chat("a dark room")
    openai_server.responder = respond
    tight = OpenAIDescriber("m", base_url=openai_server.base_url, api_key="k-fxb-desc", concurrency=1)
    tight.close()
    loose = OpenAIDescriber("m", base_url=openai_server.base_url, api_key="k-fxb-desc", concurrency=3)
    frames = [Frame(t=float(i), index=i, image=np.full((16, 16, 3), i, np.uint8)) for i in range(3)]
    assert len(list(loose.describe(frames))) == 3
    loose.close()
    assert state["most"] == 3  # before: 1, the closed describer's bound held for good
