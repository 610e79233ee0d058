"""Structured output for chat-model reasoners: the reply schema, the prompt, robust parsing,
validation, re-asking and the response-format degradation ladder.

Every chat reasoner (OpenAI-compatible, transformers, llama.cpp) shares this module: it only
needs a ``chat(messages, response_format) -> ChatReply`` callable and calls :func:`run_structured`.

The reply schema, the parser and its validation policy (what is clamped, what is rejected)
live in :mod:`temporal_reasoner.parsing` and are re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

import prompts
from vidground.errors import (
    ConfigurationError,
    IncompleteOutputError,
    OutputValidationError,
    ProviderError,
    keep_paid,
)
from vidground.types import Usage

from .base import Reasoner, check_query
from .parsing import (
    INTERVALS_SCHEMA,
    RESPONSE_FORMATS,
    FormatName,
    ParsedReply,
    ReplyError,
    extract_json,
    intervals_schema,
    parse_reply,
    parse_reply_detailed,
)
from .transcript import Transcript
from vidground.types import GroundingResult, TimeStyle

from .timestyles import TimeFormat


#: A chat template for tokenizers that have none (base models).
PLAIN_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] | capitalize }}: {{ m['content'] }}\n\n{% endfor %}"
    "{% if add_generation_prompt %}Assistant: {% endif %}"
)
#: Gemma's turn format (Gemma has no system role: the system text opens the first user turn).
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% set sys = namespace(text='') %}"
    "{% for m in messages %}{% if m['role'] == 'system' %}{% set sys.text = m['content'] + '\n\n' %}"
    "{% else %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}\n"
    "{% if m['role'] == 'user' %}{{ sys.text }}{% set sys.text = '' %}{% endif %}"
    "{{ m['content'] }}<end_of_turn>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def response_format(name: str, *, max_intervals: int | None = None,
                    time_style: "str | TimeFormat | None" = None) -> dict[str, Any] | None:
    """The ``response_format`` request value for a ladder step (``None`` for plain text).

    ``max_intervals`` bounds the list in the ``json_object_schema`` step (a grammar there, so a
    small model cannot ramble through hundreds of intervals); the strict ``json_schema`` step
    keeps :data:`INTERVALS_SCHEMA` as is, the subset every strict-mode server accepts.
    ``time_style``: an indexed style's schema says its units (:func:`intervals_schema`).
    """
    indexed = TimeFormat.parse(time_style).indexed
    if name == "json_schema":
        return {"type": "json_schema", "json_schema": {
            "name": "intervals", "strict": True,
            "schema": intervals_schema(time_style=time_style) if indexed else INTERVALS_SCHEMA}}
    if name == "json_object_schema":  # llama.cpp / vLLM extension: JSON mode constrained by a schema
        return {"type": "json_object", "schema": intervals_schema(max_intervals, time_style=time_style)}
    if name == "json_object":
        return {"type": "json_object"}
    if name == "text":
        return None
    raise ConfigurationError(f"unknown response format {name!r}; choose one of: {', '.join(RESPONSE_FORMATS)}")


# --- messages ---------------------------------------------------------------------------------

#: The seconds and mm:ss styles' prompt lines (what benchmarks/llm_prompts.py varies); see TimeFormat.note.
_TIME_NOTES = {style: TimeFormat(style).note(None) for style in ("seconds", "mmss")}


def build_messages(query: str, transcript: Transcript, *, time_style: "TimeStyle | TimeFormat" = "seconds",
                   max_intervals: int = 3) -> list[dict[str, str]]:
    """The chat messages that ask for the query's intervals in the transcript, its times written in
    ``time_style`` (:mod:`temporal_reasoner.timestyles`)."""
    fmt = TimeFormat.parse(time_style)
    if max_intervals < 1:
        raise ConfigurationError(f"max_intervals must be at least 1, got {max_intervals}")
    user = prompts.load("reason_user").render(
        duration=f"{transcript.duration:.1f}", time_note=fmt.note(transcript),
        transcript=fmt.render(transcript), query=check_query(query), max_intervals=max_intervals)
    unit, units = fmt.units()
    system = (prompts.load("reason_system_indexed").render(unit=unit, units=units, last=fmt.last(transcript))
              if fmt.indexed else prompts.load("reason_system").render())
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def reask_message(error: str, transcript: Transcript, fmt: TimeFormat) -> str:
    """The re-ask after an unusable reply, in the style's units."""
    if fmt.indexed:
        return prompts.load("reask_indexed").render(error=error, unit=fmt.units()[0], last=fmt.last(transcript))
    return prompts.load("reask").render(error=error, duration=f"{transcript.duration:.1f}")


def prompt_hashes(time_style: "TimeStyle | TimeFormat | None" = None) -> dict[str, str]:
    """Hashes of the templates used, for settings and cache keys."""
    if TimeFormat.parse(time_style).indexed:
        names = ("reason_system_indexed", "reason_user", "reask_indexed", "reask_incomplete")
    else:
        names = ("reason_system", "reason_user", "reask", "reask_incomplete")
    return {n: prompts.load(n).hash for n in names}


# --- the ask / re-ask loop --------------------------------------------------------------------


@dataclass
class ChatReply:
    """One chat completion: the text, why it stopped, and what it cost."""

    text: str
    finish_reason: str | None = None
    usage: Usage = field(default_factory=lambda: Usage(requests=1))


ChatFn = Callable[[list[dict[str, Any]], dict[str, Any] | None], ChatReply]


class ResponseFormatRefused(ProviderError):
    """The server refused the requested ``response_format``; the next ladder step is tried."""


class ContextOverflowError(ProviderError):
    """A prompt and its reply do not fit the model's context (raised by the local reasoners before generating)."""


#: How a server says a request does not fit its context: each alternative is one server's phrasing, so a 400
#: about something else (a parameter whose message says "length", "maximum" or "tokens") is not taken for one.
_NAMES_CONTEXT = re.compile("|".join((
    # OpenAI and vLLM: "This model's maximum context length is 4096 tokens. However, you requested ..." (vLLM
    # says it too when max_tokens does not fit beside the prompt); OpenAI's code for it; OpenAI's newer wording
    r"maximum context length is \d+", r"context_length_exceeded", r"exceeds the context window",
    # vLLM's V1 engine: "The decoder prompt (length 5000) is longer than the maximum model length of 4096"
    r"longer than the maximum model length",
    # llama.cpp's server: "request (4476 tokens) exceeds the available context size (4096 tokens)", older
    # builds "the request exceeds the available context size, try increasing it"; its error type
    r"exceeds the available context size", r"exceed_context_size_error",
    # Ollama: "the input length exceeds the context length", "input exceeds maximum context length"
    r"exceeds (the )?(maximum )?context length",
    # LM Studio: "Trying to keep the first N tokens when context the overflows. However, the model is loaded
    # with context length of only M tokens, which is not enough", its MLX engine's "Context size has been
    # exceeded", and "Reached context length of N tokens with model ... that does not currently support
    # mid-generation context overflow"; its llama.cpp engine's "Cannot truncate prompt with n_keep (N) >= n_ctx (M)"
    r"when context the overflows", r"loaded with context length of only", r"context size has been exceeded",
    r"reached context length of \d+ tokens", r"cannot truncate prompt with n_keep",
    # SGLang: "The input (61709 tokens) is longer than the model's context length (40960 tokens)", older builds
    # "Input length (160062 tokens) exceeds the maximum allowed length (59862 tokens)"
    r"longer than the model's context length", r"input length \(\d+ tokens\) exceeds the maximum allowed length",
    # vLLM with a multimodal model: "The prompt (total length 25938) is too long to fit into the model (context
    # length 4096)"
    r"too long to fit into the model \(context length",
    # Gemini's OpenAI-compatible endpoint: "The input token count (1200293) exceeds the maximum number of tokens
    # allowed (1048576)"
    r"input token count \(\d+\) exceeds the maximum number of tokens",
    # Anthropic: "prompt is too long: 208310 tokens > 200000 maximum"; Fireworks (fw-ai/cookbook#134): "The prompt is
    # too long: 40177, model maximum context length: 32767"; Claude through Bedrock or OpenRouter: "input length and
    # `max_tokens` exceed context limit: 149674 + 64000 > 204658"
    r"prompt is too long: \d+", r"exceed context limit: \d+",
    # Cohere: "too many tokens: size limit exceeded by 1502 tokens. Try using shorter or fewer inputs, or setting
    # prompt_truncation='AUTO'." (Quansight/ragna#351), older models "too many tokens: total number of tokens (prompt
    # and prediction) cannot exceed 2048 - received 6354" (cohere-ai/sandbox-topically#4)
    r"too many tokens: size limit exceeded by \d+", r"too many tokens: total number of tokens",
)), re.I)


def is_context_overflow(exc: ProviderError) -> bool:
    """Whether ``exc`` says the request did not fit the model's context: a :class:`ContextOverflowError`, or a
    400/413 answer whose message says so. Sending the same request again cannot help."""
    if isinstance(exc, ContextOverflowError):
        return True
    return exc.status in (400, 413) and _NAMES_CONTEXT.search(str(exc)) is not None


#: Where an overflow error states the model's context, by server (the phrasings of :data:`_NAMES_CONTEXT`).
_STATES_CONTEXT = re.compile("|".join((
    r"maximum context length is (\d+)", r"available context size \((\d+) tokens\)",
    r"maximum model length of (\d+)", r"model's context length \((\d+) tokens\)",
    r"loaded with context length of only (\d+)", r"\(context length (\d+)\)",
    r"maximum allowed length \((\d+) tokens\)", r"maximum number of tokens allowed \((\d+)\)",
    r"tokens > (\d+) maximum", r"model maximum context length: (\d+)", r"n_ctx \((\d+)\)",
    r"exceed context limit: \d+ \+ \d+ > (\d+)", r"cannot exceed (\d+)",
)), re.I)


def stated_context(exc: ProviderError) -> int | None:
    """The context size, in tokens, that a context-overflow error (:func:`is_context_overflow`) states
    ("This model's maximum context length is 8192 tokens"), or None when it is no overflow or says no size."""
    if not is_context_overflow(exc):
        return None
    m = _STATES_CONTEXT.search(str(exc))
    if m is None:
        return None
    return int(next(g for g in m.groups() if g is not None))


#: Where an overflow error states the request's length in tokens: (pattern, whether it counts the reply's bound too).
_STATES_REQUEST = tuple((re.compile(p, re.I), total) for p, total in (
    (r"you requested (\d+) tokens", True), (r"request \((\d+) tokens\) exceeds", False),
    (r"prompt \(length (\d+)\)", False), (r"input \((\d+) tokens\)", False),
    (r"input length \((\d+) tokens\)", False), (r"prompt is too long: (\d+)", False),
    (r"\(total length (\d+)\)", False), (r"input token count \((\d+)\)", False),
))


def stated_request(exc: ProviderError) -> tuple[int, bool] | None:
    """``(tokens, with_reply)``: the request's length that a context-overflow error states ("However, you requested
    19415 tokens"), and whether it counts the reply's bound too; None when it says none."""
    if not is_context_overflow(exc):
        return None
    for pattern, total in _STATES_REQUEST:
        if (m := pattern.search(str(exc))) is not None:
            return int(m[1]), total
    return None


class ReaskOverflow(Exception):
    """A re-ask (the base prompt, the unusable reply and the error) did not fit the model's context: the
    re-asking ends as if the attempts were spent (:func:`reask_until_valid`), the usage paid kept."""


def ask_or_overflow(ask: Callable[[], ChatReply], reask: bool, errors: list[str]) -> ChatReply:
    """``ask()``; on a re-ask (``reask``), a context overflow is noted in ``errors`` and ends the re-asking
    (:class:`ReaskOverflow`) instead of escaping with the usage of the attempts before it."""
    try:
        return ask()
    except ProviderError as exc:
        if not reask or not is_context_overflow(exc):
            raise
        errors.append(f"the re-ask did not fit the model's context ({exc})")
        raise ReaskOverflow(str(exc)) from exc


#: How a server names the response format in an error about it.
_NAMES_FORMAT = re.compile(r"response[_ ]format|json[_ ]schema|json_object|structured output", re.I)
_NOT_ABOUT_THE_REQUEST = {401, 403, 408, 409, 429}


def is_format_refusal(exc: ProviderError) -> bool:
    """Whether ``exc`` explicitly refuses the response format: a :class:`ResponseFormatRefused`,
    or a 4xx answer whose message names the format. llama.cpp's server answers its request
    validation errors with 500 (or 501), so such a 500 naming the format counts too; any other
    5xx, a timeout or a dropped connection is a fault, retried, and never taken for a refusal.
    """
    if isinstance(exc, ResponseFormatRefused):
        return True
    status = exc.status
    if status is None or status in _NOT_ABOUT_THE_REQUEST or not (400 <= status < 500 or status in (500, 501)):
        return False
    return _NAMES_FORMAT.search(str(exc)) is not None


def _ask(chat: ChatFn, messages: list[dict[str, Any]], ladder: list[str], refused: set[str],
         used: list[str], max_intervals: int | None = None,
         formats: Callable[[str], dict[str, Any] | None] | None = None,
         time_style: "TimeStyle | TimeFormat | None" = None) -> ChatReply:
    """One request, walking down the ladder past formats the server refuses (added to ``refused``).
    ``formats`` gives a step's ``response_format`` for another reply schema (default: the intervals')."""
    while True:
        name = ladder[0]
        fmt = formats(name) if formats is not None else response_format(name, max_intervals=max_intervals,
                                                                          time_style=time_style)
        try:
            reply = chat(messages, fmt)
        except ProviderError as exc:
            if fmt is None or len(ladder) == 1 or not is_format_refusal(exc):
                raise
            refused.add(name)
            ladder.pop(0)
            continue
        used.append(name)
        return reply


T = TypeVar("T")


def resolve_fallback(fallback: Any) -> Any:
    """A fallback reasoner from an instance, a spec string (``"embedding"``, what ``--reasoner-opt
    fallback=embedding`` gives) or a zero-argument callable returning either; ``None`` stays ``None``."""
    if fallback is not None and not isinstance(fallback, str) and callable(fallback) \
            and not any(hasattr(fallback, m) for m in ("ground", "answer", "events", "chat")):
        fallback = fallback()
    if isinstance(fallback, str):
        from . import get_reasoner

        return get_reasoner(fallback)
    return fallback


def fallback_answered(res: Any, fb: Any, *, reasoner_name: str, info: dict[str, Any], usage: Usage,
                      raws: list[str], warning: Callable[[str], str]) -> Any:
    """The fallback reasoner ``fb``'s result ``res`` (an answer or events) as the chat reasoner's: its name,
    the chat requests' ``usage`` and raw outputs kept, the settings saying which fallback answered, and the
    ``warning`` written for that fallback's name."""
    fb_name = res.reasoner or getattr(fb, "name", type(fb).__name__)
    fb_usage = res.usage.get("reason")
    return res.model_copy(update={
        "reasoner": reasoner_name, "raw": raws,
        "settings": {**info, "fallback": fb_name, "fallback_settings": res.settings},
        "usage": {**res.usage, "reason": usage + fb_usage if fb_usage is not None else usage},
        "warnings": [*res.warnings, warning(fb_name)]})


def check_fallback(fallback: Any) -> Any:
    """``fallback`` as given, a spec string's backend checked now (a :class:`ConfigurationError` naming a
    misspelt one, ``fallback='embeding'``), not after every paid attempt of the first failing reply; the
    model itself is still built only when a reply fails."""
    if isinstance(fallback, str):
        from vidground.registry import split_spec

        from . import reasoners

        name = split_spec(fallback)[0]
        if reasoners._aliases.get(name, name) not in reasoners.names():  # named only: nothing imported or loaded
            hint = reasoners.suggest(fallback)
            raise ConfigurationError(f"fallback={fallback!r}: unknown reasoner backend {name!r}"
                                     + (f" (did you mean {hint!r}?)" if hint else "")
                                     + f"; choose one of: {', '.join(reasoners.names())}")
    return fallback


def check_local_chat_options(options: dict[str, Any], *, context: str) -> None:
    """The option values a local chat reasoner (``hf:``, ``llamacpp:``) checks before it loads its model, so that an
    eval checks them without loading it (its ``check_options``): ``options`` holds every argument of its
    ``__init__`` (:func:`vidground.registry.bound_options`), ``context`` names its context option (``context_tokens``,
    ``n_ctx``), checked when given."""
    for name in ("max_new_tokens", "max_attempts", "max_intervals"):
        value = options[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
    size, least = options.get(context), 2 * options["max_new_tokens"] + 256
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= least):
        raise ConfigurationError(f"{context}={size!r} leaves no room for a prompt with max_new_tokens="
                                 f"{options['max_new_tokens']}: give a whole number above {least}, or lower "
                                 "max_new_tokens")
    check_fallback(options["fallback"])
    TimeFormat.parse(options["time_style"])


def lazy_fallback(reasoner: Any) -> Callable[[], Any] | None:
    """``reasoner.fallback`` resolved only when a reply fails (a spec string loads its model then), as a
    callable for :func:`run_structured` and its kin; ``None`` when there is none."""
    if getattr(reasoner, "fallback", None) is None:
        return None

    def resolve() -> Any:
        reasoner.fallback = resolve_fallback(reasoner.fallback)
        return reasoner.fallback
    return resolve


def reask_until_valid(once: Callable[[], T], max_attempts: int) -> tuple[T | None, type[Exception]]:
    """``once()`` (one request and the parse of its reply) again while it raises a :class:`ReplyError` or an
    :class:`IncompleteOutputError`, at most ``max_attempts`` times; ``(value, ...)`` when one succeeded, else
    ``(None, the error class to raise)``: incomplete when the last reply was cut off, invalid otherwise. A
    :class:`ReaskOverflow` (a re-ask that does not fit the context) ends it early, classed by the reply before."""
    last: type[Exception] = OutputValidationError
    try:
        for attempt in Retrying(stop=stop_after_attempt(max_attempts), reraise=True,
                                retry=retry_if_exception_type((ReplyError, IncompleteOutputError))):
            with attempt:
                try:
                    return once(), OutputValidationError
                except IncompleteOutputError:
                    last = IncompleteOutputError
                    raise
                except ReplyError:
                    last = OutputValidationError
                    raise
    except IncompleteOutputError:
        return None, IncompleteOutputError
    except ReplyError:
        pass
    except ReaskOverflow:
        return None, last
    return None, OutputValidationError


def run_structured(chat: ChatFn, query: str, transcript: Transcript, *, reasoner_name: str,
                   max_attempts: int = 3, fallback: Reasoner | Callable[[], Reasoner | None] | None = None,
                   response_formats: Sequence[str] = RESPONSE_FORMATS, refused: set[str] | None = None,
                   time_style: TimeStyle = "seconds", max_intervals: int = 3,
                   settings: dict[str, Any] | None = None) -> GroundingResult:
    """Ask ``chat`` for the query's intervals, validating and re-asking until one reply is usable.

    ``response_formats`` is the ladder to try, strongest first (a subset of
    :data:`RESPONSE_FORMATS`). ``refused`` is the memory of one backend instance: the formats
    its server refused before are skipped, and a new refusal (:func:`is_format_refusal`) is added.
    A reply cut by ``finish_reason == "length"`` counts as a failed attempt
    (:class:`IncompleteOutputError`). After ``max_attempts`` failed attempts the ``fallback``
    reasoner answers if given (noted in ``warnings`` and ``settings``; a zero-argument callable
    returning the reasoner is resolved only then), else
    :class:`OutputValidationError` is raised with every raw output, error, and the usage.
    """
    query = check_query(query)
    if max_attempts < 1:
        raise ConfigurationError(f"max_attempts must be at least 1, got {max_attempts}")
    for name in response_formats:
        response_format(name)  # validates the names
    refused = set() if refused is None else refused
    ladder = [f for f in response_formats if f not in refused] or [list(response_formats)[-1]]
    tf = TimeFormat.parse(time_style).bound(transcript)  # an irregular transcript's frame numbers decode through it
    base_messages = build_messages(query, transcript, time_style=tf, max_intervals=max_intervals)
    messages = base_messages
    usage, raws, errors, used = Usage(), [], [], []
    parsed: ParsedReply | None = None

    def attempt_once() -> ParsedReply:
        nonlocal usage, messages
        reply = ask_or_overflow(lambda: _ask(chat, messages, ladder, refused, used, max_intervals, time_style=tf),
                                messages is not base_messages, errors)
        usage = usage + reply.usage
        raws.append(reply.text)
        if reply.finish_reason == "length":
            errors.append("the reply was cut off (finish_reason=length)")
            messages = base_messages + [
                {"role": "assistant", "content": reply.text},
                {"role": "user", "content": prompts.load("reask_incomplete").render(max_intervals=max_intervals)}]
            raise IncompleteOutputError("the reply was cut off (finish_reason=length)")
        try:
            return parse_reply_detailed(reply.text, duration=transcript.duration, step=transcript.step,
                                        max_intervals=max_intervals, time_style=tf)
        except ReplyError as exc:
            errors.append(str(exc))
            messages = base_messages + [
                {"role": "assistant", "content": reply.text},
                {"role": "user", "content": reask_message(str(exc), transcript, tf)}]
            raise

    with keep_paid(lambda: usage):
        parsed, failure = reask_until_valid(attempt_once, max_attempts)

    info = {**(settings or {}), "attempts": len(raws), "response_format": used[-1] if used else None,
            "max_intervals": max_intervals, "time_style": tf.spec, "prompts": prompt_hashes(tf)}
    if parsed is not None:
        return GroundingResult(query=query, duration=transcript.duration,
                               duration_inferred=transcript.duration_inferred, intervals=parsed.intervals,
                               reasoner=reasoner_name, settings=info, usage={"reason": usage},
                               warnings=[f"attempt {i + 1} rejected: {e}" for i, e in enumerate(errors)]
                               + parsed.warnings, raw=raws[-1] if len(raws) == 1 else raws)
    summary = f"{reasoner_name}: no usable answer after {len(raws)} attempt(s); last error: {errors[-1]}"
    with keep_paid(lambda: usage):
        fallback = resolve_fallback(fallback)
        if fallback is not None:
            result = fallback.ground(query, transcript)
    if fallback is None:
        raise failure(summary, raw_outputs=raws, errors=errors, attempts=len(raws), usage=usage)
    fb_usage = result.usage.get("reason")
    return result.model_copy(update={
        "reasoner": reasoner_name,
        "settings": {**info, "fallback": getattr(fallback, "name", type(fallback).__name__),
                     "fallback_settings": result.settings},
        "usage": {**result.usage, "reason": usage + fb_usage if fb_usage is not None else usage},
        "warnings": [*result.warnings, summary + f"; used the fallback reasoner "
                     f"{getattr(fallback, 'name', type(fallback).__name__)!r}"],
        "raw": raws,
    })


__all__ = [
    "INTERVALS_SCHEMA", "RESPONSE_FORMATS", "FormatName", "ChatReply", "ChatFn", "ParsedReply", "ReplyError",
    "ResponseFormatRefused", "build_messages", "keep_paid", "extract_json", "intervals_schema", "is_format_refusal",
    "lazy_fallback", "check_fallback", "check_local_chat_options", "fallback_answered", "ContextOverflowError", "is_context_overflow", "stated_context", "stated_request", "ask_or_overflow",
    "ReaskOverflow", "parse_reply", "parse_reply_detailed", "prompt_hashes", "reask_message", "resolve_fallback",
    "response_format", "run_structured",
]
