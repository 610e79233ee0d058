"""From a score curve over time to scored intervals, and the text units a frame is scored by.

The curve is sampled where the frames were: a description at time ``t`` stands for the frame at
``t``, so its score is a point sample and the boundary between two samples lies half-way between
them. The curve is smoothed with a Gaussian (so a one-frame blip does not make a span and a noisy
plateau holds together), and each peak's span is where the smoothed curve stays above a level set
between the curve's baseline (a low percentile) and that peak: ``base + rel_level * (peak - base)``,
where the peak's height may be its plateau's (a percentile of the curve inside the span first cut)
rather than its single highest sample. At ``rel_level = 0.5`` a clean step edge is found exactly
where it is, whatever the smoothing (with a plateau height, the smoothing's ramps lower the plateau
a little and move the edge out by a fraction of a sample).
In :func:`find_spans` crossings are interpolated linearly between samples, so boundaries are not tied
to the sampling grid; :func:`find_segments` cuts at the sample boundaries (half-way between samples).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from vidground.errors import ConfigurationError

from .transcript import Transcript

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|[;\n]+")
_CONJ = r"(?:while|whilst|and then|and|then|as|but|before|after)"
_CLAUSE_SPLIT = re.compile(rf"\s*,\s*(?:{_CONJ}\s+)?|\s+{_CONJ}\s+", re.IGNORECASE)


_SUBJECT = re.compile(r"^((?:the|a|an|this)\s+(?:person|man|woman|boy|girl|child|people)|someone|somebody|"
                      r"he|she|they|we|you|i)\b(\s+(?:is|are|was|were|'s|seems to be|appears to be))?\s+", re.IGNORECASE)
_OWN_SUBJECT = {"the", "a", "an", "this", "that", "these", "those", "there", "it", "he", "she", "they", "we", "i",
                "you", "someone", "somebody", "person", "his", "her", "their", "its", "nothing", "no",
                "something", "anything", "everything"}  # not -ing verbs: "; something moves up" keeps its subject


def _with_subject(clause: str, subject: re.Match[str] | None) -> str:
    """A clause split off a sentence inherits the sentence's subject, so that it reads as a whole
    statement (``"holding a box"`` after ``"The person is opening a door"`` -> ``"The person is holding a box"``)."""
    if subject is None:
        return clause
    first = clause.split(" ", 1)[0].lower()
    if first in _OWN_SUBJECT:
        return clause
    if first.endswith("ing"):
        return f"{subject.group(1)}{subject.group(2) or ' is'} {clause}"
    return f"{subject.group(1)} {clause}"


def text_units(text: str, *, level: str = "clause") -> list[str]:
    """The pieces a frame's text is scored by: the sentences, and (``level="clause"``) their clauses.

    Sentences end at ``.``, ``!``, ``?``, ``;`` or a line break; clauses are split at commas and
    conjunctions (and, while, then, as, but, before, after) and inherit the sentence's subject.
    ``level="line"`` keeps the whole text as one unit. Clauses shorter than two words are dropped
    (conjunction debris, not facts). Order is kept; duplicates are removed.
    """
    text = " ".join(text.split())
    if level == "line" or not text:
        return [text] if text else []
    units: list[str] = []
    subject: re.Match[str] | None = None
    for sentence in _SENTENCE_SPLIT.split(text):
        sentence = sentence.strip(" .!?;,")
        if not sentence:
            continue
        own = _SUBJECT.match(sentence)
        if own is not None:
            subject = own
        elif subject is not None and sentence.split(" ", 1)[0].lower().endswith("ing"):
            sentence = _with_subject(sentence, subject)  # "...; holding a box": a list of actions
            own = subject
        units.append(sentence)
        if level == "clause":
            parts = [p.strip(" .,") for p in _CLAUSE_SPLIT.split(sentence)]
            parts = [p for p in parts if len(p.split()) >= 2]
            if len(parts) > 1:
                units.extend([parts[0], *(_with_subject(p, own) for p in parts[1:])])
    return list(dict.fromkeys(units)) or [text]


def sample_times(transcript: Transcript) -> tuple[np.ndarray, np.ndarray]:
    """Sample times of the (possibly merged) entries and the entry index of each sample: the frames'
    own instants where the entries carry them, else evenly spaced by the step from each start.
    Computed once per transcript (the arrays are shared: do not modify them)."""
    return transcript.derived("sample_times", lambda: _sample_times(transcript))


def _sample_times(transcript: Transcript) -> tuple[np.ndarray, np.ndarray]:
    times: list[float] = []
    owner: list[int] = []
    step = transcript.step
    for i, e in enumerate(transcript.entries):
        if e.times:
            times.extend(e.times)
            owner.extend([i] * len(e.times))
            continue
        n = max(1, int(round((e.end - e.start) / step)))
        times.extend(e.start + k * step for k in range(n))
        owner.extend([i] * n)
    arrays = np.asarray(times, dtype=float), np.asarray(owner, dtype=int)
    for a in arrays:
        a.setflags(write=False)  # shared by every query of the transcript
    return arrays


def gaussian_smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing in sample units, with edge values repeated past the ends."""
    if sigma <= 0 or len(values) < 2:
        return values.astype(float)
    radius = int(np.ceil(3 * sigma))
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(values.astype(float), radius, mode="edge")
    return np.convolve(padded, kernel, mode="valid")


def median_smooth(values: np.ndarray, width: int) -> np.ndarray:
    """Running median over ``width`` samples (odd): removes blips shorter than half the window and
    keeps step edges where they are. Near the ends the window holds only the samples there are
    (repeating the end sample instead would let a blip on the first or last frame outvote its neighbours)."""
    values = values.astype(float)
    n = len(values)
    if width < 3 or n < 3:
        return values
    radius = min(width // 2, n - 1)
    out = np.empty(n)
    if n > 2 * radius:
        windows = np.lib.stride_tricks.sliding_window_view(values, 2 * radius + 1)
        out[radius:n - radius] = np.median(windows, axis=1)
    for i in (*range(min(radius, n)), *range(max(radius, n - radius), n)):
        out[i] = np.median(values[max(0, i - radius):i + radius + 1])
    return out


@dataclass(frozen=True)
class Span:
    start: float
    end: float
    peak: float
    mass: float


def _crossing(t0: float, v0: float, t1: float, v1: float, level: float) -> float:
    """Where the line from ``(t0, v0)`` to ``(t1, v1)`` crosses ``level``; the midpoint when it does not."""
    if (v0 - level) * (v1 - level) >= 0 or v1 == v0:
        return (t0 + t1) / 2
    return t0 + (level - v0) / (v1 - v0) * (t1 - t0)


def _extent(curve: np.ndarray, free: np.ndarray, p: int, level: float, bridge: bool) -> tuple[int, int]:
    """The samples ``[lo, hi]`` of the span around peak ``p`` at ``level``.

    Without ``bridge``: the run of samples at or above the level. With it: the contiguous segment
    through ``p`` with the largest sum of ``curve - level`` (a maximum-sum segment), which steps over
    short dips below the level when the samples beyond make up for them, and stops where the curve
    stays below it.
    """
    n = len(curve)
    if not bridge:
        lo = p
        while lo > 0 and free[lo - 1] and curve[lo - 1] >= level:
            lo -= 1
        hi = p
        while hi < n - 1 and free[hi + 1] and curve[hi + 1] >= level:
            hi += 1
        return lo, hi
    gain = curve - level
    lo, best, acc = p, 0.0, 0.0
    i = p - 1
    while i >= 0 and free[i]:
        acc += gain[i]
        if acc >= best:
            best, lo = acc, i
        i -= 1
    hi, best, acc = p, 0.0, 0.0
    i = p + 1
    while i < n and free[i]:
        acc += gain[i]
        if acc >= best:
            best, hi = acc, i
        i += 1
    return lo, hi


def find_spans(times: np.ndarray, curve: np.ndarray, duration: float, *, rel_level: float = 0.5,
               base_percentile: float = 10.0, min_prominence: float = 0.3, top_k: int = 5,
               bridge: bool = True, plateau: float | None = None,
               flat_eps: float = 1e-3) -> tuple[list[Span], bool]:
    """Non-overlapping spans around the curve's peaks, best (highest peak) first.

    A secondary peak counts only when its height above the baseline is at least
    ``min_prominence`` times the main peak's. With ``plateau`` (a percentile, e.g. 50), the level
    of a span is set from its plateau rather than its single highest sample: the span is cut once
    at the peak's level, then again at the level of that percentile of the curve inside it (on a
    noisy plateau the top sample overstates the event's height, and its level cuts the span short;
    on a flat one the two are the same). Returns ``(spans, flat)``; a flat curve (peak and
    baseline within ``flat_eps``) gives one span over the whole video.
    """
    n = len(curve)
    base = float(np.percentile(curve, base_percentile))
    top = float(curve.max())
    if n == 1 or top - base <= flat_eps:
        return [Span(0.0, duration, top, (top - base) * duration)], True
    free = np.ones(n, dtype=bool)
    spans: list[Span] = []
    order = np.argsort(-curve, kind="stable")
    for p in order:
        if len(spans) >= top_k:
            break
        peak = float(curve[p])
        if peak - base < min_prominence * (top - base) or peak - base <= flat_eps:
            break
        if not free[p]:
            continue
        level = base + rel_level * (peak - base)
        lo, hi = _extent(curve, free, p, level, bridge)
        if plateau is not None:
            level = base + rel_level * (float(np.percentile(curve[lo:hi + 1], plateau)) - base)
            lo, hi = _extent(curve, free, p, level, bridge)
        # a peak whose run is bounded by an earlier span rather than by its own level is a shoulder of it
        if (lo > 0 and not free[lo - 1]) or (hi < n - 1 and not free[hi + 1]):
            free[lo:hi + 1] = False
            continue
        start = 0.0 if lo == 0 else _crossing(times[lo - 1], curve[lo - 1], times[lo], curve[lo], level)
        end = duration if hi == n - 1 else _crossing(times[hi], curve[hi], times[hi + 1], curve[hi + 1], level)
        start = min(max(start, times[lo - 1] if lo else 0.0), times[lo])
        end = max(min(end, times[hi + 1] if hi < n - 1 else duration), times[hi])
        start, end = max(0.0, start), min(duration, end)
        free[lo:hi + 1] = False
        if end > start:
            mass = float(np.sum(curve[lo:hi + 1] - base))
            spans.append(Span(start, end, peak, mass))
    return spans, False


def sample_edges(times: np.ndarray, duration: float) -> np.ndarray:
    """Boundaries of the part of the video each sample stands for: half-way between samples, 0 and the
    duration at the ends (``len(times) + 1`` values)."""
    return np.concatenate([[0.0], (times[1:] + times[:-1]) / 2, [max(float(duration), float(times[-1]))]])


def interval_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Temporal IoU of two ``(start, end)`` spans (0 when they do not overlap)."""
    inter = min(a[1], b[1]) - max(a[0], b[0])
    if inter <= 0:
        return 0.0
    return inter / (max(a[1], b[1]) - min(a[0], b[0]))


def interval_ious(lo: np.ndarray, hi: np.ndarray, a: float, b: float) -> np.ndarray:
    """Temporal IoU of each span ``[lo[i], hi[i]]`` with ``[a, b]``: :func:`interval_iou`'s arithmetic,
    element by element (0 where they do not overlap)."""
    inter = np.minimum(hi, b) - np.maximum(lo, a)
    iou = np.zeros(len(lo))
    np.divide(inter, np.maximum(hi, b) - np.minimum(lo, a), out=iou, where=inter > 0)
    return iou


def runs(above: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, ends)``: the first and last index of each run of ``True`` in ``above``, in order."""
    starts = np.flatnonzero(above & np.concatenate([[True], ~above[:-1]]))
    ends = np.flatnonzero(above & np.concatenate([~above[1:], [True]]))
    return starts, ends


#: :func:`run_pairs` keeps the pairs made for up to this many runs (the ranker's :data:`~temporal_reasoner.ranker.MAX_RUNS`
#: per level, and most curves' crossings): about 0.7 MB at most; a count above it (up to :data:`MAX_CROSSINGS`,
#: 1.3 MB of pairs and about 2 ms to make) is made each time rather than kept.
CACHED_PAIRS = 64


def run_pairs(count: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.triu_indices(count)``: each run with itself and every later run, as ``(first runs, last runs)``
    (read-only; made once per count up to :data:`CACHED_PAIRS`)."""
    return _cached_pairs(count) if count <= CACHED_PAIRS else _make_pairs(count)


def _make_pairs(count: int) -> tuple[np.ndarray, np.ndarray]:
    pairs = np.triu_indices(count)
    for a in pairs:
        a.setflags(write=False)
    return pairs


_cached_pairs = functools.lru_cache(maxsize=None)(_make_pairs)  # at most CACHED_PAIRS + 1 counts


#: Above this many level crossings the proposals are the runs above the level and successive maximum-sum
#: segments, not every pair of crossings (which grows with the square of their number).
MAX_CROSSINGS = 400


def find_segments(times: np.ndarray, curve: np.ndarray, duration: float, level: float, *, top_k: int = 10,
                  nms_iou: float = 0.5, raw: np.ndarray | None = None, reach: int = 0) -> list[Span]:
    """Ranked segments where the curve stands above ``level``, best first.

    A segment's score is the area of ``curve - level`` over it (each sample weighted by the time it
    stands for), so the best segment is the maximum-sum segment: it steps over dips that the samples
    beyond make up for and stops where the curve stays below the level. Every maximum-sum segment
    starts where the curve rises through the level and ends where it falls through it, so the
    proposals are the segments between such crossings, ranked by area and thinned by non-maximum
    suppression at ``nms_iou`` (overlapping alternatives stay when they overlap less): the first is
    the top-1 answer, the others rank alternatives (QVHighlights' several GT windows, mAP).
    Memory and time stay linear in the curve's length beyond :data:`MAX_CROSSINGS` crossings.

    With ``raw`` (the curve before it was smoothed) and ``reach`` > 0, each proposal, chosen and scored
    on ``curve``, is widened over the neighbouring samples whose raw score stands above the level
    (:func:`raw_edges`): smoothing spreads a sharp change over its neighbours, so that the level cut a
    clean step a sample off each true edge.
    """
    edges = sample_edges(times, duration)
    gain = (curve - level) * np.diff(edges)
    prefix = np.concatenate([[0.0], np.cumsum(gain)])
    above = curve > level
    if not above.any():
        above[int(np.argmax(curve))] = True
    starts, ends = runs(above)
    if len(starts) <= MAX_CROSSINGS:
        s, e = run_pairs(len(starts))  # a rise with its own run's fall and every later one's
        s, e = starts[s], ends[e]
    else:  # the runs above the level, plus the maximum-sum segments found one after another
        best = _successive_max_sums(gain, top_k)
        s = np.concatenate([starts, np.asarray([b[0] for b in best], dtype=starts.dtype)])
        e = np.concatenate([ends, np.asarray([b[1] for b in best], dtype=ends.dtype)])
    score = prefix[e + 1] - prefix[s]
    if raw is not None and reach > 0:
        s, e = raw_edges(s, e, raw, level, reach)
    return best_segments(s, e, score, edges, curve, duration, top_k=top_k, nms_iou=nms_iou)


def _run_ending(mask: np.ndarray) -> np.ndarray:
    """For each index, how many consecutive ``True`` samples of ``mask`` end there (0 where it is ``False``)."""
    index = np.arange(len(mask))
    last_false = np.maximum.accumulate(np.where(mask, -1, index))
    return np.where(mask, index - last_false, 0)


def raw_edges(starts: np.ndarray, ends: np.ndarray, raw: np.ndarray, level: float, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """The segments ``starts[i]..ends[i]`` (sample indices) with each edge moved out over the samples just
    outside it whose ``raw`` score stands above ``level``, up to ``reach`` samples a side.

    Smoothing mixes each sample with its neighbours, so on a clean step the first sample after a rise (and
    the last before a fall) is pulled under the level: cut on the smoothed curve alone, the segment loses a
    sample at each sharp edge (on a variable frame rate, the time that sample stands for). ``reach`` bounds
    the move to about the smoothing's own width, so that a run of raw scores above the level further out
    does not drag an edge along. Edges are only moved out: moving them in, over edge samples whose raw
    score is under the level, cost 2.2 R1@0.7 on QVHighlights' dev half and 3.4 R1@0.3 on NExT-GQA's,
    where a caption's noise often dips one sample of a moment under it (see docs/reasoners.md)."""
    above = np.asarray(raw) > level
    n = len(above)
    rise = _run_ending(above)              # above-level samples ending at i
    fall = _run_ending(above[::-1])[::-1]  # above-level samples starting at i
    s = np.asarray(starts)
    e = np.asarray(ends)
    out_s = np.minimum(np.where(s > 0, rise[np.maximum(s - 1, 0)], 0), reach)
    out_e = np.minimum(np.where(e < n - 1, fall[np.minimum(e + 1, n - 1)], 0), reach)
    return s - out_s, e + out_e


def _max_sum(gain: list, lo: int, hi: int) -> tuple[float, int, int]:
    """Kadane's scan of ``gain[lo:hi]``: ``(sum, first, last)`` of its maximum-sum segment (the first to
    reach that sum; ``(0.0, -1, -1)`` when no segment sums above 0). A run restarts after a sum <= 0."""
    best, first, last, acc, run = 0.0, -1, -1, 0.0, lo
    for i in range(lo, hi):
        if acc <= 0:
            acc, run = 0.0, i
        acc += gain[i]
        if acc > best:
            best, first, last = acc, run, i
    return best, first, last


def _successive_max_sums(gain: np.ndarray, count: int) -> list[tuple[int, int]]:
    """Up to ``count`` maximum-sum segments ``(first, last)`` found one after another, each over the samples
    the earlier ones left (a taken segment splits its stretch of free samples in two, and no segment spans a
    taken sample). Each stretch is scanned once when it appears, so the cost is that of one scan plus the
    rescans of the stretches split, not one scan of the whole curve per segment. On a tie the earlier one wins."""
    values = gain.tolist() if gain.dtype == np.float64 else list(gain)  # plain floats: the same sums, faster
    stretches = [(0, len(values), _max_sum(values, 0, len(values)))]  # (lo, hi, best in it), in order
    found: list[tuple[int, int]] = []
    for _ in range(count):
        pick, best = -1, 0.0
        for k, (_, _, (total, _, _)) in enumerate(stretches):
            if total > best:
                pick, best = k, total
        if pick < 0:
            break
        lo, hi, (_, first, last) = stretches[pick]
        found.append((first, last))
        stretches[pick:pick + 1] = [(a, b, _max_sum(values, a, b)) for a, b in ((lo, first), (last + 1, hi)) if b > a]
    return found


#: How many of the best-scored candidates :func:`best_segments` puts in order first (then four times as
#: many, and so on): the greedy suppression seldom looks past the first few, so sorting all is wasted.
FIRST_BLOCK = 64


def _best_first(scores: np.ndarray, first: int = FIRST_BLOCK) -> Iterator[np.ndarray]:
    """Candidate indices, best score first, a block at a time: the blocks joined are exactly
    ``np.argsort(-scores, kind="stable")`` (ties in index order, NaN last), but each block is cut from the rest
    by a partition and only it is sorted."""
    neg = -scores
    rest = np.arange(len(neg))
    size = max(1, first)
    while len(rest) > 2 * size:
        values = neg[rest]
        kth = np.partition(values, size - 1)[size - 1]
        if kth != kth:  # NaN: fewer than ``size`` numbers are left, and they are sorted below
            break
        take = values <= kth  # every tie of the cut joins this block, in index order
        yield rest[take][np.argsort(values[take], kind="stable")]
        rest = rest[~take]
        size *= 4
    if len(rest):
        yield rest[np.argsort(neg[rest], kind="stable")]


def _overlapping(lo: np.ndarray, hi: np.ndarray, a: float, b: float, nms_iou: float) -> np.ndarray:
    """Which spans ``[lo, hi]`` overlap ``[a, b]`` at IoU ``nms_iou`` or more."""
    return interval_ious(lo, hi, a, b) >= nms_iou


def best_segments(starts: np.ndarray, ends: np.ndarray, scores: np.ndarray, edges: np.ndarray, curve: np.ndarray,
                  duration: float, *, top_k: int, nms_iou: float) -> list[Span]:
    """Segments (sample indices ``starts[i]..ends[i]``) best score first, each kept unless it is empty or
    overlaps a better one at IoU ``nms_iou`` or more, up to ``top_k``; a span's ``mass`` is its score.
    ``top_k=0`` asks for none and gets ``[]`` (the one-at-a-time code before the vectorisation gave one
    span); a negative ``top_k`` is a :class:`~vidground.errors.ConfigurationError`. The reasoners refuse
    ``top_k < 1`` themselves, so only a direct caller meets either.

    Greedy non-maximum suppression, vectorised: each kept segment strikes out the candidates after it
    that overlap it, and the candidates are put in order only as far as the search gets (:func:`_best_first`)."""
    out: list[Span] = []
    if top_k < 1:
        if top_k < 0:
            raise ConfigurationError(f"top_k must be 0 or more, got {top_k}")
        return out
    duration = float(duration)
    for block in _best_first(scores):
        lo = edges[starts[block]].astype(np.float64)
        hi = np.minimum(edges[ends[block] + 1].astype(np.float64), duration)
        alive = hi > lo
        for kept in out:
            alive &= ~_overlapping(lo, hi, kept.start, kept.end, nms_iou)
        i = -1
        while True:
            following = alive[i + 1:]
            if not following.any():
                break
            i += 1 + int(np.argmax(following))
            o = block[i]
            out.append(Span(float(lo[i]), float(hi[i]), float(curve[starts[o]:ends[o] + 1].max()), float(scores[o])))
            if len(out) >= top_k:
                return out
            alive[i + 1:] &= ~_overlapping(lo[i + 1:], hi[i + 1:], out[-1].start, out[-1].end, nms_iou)
    return out
