"""VTG-GPT's span rule (Xu et al., 2024), re-implemented as a named baseline reasoner (spec ``vtggpt``).

VTG-GPT grounds a query in per-clip captions with no training: the sentence-embedding similarity of
the query to each caption, min-max normalised per video; a dynamic threshold from a 10-bin histogram
of the scores (the highest bin edge that still keeps ``top_k`` clips at or above it); the clips above it
merged into proposals across gaps of up to ``gap`` clips; each proposal scored
``0.5 * its share of the kept clips + 0.5 * its mean score``; the same for each LLM rephrasing of the
query; then non-maximum suppression at IoU 0.95. It is here so that its rule and ours run side by side
on the same captions and the same embedding model (VTG-GPT used paraphrase-distilroberta-base-v2,
which is not shipped here; give its folder as ``vtggpt:/path/to/model`` to use it).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from vidground.options import check_all, number

from .base import check_query
from .embedding import _SimilarityReasoner
from .rephrasings import Rephrasings, load_rephrasings, query_forms
from .spans import interval_iou, sample_edges, sample_times
from .transcript import Transcript
from vidground.types import GroundingResult, Interval


def minmax(values: np.ndarray) -> np.ndarray | None:
    """Scores scaled to [0, 1] within the video; ``None`` for a flat curve."""
    lo, hi = float(values.min()), float(values.max())
    if hi - lo <= 1e-9:
        return None
    return (values - lo) / (hi - lo)


def nms(spans: list[tuple[float, float, float]], iou: float, limit: int | None = None) -> list[tuple[float, float, float]]:
    """Greedy non-maximum suppression: best score first, dropping spans overlapping a kept one by ``iou`` or more."""
    kept: list[tuple[float, float, float]] = []
    for s in sorted(spans, key=lambda x: -x[2]):
        if all(interval_iou(s[:2], k[:2]) < iou for k in kept):
            kept.append(s)
            if limit is not None and len(kept) >= limit:
                break
    return kept


class VTGGPTReasoner(_SimilarityReasoner):
    """VTG-GPT's rule: histogram threshold, gap merging, length-and-score ranking, rephrasings, NMS.

    ``bins`` (10), ``top_k`` (8 samples kept at least), ``gap`` (6 samples), ``length_weight`` (0.5),
    ``nms_iou`` (0.95) are VTG-GPT's; ``rephrasings`` a mapping or JSONL file of paraphrases
    (see :mod:`temporal_reasoner.rephrasings`); ``max_intervals`` caps the answer.
    """

    name = "vtggpt"
    lazy = True  # the model loads on first use: building one to check its options costs nothing

    def __init__(self, model: str | None = None, *, device: str | None = None, encoder: Any = None,
                 bins: int = 10, top_k: int = 8, gap: int = 6, length_weight: float = 0.5, nms_iou: float = 0.95,
                 rephrasings: str | Rephrasings | None = None, max_intervals: int = 10):
        super().__init__(model, device=device, encoder=encoder)
        check_all(lambda: number("bins", bins, low=1, whole=True), lambda: number("top_k", top_k, low=1, whole=True),
                  lambda: number("gap", gap, low=0, whole=True, unit="samples"),
                  lambda: number("length_weight", length_weight, low=0, high=1),
                  lambda: number("nms_iou", nms_iou, low=0, high=1, low_open=True),
                  lambda: number("max_intervals", max_intervals, low=1, whole=True))
        self.bins, self.top_k, self.gap, self.length_weight, self.nms_iou = bins, top_k, gap, length_weight, nms_iou
        self.max_intervals = max_intervals
        self.rephrasings = load_rephrasings(rephrasings)

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "bins": self.bins, "top_k": self.top_k, "gap": self.gap,
                "length_weight": self.length_weight, "nms_iou": self.nms_iou, "max_intervals": self.max_intervals,
                "rephrasings": len(self.rephrasings)}

    def proposals(self, scores: np.ndarray) -> list[tuple[int, int, float]]:
        """``(first, last, score)`` sample-index proposals from one normalised curve, best first."""
        counts, edges = np.histogram(scores, bins=self.bins, range=(0, 1))
        threshold = 0.0
        tail = np.cumsum(counts[::-1])[::-1]  # samples in bin i and above
        for i in range(self.bins - 1, -1, -1):
            if tail[i] >= self.top_k:
                threshold = float(edges[i])
                break
        kept = np.flatnonzero(scores > threshold)
        if len(kept) == 0:
            kept = np.array([int(np.argmax(scores))])
        groups = np.split(kept, np.flatnonzero(np.diff(kept) > self.gap) + 1)
        out = [(int(g[0]), int(g[-1]), self.length_weight * len(g) / len(kept) + (1 - self.length_weight) * float(scores[g].mean()))
               for g in groups]
        return sorted(out, key=lambda p: -p[2])

    def ground(self, query: str, transcript: Transcript) -> GroundingResult:
        started = time.perf_counter()
        query = check_query(query)
        times, owner = sample_times(transcript)
        edges = sample_edges(times, transcript.duration)
        forms = query_forms(query, self.rephrasings)
        vecs = self.encoder.encode([*forms, *(e.text for e in transcript.entries)])
        # samples x forms; rounded, since a float32 product can differ in the last bit between rows for the
        # same caption, and the rule's strict "> threshold" at 0 would then keep such a caption
        sims = np.round((vecs[len(forms):] @ vecs[:len(forms)].T).astype(np.float64), 6)[owner]
        spans: list[tuple[float, float, float]] = []
        curves = []
        for k in range(len(forms)):
            z = minmax(sims[:, k])
            if z is None:
                continue
            curves.append(z)
            spans += [(float(edges[a]), float(edges[b + 1]), s) for a, b, s in self.proposals(z)]
        warnings = []
        if not spans:
            spans = [(0.0, transcript.duration, 0.0)]
            warnings.append("the similarity curve is flat: no part of the video matches better than another; "
                            "answering the whole video")
        kept = nms(spans, self.nms_iou, self.max_intervals)
        intervals = [Interval(start=round(a, 3), end=round(b, 3), score=round(s, 5)) for a, b, s in kept if round(b, 3) > round(a, 3)]
        curve = np.mean(curves, axis=0) if curves else np.zeros(len(times))
        return self._result(query, transcript, intervals, times, curve, started, warnings, {"forms": forms})
