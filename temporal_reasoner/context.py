"""Fit a transcript into a local model's context window: merge spans, then chunk and combine.

A local model has a fixed context (``n_ctx`` tokens). The prompt for a long video can exceed
it; cutting the transcript would silently hide the end of the video from the model. Instead:

1. **Merge** adjacent spans whose descriptions are near-duplicates (word-set Jaccard
   similarity to the first span's text at or above a threshold, lowered step by step from 0.9
   to 0.5). A merged span keeps the first span's text and covers all its spans' times; no time
   range is lost. Only as much as the context needs is merged: at the first threshold that
   fits, a merged span stands for as few different texts as fit (at least one: spans whose texts
   differ only in case and punctuation lose nothing), so a short caption repeated with one word
   changed ("a man is talking in a room", "... in a kitchen") does not become one span over the
   whole video when half as many spans would have fitted.
2. **Chunk**: if it still does not fit, split the spans into consecutive chunks that each fit
   (neighbouring chunks share ``overlap`` spans, so a moment on a boundary is seen whole). Each
   chunk is asked separately with the video's full duration for its **candidates**; its answers
   are kept only inside the time range the chunk covers.
3. **Final pass**: scores from separate requests are not comparable (each chunk names its own
   best moment, even a chunk where nothing matches), so the candidates of every chunk, best
   score first with duplicates (IoU >= 0.5) removed, are shown together in one more request,
   each with ``context_spans`` spans on either side, and that request ranks them. Candidates
   that would not fit are left out, lowest score first, and said so; when the final request
   gives no usable answer, the chunks' candidates are the answer and a warning says so.

Every merge, split and candidate left out is reported in the result's ``warnings`` and
``settings["context"]``; the chunks are asked one at a time (one prompt in memory), with a
progress bar on a terminal and a log line per request.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from vidground.errors import ConfigurationError, InputError, OutputValidationError
from vidground.types import Usage

from .base import Reasoner, check_query
from .structured import ChatFn, build_messages, keep_paid, run_structured
from .transcript import Transcript
from vidground.types import GroundingResult, Interval, TimeStyle, TranscriptEntry, format_time

#: ``count_tokens(messages) -> int``: the prompt length in the model's tokens, chat template included.
TokenCounter = Callable[[list[dict[str, Any]]], int]

MERGE_THRESHOLDS: tuple[float, ...] = (0.9, 0.8, 0.7, 0.6, 0.5)
#: spans shown on either side of each candidate in the final pass over a chunked transcript
CONTEXT_SPANS = 8
#: ``progress(done, total, what)``: called after each request of a chunked grounding
Progress = Callable[[int, int, str], None]

log = logging.getLogger(__name__)
_WORD = re.compile(r"[a-z0-9]+")


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the two texts' lower-cased word sets (1.0 for two empty texts)."""
    return _jaccard(frozenset(_WORD.findall(a.lower())), frozenset(_WORD.findall(b.lower())))


def merge_similar(transcript: Transcript, threshold: float, *, max_texts: int | None = None) -> Transcript:
    """Merge adjacent spans whose texts are at least ``threshold`` similar to the first text of their run (keeps
    that text, and the frame instants of every span merged, so the merged span is still sampled where its frames
    were). ``max_texts``: a run stands for at most this many different texts (word sets; ``None``: no limit),
    so ``max_texts=1`` merges only spans that say the same words."""
    if not 0.0 < threshold <= 1.0:
        raise ConfigurationError(f"merge threshold must be in (0, 1], got {threshold}")
    if max_texts is not None and (not isinstance(max_texts, int) or isinstance(max_texts, bool) or max_texts < 1):
        raise ConfigurationError(f"max_texts must be a whole number of texts, 1 or more (or None), got {max_texts!r}")
    words = _word_sets(transcript)
    return _build(transcript, _runs_of(words, threshold, max_texts))


def _word_sets(transcript: Transcript) -> list[frozenset[str]]:
    return [frozenset(_WORD.findall(e.text.lower())) for e in transcript.entries]


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def _runs_of(words: list[frozenset[str]], threshold: float, max_texts: int | None) -> list[int]:
    """The index of the first span of each run (see :func:`merge_similar`)."""
    starts: list[int] = []
    texts: set[frozenset[str]] = set()  # the different texts in the current run
    for i, w in enumerate(words):
        if starts and (w in texts or ((max_texts is None or len(texts) < max_texts)
                                      and _jaccard(words[starts[-1]], w) >= threshold)):
            texts.add(w)  # compared with the text the run keeps, not the last one: a run cannot drift
        else:
            starts.append(i)
            texts = {w}
    return starts


def _build(transcript: Transcript, starts: list[int]) -> Transcript:
    """``transcript`` with each run (from one start to the next) as one span, built once per run."""
    src = transcript.entries
    entries = []
    for a, b in zip(starts, [*starts[1:], len(src)]):
        run = src[a:b]
        entries.append(run[0] if len(run) == 1 else
                       TranscriptEntry(start=run[0].start, end=max(x.end for x in run), text=run[0].text,
                                       times=tuple(t for x in run for t in x.times)))
    return transcript.model_copy(update={"entries": entries})


@dataclass(frozen=True)
class Merged:
    """What :func:`merge_to_fit` made: the merged ``transcript``, its prompt's ``tokens``, the ``threshold`` and
    the most different texts a span stands for (``max_texts``, ``None``: no limit), and whether it ``fits``."""

    transcript: Transcript
    tokens: int
    threshold: float
    max_texts: int | None
    fits: bool


def merge_to_fit(transcript: Transcript, cost: Callable[[Transcript], int], budget: int,
                 thresholds: Sequence[float] = MERGE_THRESHOLDS) -> Merged:
    """Merge near-duplicate spans of ``transcript`` only as much as needed to fit ``budget`` (``cost`` is a
    transcript's prompt tokens). Thresholds are tried from the highest; at the first whose merge fits, the
    fewest different texts per span that fit (bisected: ``cost`` is called about log2 of the longest run's
    different texts more times). When even the lowest threshold does not fit, its merge (as small as merging
    gets) with ``fits=False``."""
    if not thresholds:
        raise ConfigurationError("no merge thresholds given")
    words = _word_sets(transcript)
    for th in thresholds:
        if not 0.0 < th <= 1.0:
            raise ConfigurationError(f"merge threshold must be in (0, 1], got {th}")
        starts = _runs_of(words, th, None)
        merged = _build(transcript, starts)
        tokens = cost(merged)
        if tokens > budget:
            continue
        ends = [*starts[1:], len(words)]
        lo, hi = 1, max(len(set(words[a:b])) for a, b in zip(starts, ends))  # hi: no limit, which fits
        best = Merged(merged, tokens, th, hi, True)
        while lo < hi:
            mid = (lo + hi) // 2
            trial = _build(transcript, _runs_of(words, th, mid))
            tokens = cost(trial)
            if tokens <= budget:
                hi, best = mid, Merged(trial, tokens, th, mid, True)
            else:
                lo = mid + 1
        return best
    return Merged(merged, tokens, th, None, False)


def merged_note(spans: int, budget: int, threshold: float, max_texts: int | None, merged_spans: int) -> str:
    """The warning of a transcript that :func:`merge_to_fit` merged to fit."""
    most = "" if max_texts is None else f", at most {max_texts} different text{'s' if max_texts != 1 else ''} per span"
    return (f"the transcript ({spans} spans) exceeded the model's context ({budget} tokens); merged near-duplicate "
            f"spans (similarity >= {threshold:g}{most}) into {merged_spans}")


@dataclass
class ContextPlan:
    """How a transcript was fitted: the chunks to ask about, and what was done to get them."""

    chunks: list[Transcript]
    budget: int
    prompt_tokens: int  # of the whole (merged) transcript's prompt, before chunking
    merge_threshold: float | None = None
    original_spans: int = 0
    warnings: list[str] = field(default_factory=list)
    #: the (merged) transcript the chunks were cut from, whose spans the final pass shows; ``None``: one chunk
    merged: Transcript | None = None

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
    check_query_fits(query, count_tokens, budget, lambda q, t: build_messages(
        q, t, time_style=time_style, max_intervals=max_intervals), transcript)
    warnings: list[str] = []
    fit = merge_to_fit(transcript, cost, budget, thresholds)
    current, used, full = fit.transcript, fit.threshold, fit.tokens
    if fit.fits:
        warnings.append(merged_note(n0, budget, used, fit.max_texts, len(current)))
        return ContextPlan([current], budget, full, used, n0, warnings)
    chunks = _chunk(current, cost, budget, overlap)
    warnings.append(f"the transcript ({n0} spans, {full} prompt tokens) exceeds the model's context "
                    f"({budget} tokens) even with near-duplicate spans merged ({len(current)} spans); "
                    f"asked about it in {len(chunks)} chunks and combined the answers")
    return ContextPlan(chunks, budget, full, used, n0, warnings, current)


def check_query_fits(query: str, count_tokens: TokenCounter, budget: int,
                     messages: Callable[[str, Transcript], list[dict[str, Any]]], transcript: Transcript,
                     what: str = "query") -> None:
    """An :class:`InputError` when the prompt with ``query`` and no transcript at all (``messages(query, empty)``)
    is over ``budget`` tokens: no merging or chunking of the descriptions can make it fit, so it is the query's
    length that is wrong, not the model's context or the descriptions (a 2-MB query was a ConfigurationError
    saying to 'use a model with a larger context ... or shorter descriptions'). Nothing is sent. A budget that
    cannot hold even the fixed prompt (a one-character query, no description) is the context's fault, not the
    query's: nothing is raised here, and the caller's error about the context follows."""
    empty = transcript.model_copy(update={"entries": []})
    alone = count_tokens(messages(query, empty))
    if alone <= budget:
        return
    fixed = count_tokens(messages("x", empty))
    if fixed > budget:
        return
    raise InputError(
        f"the {what} is too long for the model's context: it takes about {max(1, alone - fixed + 1):,} tokens "
        f"({len(query):,} characters), {alone:,} with the fixed prompt and no description at all, and the model's "
        f"context leaves {budget:,} tokens for the prompt; shorten the {what} (nothing was sent)")


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


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """A prompt's length in tokens for a model whose tokenizer is not at hand (an OpenAI-compatible
    server): a token per 3 characters plus a few per message, which errs high on English text."""
    return sum(len(str(m.get("content", ""))) // 3 + 4 for m in messages) + 3


def ground_in_context(chat: ChatFn, query: str, transcript: Transcript, *, count_tokens: TokenCounter,
                      budget: int, reasoner_name: str, max_attempts: int = 3,
                      fallback: Reasoner | Callable[[], Reasoner | None] | None = None,
                      response_formats: Sequence[str] = ("json_schema",), refused: set[str] | None = None,
                      time_style: TimeStyle = "seconds", max_intervals: int = 3, overlap: int = 1,
                      context_spans: int = CONTEXT_SPANS, progress: Progress | None = None,
                      settings: dict[str, Any] | None = None, option: str | None = None) -> GroundingResult:
    """:func:`structured.run_structured`, after fitting the transcript into ``budget`` prompt tokens: a
    transcript that fits (merged or not) is one request; a longer one is asked chunk by chunk for
    candidates, then once more over the candidates with their context (the module's steps 2-3).

    The first time a reasoner chunks, a warning names ``option`` (the setting that sets its context), as
    the answer then comes from several requests: a user whose model takes more learns what to raise."""
    query = check_query(query)
    if not isinstance(context_spans, int) or isinstance(context_spans, bool) or context_spans < 0:
        raise ConfigurationError(f"context_spans must be 0 or more spans, got {context_spans!r}")
    plan = plan_context(query, transcript, count_tokens=count_tokens, budget=budget, time_style=time_style,
                        max_intervals=max_intervals, overlap=overlap)
    common = dict(reasoner_name=reasoner_name, max_attempts=max_attempts, response_formats=response_formats,
                  refused=refused, time_style=time_style, max_intervals=max_intervals,
                  settings={**(settings or {}), "context": plan.describe()})
    if len(plan.chunks) == 1:
        res = run_structured(chat, query, plan.chunks[0], fallback=fallback, **common)
        return res.model_copy(update={"warnings": [*plan.warnings, *res.warnings]})
    total = len(plan.chunks) + 1  # the chunks, then the final pass
    _warn_once(reasoner_name, option, plan)
    progress = progress or _PROGRESS.get()
    bar = None if progress is not None else _terminal_progress(total, reasoner_name)
    try:
        return _ground_chunks(chat, query, transcript, plan, common, progress or bar or _no_progress,
                              count_tokens=count_tokens, budget=budget, context_spans=context_spans,
                              fallback=fallback)
    finally:  # a chunk that raises (a transport error) leaves no bar drawn on the terminal
        if bar is not None:
            bar.close()


def _ground_chunks(chat: ChatFn, query: str, transcript: Transcript, plan: ContextPlan, common: dict[str, Any],
                   report: Progress, *, count_tokens: TokenCounter, budget: int, context_spans: int,
                   fallback: Any) -> GroundingResult:
    """:func:`ground_in_context`'s steps 2-3 on a transcript ``plan`` cut into several chunks."""
    reasoner_name, max_intervals = common["reasoner_name"], common["max_intervals"]
    total = len(plan.chunks) + 1
    done: list[tuple[Transcript, GroundingResult]] = []
    usage, raws, warnings, errors = Usage(), [], list(plan.warnings), []
    with keep_paid(lambda: usage):  # a provider error on a chunk: the chunks before it were paid too
        for n, chunk in enumerate(plan.chunks):
            lo, hi = _span(chunk)
            try:
                res = run_structured(chat, query, chunk, fallback=None, **common)
            except OutputValidationError as exc:
                usage = usage + (exc.usage or Usage())
                raws.append(exc.raw_outputs)
                errors.append(f"chunk {n + 1}: {exc}")
                warnings.append(f"chunk {n + 1} of {len(plan.chunks)} gave no usable answer: {exc}")
            else:
                usage = usage + res.usage.get("reason", Usage())
                raws.append(res.raw)
                warnings.extend(f"chunk {n + 1}: {w}" for w in res.warnings)
                done.append((chunk, res))
            log.info("%s: chunk %d of %d (%s-%s) asked for candidates", reasoner_name, n + 1, len(plan.chunks),
                     format_time(lo), format_time(hi))
            report(n + 1, total, f"chunk {n + 1} of {len(plan.chunks)}")
    pool_size = max(2 * max_intervals, len(plan.chunks))  # every chunk's best can reach the final pass
    candidates, dropped = combine(done, max_intervals=pool_size)
    warnings.extend(dropped)
    info = {**common["settings"], "chunks_answered": len(done)}
    if candidates:
        with keep_paid(lambda: usage):
            final = _final_pass(chat, query, plan.merged or transcript, candidates, count_tokens=count_tokens,
                                budget=budget, context_spans=context_spans, common=common)
        report(total, total, "final pass over the candidates")
        usage = usage + final.usage
        raws.append(final.raw)
        warnings.extend(final.warnings)
        info["context"] = {**info["context"], **final.describe()}
        if final.result is not None:
            return GroundingResult(query=query, duration=transcript.duration,
                                   duration_inferred=transcript.duration_inferred,
                                   intervals=final.result.intervals[:max_intervals], reasoner=reasoner_name,
                                   settings=info, usage={"reason": usage}, warnings=warnings, raw=raws)
        return GroundingResult(query=query, duration=transcript.duration,
                               duration_inferred=transcript.duration_inferred, intervals=candidates[:max_intervals],
                               reasoner=reasoner_name, settings=info, usage={"reason": usage},
                               warnings=warnings, raw=raws)
    report(total, total, "no candidate for a final pass")
    summary = f"{reasoner_name}: no chunk of the transcript gave a usable answer ({len(plan.chunks)} chunks)"
    with keep_paid(lambda: usage):
        if fallback is not None and not hasattr(fallback, "ground") and callable(fallback):
            fallback = fallback()
        if fallback is not None:
            result = fallback.ground(query, transcript)
    if fallback is None:
        raise OutputValidationError(summary, raw_outputs=[str(r) for r in raws], errors=errors,
                                    attempts=len(plan.chunks), usage=usage)
    return result.model_copy(update={
        "reasoner": reasoner_name, "settings": {**info, "fallback": getattr(fallback, "name", "fallback")},
        "usage": {**result.usage, "reason": usage + result.usage.get("reason", Usage())},
        "warnings": [*warnings, *result.warnings, summary + "; used the fallback reasoner"], "raw": raws})


@dataclass
class _Final:
    """The final pass over a chunked transcript's candidates: its result (``None`` when it gave no usable
    answer), what it was shown and what it cost."""

    result: GroundingResult | None
    shown: int  # candidates shown
    pooled: int  # candidates the chunks named
    spans: int  # transcript spans in its prompt
    usage: Usage
    raw: Any
    warnings: list[str]

    def describe(self) -> dict[str, Any]:
        return {"candidates": self.pooled, "final_candidates": self.shown, "final_spans": self.spans,
                "final_answered": self.result is not None}


def excerpt(transcript: Transcript, windows: Sequence[tuple[float, float]], context_spans: int) -> Transcript:
    """The spans of ``transcript`` overlapping any of ``windows``, with ``context_spans`` spans on either
    side of each; times stay absolute (the excerpt has gaps) and the duration is the whole video's."""
    import bisect

    entries = transcript.entries
    starts = [e.start for e in entries]
    keep: set[int] = set()
    for lo, hi in windows:
        first = max(0, bisect.bisect_right(starts, lo) - 1)
        while first < len(entries) and entries[first].end <= lo and entries[first].start < hi:
            first += 1
        last = max(first, bisect.bisect_left(starts, hi) - 1)
        keep.update(range(max(0, first - context_spans), min(len(entries), last + context_spans + 1)))
    return transcript.model_copy(update={"entries": [entries[i] for i in sorted(keep)]})


def _final_pass(chat: ChatFn, query: str, transcript: Transcript, candidates: list[Interval], *,
                count_tokens: TokenCounter, budget: int, context_spans: int, common: dict[str, Any]) -> _Final:
    """Ask once over ``candidates`` (best first) with their context: as many as fit ``budget``, the context
    narrowed before any candidate is left out; intervals outside what was shown are dropped."""
    warnings: list[str] = []
    max_intervals = common["max_intervals"]
    time_style = common["time_style"]

    def cost(t: Transcript) -> int:
        return count_tokens(build_messages(query, t, time_style=time_style, max_intervals=max_intervals))

    shown, spans = list(candidates), context_spans
    part = excerpt(transcript, [(c.start, c.end) for c in shown], spans)
    while cost(part) > budget:
        if spans > 0:
            spans //= 2
        elif len(shown) > 1:
            shown.pop()
        else:
            break
        part = excerpt(transcript, [(c.start, c.end) for c in shown], spans)
    if cost(part) > budget:
        warnings.append(f"the best candidate with its spans does not fit the model's context ({budget} tokens): "
                        f"no final pass, the chunks' candidates are the answer")
        return _Final(None, 0, len(candidates), 0, Usage(), None, warnings)
    if len(shown) < len(candidates) or spans < context_spans:
        warnings.append(f"final pass: {len(shown)} of the chunks' {len(candidates)} candidates fit the model's "
                        f"context ({budget} tokens), with {spans} spans of context on either side (asked for "
                        f"{context_spans})")
    try:
        res = run_structured(chat, query, part, fallback=None, **common)
    except OutputValidationError as exc:
        warnings.append(f"the final pass over the chunks' candidates gave no usable answer ({exc}); the chunks' "
                        f"candidates are the answer, ranked by their own scores")
        return _Final(None, len(shown), len(candidates), len(part), exc.usage or Usage(), exc.raw_outputs, warnings)
    lo_hi = _runs(part)
    kept = []
    for iv in res.intervals:
        clipped = [(max(iv.start, lo), min(iv.end, hi)) for lo, hi in lo_hi if min(iv.end, hi) > max(iv.start, lo)]
        if not clipped:
            warnings.append(f"final pass: dropped [{iv.start:g}, {iv.end:g}], outside the candidates it was shown")
            continue
        s, e = max(clipped, key=lambda w: w[1] - w[0])  # the shown stretch it covers most
        cut = Interval(start=s, end=e, score=iv.score)
        # the same stretch twice (a reply naming it twice, or two intervals cut to one stretch): once, as combine()
        # keeps the chunks' candidates, the first named kept (the model's order is best first)
        if any(cut.iou(k) >= 0.5 for k in kept):
            continue
        kept.append(cut)
    warnings.extend(f"final pass: {w}" for w in res.warnings)
    if not kept:
        warnings.append("the final pass named nothing inside the candidates it was shown; the chunks' "
                        "candidates are the answer, ranked by their own scores")
        return _Final(None, len(shown), len(candidates), len(part), res.usage.get("reason", Usage()), res.raw, warnings)
    result = res.model_copy(update={"intervals": kept})
    return _Final(result, len(shown), len(candidates), len(part), res.usage.get("reason", Usage()), res.raw, warnings)


def _runs(t: Transcript) -> list[tuple[float, float]]:
    """The contiguous stretches of time an excerpt covers."""
    out: list[tuple[float, float]] = []
    for e in t.entries:
        if out and e.start <= out[-1][1] + 1e-6:
            out[-1] = (out[-1][0], max(out[-1][1], e.end))
        else:
            out.append((e.start, e.end))
    return out


#: Where chunked groundings in this context report (``None``: a bar on a terminal); see :func:`progress_to`.
_PROGRESS: ContextVar[Progress | None] = ContextVar("vidground_context_progress", default=None)
_WARNED: set[str] = set()
_WARNED_LOCK = threading.Lock()


def _no_progress(done: int, total: int, what: str) -> None:
    """Reports nowhere."""


@contextmanager
def progress_to(progress: Progress | None = None) -> Iterator[None]:
    """Within the block (this thread or task), chunked groundings report to ``progress`` instead of drawing
    their own bar: an evaluation that shows one bar for all its queries passes nothing (no report)."""
    token = _PROGRESS.set(progress or _no_progress)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def _warn_once(name: str, option: str | None, plan: ContextPlan) -> None:
    with _WARNED_LOCK:
        if name in _WARNED:
            return
        _WARNED.add(name)
    log.warning("%s: a transcript (%d prompt tokens) exceeds the model's context (%d tokens for the prompt, "
                "set by %s): it is asked about in %d chunks, then once over their candidates; said once per "
                "reasoner", name, plan.prompt_tokens, plan.budget, option or "its context option", len(plan.chunks))


class _TerminalBar:
    """A progress bar over a chunked grounding's requests on stderr."""

    def __init__(self, total: int, name: str):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=f"{name}: long transcript", unit="request", leave=False)

    def __call__(self, done: int, total: int, what: str) -> None:
        self.bar.set_postfix_str(what, refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def _terminal_progress(total: int, name: str) -> _TerminalBar | None:
    """A bar on a terminal (stderr), ``None`` otherwise."""
    return _TerminalBar(total, name) if sys.stderr.isatty() else None


__all__ = ["CONTEXT_SPANS", "ContextPlan", "MERGE_THRESHOLDS", "Merged", "Progress", "TokenCounter", "combine",
           "estimate_tokens", "excerpt", "ground_in_context", "merge_similar", "merge_to_fit", "merged_note",
           "plan_context", "progress_to", "similarity", "check_query_fits"]
