"""Chat-side defects found by a user test (F7): reasoning drafts, unknown usage, retry options, context overflow
on a first request, a base URL without /v1, shared limiters released, and the caching note."""

from __future__ import annotations

import pytest

from vidground.types import FrameDescription
from temporal_reasoner.openai_reasoner import OpenAIReasoner
from temporal_reasoner.parsing import extract_json, parse_reply_detailed, strip_reasoning
from temporal_reasoner.transcript import Transcript

from _helpers_openai_server import FakeOpenAIServer, Reply, openai_server, serve_small_context  # noqa: F401

DRAFT = '{"intervals":[{"start":0,"end":36,"score":0.1}]}'
FINAL = '{"intervals":[{"start":17,"end":21,"score":0.9}]}'


@pytest.fixture
def transcript() -> Transcript:
    return Transcript.from_descriptions([FrameDescription(t=i * 2.0, text=f"scene {i}") for i in range(20)])


# --- 1. a draft or <think> block before the answer -------------------------------------------------------------

@pytest.mark.parametrize("tag", ["think", "thinking", "reasoning", "THINK"])
def test_a_reasoning_block_is_not_the_answer(tag):
    reply = f"<{tag}>Draft: {DRAFT} no, 17 s.</{tag}>{FINAL}"
    parsed = parse_reply_detailed(reply, duration=40)
    assert [(i.start, i.end, i.score) for i in parsed.intervals] == [(17, 21, 0.9)]
    assert parsed.warnings == []  # the block is reasoning, not a second answer


def test_a_block_opened_by_the_chat_template_is_left_out():
    # DeepSeek-R1's template opens <think> in the prompt: the reply holds only its end
    assert extract_json(f"Draft {DRAFT}, no.</think>\n{FINAL}") == {"intervals": [{"start": 17, "end": 21, "score": 0.9}]}
    assert strip_reasoning("a</think>b<think>c</think>d<think>cut short") == "bd<think>cut short"


def test_of_several_valid_answers_the_last_counts_with_a_warning():
    parsed = parse_reply_detailed(f"Draft: {DRAFT} Hmm, the lights go out at 17 s, so: {FINAL}", duration=40)
    assert [(i.start, i.end) for i in parsed.intervals] == [(17, 21)]
    assert any("2 different answers; used the last" in w and "0-36" in w for w in parsed.warnings)
    # an invalid value after the answer does not hide it, and the same answer twice is no warning
    parsed = parse_reply_detailed(f"{FINAL} (see [1] above) {FINAL}", duration=40)
    assert [(i.start, i.end) for i in parsed.intervals] == [(17, 21)] and parsed.warnings == []


def test_the_reasoner_grounds_on_the_answer_not_the_draft(openai_server, transcript):
    openai_server.script(Reply.chat(f"<think>Draft: {DRAFT} no, 17 s.</think>{FINAL}"))
    r = OpenAIReasoner("m", base_url=openai_server.base_url, api_key="k").ground("the lights go out", transcript)
    assert [(i.start, i.end, i.score) for i in r.intervals] == [(17, 21, 0.9)]


# --- 2. a server that sends no usage ---------------------------------------------------------------------------

def _no_usage(text: str) -> Reply:
    reply = Reply.chat(text)
    del reply.body["usage"]
    return reply


def test_a_request_without_token_counts_has_an_unknown_cost_not_zero():
    from vidground.pricing import with_cost
    from vidground.types import Usage

    unknown = with_cost(Usage(requests=1), "gpt-4o")
    assert unknown.cost_usd is None and unknown.unpriced_requests == 1
    priced = with_cost(Usage(requests=1, prompt_tokens=1000, completion_tokens=100), "gpt-4o")
    assert priced.cost_usd == pytest.approx((1000 * 2.5 + 100 * 10) / 1e6)
    total = priced + unknown  # a sum keeps the priced part and counts the unknown request
    assert total.cost_usd == pytest.approx(priced.cost_usd) and total.unpriced_requests == 1
    assert with_cost(Usage(), "gpt-4o").cost_usd == 0.0  # nothing sent costs nothing


def test_a_priced_model_on_a_server_without_usage_reports_no_cost(openai_server, transcript):
    openai_server.script(_no_usage(FINAL))
    r = OpenAIReasoner("gpt-4o", base_url=openai_server.base_url, api_key="k").ground("the lights go out", transcript)
    usage = r.usage["reason"]
    assert usage.requests == 1 and usage.cost_usd is None and usage.unpriced_requests == 1
    from pipelines.runs import format_cost

    assert format_cost(usage.cost_usd or 0.0, usage.requests, usage.unpriced_requests).startswith("unknown")


def test_describer_usage_without_counts_is_unknown(openai_server):
    from frame_describer.openai_describer import OpenAIDescriber
    from vidground.types import Frame
    import numpy as np

    openai_server.responder = lambda req: _no_usage("a dark room")
    d = OpenAIDescriber("gpt-4o", base_url=openai_server.base_url, api_key="k")
    from vidground.types import Usage

    frames = [Frame(t=float(i), index=i, image=np.zeros((16, 16, 3), np.uint8)) for i in range(3)]
    out = list(d.describe(frames))
    usage = sum((x.usage for x in out if x.usage is not None), Usage())
    assert usage.requests == 3 and usage.cost_usd is None


# --- 3. retry options and temperature checked when the backend is built ---------------------------------------

@pytest.mark.parametrize("opts", [dict(retry_base_delay=-1), dict(retry_base_delay=float("nan")),
                                  dict(retry_base_delay="0.5"), dict(retry_base_delay=float("inf")),
                                  dict(temperature=float("nan")), dict(temperature=5), dict(temperature=-0.1),
                                  dict(temperature=True), dict(max_retries=True)])
def test_bad_retry_options_and_temperature_are_configuration_errors_before_any_request(openai_server, opts):
    from vidground.errors import ConfigurationError

    name = next(iter(opts))
    with pytest.raises(ConfigurationError, match=name):
        OpenAIReasoner.check_options("m", base_url=openai_server.base_url, api_key="k", **opts)
    assert openai_server.requests == []


def test_the_shared_retry_loop_refuses_a_bad_delay_with_a_typed_error():
    from vidground.chat import call_with_retries
    from vidground.errors import ConfigurationError

    calls = []
    with pytest.raises(ConfigurationError, match="retry_base_delay"):
        call_with_retries(lambda: calls.append(1), provider="p", base_delay=-1, sleep=lambda s: None)
    assert calls == []


def test_a_session_refuses_a_negative_delay_before_a_503_server_is_asked(openai_server, transcript):
    from vidground.errors import ConfigurationError

    openai_server.responder = lambda req: Reply.error(503, "busy")
    with pytest.raises(ConfigurationError, match="retry_base_delay"):
        OpenAIReasoner("m", base_url=openai_server.base_url, api_key="k", retry_base_delay=-1).ground("x", transcript)
    assert openai_server.requests == []


def test_good_values_still_build(openai_server):
    OpenAIReasoner.check_options("m", base_url=openai_server.base_url, api_key="k", retry_base_delay=0,
                                 temperature=None)
    OpenAIReasoner.check_options("m", base_url=openai_server.base_url, api_key="k", temperature=2)


# --- 5. a base URL without /v1 --------------------------------------------------------------------------------

def test_a_404_names_the_url_and_the_base_url_meant(openai_server, transcript):
    from vidground.errors import ProviderError

    openai_server.responder = lambda req: Reply.error(404, "File Not Found")
    root = openai_server.base_url[:-len("/v1")]
    with pytest.raises(ProviderError) as info:
        OpenAIReasoner("m", base_url=root, api_key="k").ground("x", transcript)
    assert f"the URL was {root}/chat/completions" in str(info.value)
    assert f"did you mean the base URL {root}/v1?" in str(info.value)
    # under /v1 a 404 (an unknown model, say) names the URL but suggests nothing
    with pytest.raises(ProviderError) as info:
        OpenAIReasoner("m", base_url=openai_server.base_url, api_key="k").ground("x", transcript)
    assert f"the URL was {openai_server.base_url}/chat/completions" in str(info.value)
    assert "did you mean" not in str(info.value)


# --- 4. a context overflow on the first request ---------------------------------------------------------------

@pytest.fixture
def long_transcript() -> Transcript:
    import hashlib  # unique lines, which no merging shortens

    return Transcript.from_descriptions([FrameDescription(t=i * 2.0, text=f"line {i}: thing number {i} "
                                                          f"{hashlib.sha1(str(i).encode()).hexdigest()[:20]}")
                                         for i in range(400)])


def test_an_overflow_stating_the_context_is_learned_and_grounded_in_chunks(openai_server, long_transcript):
    serve_small_context(openai_server, limit_chars=6000)
    r = OpenAIReasoner("m", base_url=openai_server.base_url, api_key="k", max_tokens=256)  # assumes 100,000 tokens
    res = r.ground("thing number 5", long_transcript)
    first = openai_server.requests[0]
    assert sum(len(m["content"]) for m in first.json["messages"]) > 6000  # the whole transcript, refused
    assert len(openai_server.requests) > 2  # then the chunks and the final pass, each within the context
    assert all(sum(len(m["content"]) for m in q.json["messages"]) <= 6000 for q in openai_server.requests[1:])
    assert [(i.start, i.end) for i in res.intervals] == [(10, 14)]
    assert r.learned_context_tokens == 2048 and r.context_tokens == 100_000  # the setting is unchanged
    assert any("context is 2048 tokens" in w and "context_tokens=2048" in w for w in res.warnings)
    assert res.usage["reason"].requests == len(openai_server.requests) - 1  # the refused one was not answered
    sent = len(openai_server.requests)
    r.ground("thing number 7", long_transcript)  # a later query starts within the learned size: nothing refused
    assert all(sum(len(m["content"]) for m in q.json["messages"]) <= 6000 for q in openai_server.requests[sent:])


def test_an_overflow_within_the_size_assumed_says_which_context_tokens_to_set(openai_server, long_transcript):
    from vidground.errors import ProviderError

    serve_small_context(openai_server, limit_chars=1000, limit_tokens=8192)  # states more than is assumed
    r = OpenAIReasoner("m", base_url=openai_server.base_url, api_key="k", context_tokens=4096)
    with pytest.raises(ProviderError, match=r"give a smaller context_tokens \(--reasoner-opt context_tokens=N, "
                                            r"now 4096; the server's 8192 or less\)"):
        r.ground("thing number 5", long_transcript)
    assert len(openai_server.requests) == 1 and r.learned_context_tokens is None  # no retry: nothing to learn


def test_an_overflow_saying_no_size_is_raised_with_the_hint_after_one_request(openai_server, long_transcript):
    from vidground.errors import ProviderError

    openai_server.responder = lambda req: Reply.error(400, "the input length exceeds the context length")
    r = OpenAIReasoner("m", base_url=openai_server.base_url, api_key="k")
    with pytest.raises(ProviderError, match="give a smaller context_tokens .*now 100000; the model's context in tokens or less"):
        r.ground("thing number 5", long_transcript)
    assert len(openai_server.requests) == 1


def test_a_server_counting_more_tokens_than_the_estimate_scales_the_size_learned(openai_server, long_transcript):
    # a tokenizer that makes a token of every 2 characters, where the estimate counts 3: the stated 2048 would
    # overflow again; the stated length of the refused request scales it to the reasoner's counting
    def respond(req):
        tokens = sum(len(m["content"]) for m in req.json["messages"]) // 2 + 256
        if tokens > 2048:
            return Reply.error(400, f"This model's maximum context length is 2048 tokens. However, you requested "
                                    f"{tokens} tokens ({tokens - 256} in the messages, 256 in the completion).")
        return Reply.chat('{"intervals": [{"start": 10, "end": 14, "score": 0.8}]}')
    openai_server.responder = respond
    r = OpenAIReasoner("m", base_url=openai_server.base_url, api_key="k", max_tokens=256)
    res = r.ground("thing number 5", long_transcript)
    statuses = [sum(len(m["content"]) for m in q.json["messages"]) // 2 + 256 > 2048 for q in openai_server.requests]
    assert statuses[0] and not any(statuses[1:])  # one refused request, then every chunk fits
    assert r.learned_context_tokens is not None and r.learned_context_tokens < 2048 * 2 // 3
    assert any(f"now counts on {r.learned_context_tokens}" in w for w in res.warnings)


# --- 6. shared limits released when the backends holding them close -------------------------------------------

class _Owner:
    """A backend's stand-in: what holds limits on a shared limiter."""


def test_a_closed_backends_concurrency_limit_no_longer_binds_the_others():
    import threading

    from vidground.ratelimit import release_limits, shared_limiter

    url = "http://limits.invalid/v1"
    a, b = _Owner(), _Owner()
    tight = shared_limiter(url, "key", max_in_flight=1, owner=a)
    loose = shared_limiter(url, "key", max_in_flight=3, owner=b)
    assert tight is loose and loose.max_in_flight == 1  # the tightest holds while both are open
    entered, gate, most, lock = threading.Semaphore(0), threading.Event(), [0], threading.Lock()

    def request():
        with loose.slot():
            with lock:
                most[0] = max(most[0], loose._running)
            entered.release()
            gate.wait(30)
    threads = [threading.Thread(target=request) for _ in range(3)]
    for t in threads:
        t.start()
    assert entered.acquire(timeout=30)  # one request in flight ...
    assert loose._running == 1 and most[0] == 1  # ... and the others wait for the bound of 1
    release_limits(a)  # backend a closes: b's bound of 3 lets the two waiting requests go
    assert entered.acquire(timeout=30) and entered.acquire(timeout=30)
    assert most[0] == 3 and loose.max_in_flight == 3
    gate.set()
    for t in threads:
        t.join(30)
    release_limits(b)
    release_limits(b)  # idempotent
    fresh = shared_limiter(url, "key", owner=_Owner())  # the last one closed: the next starts from its own limits
    assert fresh is not loose and fresh.max_in_flight is None and fresh.rpm is None


def test_limits_are_released_when_the_owner_is_collected_and_kept_without_one():
    import gc

    from vidground.ratelimit import shared_limiter

    url = "http://limits-gc.invalid/v1"
    owner = _Owner()
    limiter = shared_limiter(url, "key", rpm=5, owner=owner)
    assert limiter.rpm == 5
    del owner
    gc.collect()
    assert shared_limiter(url, "key", owner=_Owner()).rpm is None
    kept = shared_limiter(url + "2", "key", rpm=5)  # no owner: for good, as before
    assert shared_limiter(url + "2", "key", rpm=50, owner=_Owner()) is kept and kept.rpm == 5


def test_a_closed_reasoners_rpm_no_longer_paces_the_next_one(openai_server):
    r1 = OpenAIReasoner("m", base_url=openai_server.base_url, api_key="k-limits", rpm=2)
    assert r1.limiter.rpm == 2
    r1.close()
    r2 = OpenAIReasoner("m", base_url=openai_server.base_url, api_key="k-limits")
    assert r2.limiter.rpm is None
    r2.close()


# --- 7. the caching rule names its exception --------------------------------------------------------------------

def test_where_the_docs_say_frames_are_described_once_they_name_the_query_aware_exception():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    found = 0
    for page in (root / "README.md", root / "docs" / "caching.md"):
        for para in re.split(r"\n\s*\n|\n- ", page.read_text(encoding="utf-8")):
            if "described once across queries and runs" in para:
                found += 1
                assert "mode=aware" in para and "never cached" in para, (page.name, para[:200])
    assert found >= 2



def test_answers_and_events_take_the_last_usable_reply_too():
    from temporal_reasoner.events import parse_events
    from temporal_reasoner.qa import parse_answer

    reply = ('<think>{"answer": "no", "intervals": [[0, 5]]}</think>Draft {"answer": "maybe", "intervals": [[1, 2]]} '
             'final {"answer": "yes", "intervals": [[3, 4]]}')
    parsed = parse_answer(reply, choices=None, duration=10)
    assert parsed.answer == "yes" and [(i.start, i.end) for i in parsed.intervals] == [(3, 4)]
    assert any("2 different answers; used the last" in w for w in parsed.warnings)
    events, warnings = parse_events('{"events": [{"start": 0, "end": 2, "caption": "a"}]} no: '
                                    '{"events": [{"start": 3, "end": 5, "caption": "b"}]}', lo=0, hi=10)
    assert [(e.start, e.end, e.caption) for e in events] == [(3, 5, "b")]
    assert any("used the last" in w for w in warnings)
