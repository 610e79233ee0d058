"""Metrics of dense events: localisation precision/recall/F1 as ActivityNet-Captions' dense-captioning
evaluation defines them, and boundary F1 and event recall for transcripts whose true boundaries are known.

Localisation (:func:`densevid_localisation`), after ``densevid_eval``'s ``evaluate.py`` (Krishna et al.
2017, as modified by Zhou 2018), which every dense-captioning paper reports:

- a prediction *matches* a reference event when their tIoU is **above** the threshold (strictly);
- per video and reference set (``val_1``, ``val_2``): precision = matched predictions / predictions (the
  first ``max_proposals``), recall = matched references / references; the video takes the **best** over
  the reference sets of each, separately;
- each is averaged over the reference videos (a video without predictions scores 0 on both), per
  threshold (0.3, 0.5, 0.7, 0.9), then over the thresholds; F1 is the harmonic mean of the averaged
  precision and recall. Figures are percentages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vidground.errors import EvaluationError

TIOUS = (0.3, 0.5, 0.7, 0.9)
MAX_PROPOSALS = 1000

Span = tuple[float, float]


def tiou(a: Span, b: Span) -> float:
    """Temporal intersection over union of two ``(start, end)`` spans (0 when the union is empty)."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def _spans(value: Iterable[Any], what: str) -> list[Span]:
    out = []
    for i, s in enumerate(value):
        try:
            a, b = float(s[0]), float(s[1])
        except (TypeError, ValueError, IndexError):
            raise EvaluationError(f"{what}[{i}] is not a (start, end) pair: {s!r}") from None
        out.append((a, b))
    return out


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def densevid_localisation(predictions: Mapping[str, Sequence[Any]], references: Sequence[Mapping[str, Sequence[Any]]],
                          *, tious: Sequence[float] = TIOUS, max_proposals: int = MAX_PROPOSALS) -> dict[str, float]:
    """Precision, recall and F1 (percent) at each tIoU and their averages over ``tious`` (see the module's
    docstring). ``predictions`` maps a video id to its predicted spans (best first: only the first
    ``max_proposals`` count); ``references`` is one mapping per reference set, video id to its spans."""
    if not references:
        raise EvaluationError("no reference set to score against")
    refs = [{v: _spans(s, f"reference {v}") for v, s in ref.items()} for ref in references]
    videos = sorted(set().union(*refs))
    if not videos:
        raise EvaluationError("the reference sets hold no video")
    preds = {v: _spans(s, f"prediction {v}")[:max_proposals] for v, s in predictions.items()}
    out: dict[str, float] = {}
    for t in tious:
        p_sum = r_sum = 0.0
        for v in videos:
            best_p = best_r = 0.0
            pred = preds.get(v, [])
            for ref in refs:
                if v not in ref or not ref[v]:
                    continue
                hit_pred = {i for i, p in enumerate(pred) if any(tiou(p, r) > t for r in ref[v])}
                hit_ref = {j for j, r in enumerate(ref[v]) if any(tiou(p, r) > t for p in pred)}
                if pred:
                    best_p = max(best_p, len(hit_pred) / len(pred))
                best_r = max(best_r, len(hit_ref) / len(ref[v]))
            p_sum, r_sum = p_sum + best_p, r_sum + best_r
        p, r = 100 * p_sum / len(videos), 100 * r_sum / len(videos)
        out[f"precision@{t:g}"], out[f"recall@{t:g}"], out[f"f1@{t:g}"] = p, r, _f1(p, r)
    for k in ("precision", "recall"):
        out[k] = sum(out[f"{k}@{t:g}"] for t in tious) / len(tious)
    out["f1"] = _f1(out["precision"], out["recall"])
    out["videos"] = float(len(videos))
    return {k: round(v, 4) for k, v in out.items()}


def boundary_f1(predicted: Sequence[float], truth: Sequence[float], tolerance: float) -> dict[str, float]:
    """Boundary precision, recall and F1 (fractions): a predicted boundary is a hit when it lies within
    ``tolerance`` seconds of a true one, each true boundary matched at most once (nearest pairs first)."""
    pairs = sorted((abs(p - g), i, j) for i, p in enumerate(predicted) for j, g in enumerate(truth)
                   if abs(p - g) <= tolerance)
    used_p: set[int] = set()
    used_g: set[int] = set()
    for _, i, j in pairs:
        if i not in used_p and j not in used_g:
            used_p.add(i)
            used_g.add(j)
    hits = len(used_p)
    precision = hits / len(predicted) if predicted else (1.0 if not truth else 0.0)
    recall = hits / len(truth) if truth else 1.0
    return {"hits": hits, "predicted": len(predicted), "true": len(truth), "precision": precision,
            "recall": recall, "f1": _f1(precision, recall)}


def event_recall(predicted: Sequence[Any], truth: Sequence[Any], threshold: float) -> float:
    """The fraction of true events matched by some predicted event at tIoU >= ``threshold``."""
    pred, true = _spans(predicted, "prediction"), _spans(truth, "truth")
    if not true:
        raise EvaluationError("no true event to recall")
    return sum(any(tiou(p, g) >= threshold for p in pred) for g in true) / len(true)


__all__ = ["MAX_PROPOSALS", "TIOUS", "boundary_f1", "densevid_localisation", "event_recall", "tiou"]
