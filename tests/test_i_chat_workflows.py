"""What a researcher meets after the first demo with a chat reasoner: questions and events through an
OpenAI-compatible server (context, fallback, errors naming the server) and the local chat reasoners'
``fallback`` given as a spec string, as ``--reasoner-opt fallback=embedding`` gives it."""

from __future__ import annotations

import pytest

from _helpers_openai_server import Reply, openai_server  # noqa: F401
from vidground.errors import ConfigurationError, OutputValidationError, ProviderError
from vidground.types import Answer, Event, Events, FrameDescription, Interval, Usage
from temporal_reasoner.context import estimate_tokens
from temporal_reasoner.transcript import Transcript

CHOICES = ["share it", "unwrap it", "throw it away"]
GOOD_ANSWER = '{"choice": 1, "answer": "unwrap it", "intervals": [{"start": 4, "end": 8, "score": 0.8}]}'


def transcript(n: int = 10, *, distinct: bool = False, words: int = 3) -> Transcript:
    # distinct lines share no word with their neighbours (nothing to merge); the others are one line repeated
    texts = [" ".join(f"w{i}x{k}" for k in range(6 * words)) if distinct else " ".join(["a boy unwraps a present"] * words)
             for i in range(n)]
    return Transcript.from_descriptions([FrameDescription(t=float(i), text=t) for i, t in enumerate(texts)], merge=False)


def reasoner(server, **kw):
    from temporal_reasoner.openai_reasoner import OpenAIReasoner

    return OpenAIReasoner("m", base_url=server.base_url, api_key="sk-test", retry_base_delay=0.01, **kw)


class Stub:
    """A fallback reasoner that answers and lists events without a model, counting its calls."""

    name = "stub"

    def __init__(self):
        self.calls = []

    def settings(self):
        return {"name": self.name}

    def ground(self, query, transcript):
        raise AssertionError("not used here")

    def answer(self, question, transcript, *, choices=None):
        self.calls.append("answer")
        return Answer(question=question, answer=choices[2], choice=2, choices=choices,
                      intervals=[Interval(start=1, end=2)], duration=transcript.duration, reasoner="stub+baseline",
                      usage={"reason": Usage()})

    def events(self, transcript, **options):
        self.calls.append("events")
        return Events(events=[Event(start=0, end=transcript.duration, caption="all of it", score=1.0)],
                      duration=transcript.duration, reasoner="stub+change-points", usage={})


# --- questions: the context ------------------------------------------------------------------

def test_openai_answer_merges_a_transcript_longer_than_context_tokens(openai_server):
    """``context_tokens`` held for ground() only: answer() sent any transcript whole, so a NExT-GQA question
    (10,135 prompt tokens) reached an 8,192-token server and came back as HTTP 400 (seen with llama.cpp's
    server). Near-duplicate spans are merged to fit, as the local chat reasoners do."""
    openai_server.script(Reply.chat(GOOD_ANSWER))
    t = transcript(200)  # 200 identical lines: merged into one span
    whole = estimate_tokens(__import__("temporal_reasoner.qa", fromlist=["x"]).build_qa_messages("why?", t, CHOICES))
    a = reasoner(openai_server, context_tokens=2000).answer("why?", t, choices=CHOICES)
    (req,) = openai_server.requests
    assert whole > 2000 and estimate_tokens(req.json["messages"]) <= 2000 - 2 * 512 - 128
    assert a.choice == 1 and any("merged near-duplicate spans" in w for w in a.warnings)


def test_openai_answer_that_cannot_fit_is_refused_before_any_request(openai_server):
    with pytest.raises(ConfigurationError, match="does not fit the model's context"):
        reasoner(openai_server, context_tokens=2000).answer("why?", transcript(200, distinct=True), choices=CHOICES)
    assert openai_server.requests == []


def test_openai_answer_without_context_tokens_sends_the_transcript_whole(openai_server):
    openai_server.script(Reply.chat(GOOD_ANSWER))
    reasoner(openai_server, context_tokens=None).answer("why?", transcript(200, distinct=True), choices=CHOICES)
    assert len(openai_server.requests) == 1


# --- events: chunks that fit the context -----------------------------------------------------

def test_openai_events_chunks_fit_context_tokens(openai_server):
    """Events went in chunks of 300 spans whatever the server's context: each chunk's prompt now fits."""
    openai_server.responder = lambda req: Reply.chat('{"events": [{"start": %g, "end": %g, "caption": "x", "score": 1}]}'
                                                     % (_first_time(req), _first_time(req) + 1))
    out = reasoner(openai_server, context_tokens=3000).events(transcript(120, distinct=True, words=2))
    budget = 3000 - 512 - 128
    assert len(openai_server.requests) > 1 and out.settings["chunks"] == len(openai_server.requests)
    assert all(estimate_tokens(r.json["messages"]) <= budget for r in openai_server.requests)
    assert out.settings["chunk_entries"] < 120 and out.reasoner == "openai:m"


def _first_time(req) -> float:
    """The first span's start in the transcript of a request (each chunk's events must lie in its part)."""
    import re

    return float(re.search(r"^\[(\d+(?:\.\d+)?)-", req.json["messages"][1]["content"], re.M).group(1))


# --- fallback for questions and events -------------------------------------------------------

def test_openai_answer_and_events_use_the_fallback_after_the_last_attempt(openai_server):
    """``fallback=`` answered ground() only: answer() and events() raised OutputValidationError after the
    attempts, though the fallback was given (``--reasoner-opt fallback=embedding`` on ask and events)."""
    openai_server.responder = lambda req: Reply.chat("I think it is the second one.", prompt_tokens=50)
    stub = Stub()
    rsn = reasoner(openai_server, fallback=stub, max_attempts=2)
    a = rsn.answer("why?", transcript(), choices=CHOICES)
    assert a.choice == 2 and a.reasoner == "openai:m" and a.settings["fallback"] == "stub+baseline"
    assert a.usage["reason"].requests == 2 and a.usage["reason"].prompt_tokens == 100  # the paid attempts kept
    assert len(a.raw) == 2 and "used the fallback reasoner 'stub+baseline'" in a.warnings[-1]
    e = rsn.events(transcript())
    assert [ev.caption for ev in e.events] == ["all of it"] and e.settings["fallback"] == "stub+change-points"
    assert e.usage["reason"].requests == 2 and "used the fallback reasoner" in e.warnings[-1]
    assert stub.calls == ["answer", "events"] and len(openai_server.requests) == 4


def test_without_a_fallback_the_error_still_carries_the_paid_attempts(openai_server):
    openai_server.responder = lambda req: Reply.chat("no json", prompt_tokens=50)
    with pytest.raises(OutputValidationError) as err:
        reasoner(openai_server, max_attempts=2).events(transcript())
    assert err.value.usage.requests == 2 and err.value.raw_outputs == ["no json", "no json"]


def test_a_fallback_spec_string_of_a_local_chat_reasoner_is_resolved(monkeypatch):
    """hf:/llamacpp: kept ``fallback`` as given: the spec string of ``--reasoner-opt fallback=embedding`` reached
    ``fallback.ground`` as a str, an AttributeError after every attempt; answer() and events() ignored it."""
    pytest.importorskip("llama_cpp")
    import temporal_reasoner
    from test_llamacpp_reasoner import FakeLlama
    from temporal_reasoner.llamacpp_reasoner import LlamaCppReasoner

    stub = Stub()
    stub.ground = lambda q, t: __import__("vidground.types", fromlist=["x"]).GroundingResult(
        query=q, duration=t.duration, intervals=[Interval(start=0, end=1)], reasoner="stub")
    asked = []
    monkeypatch.setattr(temporal_reasoner, "get_reasoner", lambda spec, **kw: asked.append(spec) or stub)
    r = LlamaCppReasoner("x.gguf", llama=FakeLlama([("nonsense", "stop")] * 9), max_attempts=1,
                         fallback="embedding")  # a backend's name (checked when built), resolved to the stub
    assert r.ground("q", transcript()).settings["fallback"] == "stub"
    assert r.answer("why?", transcript(), choices=CHOICES).choice == 2
    assert r.events(transcript()).events[0].caption == "all of it"
    assert asked == ["embedding"]  # resolved once, on the first failure


# --- errors name the server ------------------------------------------------------------------

def test_a_garbled_reply_names_the_server(openai_server):
    """A reply body that is not JSON gave 'the server sent a malformed response body ...: gave up after 2
    attempts' without the endpoint, which every other transport failure names."""
    openai_server.responder = lambda req: Reply(body="<html>not json</html>")
    with pytest.raises(ProviderError) as err:
        reasoner(openai_server, max_retries=1).answer("why?", transcript(), choices=CHOICES)
    assert "malformed response body" in str(err.value)
    assert f"{openai_server.base_url.rstrip('/')}/chat/completions" in str(err.value)


def test_a_failing_part_of_a_long_transcript_is_named_plainly(openai_server):
    """The error read 'no usable events part 2 of 3: after 2 attempt(s)'."""
    openai_server.responder = lambda req: Reply.chat(
        '{"events": [{"start": %g, "end": %g, "caption": "x", "score": 1}]}' % (_first_time(req), _first_time(req) + 1)
        if _first_time(req) < 1 else "no json")
    with pytest.raises(OutputValidationError, match=r"openai:m: no usable events for part 2 of \d+ after 2 attempt"):
        reasoner(openai_server, max_attempts=2).events(transcript(30, distinct=True), chunk_entries=12)


def test_events_whose_single_span_cannot_fit_are_refused_before_any_request(openai_server):
    """Chunks were halved down to one span and sent even when one span did not fit: each request was refused by
    the server (HTTP 400 from an OpenAI-compatible one)."""
    from temporal_reasoner.events import SpanTooLongError

    with pytest.raises(SpanTooLongError, match=r"span 1 of 4 of the transcript \(0-0.5 s, \d+ characters\) is too long"):
        reasoner(openai_server, context_tokens=1200, max_tokens=256).events(transcript(4, distinct=True, words=200))
    assert openai_server.requests == []
