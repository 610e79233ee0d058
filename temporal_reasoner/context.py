"""Fit a transcript into a local model's context window: merge spans, then chunk and combine.

A local model has a fixed context (``n_ctx`` tokens). The prompt for a long video can exceed
it; cutting the transcript would silently hide the end of the video from the model. Instead:

1. **Merge** adjacent spans whose descriptions are near-duplicates (word-set Jaccard
   similarity at or above a threshold, lowered step by step from 0.9 to 0.5). A merged span
   keeps the first span's text and covers both spans' times; no time range is lost.
2. **Chunk**: if it still does not fit, split the spans into consecutive chunks that each fit
   (neighbouring chunks share ``overlap`` spans, so a moment on a boundary is seen whole). Each
   chunk is asked separately with the video's full duration, its answers are kept only inside
   the time range the chunk covers, and the chunks' intervals are **combined** best score
   first, with overlapping duplicates (IoU >= 0.5) removed.

Every merge and every split is reported in the result's ``warnings`` and ``settings["context"]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vidground.errors import ConfigurationError, OutputValidationError
from vidground.types import Usage

from .base import Reasoner, check_query
from .structured import ChatFn, build_messages, run_structured
from .transcript import Transcript
from vidground.types import GroundingResult, Interval, TimeStyle, TranscriptEntry, format_time

#: ``count_tokens(messages) -> int``: the prompt length in the model's tokens, chat template included.
TokenCounter = Callable[[list[dict[str, Any]]], int]

MERGE_THRESHOLDS: tuple[float, ...] = (0.9, 0.8, 0.7, 0.6, 0.5)
_WORD = re.compile(r"[a-z0-9]+")


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the two texts' lower-cased word sets (1.0 for two empty texts)."""
    wa, wb = set(_WORD.findall(a.lower())), set(_WORD.findall(b.lower()))
    if not wa and not wb:
        return 1.0
    return len(wa & wb) / len(wa | wb)


def merge_similar(transcript: Transcript, threshold: float) -> Transcript:
    """Merge adjacent spans whose texts are at least ``threshold`` similar (keeps the first text)."""
    if not 0.0 < threshold <= 1.0:
        raise ConfigurationError(f"merge threshold must be in (0, 1], got {threshold}")
    entries: list[TranscriptEntry] = []
    for e in transcript.entries:
        if entries and similarity(entries[-1].text, e.text) >= threshold:
            entries[-1] = TranscriptEntry(start=entries[-1].start, end=max(entries[-1].end, e.end),
                                          text=entries[-1].text)
        else:
            entries.append(e)
    return transcript.model_copy(update={"entries": entries})


@dataclass
class ContextPlan:
    """How a transcript was fitted: the chunks to ask about, and what was done to get them."""

    chunks: list[Transcript]
    budget: int
    prompt_tokens: int  # of the whole (merged) transcript's prompt, before chunking
    merge_threshold: float | None = None
    original_spans: int = 0
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {"budget": self.budget, "prompt_tokens": self.prompt_tokens, "spans": self.original_spans,
                "merged_spans": sum(len(c) for c in self.chunks) if len(self.chunks) == 1 else None,
                "merge_threshold": self.merge_threshold, "chunks": len(self.chunks)}


def plan_context(query: str, transcript: Transcript, *, count_tokens: TokenCounter, budget: int,
                 time_style: TimeStyle = "seconds", max_intervals: int = 3, overlap: int = 1,
                 thresholds: Sequence[float] = MERGE_THRESHOLDS) -> ContextPlan:
    """Merge, then chunk ``transcript`` so that each chunk's prompt fits in ``budget`` tokens."""
    if budget < 1:
        raise ConfigurationError(f"the context budget must be positive, got {budget} tokens")
    if overlap < 0:
        raise ConfigurationError(f"overlap must be 0 or more spans, got {overlap}")

    def cost(t: Transcript) -> int:
        return count_tokens(build_messages(query, t, time_style=time_style, max_intervals=max_intervals))

    n0 = len(transcript)
    full = cost(transcript)
    if full <= budget:
        return ContextPlan([transcript], budget, full, original_spans=n0)
    warnings: list[str] = []
    current, used = transcript, None
    for th in thresholds:
        current, used = merge_similar(transcript, th), th
        full = cost(current)
        if full <= budget:
            warnings.append(f"the transcript ({n0} spans) exceeded the model's context ({budget} tokens); "
                            f"merged near-duplicate spans (similarity >= {th:g}) into {len(current)}")
            return ContextPlan([current], budget, full, th, n0, warnings)
    chunks = _chunk(current, cost, budget, overlap)
    warnings.append(f"the transcript ({n0} spans, {full} prompt tokens) exceeds the model's context "
                    f"({budget} tokens) even with near-duplicate spans merged ({len(current)} spans); "
                    f"asked about it in {len(chunks)} chunks and combined the answers")
    return ContextPlan(chunks, budget, full, used, n0, warnings)


def _chunk(t: Transcript, cost: Callable[[Transcript], int], budget: int, overlap: int) -> list[Transcript]:
    """Greedy consecutive chunks that fit; neighbours share ``overlap`` spans."""
    entries = t.entries
    fixed = cost(t.model_copy(update={"entries": entries[:1]}))
    if fixed > budget:
        raise ConfigurationError(
            f"the model's context ({budget} tokens) cannot hold the prompt with even one transcript span "
            f"({fixed} tokens); use a model with a larger context (n_ctx) or shorter descriptions")
    chunks: list[Transcript] = []
    start = 0
    while start < len(entries):
        end = start + 1  # grow [start, end) while it fits, doubling then bisecting
        step = 1
        while end < len(entries) and cost(t.model_copy(update={"entries": entries[start:end + step]})) <= budget:
            end = min(end + step, len(entries))
            step *= 2
        while step > 1 and end < len(entries):
            step //= 2
            if cost(t.model_copy(update={"entries": entries[start:min(end + step, len(entries))]})) <= budget:
                end = min(end + step, len(entries))
        chunk = t.model_copy(update={"entries": entries[start:end]})
        if end == start + 1 and cost(chunk) > budget:
            e = entries[start]
            raise ConfigurationError(
                f"the transcript span [{format_time(e.start)}-{format_time(e.end)}] alone ({len(e.text)} characters) "
                f"does not fit the model's context ({budget} tokens); use a larger context (n_ctx) or shorter "
                f"descriptions")
        chunks.append(chunk)
        if end >= len(entries):
            break
        start = max(end - overlap, start + 1)
    return chunks


def _span(t: Transcript) -> tuple[float, float]:
    return t.entries[0].start, t.entries[-1].end


def combine(results: Sequence[tuple[Transcript, GroundingResult]], *, max_intervals: int,
            iou_threshold: float = 0.5) -> tuple[list[Interval], list[str]]:
    """Pool the chunks' intervals (each clipped to its chunk), best score first, duplicates removed."""
    pool: list[tuple[float, int, Interval]] = []
    warnings: list[str] = []
    for n, (chunk, res) in enumerate(results):
        lo, hi = _span(chunk)
        for rank, iv in enumerate(res.intervals):
            s, e = max(iv.start, lo), min(iv.end, hi)
            if e <= s:
                warnings.append(f"chunk {n + 1} ({format_time(lo)}-{format_time(hi)}s): dropped "
                                f"[{iv.start:g}, {iv.end:g}], outside the part of the video it was shown")
                continue
            score = iv.score if iv.score is not None else 0.0
            pool.append((score, rank, Interval(start=s, end=e, score=iv.score)))
    pool.sort(key=lambda p: (-p[0], p[1]))
    kept: list[Interval] = []
    for _, _, iv in pool:
        if all(iv.iou(k) < iou_threshold for k in kept):
            kept.append(iv)
        if len(kept) == max_intervals:
            break
    return kept, warnings


def ground_in_context(chat: ChatFn, query: str, transcript: Transcript, *, count_tokens: TokenCounter,
                      budget: int, reasoner_name: str, max_attempts: int = 3, fallback: Reasoner | None = None,
                      response_formats: Sequence[str] = ("json_schema",), time_style: TimeStyle = "seconds",
                      max_intervals: int = 3, overlap: int = 1,
                      settings: dict[str, Any] | None = None) -> GroundingResult:
    """:func:`structured.run_structured`, after fitting the transcript into ``budget`` prompt tokens."""
    query = check_query(query)
    plan = plan_context(query, transcript, count_tokens=count_tokens, budget=budget, time_style=time_style,
                        max_intervals=max_intervals, overlap=overlap)
    common = dict(reasoner_name=reasoner_name, max_attempts=max_attempts, response_formats=response_formats,
                  time_style=time_style, max_intervals=max_intervals,
                  settings={**(settings or {}), "context": plan.describe()})
    if len(plan.chunks) == 1:
        res = run_structured(chat, query, plan.chunks[0], fallback=fallback, **common)
        return res.model_copy(update={"warnings": [*plan.warnings, *res.warnings]})
    done: list[tuple[Transcript, GroundingResult]] = []
    usage, raws, warnings, errors = Usage(), [], list(plan.warnings), []
    for n, chunk in enumerate(plan.chunks):
        try:
            res = run_structured(chat, query, chunk, fallback=None, **common)
        except OutputValidationError as exc:
            usage = usage + (exc.usage or Usage())
            raws.append(exc.raw_outputs)
            errors.append(f"chunk {n + 1}: {exc}")
            warnings.append(f"chunk {n + 1} of {len(plan.chunks)} gave no usable answer: {exc}")
            continue
        usage = usage + res.usage.get("reason", Usage())
        raws.append(res.raw)
        warnings.extend(f"chunk {n + 1}: {w}" for w in res.warnings)
        done.append((chunk, res))
    intervals, dropped = combine(done, max_intervals=max_intervals)
    warnings.extend(dropped)
    info = {**common["settings"], "chunks_answered": len(done)}
    if intervals:
        return GroundingResult(query=query, duration=transcript.duration,
                               duration_inferred=transcript.duration_inferred, intervals=intervals,
                               reasoner=reasoner_name, settings=info, usage={"reason": usage},
                               warnings=warnings, raw=raws)
    summary = f"{reasoner_name}: no chunk of the transcript gave a usable answer ({len(plan.chunks)} chunks)"
    if fallback is None:
        raise OutputValidationError(summary, raw_outputs=[str(r) for r in raws], errors=errors,
                                    attempts=len(plan.chunks), usage=usage)
    result = fallback.ground(query, transcript)
    return result.model_copy(update={
        "reasoner": reasoner_name, "settings": {**info, "fallback": getattr(fallback, "name", "fallback")},
        "usage": {**result.usage, "reason": usage + result.usage.get("reason", Usage())},
        "warnings": [*warnings, *result.warnings, summary + "; used the fallback reasoner"], "raw": raws})


__all__ = ["ContextPlan", "MERGE_THRESHOLDS", "TokenCounter", "combine", "ground_in_context", "merge_similar",
           "plan_context", "similarity"]
