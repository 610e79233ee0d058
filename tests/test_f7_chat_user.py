"""Chat-side defects found by a user test (F7): reasoning drafts, unknown usage, retry options, context overflow
on a first request, a base URL without /v1, shared limiters released, and the caching note."""

from __future__ import annotations

import pytest

from vidground.types import FrameDescription
from temporal_reasoner.openai_reasoner import OpenAIReasoner
from temporal_reasoner.parsing import extract_json, parse_reply_detailed, strip_reasoning
from temporal_reasoner.transcript import Transcript

from _helpers_openai_server import FakeOpenAIServer, Reply, openai_server  # noqa: F401

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
