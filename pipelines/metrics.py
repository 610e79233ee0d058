"""Temporal-grounding metrics: R1@m, R5@m, mIoU and mAP in percent, with the field's common convention.

The convention (moment_detr, lighthouse, UniVTG, TimeChat, lmms-eval):

* IoU over continuous seconds; with several GT windows (QVHighlights) a prediction's IoU is
  its best IoU over the windows;
* the top-1 prediction per query for R1 and mIoU; R5@m is a hit when any of the top 5 hits;
* a hit when ``IoU >= m``, compared exactly in floating point as the official scripts compare
  (moment_detr's ``standalone_eval``, NExT-GQA's ``eval_ground.py``, lmms-eval): an IoU such as
  0.49999999999999994, 0.5 in exact arithmetic, is a miss at 0.5 there and here (see :data:`TOLERANCE`);
* a missing, unparseable, empty or reversed prediction scores IoU 0 and stays in the
  denominator; how many there were, by kind, is reported, with what is wrong in each
  (:attr:`QueryScore.detail`); a top-1 prediction outside the video (see :func:`out_of_range`) is
  scored as given and reported as "out of range" (seconds mistaken for milliseconds or frames);
* the GT is used as annotated unless ``clip_gt=True`` (then clipped to the video duration);
* the baselines (whole video, prior span) never see the evaluated labels: see :mod:`pipelines.baselines`;
* mAP as QVHighlights' moment_detr ``standalone_eval`` computes it (see :func:`average_precision`):
  the first 10 intervals of each prediction ranked by score, each GT window matched at most once,
  interpolated AP per query and IoU threshold, averaged over queries; ``mAP`` averages
  IoU 0.5:0.05:0.95. One difference: a query without predictions scores AP 0 and stays in the
  denominator (moment_detr leaves it out of the mean; its submissions have every query).

:func:`compute_metrics` is the single entry point for runs, ``vidground score`` and reports.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from contextlib import closing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from vidground.errors import ConfigurationError

from .baselines import WHOLE_VIDEO_NOTE, SpanPrior, as_prior, known_duration
from .baselines import baseline_predictions, mean_prior  # noqa: F401  (re-exported: their home was here)
from .datasets import Query

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)
#: IoU thresholds of mAP (0.5:0.05:0.95) and the most intervals per query it ranks, as in moment_detr: its
#: ``np.linspace(0.5, 0.95, 10)``, whose 0.9 is 0.8999999999999999 (an IoU of 0.9 in floating point reaches it).
MAP_THRESHOLDS: tuple[float, ...] = tuple(float(m) for m in np.linspace(0.5, 0.95, 10))
MAP_MAX_PREDICTIONS = 10
#: How far under a threshold m a value still counts as reaching it: none. The official scripts compare ``>= m`` in
#: floating point with no tolerance (moment_detr ``compute_mr_r1`` and its mAP, NExT-GQA ``eval_ground.py``), so a
#: published figure counts 0.49999999999999994 (IoU [0.1, 0.4] vs [0, 0.3]) as under 0.5; a 1e-9 tolerance here
#: (before) counted it, raising NExT-GQA's IoP@0.3 from 38.06 to 38.48 on a 1,666-question run. Every hit is decided
#: on the unrounded value with this name (:func:`reaches`, or ``>= m - TOLERANCE``): the scores, the report's rounding
#: (``pipelines.report``), compare's fixed/broken counts and the eval's progress bar agree.
TOLERANCE = 0.0


def reaches(value: float, m: float) -> bool:
    """Whether an IoU (or IoP) ``value`` is a hit at threshold ``m``, as every score here decides it: the unrounded
    value, compared as the official scripts compare (``>= m``, less :data:`TOLERANCE`)."""
    return bool(value >= m - TOLERANCE)
#: Failure kinds a prediction can have (it then scores IoU 0).
FAILURE_KINDS = ("missing", "error", "empty", "unparseable", "reversed")
#: Problems a prediction can have and still be scored as given.
WARNING_KINDS = ("out of range",)


def out_of_range_slack(duration: float) -> float:
    """How far past the video a prediction may reach before it is "out of range": 1 s or 5% of the
    duration, whichever is more (annotations themselves overshoot the end by up to 1.5 s)."""
    return max(1.0, 0.05 * duration)


def out_of_range(span: tuple[float, float], duration: float) -> bool:
    """Whether a span starts before 0 or ends after the video, beyond :func:`out_of_range_slack`, or
    starts at or after the video's end."""
    slack = out_of_range_slack(duration)
    return span[0] < -slack or span[1] > duration + slack or span[0] >= duration


class QueryScore(BaseModel):
    """How one query scored: ``iou`` of the top-1 prediction, ``best5`` the best IoU in the top 5.
    ``failure`` is a :data:`FAILURE_KINDS` (scored IoU 0), ``warning`` a :data:`WARNING_KINDS` (scored
    as given); ``detail`` says what is wrong in words. A grounded-QA question also has ``iop`` (the top-1
    span's IoP) and ``correct`` (whether the answer is); ``answer_problem`` says why its prediction chose no option
    (:data:`NO_ANSWER`, counted as a wrong answer), where one was given but unreadable."""

    qid: str
    iou: float
    best5: float
    failure: str | None = None
    top1: tuple[float, float] | None = None
    warning: str | None = None
    detail: str | None = None
    iop: float | None = None
    correct: bool | None = None
    answer_problem: str | None = None


class Metrics(BaseModel):
    """Metric values in percent keyed ``"R1@0.5"``, ``"R5@0.5"``, ``"mIoU"``, ``"mAP@0.5"``,
    ``"mAP@0.75"``, ``"mAP"``; ``ci`` holds the bootstrap 95% interval of each. ``baselines`` maps
    a baseline name to its own values."""

    n: int
    values: dict[str, float]
    ci: dict[str, tuple[float, float]] = Field(default_factory=dict)
    failures: dict[str, int] = Field(default_factory=dict)
    #: predictions scored as given that look wrong, by kind (:data:`WARNING_KINDS`)
    warnings: dict[str, int] = Field(default_factory=dict)
    #: the most intervals mAP ranked for one query (at most :data:`MAP_MAX_PREDICTIONS`; fewer when no prediction
    #: had more, e.g. a run with ``--top-k 5``); ``None`` without mAP
    map_intervals: int | None = None
    #: grounded-QA predictions that chose no option (unreadable or missing key), by kind: counted as wrong answers
    answer_problems: dict[str, int] = Field(default_factory=dict)
    #: what was left unscored and why, in a sentence (grounded QA: no prediction gave an answer, so only the spans
    #: are scored); empty when everything was
    unscored: str = ""
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    convention: str = ""
    clip_gt: bool = False
    bootstrap: int = 0
    baselines: dict[str, dict[str, float]] = Field(default_factory=dict)
    #: the prior-span baseline's ``(start, end)`` as fractions of each video's duration
    prior: tuple[float, float] | None = None
    #: how each baseline was made, in words (what it predicts, what its prior was learned on, on how many queries)
    baseline_notes: dict[str, str] = Field(default_factory=dict)
    per_query: list[QueryScore] = Field(default_factory=list, repr=False)

    @property
    def n_failures(self) -> int:
        return sum(self.failures.values())

    @property
    def problems(self) -> dict[str, int]:
        """Failures, warnings and answer problems together, by kind (a row can have one of each)."""
        return self.failures | self.warnings | self.answer_problems

    @property
    def problem_rows(self) -> int:
        """How many predictions have any problem: a row with a reversed span and no answer is one row, two
        :attr:`problems`. Without :attr:`per_query` (not kept), the sum of the problems."""
        if not self.per_query:
            return sum(self.problems.values())
        return sum(bool(s.failure or s.warning or s.answer_problem) for s in self.per_query)

    def __getitem__(self, key: str) -> float:
        return self.values[key]

    def summary(self) -> dict[str, Any]:
        """A JSON-ready dict without the per-query scores."""
        return self.model_dump(mode="json", exclude={"per_query"}) | {"n_failures": self.n_failures,
                                                                       "problem_rows": self.problem_rows}


def baselines_text(m: Metrics) -> str:
    """How each baseline in ``m`` was made, in a sentence; every report prints it."""
    return "Baselines: " + "; ".join(f"{name}: {note}" for name, note in m.baseline_notes.items()) + "."


def convention_text(thresholds: Sequence[float] = DEFAULT_THRESHOLDS, clip_gt: bool = False,
                    mean_ap: bool = False, map_intervals: int | None = None) -> str:
    """The metric convention in a sentence or two; every report prints it. ``map_intervals`` is the most
    intervals mAP ranked for a query: fewer than :data:`MAP_MAX_PREDICTIONS` is said, as it lowers mAP."""
    ms = ", ".join(f"{m:g}" for m in thresholds)
    gt = "GT clipped to the video duration" if clip_gt else "GT used as annotated (not clipped to the duration)"
    text = (f"IoU over seconds (best over GT windows), top-1 per query for R1/mIoU and top-5 for R5; "
            f"hit when IoU >= m (m in {ms}; compared exactly, as moment_detr's standalone_eval); missing, "
            f"unparseable or reversed "
            f"predictions score IoU 0 and stay in the denominator (out-of-range ones are scored as given and "
            f"reported); {gt}.")
    if mean_ap:
        text += (f" mAP as moment_detr's standalone_eval: the first {MAP_MAX_PREDICTIONS} intervals ranked by "
                 "score (given order without scores), each GT window matched once, interpolated AP per query, "
                 "mean over queries (AP 0 without predictions); mAP averages IoU 0.5:0.05:0.95.")
        if map_intervals and map_intervals < MAP_MAX_PREDICTIONS:
            text += (f" Here no prediction had more than {map_intervals} interval(s) (eval --top-k or the reasoner "
                     f"kept no more): mAP ranked at most {map_intervals}, not the standard {MAP_MAX_PREDICTIONS}, "
                     f"which lowers it; published mAP figures rank {MAP_MAX_PREDICTIONS}.")
    return text


def iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Temporal IoU of two ``(start, end)`` spans in seconds (0 when the union is empty)."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class _Failed:
    """Why a prediction or one of its intervals cannot be scored: a :data:`FAILURE_KINDS` and the reason."""

    kind: str
    detail: str


def _short(value: Any, limit: int = 60) -> str:
    text = repr(list(value) if isinstance(value, tuple) else value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _is_number(x: Any) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool)


def _span(item: Any) -> tuple[float, float] | _Failed:
    """``(start, end)`` of one predicted interval, or why it cannot be scored."""
    if hasattr(item, "start") and hasattr(item, "end"):
        s, e = item.start, item.end
    elif isinstance(item, Mapping):
        s, e = item.get("start"), item.get("end")
    elif isinstance(item, (list, tuple)) and len(item) >= 2:
        s, e = item[0], item[1]
    else:
        return _Failed("unparseable", f"interval {_short(item)} is not [start, end] or [start, end, score]")
    try:
        if isinstance(s, bool) or isinstance(e, bool):
            raise TypeError
        s, e = float(s), float(e)
    except (TypeError, ValueError):
        return _Failed("unparseable", f"interval {_short(item)} does not start with two numbers")
    if not (math.isfinite(s) and math.isfinite(e)):
        return _Failed("unparseable", f"interval {_short(item)} is not finite")
    if not e > s:
        return _Failed("reversed", f"interval {_short(item)} " + ("has zero length" if e == s else "ends before it starts"))
    return (s, e)


def _items(prediction: Any) -> Sequence[Any] | _Failed:
    """The raw interval list of a prediction, or why there is none."""
    if prediction is None:
        return _Failed("missing", "no prediction for this query")
    if isinstance(prediction, Mapping):
        if err := prediction.get("error"):
            if isinstance(err, Mapping):
                err = f"{err.get('type', 'Error')}: {err.get('message', '')}".rstrip(": ")
            return _Failed("error", f"failed: {err}" if isinstance(err, str) else "failed")
        items = prediction.get("intervals", prediction.get("pred_relevant_windows"))
        if items is None:
            keys = ", ".join(repr(k) for k in prediction if not str(k).startswith("_")) or "none"
            return _Failed("unparseable", f"no 'intervals' (or 'pred_relevant_windows') key; its keys: {keys}")
    elif hasattr(prediction, "intervals"):
        items = prediction.intervals
    else:
        items = prediction
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        return _Failed("unparseable", f"'intervals' is {_short(items)}, not a list of [start, end] pairs")
    if not len(items):
        return _Failed("empty", "'intervals' is an empty list")
    if len(items) in (2, 3) and all(_is_number(x) for x in items):
        return _Failed("unparseable", f"'intervals' is a flat list {_short(items)}; write a list of intervals: "
                                      f"[{_short(items)}]")
    return items


def _parse(prediction: Any) -> tuple[list[tuple[float, float]], _Failed | None]:
    """The spans of a prediction that parse (best first) and why its top-1 cannot be scored, if so."""
    items = _items(prediction)
    if isinstance(items, _Failed):
        return [], items
    spans = [_span(it) for it in items]
    good = [s for s in spans if not isinstance(s, _Failed)]
    return good, spans[0] if isinstance(spans[0], _Failed) else None


def prediction_spans(prediction: Any) -> tuple[list[tuple[float, float]], str | None]:
    """Normalise one query's prediction to its spans (best first) and the failure kind of its top-1.

    Accepts ``None`` (missing), a :class:`~vidground.types.GroundingResult`, a list of
    intervals (``[s, e]``, ``[s, e, score]``, ``{"start", "end"}`` or ``Interval``), or a dict
    with ``"intervals"`` / ``"pred_relevant_windows"`` and optionally ``"error"``. Later
    intervals that do not parse are skipped (they only matter for R5).
    """
    spans, failed = _parse(prediction)
    return spans, failed.kind if failed else None


def _score(item: Any) -> float | None:
    """The confidence of one predicted interval, or None when it has none (or it is not a number)."""
    if isinstance(item, Mapping):
        score = item.get("score")
    elif isinstance(item, (list, tuple)):
        score = item[2] if len(item) >= 3 else None
    else:
        score = getattr(item, "score", None)
    if isinstance(score, bool) or not isinstance(score, Real) or not math.isfinite(score):
        return None
    return float(score)


def ranked_spans(prediction: Any, limit: int = MAP_MAX_PREDICTIONS) -> list[tuple[float, float] | None]:
    """The intervals mAP ranks, as moment_detr does: the first ``limit`` in the given order, then
    sorted by decreasing score (stably, so ties keep their order) when every one has a score; an
    interval that does not parse or is reversed stays in its place as ``None`` (a false positive).
    A failed prediction gives ``[]``."""
    items = _items(prediction)
    if isinstance(items, _Failed):
        return []
    items = list(items[:limit])
    scores = [_score(it) for it in items]
    if all(sc is not None for sc in scores):
        items = [items[i] for i in sorted(range(len(items)), key=lambda i: -scores[i])]
    return [None if isinstance(sp := _span(it), _Failed) else sp for it in items]


def average_precision(ranked: Sequence[Sequence[tuple[float, float] | None]],
                      gts: Sequence[Sequence[tuple[float, float]]],
                      thresholds: Sequence[float] = MAP_THRESHOLDS) -> np.ndarray:
    """Per-query average precision, shape ``(queries, thresholds)``, as fractions.

    ``ranked[i]`` is query i's intervals, best first (see :func:`ranked_spans`), ``gts[i]`` its GT
    windows. As ActivityNet's ``compute_average_precision_detection`` (moment_detr's
    ``standalone_eval``): going down the ranking, an interval is a true positive at threshold m when
    some GT window not yet matched at m has IoU >= m (the one of highest IoU is taken), else a false
    positive; AP is the area under the interpolated precision-recall curve, recall being matched
    windows over all windows. A query with no intervals scores 0.
    """
    n, n_thr = len(gts), len(thresholds)
    n_pred = max((len(r) for r in ranked), default=0)
    n_gt = max((len(g) for g in gts), default=0)
    if n_pred == 0 or n_gt == 0:
        return np.zeros((n, n_thr))
    # padding and failed intervals are NaN: IoU -1, never matched
    pred = np.full((n, n_pred, 2), np.nan)
    gt = np.full((n, n_gt, 2), np.nan)
    for i, (r, g) in enumerate(zip(ranked, gts)):
        for k, span in enumerate(r):
            if span is not None:
                pred[i, k] = span
        if g:
            gt[i, :len(g)] = g
    ps, pe = pred[:, :, None, 0], pred[:, :, None, 1]
    gs, ge = gt[:, None, :, 0], gt[:, None, :, 1]
    with np.errstate(invalid="ignore"):
        inter = np.clip(np.minimum(pe, ge) - np.maximum(ps, gs), 0.0, None)
        # the union as moment_detr's compute_temporal_iou_batch_cross computes it (the two lengths less the
        # intersection), not :func:`iou`'s hull (its compute_temporal_iou_batch_paired, R1's): equal in exact
        # arithmetic, they round differently, which decides a hit at an IoU on a threshold
        ious = inter / ((pe - ps) + (ge - gs) - inter)  # (n, n_pred, n_gt)
    ious = np.where(np.isnan(ious), -1.0, ious)
    # candidate GT windows of each interval by decreasing IoU (ties: the later window first, as
    # moment_detr's argsort()[::-1])
    order = np.argsort(ious, axis=2, kind="stable")[:, :, ::-1]
    by_iou = np.take_along_axis(ious, order, axis=2)
    thr = np.asarray(thresholds, dtype=float)[None, :, None] - TOLERANCE
    matched = np.zeros((n, n_thr, n_gt), dtype=bool)
    tp = np.zeros((n, n_thr, n_pred))
    rows, cols = np.arange(n)[:, None], np.arange(n_thr)[None, :]
    for k in range(n_pred):  # sequential: a window matched by a better-ranked interval is taken
        cand = np.broadcast_to(order[:, None, k, :], (n, n_thr, n_gt))
        free = (by_iou[:, None, k, :] >= thr) & ~np.take_along_axis(matched, cand, axis=2)
        hit = free.any(axis=2)
        window = np.take_along_axis(order[:, k, :], free.argmax(axis=2), axis=1)  # (n, n_thr)
        matched[rows, cols, window] |= hit
        tp[:, :, k] = hit
    precision = np.cumsum(tp, axis=2) / np.arange(1, n_pred + 1)
    envelope = np.maximum.accumulate(precision[:, :, ::-1], axis=2)[:, :, ::-1]
    counts = np.array([len(g) for g in gts], dtype=float)[:, None]
    return np.divide((envelope * tp).sum(axis=2), counts, out=np.zeros((n, n_thr)), where=counts > 0)


def _map_columns(ap: np.ndarray, thresholds: Sequence[float] = MAP_THRESHOLDS) -> dict[str, np.ndarray]:
    """Per-query AP vectors for ``mAP@0.5``, ``mAP@0.75`` (when among the thresholds) and ``mAP`` (the
    mean over all thresholds)."""
    cols = {f"mAP@{m:g}": ap[:, i] for i, m in enumerate(thresholds) if m in (0.5, 0.75)}
    return cols | {"mAP": ap.mean(axis=1)}


def gt_windows(query: Query, clip_gt: bool = False) -> list[tuple[float, float]]:
    """The query's GT windows, clipped to ``[0, duration]`` when asked (a window wholly past the
    end is kept as annotated rather than dropped)."""
    wins = list(query.windows)
    if clip_gt and query.duration is not None:
        clipped = []
        for s, e in wins:
            cs, ce = max(0.0, s), min(e, query.duration)
            clipped.append((cs, ce) if ce > cs else (s, e))
        wins = clipped
    return wins


def score_query(query: Query, prediction: Any, *, clip_gt: bool = False, top_k: int = 5,
                duration: float | None = None) -> QueryScore:
    """One query's score. ``duration`` is the video's length where the query has none (it is used to
    tell an out-of-range prediction)."""
    spans, failed = _parse(prediction)
    gts = gt_windows(query, clip_gt)

    def best(span: tuple[float, float]) -> float:
        return max(iou(span, g) for g in gts)

    top1 = best(spans[0]) if failed is None else 0.0
    best5 = max([best(s) for s in spans[:top_k]] + [top1]) if spans else 0.0
    warning = detail = None
    if failed is not None:
        detail = failed.detail
    elif (dur := query.duration or duration) and out_of_range(spans[0], dur):
        warning = "out of range"
        detail = f"interval [{spans[0][0]:g}, {spans[0][1]:g}] lies outside the video [0, {dur:g}] s"
    return QueryScore(qid=query.qid, iou=top1, best5=best5, failure=failed.kind if failed else None,
                      top1=spans[0] if failed is None else None, warning=warning, detail=detail)


def _values(ious: np.ndarray, best5: np.ndarray | None, thresholds: Sequence[float],
            ap: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Metric values (percent) along the last axis; works on a (B, n) bootstrap matrix too. ``ap``
    maps an mAP key to its per-query AP."""
    out: dict[str, np.ndarray] = {}
    for m in thresholds:
        out[f"R1@{m:g}"] = 100.0 * (ious >= m - TOLERANCE).mean(axis=-1)
    if best5 is not None:
        for m in thresholds:
            out[f"R5@{m:g}"] = 100.0 * (best5 >= m - TOLERANCE).mean(axis=-1)
    out["mIoU"] = 100.0 * ious.mean(axis=-1)
    for k, v in (ap or {}).items():
        out[k] = 100.0 * v.mean(axis=-1)
    return out


def bootstrap_ci(ious: np.ndarray, best5: np.ndarray | None, thresholds: Sequence[float],
                 resamples: int, seed: int = 0, level: float = 0.95,
                 ap: Mapping[str, np.ndarray] | None = None) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap over queries; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    n = len(ious)
    chunks: dict[str, list[np.ndarray]] = {}
    for start in range(0, resamples, 200):
        idx = rng.integers(0, n, size=(min(200, resamples - start), n))
        sample_ap = {k: v[idx] for k, v in ap.items()} if ap else None
        for k, v in _values(ious[idx], None if best5 is None else best5[idx], thresholds, sample_ap).items():
            chunks.setdefault(k, []).append(v)
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    return {k: (round(float(np.percentile(np.concatenate(v), lo)), 2),
                round(float(np.percentile(np.concatenate(v), hi)), 2)) for k, v in chunks.items()}


def compute_metrics(predictions: Mapping[str, Any], queries: Sequence[Query], *,
                    thresholds: Sequence[float] = DEFAULT_THRESHOLDS, clip_gt: bool = False,
                    bootstrap: int = 1000, seed: int = 0, baselines: bool = True,
                    prior: SpanPrior | tuple[float, float] | None = None, mean_ap: bool | None = None,
                    durations: Mapping[str, float] | None = None) -> Metrics:
    """Score ``predictions`` (qid -> prediction, see :func:`prediction_spans`) on ``queries``.

    Every query is in the denominator; a qid absent from ``predictions`` is a "missing"
    failure. R5@m appears only when some prediction has more than one interval. ``mAP@0.5``,
    ``mAP@0.75`` and ``mAP`` (see :func:`average_precision`) appear when ``mean_ap`` is true or,
    by default, when some prediction has more than one interval or some query more than one GT
    window (otherwise they would equal R1). ``bootstrap`` resamples (0 to skip) give a 95% CI per
    metric. With ``baselines`` the whole-video and prior-span baselines are scored on the same
    queries, with the same metrics: ``prior`` is a :class:`~pipelines.baselines.SpanPrior` or a
    ``(start, end)`` pair of fractions (default :data:`~pipelines.baselines.FIXED_PRIOR`; it is never
    fitted on ``queries``, see :func:`~pipelines.baselines.dataset_prior`). ``durations`` (video id ->
    seconds) stands in for queries without an annotated duration, for the baselines and for telling
    out-of-range predictions; queries with no known duration are left out of the baselines.
    """
    if not queries:
        raise ConfigurationError("no queries to score")
    ths = tuple(float(m) for m in thresholds)
    if not ths or any(not 0 < m <= 1 for m in ths):
        raise ConfigurationError(f"thresholds must be in (0, 1], got {list(thresholds)}")
    scores = [score_query(q, predictions.get(q.qid), clip_gt=clip_gt, duration=known_duration(q, durations))
              for q in queries]
    ious = np.array([s.iou for s in scores])
    multi = any(not isinstance(it := _items(predictions.get(q.qid)), _Failed) and len(it) > 1 for q in queries)
    best5 = np.array([s.best5 for s in scores]) if multi else None
    if mean_ap is None:
        mean_ap = multi or any(len(q.windows) > 1 for q in queries)
    ranked = [ranked_spans(predictions.get(q.qid)) for q in queries] if mean_ap else []
    ap = _map_columns(average_precision(ranked, [gt_windows(q, clip_gt) for q in queries])) if mean_ap else None
    map_intervals = max((len(r) for r in ranked), default=0) if mean_ap else None
    values = {k: round(float(v), 2) for k, v in _values(ious, best5, ths, ap).items()}
    counts = Counter(s.failure or s.warning for s in scores if s.failure or s.warning)
    result = Metrics(
        n=len(queries), values=values, failures={k: counts[k] for k in FAILURE_KINDS if counts[k]},
        warnings={k: counts[k] for k in WARNING_KINDS if counts[k]},
        thresholds=ths, convention=convention_text(ths, clip_gt, mean_ap, map_intervals), clip_gt=clip_gt,
        map_intervals=map_intervals,
        bootstrap=bootstrap, per_query=scores,
        ci=bootstrap_ci(ious, best5, ths, bootstrap, seed, ap=ap) if bootstrap > 0 else {},
    )
    if baselines:
        _score_baselines(result, queries, as_prior(prior), durations, ths, clip_gt, mean_ap)
    return result


def _score_baselines(result: Metrics, queries: Sequence[Query], prior: SpanPrior,
                     durations: Mapping[str, float] | None, ths: tuple[float, ...], clip_gt: bool,
                     mean_ap: bool) -> None:
    """The whole-video and prior-span baselines, on the queries whose duration is known."""
    timed = [q for q in queries if known_duration(q, durations)]
    result.prior = prior.as_tuple()
    notes = {"whole video": WHOLE_VIDEO_NOTE,
             "prior span": f"[{prior.start:.2f}, {prior.end:.2f}] x duration for every query, {prior.source}"}
    if not timed:
        result.baseline_notes = {k: f"{v}; not scored: no video duration is known" for k, v in notes.items()}
        return
    if len(timed) < len(queries):
        notes = {k: f"{v}; scored on the {len(timed)} of {len(queries)} queries whose video duration is known"
                 for k, v in notes.items()}
    result.baseline_notes = notes
    for name, kind in (("whole video", "whole"), ("prior span", "prior")):
        preds = baseline_predictions(timed, kind, prior, durations)
        b = compute_metrics(preds, timed, thresholds=ths, clip_gt=clip_gt, bootstrap=0, baselines=False,
                            mean_ap=mean_ap, durations=durations)
        result.baselines[name] = b.values


# ------------------------------------------------------------------------------------ grounded QA

#: The grounded-QA metrics, as NExT-GQA's ``eval_ground.py`` prints them (plus Acc@QA).
QA_KEYS = ("Acc@QA", "Acc@GQA", "mIoP", "IoP@0.3", "IoP@0.5", "mIoU", "IoU@0.3", "IoU@0.5")
QA_RANDOM_NOTE = "random choice (expected accuracy 1/options) with the whole video [0, duration] as its span"


def iop(pred: tuple[float, float], gt: tuple[float, float]) -> float:
    """Intersection over prediction: the overlap of the predicted span with ``gt`` over the predicted span's
    length (NExT-GQA's IoP; 0 for a span of no length, which the convention here scores as a failure)."""
    length = pred[1] - pred[0]
    return max(0.0, min(pred[1], gt[1]) - max(pred[0], gt[0])) / length if length > 0 else 0.0


#: The keys a grounded-QA prediction may give its chosen option by: a 0-based index (``prediction`` is NExT-GQA's
#: own results file's key, ``pred_choice`` a common alias), else the option's text. The first present is read.
CHOICE_KEYS: tuple[str, ...] = ("choice", "pred_choice", "prediction")
ANSWER_KEYS: tuple[str, ...] = ("answer", "pred_answer")
#: The problem kind of a question whose prediction chose none of its options (counted as a wrong answer).
NO_ANSWER = "no answer"


def read_choice(query: Query, prediction: Any) -> tuple[int | None, str | None]:
    """The option a prediction chose, and what is wrong when it chose none: an index under one of
    :data:`CHOICE_KEYS` (the first present; an int in ``range(options)``), else a text under one of
    :data:`ANSWER_KEYS` matched to an option (case and spacing ignored). ``(None, None)`` for no prediction
    at all (that is its own failure, "missing")."""
    if prediction is None:
        return None, None
    get = _reader(prediction)
    n = len(query.choices)
    accepted = (f"give the 0-based option index as {' / '.join(repr(k) for k in CHOICE_KEYS)} (an integer 0-{n - 1}) "
                f"or the option's text as {' / '.join(repr(k) for k in ANSWER_KEYS)}")
    for key in CHOICE_KEYS:
        value = get(key)
        if value is None:
            continue
        if isinstance(value, float) and value.is_integer():  # 2.0: a whole number a JSON writer gave as a float
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if 0 <= value < n:
                return value, None
            return None, f"{key!r} is {value}, not an option index 0-{n - 1}"
        return None, f"{key!r} is {_short(value)}, not an integer option index 0-{n - 1}"
    for key in ANSWER_KEYS:
        text = get(key)
        if text is None:
            continue
        if not isinstance(text, str):
            return None, (f"{key!r} is {_short(text)}, not an option's text (in NExT-GQA's results files 'answer' "
                          "is the ground truth: give the prediction as 'prediction' or 'choice')")
        norm = " ".join(text.lower().split())
        for i, c in enumerate(query.choices):
            if " ".join(c.lower().split()) == norm:
                return i, None
        return None, f"{key!r} {_short(text)} matches none of the {n} options"
    keys = ", ".join(repr(k) for k in (prediction if isinstance(prediction, Mapping) else {})
                     if not str(k).startswith("_")) or "none"
    return None, f"no chosen option ({accepted}); its keys: {keys}"


def gives_answer(prediction: Any) -> bool:
    """Whether ``prediction`` gives an answer under any of :data:`CHOICE_KEYS` / :data:`ANSWER_KEYS` (readable or
    not): a grounding-only prediction gives none."""
    if prediction is None:
        return False
    get = _reader(prediction)
    return any(get(k) is not None for k in (*CHOICE_KEYS, *ANSWER_KEYS))


def _reader(prediction: Any) -> Callable[[str], Any]:
    """A prediction's fields by name: a mapping's keys or an object's attributes (``None`` when absent)."""
    return prediction.get if isinstance(prediction, Mapping) else lambda k: getattr(prediction, k, None)


def predicted_choice(query: Query, prediction: Any) -> int | None:
    """The option a prediction chose (see :func:`read_choice`); ``None`` when it chose none of them."""
    return read_choice(query, prediction)[0]


def score_question(query: Query, prediction: Any, *, duration: float | None = None) -> QueryScore:
    """One question's score: the top-1 span's IoU and IoP, each the best over the GT windows (NExT-GQA
    takes the two maxima separately), and whether the chosen option is the answer. A prediction whose span
    failed scores 0 on the span metrics; its answer is still scored (Acc@QA does not look at spans)."""
    base = score_query(query, prediction, duration=duration)
    choice, problem = read_choice(query, prediction)
    if base.failure in ("missing", "error"):  # no prediction to read an answer from: that failure says so
        problem = None
    answer = {"correct": choice == query.answer, "answer_problem": problem}
    if base.failure is not None:
        return base.model_copy(update={"iop": 0.0, **answer})
    top1 = base.top1
    best_iop = max(iop(top1, g) for g in query.windows)  # type: ignore[arg-type]
    return base.model_copy(update={"iop": best_iop, **answer})


def _qa_values(correct: np.ndarray, ious: np.ndarray, iops: np.ndarray) -> dict[str, np.ndarray]:
    """The :data:`QA_KEYS` in percent along the last axis (a (B, n) bootstrap matrix works too)."""
    hit = lambda x, m: (x >= m - TOLERANCE).mean(axis=-1) * 100.0  # noqa: E731
    return {"Acc@QA": 100.0 * correct.mean(axis=-1),
            "Acc@GQA": 100.0 * (correct * (iops >= 0.5 - TOLERANCE)).mean(axis=-1),
            "mIoP": 100.0 * iops.mean(axis=-1), "IoP@0.3": hit(iops, 0.3), "IoP@0.5": hit(iops, 0.5),
            "mIoU": 100.0 * ious.mean(axis=-1), "IoU@0.3": hit(ious, 0.3), "IoU@0.5": hit(ious, 0.5)}


def qa_convention_text() -> str:
    return ("NExT-GQA's definitions (doc-doc/NExT-GQA code/TempGQA/eval_ground.py) on the top-1 span: IoU, and IoP = "
            "overlap / the predicted span's length, each the best over the question's GT windows; mIoU, mIoP and "
            "IoU/IoP@m (>= m, compared exactly as the script does) over questions; Acc@QA: the chosen option is the "
            "answer (its index in the five options as the file gives them, as the official loader's index); "
            "Acc@GQA: the answer is right and IoP >= 0.5. Failed or missing predictions score 0 and stay in the "
            "denominator (the official script leaves unpredicted questions out); a span of no length is a failed "
            "span here (IoU and IoP 0; the official script gives it IoP 1 inside a GT window); an answer whose "
            "span failed still counts for Acc@QA; a prediction that chose no option (no accepted key, an index out of "
            "range, a text matching no option) counts as a wrong answer and is listed as 'no answer'.")


def compute_qa_metrics(predictions: Mapping[str, Any], queries: Sequence[Query], *, bootstrap: int = 1000,
                       seed: int = 0, baselines: bool = True, durations: Mapping[str, float] | None = None,
                       **_ignored: Any) -> Metrics:
    """Grounded-QA metrics (:data:`QA_KEYS`, percent) of ``predictions`` (qid -> a prediction with
    ``choice``/``answer`` and ``intervals``, or an :class:`~vidground.types.Answer`) on multiple-choice
    ``queries``. With ``baselines``, random choice with the whole video as its span (expected values, so
    no seed is involved) on the questions whose duration is known."""
    if not queries:
        raise ConfigurationError("no queries to score")
    not_questions = [q.qid for q in queries if not q.is_question]
    if not_questions:
        raise ConfigurationError(f"{len(not_questions)} queries have no choices (e.g. {not_questions[0]}); "
                                 "grounded-QA metrics need a QA dataset such as nextgqa")
    scores = [score_question(q, predictions.get(q.qid), duration=known_duration(q, durations)) for q in queries]
    # a grounding-only predictions file (no row gives an answer under any key): its spans are scored, its answers
    # are not (20 "no answer" problems and Acc@QA 0 said nothing the file meant)
    answered = any(gives_answer(predictions.get(q.qid)) for q in queries)
    unscored = "" if answered else ("no answers in the file (no prediction gives " + " / ".join(
        repr(k) for k in (*CHOICE_KEYS, *ANSWER_KEYS)) + "): Acc@QA and Acc@GQA not scored, the spans only")
    if not answered:
        scores = [s.model_copy(update={"correct": None, "answer_problem": None}) for s in scores]
    keep = lambda values: {k: v for k, v in values.items() if answered or not k.startswith("Acc@")}  # noqa: E731
    correct = np.array([bool(s.correct) for s in scores], dtype=float)
    ious = np.array([s.iou for s in scores])
    iops = np.array([s.iop or 0.0 for s in scores])
    values = {k: round(float(v), 2) for k, v in keep(_qa_values(correct, ious, iops)).items()}
    ci: dict[str, tuple[float, float]] = {}
    if bootstrap > 0:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(queries), size=(bootstrap, len(queries)))
        for k, v in keep(_qa_values(correct[idx], ious[idx], iops[idx])).items():
            ci[k] = (round(float(np.percentile(v, 2.5)), 2), round(float(np.percentile(v, 97.5)), 2))
    counts = Counter(s.failure or s.warning for s in scores if s.failure or s.warning)
    unanswered = sum(s.answer_problem is not None for s in scores)
    result = Metrics(n=len(queries), values=values, ci=ci, failures={k: counts[k] for k in FAILURE_KINDS if counts[k]},
                     warnings={k: counts[k] for k in WARNING_KINDS if counts[k]},
                     answer_problems={NO_ANSWER: unanswered} if unanswered else {}, thresholds=(0.3, 0.5),
                     convention=qa_convention_text() + (f" Here {unscored}." if unscored else ""), bootstrap=bootstrap,
                     per_query=scores, unscored=unscored)
    if baselines:
        timed = [q for q in queries if known_duration(q, durations)]
        if timed:
            whole = [(0.0, float(known_duration(q, durations))) for q in timed]
            b_ious = np.array([max(iou(w, g) for g in q.windows) for q, w in zip(timed, whole)])
            b_iops = np.array([max(iop(w, g) for g in q.windows) for q, w in zip(timed, whole)])
            chance = np.array([1.0 / len(q.choices) for q in timed])
            name, note = ("random choice, whole video", QA_RANDOM_NOTE) if answered else \
                ("whole video", WHOLE_VIDEO_NOTE)
            result.baselines[name] = {k: round(float(v), 2) for k, v in keep(_qa_values(chance, b_ious, b_iops)).items()}
            result.baseline_notes = {name: note + (
                "" if len(timed) == len(queries) else f"; on the {len(timed)} questions whose duration is known")}
    return result


# ------------------------------------------------------------------------- scoring prediction files

class PredictionMatch(BaseModel):
    """Prediction records matched to a dataset's queries. ``foreign`` counts the unmatched records whose
    ``qid`` is one of the dataset's but whose video (or query, where they name no video) is another: the
    records of another dataset, whose qids are numbers too."""

    predictions: dict[str, Any]
    unmatched: list[dict[str, Any]] = Field(default_factory=list)
    duplicates: int = 0
    total: int = 0
    foreign: int = 0
    #: records matched by qid whose video or query text disagrees with it, scored (most records agreed)
    loose: int = 0

    def _foreign_text(self) -> str:
        return (f"; {self.foreign} of them carry a qid of it with another video or query (a predictions file "
                "for another dataset?)") if self.foreign else ""

    def nothing_matched(self, where: str) -> str:
        """What to say when no record matched a query of ``where`` (a dataset's name and split)."""
        return (f"none of the {self.total} predictions matches a query of {where} by (video, query) or qid"
                f"{self._foreign_text()}; check --dataset and --split")

    def partly_matched(self, where: str) -> str | None:
        """The warning when only some records matched a query of ``where``, or some matched by qid alone
        disagree with its video or text; ``None`` when all matched and agreed."""
        loose = (f"{self.loose} of {self.total} predictions matched a query of {where} by qid but name another "
                 "video or query text; scored by qid") if self.loose else None
        if not self.unmatched:
            return loose
        return (f"{len(self.unmatched)} of {self.total} predictions match no query of {where}"
                f"{self._foreign_text()}; scored on the {len(self.predictions)} that do"
                + (f"; {loose}" if loose else ""))


def unpredicted_text(unpredicted: int, total: int, where: str, predicted_only: bool) -> str:
    """What ``vidground score`` says when ``unpredicted`` of the ``total`` queries of ``where`` have no prediction:
    how they were scored and the other way (``--predicted-only`` leaves them out of the denominator)."""
    head = f"{unpredicted} of the {total} queries of {where} have no prediction in the file"
    if predicted_only:
        return (f"{head}: --predicted-only scores the {total - unpredicted} predicted ones alone, so the figures "
                "are not comparable with published ones (which count every query)")
    return (f"{head}: each is scored as a miss (IoU 0; a wrong answer for a question) and stays in the denominator, "
            f"as published figures count them; --predicted-only scores the {total - unpredicted} predicted ones alone")


#: The keys of a prediction record (a JSONL line): a whole-file JSON object holding one of them is a record, not a
#: results file keyed by question (:func:`read_keyed_results`).
RECORD_KEYS = frozenset({"qid", "video", "vid", "query", "intervals", "pred_relevant_windows"})


class _Members(dict):
    """A JSON object that also keeps its members as the file gave them (``members``), a repeated key included
    (``json`` keeps its last value only)."""

    def __init__(self, members: list[tuple[str, Any]]):
        super().__init__(members)
        self.members = members


def _location_intervals(location: Any) -> Any:
    """The intervals of a NExT-GQA ``location``: a flat list of times is one span from the first to the last (the
    official ``eval_ground.py`` reads ``span[0]`` and ``span[-1]``; the SeViLA tools' frame times are cut so);
    anything else (a list of ``[start, end]`` pairs, best first) as given, checked when scored."""
    if isinstance(location, list) and len(location) >= 2 and all(_is_number(x) for x in location):
        return [[location[0], location[-1]]]
    return location


def read_keyed_results(path: Any) -> list[dict[str, Any]] | None:
    """The records of a results file keyed by question, as doc-doc/NExT-GQA writes them: one JSON object
    ``{"VIDEO_QID": value}``, each value the top-1 span ``[s, e]`` in seconds (``test_ground.json``, what the
    official ``code/TempGQA/eval_ground.py`` scores) or an object with ``location`` (the span, or SeViLA's frame
    times) and ``prediction`` (the chosen option; its ``answer`` is the ground truth), as its SeViLA tools write
    ``test_ground.json`` before ``split_qa_loc.py`` splits it. Each becomes ``{"qid": KEY, "_key": KEY,
    "intervals": ..., ...}`` in the file's order, a repeated key twice (scored as a duplicate, not overwritten).
    ``None`` when the file is not such an object (JSONL: its first line is a record)."""
    from vidground.errors import InputError
    from vidground.files import iter_text_lines

    with closing(iter_text_lines(path)) as lines:  # the file is closed however far it was read
        first = next((line for _, line in lines if line.strip()), None)
        if first is None:
            return None
        try:
            head = json.loads(first)
        except json.JSONDecodeError:  # the first line of an object written over several lines, or damaged
            head = None
        if isinstance(head, dict) and RECORD_KEYS & head.keys():
            return None  # a JSONL file of records
        text = first + "".join(line for _, line in lines)
    try:
        data = json.loads(text, object_pairs_hook=_Members)
    except json.JSONDecodeError:
        return None  # not one object: read as JSONL, whose error names the line
    if isinstance(data, _Members) and not data:
        raise InputError("no predictions in the file (an empty JSON object)", path=path)
    if not isinstance(data, _Members) or RECORD_KEYS & data.keys() or \
            not any(isinstance(v, (list, Mapping)) for _, v in data.members):
        return None  # a record without its keys, or no span or object at all: JSONL's error says what a line needs
    out = []
    for key, value in data.members:
        record: dict[str, Any] = {"qid": key, "_key": key}
        if isinstance(value, Mapping):  # {"location", "prediction", "answer"}
            record = {str(k): v for k, v in value.items() if k not in ("qid", "_key")} | record
            if "location" in value and "intervals" not in value:
                record["intervals"] = _location_intervals(value["location"])
        else:  # [s, e]; anything else is scored as an unparseable span, listed with its key
            record["intervals"] = _location_intervals(value)
        out.append(record)
    return out


def fractions_note(records: Sequence[Mapping[str, Any]], least: int = 3) -> str | None:
    """A warning when every top-1 span of ``records`` (``least`` or more that parse) ends by 1.0: fractions of the
    video, as NExT-GQA's Gaussian-mask results (``*_gs.json``, which the official script multiplies by the video's
    duration) give them, scored here as seconds; else ``None``."""
    ends = [spans[0][1] for spans in (prediction_spans(r)[0] for r in records) if spans]
    if len(ends) < least or max(ends) > 1.0:
        return None
    return (f"all {len(ends)} top-1 spans end by 1.0 s: fractions of each video (as NExT-GQA's Gaussian-mask "
            "*_gs.json results give them)? They are scored as seconds: multiply each by its video's duration first")


def read_predictions(path: str | Any) -> list[dict[str, Any]]:
    """Prediction records of a JSONL file: ``{"video", "query", "intervals"}`` or the moment_detr /
    lighthouse ``{"qid", "pred_relevant_windows"}`` form; or of a results file keyed by question
    (:func:`read_keyed_results`: NExT-GQA's ``{"VIDEO_QID": [s, e]}``). Raises ``InputError`` with the line."""
    from pathlib import Path

    from vidground.files import check_readable, iter_json_lines
    from vidground.errors import InputError

    path = Path(path)
    check_readable(path, "predictions file")
    keyed = read_keyed_results(path)
    if keyed is not None:
        return keyed
    needs = 'each line needs {"video", "query", "intervals"} or {"qid", "pred_relevant_windows"}'
    out = []
    for lineno, obj in iter_json_lines(path, not_object=needs):
        if not ({"video", "query"} <= obj.keys() or "qid" in obj):
            raise InputError(needs, path=path, line=lineno)
        out.append(obj | {"_line": lineno})
    if not out:
        raise InputError("no predictions in the file", path=path)
    return out


def match_predictions(records: Sequence[Mapping[str, Any]], queries: Sequence[Query]) -> PredictionMatch:
    """Match records to queries by (video id, normalised query text), else by ``qid``; by ``qid`` first
    when the record's text is shared by several queries of its video (NExT-GQA asks some questions twice
    with other options), so such a record is not scored against another query. The video is ``video``, or
    ``vid`` as moment_detr / lighthouse files name it.

    A record matched by ``qid`` that names another video than the query's (compared by file name without its
    folder and video extension, case aside, and ActivityNet's ``v_`` prefix), or, naming none, another query text (compared
    without punctuation), disagrees with it. When the records that disagree outnumber those that match a query
    by (video, query) or by an agreeing ``qid``, the file is another dataset's (QVHighlights' qids are numbers,
    as Charades-STA's line indices are): they are unmatched and counted in ``foreign``. Otherwise each is
    scored for a query no agreeing record took, and counted in ``loose`` (a path written differently, an
    edited query).

    The first agreeing record for a query wins (in the file's order); later ones are counted as duplicates.
    """
    from .datasets import normalize_query

    by_qid = {q.qid: q for q in queries}
    counts = Counter(q.key for q in queries)
    by_key = {q.key: q for q in queries if counts[q.key] == 1}  # a shared text identifies no query alone
    # the same by the video written another way: X for ActivityNet's v_X (as its videos are often named), a path or
    # a file name with its extension; only where that names one query
    loose_key = lambda video, text: (_bare_video(video), text)  # noqa: E731
    bare_counts = Counter(loose_key(*q.key) for q in queries)
    by_bare_key = {loose_key(*q.key): q for q in queries if bare_counts[loose_key(*q.key)] == 1}
    found: list[tuple[dict[str, Any], Query | None, bool]] = []  # each record, its query, and whether it disagrees
    for r in records:
        q, disagrees = None, False
        video = r.get("video", r.get("vid"))
        text = normalize_query(str(r["query"])) if "query" in r else None
        if video is not None and text is not None:
            q = by_key.get((str(video), text)) or by_bare_key.get(loose_key(str(video), text))
        if q is None and "qid" in r:
            q = by_qid.get(str(r["qid"]))
            disagrees = q is not None and (not _same_video(str(video), q.video) if video is not None else
                                           text is not None and _bare(text) != _bare(q.key[1]))
        found.append((dict(r), q, disagrees))
    disagreeing = sum(d for _, _, d in found)
    another_dataset = disagreeing > sum(1 for _, q, d in found if q is not None and not d)
    preds: dict[str, Any] = {}
    unmatched: list[dict[str, Any]] = []
    dups = loose = 0
    # records that agree with their query first: a disagreeing one never displaces them, whatever the file's order
    for r, q, disagrees in [f for f in found if not f[2]] + [f for f in found if f[2]]:
        if q is None or (disagrees and another_dataset):
            unmatched.append(r)
        elif q.qid in preds:
            dups += 1
        else:
            preds[q.qid] = r
            loose += disagrees
    return PredictionMatch(predictions=preds, unmatched=unmatched, duplicates=dups, total=len(records),
                           foreign=disagreeing if another_dataset else 0, loose=loose)


def _bare_video(v: str) -> str:
    """A video id by its file name without folder and video extension, case aside, and without ActivityNet's
    ``v_`` prefix (``/data/videos/v_ABC.mp4`` is ``abc``)."""
    from .datasets import VIDEO_EXTENSIONS

    name = v.replace("\\", "/").rsplit("/", 1)[-1].lower()
    stem, dot, ext = name.rpartition(".")
    stem = stem if dot and f".{ext}" in VIDEO_EXTENSIONS else name  # QVHighlights' ids hold dots: ID_210.0_360.0
    return stem[2:] if stem.startswith("v_") else stem


def _same_video(a: str, b: str) -> bool:
    """Whether two video ids name the same video (see :func:`_bare_video`)."""
    return a == b or _bare_video(a) == _bare_video(b)


def _bare(text: str) -> str:
    """A query text without punctuation or repeated spaces, to compare two writings of one query."""
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())
