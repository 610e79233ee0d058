"""Ground a query with an OpenAI-compatible chat model (OpenAI, vLLM, Ollama, llama.cpp, ...).

The prompt, parsing, validation policy, re-asking and the ``response_format`` ladder
(``json_schema`` -> ``json_object`` with a schema -> ``json_object`` -> plain text) live in
:mod:`temporal_reasoner.structured`; this module only sends requests. Transport faults are
retried in :mod:`vidground.chat` (the SDK's own retries are switched off), except an explicit
refusal of the ``response_format`` (:func:`~temporal_reasoner.structured.is_format_refusal`):
the ladder steps down at once, and this reasoner instance remembers the refusal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

from vidground.errors import ConfigurationError, ProviderError
from vidground.chat import (
    build_client,
    call_with_retries,
    check_retry_options,
    check_temperature,
    first_choice,
    usage_of,
)
from vidground.chat import CHAT_PATH, check_by_building, public_url
from vidground.ratelimit import release_limits, shared_limiter
from vidground.types import Usage

from .base import BaseReasoner, Reasoner
from .context import estimate_tokens, ground_in_context
from .structured import (RESPONSE_FORMATS, ChatReply, check_fallback, is_context_overflow, is_format_refusal,
                         resolve_fallback, response_format, run_structured, stated_context, stated_request)
from .transcript import Transcript
from .timestyles import TimeFormat
from vidground.types import Answer, Events, GroundingResult, TimeStyle

#: How many context sizes one :meth:`OpenAIReasoner.ground` learns from overflow errors before it gives up.
MAX_CONTEXT_LESSONS = 2


class OpenAIReasoner(BaseReasoner):
    """``openai:MODEL`` - a chat model that returns the intervals as JSON, in seconds.

    ``fallback`` (a reasoner or spec such as ``"embedding"``, resolved on first use) answers
    when no reply validates after ``max_attempts``; without it an
    :class:`~vidground.errors.OutputValidationError` is raised. ``context_tokens`` is the model's
    context as this reasoner counts it (:func:`~temporal_reasoner.context.estimate_tokens`, which errs
    high): a longer transcript is grounded hierarchically (:mod:`temporal_reasoner.context`), chunks
    for candidates then one pass over them, never cut; ``None`` sends every transcript whole.

    Transport faults are retried ``max_retries`` times (:func:`vidground.chat.call_with_retries`). A timeout is
    sent again at most ``timeout_retries`` times (within ``max_retries``); by default (``None``) never to a server on
    this machine (``localhost``, 127.0.0.1: it is still working on the prompt) and ``max_retries`` times to any
    other. Give it for a localhost tunnel or proxy to a remote server (``ssh -L 8000:gpu-box:8000``):
    ``timeout_retries=4`` / ``--reasoner-opt timeout_retries=4``.
    """

    def __init__(self, model: str, *, client: Any = None, base_url: str | None = None, api_key: str | None = None,
                 max_attempts: int = 3, fallback: Reasoner | str | None = None,
                 response_formats: Sequence[str] = RESPONSE_FORMATS, time_style: TimeStyle = "seconds",
                 max_intervals: int = 3, max_tokens: int = 512,
                 max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens",
                 temperature: float | None = 0.0, timeout: float = 120.0, max_retries: int = 4, retry_base_delay: float = 0.5,
                 prices: Any = None, rpm: float | None = None, tpm: float | None = None,
                 context_tokens: int | None = 100_000, timeout_retries: int | None = None):
        if not isinstance(model, str) or not model.strip():
            raise ConfigurationError("the openai reasoner needs a model name, e.g. 'openai:gpt-4o-mini'")
        if isinstance(response_formats, str):  # one name, or "a,b" (--reasoner-opt response_formats=text)
            response_formats = [f.strip() for f in response_formats.split(",") if f.strip()]
        if not response_formats:
            raise ConfigurationError(f"response_formats must name at least one of: {', '.join(RESPONSE_FORMATS)}")
        for name in response_formats:
            response_format(name)
        if max_tokens_param not in ("max_tokens", "max_completion_tokens"):
            raise ConfigurationError("max_tokens_param must be 'max_tokens' or 'max_completion_tokens'")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise ConfigurationError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        if not isinstance(max_attempts, int) or max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be a positive integer, got {max_attempts!r}")
        check_retry_options(max_retries, timeout_retries=timeout_retries, retry_base_delay=retry_base_delay)
        check_temperature(temperature)
        from vidground.pricing import check_prices

        check_prices(prices)  # a price file that cannot be read fails here, not after each paid reply
        if context_tokens is not None and (isinstance(context_tokens, bool) or not isinstance(context_tokens, int)
                                           or context_tokens <= 2 * max_tokens + 256):
            raise ConfigurationError(f"context_tokens must be an integer above 2 * max_tokens + 256 = "
                                     f"{2 * max_tokens + 256} (room for a prompt and the reply), or None, "
                                     f"got {context_tokens!r}")
        self.context_tokens = context_tokens
        #: the context a server stated when it refused a longer request (:meth:`ground`, :meth:`answer`,
        #: :meth:`events`); None until then. It only shrinks (the smallest stated), under ``_context_lock``.
        self.learned_context_tokens: int | None = None
        self._context_lock = threading.Lock()
        self.model = model.strip()
        self.name = f"openai:{self.model}"
        self.max_attempts, self.response_formats = max_attempts, tuple(response_formats)
        self.time_style, self.max_intervals = TimeFormat.parse(time_style).spec, max_intervals
        self.max_tokens, self.max_tokens_param, self.temperature = max_tokens, max_tokens_param, temperature
        self.timeout, self.max_retries, self.prices = timeout, max_retries, prices
        self.retry_base_delay, self.timeout_retries = retry_base_delay, timeout_retries
        self._fallback = check_fallback(fallback)
        self.refused_formats: set[str] = set()  # what this reasoner's server refused
        self._owns_client = client is None
        self._client = build_client(client=client, base_url=base_url, api_key=api_key, timeout=timeout)
        # the same pacing as every other backend of the process on this endpoint and key with these limits
        self.limiter = shared_limiter(self._client.base_url, self._client.api_key, rpm=rpm, tpm=tpm, owner=self)

    @classmethod
    def check_options(cls, arg: str | None, *, local: bool = True, **options: Any) -> None:
        """Built and closed, nothing sent, the shared rate limits left as they are
        (:func:`vidground.chat.check_by_building`)."""
        check_by_building(cls, arg, options, local=local)

    @classmethod
    def from_spec(cls, arg: str | None, **options: Any) -> "OpenAIReasoner":
        if not arg:
            raise ConfigurationError("the openai reasoner needs a model: 'openai:MODEL', e.g. 'openai:gpt-4o-mini'")
        return cls(arg, **options)

    @property
    def base_url(self) -> str | None:
        return public_url(self._client.base_url)

    @property
    def fallback(self) -> Reasoner | None:
        if isinstance(self._fallback, str):
            self._fallback = resolve_fallback(self._fallback)
        return self._fallback

    def close(self) -> None:
        """Close the connection pool of the client this reasoner built (an injected one is the caller's), and
        release the rate limits it holds on the process's shared limiter (:func:`vidground.ratelimit.release_limits`)."""
        release_limits(self)
        if self._owns_client:
            self._client.close()

    def __repr__(self) -> str:
        return f"OpenAIReasoner(model={self.model!r}, base_url={self.base_url!r})"

    def settings(self) -> dict[str, Any]:
        fb = self._fallback
        return {"name": self.name, "model": self.model, "base_url": self.base_url,
                "max_attempts": self.max_attempts, "response_formats": list(self.response_formats),
                "time_style": self.time_style, "max_intervals": self.max_intervals,
                "max_tokens": self.max_tokens, "temperature": self.temperature,
                "context_tokens": self.context_tokens,
                "fallback": fb if isinstance(fb, str) or fb is None else getattr(fb, "name", type(fb).__name__)}

    def request(self, messages: list[dict[str, Any]], fmt: dict[str, Any] | None) -> dict[str, Any]:
        """The exact chat-completion arguments (pure; no I/O)."""
        kw: dict[str, Any] = {"model": self.model, "messages": messages, self.max_tokens_param: self.max_tokens}
        if self.temperature is not None:
            kw["temperature"] = self.temperature
        if fmt is not None:
            kw["response_format"] = fmt
        return kw

    def chat(self, messages: list[dict[str, Any]], fmt: dict[str, Any] | None) -> ChatReply:
        kw = self.request(messages, fmt)

        def retry_if(err: ProviderError) -> bool:  # a refusal is not retried: the ladder steps down
            return not (fmt is not None and is_format_refusal(err))

        # prompt characters / 4 plus the reply's bound: a token estimate that errs high, for tpm only
        tokens = sum(len(str(m.get("content", ""))) for m in messages) // 4 + self.max_tokens if self.limiter.tpm else 0

        sent = 0

        def attempt() -> Any:
            nonlocal sent
            with self.limiter.slot(tokens):  # every attempt, retries included, is paced
                sent += 1
                return self._client.chat.completions.create(**kw)

        try:
            completion = call_with_retries(attempt, provider=self.name, secret=self._client.api_key,
                                           max_retries=self.max_retries, retry_if=retry_if,
                                           base_delay=self.retry_base_delay, timeout_retries=self.timeout_retries,
                                           # the endpoint, named when the error does not say
                                           url=f"{str(self._client.base_url).rstrip('/')}{CHAT_PATH}")
        except ProviderError as exc:
            if is_context_overflow(exc):  # what this reasoner counted for it, to compare with what the server did
                exc.estimated_tokens = estimate_tokens(messages)  # type: ignore[attr-defined]
            raise
        usage = self._priced(usage_of(completion, sent=sent))  # answered, so paid, whatever its choices
        text, finish = first_choice(completion, self.name, usage=usage)
        return ChatReply(text=text, finish_reason=finish, usage=usage)

    def _priced(self, usage: Usage) -> Usage:
        if self.prices is False:
            return usage
        from vidground.pricing import with_cost

        return with_cost(usage, self.model, self.prices)

    def ground(self, query: str, transcript: Transcript) -> GroundingResult:
        """The query's intervals, the transcript grounded hierarchically when it exceeds the context
        (:mod:`temporal_reasoner.context`). A server that refuses a request as longer than its context and states
        its size ("maximum context length is 8192 tokens") teaches this reasoner that size: the query is grounded
        again within it (in chunks), with a warning, and later queries use it from the start. When the error states
        the refused request's length too and this reasoner counted it lower, the size is scaled to its counting.
        One retry per size learned, only a size below the one that overflowed, at most :data:`MAX_CONTEXT_LESSONS`
        per query: any other overflow is raised, saying which ``context_tokens`` to set."""
        return self._learning(lambda context: self._ground(query, transcript, context), "grounded")

    def _learning(self, run: Callable[[int | None], Any], done: str) -> Any:
        """``run(context)`` (a grounding, an answer, events) within the context this reasoner counts on, run again
        within a smaller one a context overflow states (see :meth:`ground`), the lessons noted in its result's
        warnings and the refused requests' usage added to its ``reason`` usage."""
        paid, notes = Usage(), list[str]()
        while True:  # at most MAX_CONTEXT_LESSONS + 1 times: each lesson is noted, and a lesson past them raises
            context = self._context()
            try:
                result = run(context)
            except ProviderError as exc:
                stated, counted = stated_context(exc), self._counted_context(exc)
                if len(notes) == MAX_CONTEXT_LESSONS or counted is None \
                        or not (2 * self.max_tokens + 256 < counted < (context or float("inf"))):
                    raise self._overflow_hint(exc, counted, paid) from None
                paid = paid + exc.usage if isinstance(exc.usage, Usage) else paid
                self._learn(counted)
                notes.append(f"{self.name}: the server refused a request longer than its context and said the "
                             f"context is {stated} tokens (this reasoner assumed "
                             f"{'no limit' if context is None else context}"
                             + (f"; it counts the server's tokens low, so it now counts on {counted}"
                                if counted != stated else "")
                             + f"): {done} again within it; set context_tokens={counted} (--reasoner-opt "
                             f"context_tokens={counted}) to skip the refused request")
                continue
            if not notes:
                return result
            return result.model_copy(update={"warnings": [*notes, *result.warnings],
                                             "usage": {**result.usage, "reason": paid + result.usage.get(
                                                 "reason", Usage())}})

    def _learn(self, counted: int) -> None:
        """Count on ``counted`` tokens of context from now on, unless a smaller size was learned (by another
        thread's request, say): the size learned never grows again."""
        with self._context_lock:
            learned = self.learned_context_tokens
            self.learned_context_tokens = counted if learned is None else min(learned, counted)

    def _counted_context(self, exc: ProviderError) -> int | None:
        """The context an overflow error states, in this reasoner's counting (:func:`estimate_tokens`): when the
        error also states the refused request's length and this reasoner counted it lower (a tokenizer that splits
        numbers finer), the stated size scaled down by that ratio, less a tenth for chunks counted lower still."""
        stated = stated_context(exc)
        if stated is None:
            return None
        request, estimated = stated_request(exc), getattr(exc, "estimated_tokens", None)
        if request is None or not estimated:
            return stated
        tokens, with_reply = request
        counted = estimated + (self.max_tokens if with_reply else 0)
        return stated if tokens <= counted else int(stated * counted / tokens * 0.9)

    def _context(self) -> int | None:
        """The context this reasoner counts on: ``context_tokens``, or the smaller size a server stated."""
        with self._context_lock:
            learned = self.learned_context_tokens
        return learned if learned is not None and (self.context_tokens is None or learned < self.context_tokens) \
            else self.context_tokens

    def _context_source(self, context: int | None) -> str:
        """What set ``context`` (the size counted on), for messages: the setting, or the size a server stated."""
        if context is not None and context != self.context_tokens:
            return (f"the size the server stated, learned from a refused request; the setting is context_tokens="
                    f"{self.context_tokens}")
        return f"context_tokens={context}; context_tokens=None sends it whole"

    def _overflow_hint(self, exc: ProviderError, learned: int | None, paid: Usage) -> ProviderError:
        """``exc``, a context overflow's message ending with the ``context_tokens`` to set, ``paid`` added to its
        usage; any other error as it is."""
        if paid.requests:
            exc.usage = paid + exc.usage if isinstance(exc.usage, Usage) else paid
        if not is_context_overflow(exc):
            return exc
        size = f"the server's {learned}" if learned is not None else "the model's context in tokens"
        hint = (f"; the request did not fit the model's context: give a smaller context_tokens (--reasoner-opt "
                f"context_tokens=N, now {self._context()}; {size} or less) and long transcripts are "
                f"grounded in chunks")
        err = type(exc)(f"{exc}{hint}", status=exc.status, retryable=exc.retryable, provider=exc.provider,
                        url=exc.url, attempts=exc.attempts, elapsed=exc.elapsed, usage=exc.usage)
        return err

    def _ground(self, query: str, transcript: Transcript, context: int | None) -> GroundingResult:
        common = dict(reasoner_name=self.name, max_attempts=self.max_attempts, fallback=self._fallback_later(),
                      response_formats=self.response_formats, refused=self.refused_formats,
                      time_style=self.time_style, max_intervals=self.max_intervals)
        if context is None:
            return run_structured(self.chat, query, transcript, settings={"model": self.model}, **common)
        return ground_in_context(self.chat, query, transcript, count_tokens=estimate_tokens,
                                 budget=context - 2 * self.max_tokens - 128,  # the reply and a re-ask
                                 settings={"model": self.model}, **common,
                                 option=self._context_source(context))

    def _fallback_later(self) -> Any:
        return (lambda: self.fallback) if self._fallback is not None else None

    def answer(self, question: str, transcript: Transcript, *, choices: Sequence[str] | None = None) -> Answer:
        """Answer ``question`` (one of ``choices`` when given) with the intervals that support it
        (:func:`temporal_reasoner.qa.run_answer`: same ladder, refusal memory, re-asking and ``fallback`` as
        ``ground``). A transcript longer than the context counted on (``context_tokens``, or the smaller size a
        server stated, learned here as in ``ground``) is merged (near-duplicate spans); one that still does not fit
        is a :class:`ConfigurationError` (answers are not combined across chunks), a question (with its options) too
        long for that context on its own an :class:`InputError` about the question (:func:`~.qa.fit_question`)."""
        from .qa import check_choices, check_question, fit_question, run_answer

        question, choices = check_question(question), check_choices(choices)

        def run(context: int | None) -> Answer:
            notes: list[str] = []
            fitted = transcript
            if context is not None:
                try:
                    fitted, notes = fit_question(question, transcript, choices, estimate_tokens,
                                                 context - 2 * self.max_tokens - 128,  # the reply and a re-ask
                                                 time_style=self.time_style, max_intervals=self.max_intervals)
                except ConfigurationError as exc:
                    raise ConfigurationError(f"{exc} (the context counted on: {context} tokens, set by "
                                             f"{self._context_source(context)})") from None
            res = run_answer(self.chat, question, fitted, choices, reasoner_name=self.name,
                             max_attempts=self.max_attempts, response_formats=self.response_formats,
                             refused=self.refused_formats, time_style=self.time_style,
                             max_intervals=self.max_intervals, settings={"model": self.model},
                             fallback=self._fallback_later(), fallback_transcript=transcript)
            return res.model_copy(update={"warnings": [*notes, *res.warnings]}) if notes else res
        return self._learning(run, "answered")

    def events(self, transcript: Transcript, *, max_events: int | None = None,
               chunk_entries: int | None = None) -> Events:
        """The transcript's events (:func:`temporal_reasoner.events.run_events`: the same ladder, refusal memory,
        re-asking and ``fallback``). Without ``chunk_entries`` the chunks are as long as fit the context counted on
        (``context_tokens``, or the smaller size a server stated, learned here as in ``ground``;
        :func:`~temporal_reasoner.events.fitting_chunk_entries`)."""
        from .events import MAX_EVENTS, run_events

        return self._learning(lambda context: run_events(
            self.chat, transcript, reasoner_name=self.name, max_attempts=self.max_attempts,
            response_formats=self.response_formats, refused=self.refused_formats,
            time_style=self.time_style, max_events=MAX_EVENTS if max_events is None else max_events,
            chunk_entries=chunk_entries, settings={"model": self.model}, fallback=self._fallback_later(),
            count_tokens=estimate_tokens,  # the reply and a re-ask holding the reply
            budget=context and context - 2 * self.max_tokens - 128), "found events")


__all__ = ["OpenAIReasoner", "resolve_fallback"]
