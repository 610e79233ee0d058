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
