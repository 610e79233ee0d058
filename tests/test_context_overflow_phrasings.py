"""Which 400 answers end the re-asking as a context overflow (:func:`is_context_overflow`).

The servers' own phrasings do; a 400 about something else, whose message happens to say "length", "maximum",
"context" or "tokens", is the typed ProviderError it is, raised at once and not taken for an overflow (the
previous pattern matched ``context length``, ``too many tokens`` and ``exceeds the maximum`` anywhere)."""

from __future__ import annotations

import pytest

from test_n_review_fixes import Stub, lines
from vidground.errors import ProviderError
from temporal_reasoner.events import run_events
from temporal_reasoner.structured import ChatReply, ContextOverflowError, is_context_overflow

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


@pytest.mark.parametrize("server", sorted(OVERFLOWS))
def test_a_reask_refused_for_the_context_ends_the_reasking_and_the_fallback_answers(server):
    chat, asked = _chat_answering_the_reask_with(OVERFLOWS[server])
    out = run_events(chat, lines(5), reasoner_name="m", response_formats=("text",), fallback=Stub())
    assert len(asked) == 2 and out.settings["fallback"] == "stub"
    assert any("the re-ask did not fit the model's context" in w for w in out.warnings)


@pytest.mark.parametrize("case", sorted(UNRELATED))
def test_a_reask_refused_for_another_reason_raises_the_provider_error_at_once(case):
    chat, asked = _chat_answering_the_reask_with(UNRELATED[case])
    with pytest.raises(ProviderError, match="HTTP 400") as err:
        run_events(chat, lines(5), reasoner_name="m", response_formats=("text",), fallback=Stub())
    assert err.value.status == 400 and UNRELATED[case] in str(err.value)
    assert len(asked) == 2  # the first request and the re-ask that was refused: nothing after it
