"""Which 400 answers end the re-asking as a context overflow (:func:`is_context_overflow`).

The servers' own phrasings do; a 400 about something else, whose message happens to say "length", "maximum",
"context" or "tokens", is the typed ProviderError it is, raised at once and not taken for an overflow (the
previous pattern matched ``context length``, ``too many tokens`` and ``exceeds the maximum`` anywhere)."""

from __future__ import annotations

import pytest

from test_n_review_fixes import Stub, lines
from vidground.errors import ProviderError
from temporal_reasoner.events import run_events
from temporal_reasoner.qa import run_answer
from temporal_reasoner.structured import ChatReply, ContextOverflowError, is_context_overflow, run_structured
from vidground.types import GroundingResult, Interval, Usage

#: What each server answers (HTTP 400) when a request does not fit its context.
OVERFLOWS = {
    "openai": "This model's maximum context length is 8192 tokens. However, your messages resulted in 9100 tokens. "
              "Please reduce the length of the messages.",
    "openai-responses": "Your input exceeds the context window of this model. Please adjust your input and try again.",
    "openai-code": "context_length_exceeded: the request is too large for this model",
    "vllm": "This model's maximum context length is 4096 tokens. However, you requested 4200 tokens (3700 in the "
            "messages, 500 in the completion). Please reduce the length of the messages or completion.",
    "vllm-max-tokens": "'max_tokens' or 'max_completion_tokens' is too large: 800. This model's maximum context "
                       "length is 4096 tokens and your request has 3500 input tokens (800 > 4096 - 3500).",
    "vllm-v1": "The decoder prompt (length 5000) is longer than the maximum model length of 4096. Make sure that "
               "`max_model_len` is no smaller than the number of text tokens.",
    "llama.cpp": "request (4476 tokens) exceeds the available context size (4096 tokens), try increasing it",
    "llama.cpp-older": "the request exceeds the available context size, try increasing the context size or enable "
                       "context shift",
    "ollama": "the input length exceeds the context length",
    "ollama-embed": "input exceeds maximum context length",
    "lm-studio": "Trying to keep the first 10136 tokens when context the overflows. However, the model is loaded "
                 "with context length of only 7866 tokens, which is not enough. Try to load the model with a larger "
                 "context length, or provide a shorter input",
    "lm-studio-mlx": "Context size has been exceeded.",
    "lm-studio-midgen": "Reached context length of 4096 tokens with model (arch: llama) that does not currently "
                        "support mid-generation context overflow. Try reloading with a larger context length or "
                        "shortening the prompt/chat.",
    "lm-studio-n-keep": "Cannot truncate prompt with n_keep (15028) >= n_ctx (7424)",
    # the phrasings a17f303's narrower pattern dropped (its predecessor took the first four for overflows)
    "sglang": "The input (61709 tokens) is longer than the model's context length (40960 tokens).",
    "sglang-older": "Input length (160062 tokens) exceeds the maximum allowed length (59862 tokens).",
    "vllm-multimodal": "The prompt (total length 25938) is too long to fit into the model (context length 4096). Make "
                       "sure that `max_model_len` is no smaller than the number of text tokens plus multimodal tokens.",
    "gemini-openai": "The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).",
    "anthropic": "prompt is too long: 208310 tokens > 200000 maximum",
    "claude-bedrock-openrouter": "input length and `max_tokens` exceed context limit: 149674 + 64000 > 204658, "
                                 "decrease input length or `max_tokens` and try again",
    # the pattern before a17f303 took these for overflows too ('prompt is too long'); 4c1b897's wanted "tokens"
    "fireworks": "The prompt is too long: 40177, model maximum context length: 32767",
    "cohere": "too many tokens: size limit exceeded by 1502 tokens. Try using shorter or fewer inputs, or setting "
              "prompt_truncation='AUTO'.",
    "cohere-older": "too many tokens: total number of tokens (prompt and prediction) cannot exceed 2048 - received "
                    "6354. Try using a shorter prompt or a smaller max_tokens value.",
}

#: 400 answers about a parameter, not the context: each says "length", "maximum", "context" or "tokens".
UNRELATED = {
    "name-too-long": "Invalid 'messages[1].name': string exceeds the maximum length of 64 characters.",
    "logit-bias": "Invalid 'logit_bias': too many tokens in the map (at most 300).",
    "context-length-param": "Invalid value for 'context_length': expected a positive integer, got -1.",
    "stop-list": "Invalid 'stop': the list exceeds the maximum of 4 sequences.",
    "max-tokens-cap": "max_tokens is too large: 100000. This model supports at most 16384 completion tokens.",
    "n-probs": "n_probs exceeds the available vocabulary size",
    "context-window-param": "Unrecognized request argument supplied: context_window",
    "content-string-cap": "Invalid 'messages[1].content': string too long. Expected a string with maximum length "
                          "10485760, but got a string with length 10500000 instead.",
    "input-length-param": "Invalid 'max_input_length': must be at most 8192 tokens, got 9000.",
    "prompt-param": "Invalid 'prompt': a system prompt is too long for this template (at most 64 lines).",
}


@pytest.mark.parametrize("server", sorted(OVERFLOWS))
def test_each_servers_context_error_is_an_overflow(server):
    message = f"p: HTTP 400: {OVERFLOWS[server]}"
    assert is_context_overflow(ProviderError(message, status=400))
    assert is_context_overflow(ProviderError(message, status=413))
    assert not is_context_overflow(ProviderError(message, status=500))  # a fault, whatever it says


@pytest.mark.parametrize("case", sorted(UNRELATED))
def test_a_400_about_a_parameter_is_not_an_overflow(case):
    assert not is_context_overflow(ProviderError(f"p: HTTP 400: {UNRELATED[case]}", status=400))


def test_the_local_reasoners_own_overflow_needs_no_phrasing():
    assert is_context_overflow(ContextOverflowError("a 5000-token prompt does not fit n_ctx=4096", status=None))


def _chat_answering_the_reask_with(message: str):
    asked: list[list] = []

    def chat(messages, fmt):
        asked.append(messages)
        if len(messages) > 2:  # the re-ask: the base prompt, the unusable reply and the error
            raise ProviderError(f"p: HTTP 400: {message}", status=400)
        return ChatReply(text="no json here", finish_reason="stop")
    return chat, asked


class GroundingStub(Stub):
    """:class:`Stub` that grounds too (one interval over the whole transcript)."""

    def ground(self, query, transcript):
        return GroundingResult(query=query, duration=transcript.duration, reasoner="stub",
                               intervals=[Interval(start=0, end=transcript.duration)], usage={"reason": Usage()})


def _run(path: str, chat):
    """Grounding (:func:`run_structured`), a question (:func:`run_answer`) or events (:func:`run_events`) with
    ``chat``, a stub as the fallback."""
    common = dict(reasoner_name="m", response_formats=("text",), fallback=GroundingStub())
    if path == "ground":
        return run_structured(chat, "a door opens", lines(5), **common)
    if path == "answer":
        return run_answer(chat, "what opens?", lines(5), ["a door", "a window"], **common)
    return run_events(chat, lines(5), **common)


PATHS = ("ground", "answer", "events")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("server", sorted(OVERFLOWS))
def test_a_reask_refused_for_the_context_ends_the_reasking_and_the_fallback_answers(server, path):
    """Grounding and questions end their re-asking on an overflow as events do (they raised the ProviderError
    although a fallback was set)."""
    chat, asked = _chat_answering_the_reask_with(OVERFLOWS[server])
    out = _run(path, chat)
    assert len(asked) == 2 and out.settings["fallback"] == "stub"
    assert any("the re-ask did not fit the model's context" in w for w in out.warnings)
    assert out.usage["reason"].requests == 1  # the first reply, unusable and paid; the refused re-ask was not


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", sorted(UNRELATED))
def test_a_reask_refused_for_another_reason_raises_the_provider_error_at_once(case, path):
    chat, asked = _chat_answering_the_reask_with(UNRELATED[case])
    with pytest.raises(ProviderError, match="HTTP 400") as err:
        _run(path, chat)
    assert err.value.status == 400 and UNRELATED[case] in str(err.value)
    assert len(asked) == 2  # the first request and the re-ask that was refused: nothing after it
    assert err.value.usage.requests == 1  # the first reply was paid
