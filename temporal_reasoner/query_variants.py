"""Query variants: match a query at several granularities (the GranAlign idea, training-free).

A human query mixes the action that matters with wording that does not ("a person is seen
quickly putting the towel on a stair"). GranAlign (AAAI 2026) rewrites each query into a
simplified and a detailed form and matches every form against the descriptions. Here:

- offline, the query's own **core** is its simplified form: the subject, auxiliaries,
  determiners and filler adverbs removed (:func:`core_phrase`), and a query that joins several
  actions ("opens the door and turns on the light") also gives each action's core
  (:func:`clause_cores`);
- optionally a chat model **rewrites** it into a simplified and a detailed form
  (:func:`llm_rewrite`, through any chat reasoner's ``chat(messages, response_format)``).

:class:`VariantEmbeddingReasoner` (spec ``variants:embedding``) is the embedding reasoner scoring
every text unit by a weighted mean (or the max) of its similarities to all variants; everything
after scoring (smoothing, feedback, spans) is the embedding reasoner's. For any other reasoner,
:class:`VariantsReasoner` (spec ``variants:<spec>``) grounds every variant and returns the answer
the variants agree on most (weighted votes of top intervals that overlap, IoU >= 0.5).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

import prompts
from vidground.errors import ConfigurationError, VidgroundError

from .base import BaseReasoner, Reasoner, check_query
from .embedding import EmbeddingReasoner
from .parsing import ReplyError, extract_json
from .rephrasings import query_forms
from .transcript import Transcript
from vidground.types import GroundingResult

_SUBJECT = re.compile(r"^(?:(?:a|the|one|another)\s+)?(?:person|man|woman|boy|girl|child|kid|guy|lady|people|persons)\b"
                      r"|^(?:someone|somebody|he|she|they|we|you|i)\b")
_AUX = {"is", "are", "was", "were", "be", "being", "been", "does", "did", "do", "has", "have", "had", "can", "will",
        "seen", "appears", "seems", "starts", "start", "started", "begins", "begin", "began", "to", "then", "also",
        "again", "just", "first", "finally", "quickly", "slowly", "still", "now"}
_DETERMINERS = {"a", "an", "the", "some", "his", "her", "their", "its", "this", "that", "these", "those", "another"}
_CONJ = re.compile(r"\s*,\s*(?:and\s+|then\s+|while\s+)?|\s+(?:and then|and|then|while|as|before|after)\s+")
_WORD = re.compile(r"[a-z0-9']+")
_PLACEHOLDER = re.compile(r"<[^<>]{3,}>")

KINDS = ("original", "core", "clause", "simplified", "detailed")
COMBINE = ("mean", "max")


@dataclass(frozen=True)
class Variant:
    text: str
    kind: str
    weight: float = 1.0


def _strip(words: list[str]) -> list[str]:
    while words and words[0] in _AUX:  # "is seen putting" -> "putting"
        words = words[1:]
    return [w for w in words if w not in _DETERMINERS and w not in {"then", "also", "again", "just", "quickly",
                                                                      "slowly", "finally", "first"}]


def core_phrase(query: str) -> str:
    """The query's verb-object core: ``"A person is putting the towel on a stair."`` -> ``"putting towel on stair"``.

    The subject (a person, someone, he...), leading auxiliaries and starters (is, starts to...),
    determiners and filler adverbs are removed; the words left keep their order. Returns the
    cleaned query itself when nothing would be left.
    """
    text = " ".join(_WORD.findall(check_query(query).lower()))
    text = _SUBJECT.sub("", text).strip()
    words = _strip(text.split())
    return " ".join(words) or " ".join(_WORD.findall(query.lower()))


def clause_cores(query: str) -> list[str]:
    """The core of each action a query joins (``and``, ``then``, ``while``, commas...); one item when it names one."""
    text = " ".join(_WORD.findall(check_query(query).lower().replace(",", " , ")) + [""]).replace(" ,", ",")
    parts = [p for p in _CONJ.split(text) if p and p.strip()]
    cores = []
    for part in parts:
        words = _strip(_SUBJECT.sub("", part.strip()).strip().split())
        if len(words) >= 2 or (words and words[0].endswith("ing")):
            cores.append(" ".join(words))
    return list(dict.fromkeys(cores)) or [core_phrase(query)]


def llm_rewrite(query: str, chat: Any) -> dict[str, str]:
    """Ask a chat model (``chat(messages, response_format) -> ChatReply``) for a simplified and a
    detailed form of the query; raises :class:`ReplyError` when the reply lacks either."""
    messages = [{"role": "user", "content": prompts.load("reason_rewrite").render(query=check_query(query))}]
    reply = chat(messages, None)
    data = extract_json(reply.text)
    if not isinstance(data, dict):
        raise ReplyError("the rewrite is not a JSON object")
    out = {}
    for key in ("simplified", "detailed"):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip() or len(value.split()) > 40:
            raise ReplyError(f"the rewrite has no usable {key!r} form")
        if _PLACEHOLDER.search(value):  # a small model copies the prompt's <...> slots
            raise ReplyError(f"the rewrite's {key!r} form repeats the prompt's placeholder: {value!r}")
        out[key] = " ".join(value.split())
    return out


def query_variants(query: str, *, core_weight: float = 1.0, clause_weight: float = 0.5,
                   rewrite: dict[str, str] | None = None, rewrite_weight: float = 1.0) -> list[Variant]:
    """The query and its variants, duplicates removed: original, core, clause cores (when several),
    and the rewrite's simplified and detailed forms when given. A weight of 0 leaves a kind out."""
    q = check_query(query)
    items = [Variant(q, "original", 1.0)]
    if core_weight > 0:
        items.append(Variant(core_phrase(q), "core", core_weight))
    cores = clause_cores(q)
    if clause_weight > 0 and len(cores) > 1:
        items += [Variant(c, "clause", clause_weight) for c in cores]
    if rewrite and rewrite_weight > 0:
        items += [Variant(rewrite[k], k, rewrite_weight) for k in ("simplified", "detailed") if rewrite.get(k)]
    seen: set[str] = set()
    out = []
    for v in items:
        key = v.text.lower().strip(" .")
        if key and key not in seen:
            seen.add(key)
            out.append(v)
    return out


class _Variants:
    """Variant generation shared by both reasoners: rule-based, plus an optional LLM rewrite (cached)."""

    def _init_variants(self, core_weight: float, clause_weight: float, rewriter: Reasoner | str | None,
                       rewrite_weight: float, rewriter_options: dict[str, Any] | None) -> None:
        if min(core_weight, clause_weight, rewrite_weight) < 0:
            raise ConfigurationError("variant weights must be >= 0")
        if isinstance(rewriter, str):
            from . import get_reasoner

            rewriter = get_reasoner(rewriter, **(rewriter_options or {}))
        if rewriter is not None and not callable(getattr(rewriter, "chat", None)):
            raise ConfigurationError(f"the rewriter must be a chat reasoner (openai, hf, llamacpp), "
                                     f"got {getattr(rewriter, 'name', type(rewriter).__name__)!r}")
        self.core_weight, self.clause_weight, self.rewrite_weight = core_weight, clause_weight, rewrite_weight
        self.rewriter = rewriter
        self._rewrites: dict[str, dict[str, str] | str] = {}

    def variants(self, query: str) -> tuple[list[Variant], list[str]]:
        """The variants of ``query`` and warnings (a failed rewrite falls back to the offline variants)."""
        warnings: list[str] = []
        rewrite = None
        if self.rewriter is not None and self.rewrite_weight > 0:
            if query not in self._rewrites:
                try:
                    self._rewrites[query] = llm_rewrite(query, self.rewriter.chat)
                except (ReplyError, VidgroundError) as exc:
                    self._rewrites[query] = str(exc)
            got = self._rewrites[query]
            if isinstance(got, str):
                warnings.append(f"the LLM rewrite failed ({got}); used the offline variants only")
            else:
                rewrite = got
        items = query_variants(query, core_weight=self.core_weight, clause_weight=self.clause_weight,
                               rewrite=rewrite, rewrite_weight=self.rewrite_weight)
        # the user's own paraphrases (``rephrasings=``, the embedding reasoner's option) are variants too
        seen = {v.text.lower().strip(" .") for v in items}
        for text in query_forms(query, getattr(self, "rephrasings", None) or {})[1:]:
            if text.lower().strip(" .") not in seen:
                seen.add(text.lower().strip(" ."))
                items.append(Variant(text, "rephrasing", 1.0))
        return items, warnings

    def _variant_settings(self) -> dict[str, Any]:
        return {"core_weight": self.core_weight, "clause_weight": self.clause_weight,
                "rewrite_weight": self.rewrite_weight,
                "rewriter": getattr(self.rewriter, "name", None) if self.rewriter is not None else None}


class VariantEmbeddingReasoner(_Variants, EmbeddingReasoner):
    """The embedding reasoner, each text unit scored against every query variant.

    ``combine="mean"``: the weighted mean of a unit's similarities to the variants; ``"max"``: the
    highest. Other options are :class:`EmbeddingReasoner`'s, plus the variant weights and an
    optional ``rewriter`` (a chat reasoner or spec) for the LLM's simplified and detailed forms.
    """

    name = "variants:embedding"

    def __init__(self, model: str | None = None, *, combine: str = "mean", core_weight: float = 1.0,
                 clause_weight: float = 0.5, rewriter: Reasoner | str | None = None, rewrite_weight: float = 1.0,
                 rewriter_options: dict[str, Any] | None = None, **options: Any):
        super().__init__(model, **options)
        if combine not in COMBINE:
            raise ConfigurationError(f"unknown combine {combine!r}; choose one of: {', '.join(COMBINE)}")
        self.combine = combine
        self._init_variants(core_weight, clause_weight, rewriter, rewrite_weight, rewriter_options)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "name": self.name, "combine": self.combine, **self._variant_settings()}

    def _unit_sims(self, query: str, units: np.ndarray) -> np.ndarray:
        """Each unit's similarity to the variants, combined (weighted mean or max)."""
        variants, _ = self.variants(query)
        sims = units @ self.encoder.encode([v.text for v in variants]).T  # units x variants
        if self.combine == "max":
            return sims.max(axis=1)
        w = np.array([v.weight for v in variants], dtype=float)
        return sims @ (w / w.sum())

    def ground(self, query: str, transcript: Transcript) -> GroundingResult:
        result = super().ground(query, transcript)
        variants, warnings = self.variants(check_query(query))  # the rewrite is cached: no second request
        return result.model_copy(update={
            "warnings": [*result.warnings, *warnings],
            "raw": {**(result.raw or {}), "variants": [[v.kind, v.text, v.weight] for v in variants]}})


class VariantsReasoner(_Variants, BaseReasoner):
    """Any reasoner grounded once per query variant; the top intervals vote (weight by variant, IoU >= 0.5).

    ``variants:embedding`` (or ``variants`` alone) builds a :class:`VariantEmbeddingReasoner` instead,
    which combines the variants inside the similarity curve.
    """

    name = "variants"

    def __init__(self, base: Reasoner | str = "embedding", *, base_options: dict[str, Any] | None = None,
                 core_weight: float = 1.0, clause_weight: float = 0.5, rewriter: Reasoner | str | None = None,
                 rewrite_weight: float = 1.0, rewriter_options: dict[str, Any] | None = None):
        from . import get_reasoner

        self.base = get_reasoner(base, **(base_options or {})) if isinstance(base, str) else base
        self._init_variants(core_weight, clause_weight, rewriter, rewrite_weight, rewriter_options)

    @classmethod
    def from_spec(cls, arg: str | None = None, *, combine: str = "mean",
                  embedding_options: dict[str, Any] | None = None, **options: Any) -> BaseReasoner:
        """``variants:embedding[:model]`` -> :class:`VariantEmbeddingReasoner` (``combine`` and
        ``embedding_options`` apply to it only); ``variants:<other spec>`` -> :class:`VariantsReasoner`."""
        base = arg or "embedding"
        name, _, model = base.partition(":")
        if name.strip().lower() in ("embedding", "offline", "similarity") and "base_options" not in options:
            return VariantEmbeddingReasoner(model or None, combine=combine, **(embedding_options or {}), **options)
        if combine != "mean" or embedding_options:
            raise ConfigurationError("combine and embedding_options apply to variants:embedding only; "
                                     "give the base reasoner's options as base_options")
        return cls(base, **options)

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "base": self.base.settings(), **self._variant_settings()}

    def ground(self, query: str, transcript: Transcript) -> GroundingResult:
        started = time.perf_counter()
        query = check_query(query)
        variants, warnings = self.variants(query)
        results: list[tuple[Variant, GroundingResult]] = []
        for v in variants:
            try:
                results.append((v, self.base.ground(v.text, transcript)))
            except VidgroundError as exc:
                warnings.append(f"variant {v.kind} {v.text!r} failed: {exc}")
        if not results:
            raise VidgroundError(f"{self.name}: every variant of {query!r} failed: {'; '.join(warnings)}")
        groups: list[list[tuple[Variant, GroundingResult]]] = []
        for v, r in results:
            for g in groups:
                if r.intervals and g[0][1].intervals and r.intervals[0].iou(g[0][1].intervals[0]) >= 0.5:
                    g.append((v, r))
                    break
            else:
                groups.append([(v, r)])
        winner = max(groups, key=lambda g: (sum(v.weight for v, _ in g), any(v.kind == "original" for v, _ in g)))
        v, chosen = next(((v, r) for v, r in winner if v.kind == "original"), winner[0])
        return chosen.model_copy(update={
            "query": query, "reasoner": self.name, "settings": self.settings(),
            "timings": {"reason": time.perf_counter() - started},
            "warnings": [*chosen.warnings, *warnings],
            "raw": {"variants": [[x.kind, x.text, x.weight] for x, _ in results],
                    "chosen": [v.kind, v.text], "votes": [sum(x.weight for x, _ in g) for g in groups]}})


__all__ = ["COMBINE", "KINDS", "Variant", "VariantEmbeddingReasoner", "VariantsReasoner", "clause_cores",
           "core_phrase", "llm_rewrite", "query_variants"]
