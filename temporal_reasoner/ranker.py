"""Segments proposed at several levels of a score curve, ranked by a linear score fitted on real captions.

On captions written by a real vision-language model the similarity curve is noisy everywhere, and no
single level cuts it well for every query: more queries have a good answer among the segments
above *some* level than at the best single level (``benchmarks/fit_ranker.py``; figures in
docs/benchmarks.md). So the proposals are
the segments between a rise through and a fall through each of :data:`LEVELS` (fractions of the way
from the curve's median to its height, see :func:`curve_scale`), and each is scored by a linear
function of what it looks like (:data:`FEATURES`): its length, how high the curve stands inside and
outside it, its lowest and highest sample, the level it was cut at, whether it touches an end.

The weights (:data:`WEIGHTS`) are a conditional-logit fit (softmax over each query's proposals,
target ``softmax(IoU / 0.2)``, L2 0.01) on the *dev* half of the QVHighlights real-caption benchmark,
made by ``benchmarks/fit_ranker.py``, which prints them and its cross-validated figures; the *report*
half never takes part. Proposals are ranked by score and thinned by non-maximum suppression.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .spans import Span, best_segments, find_segments, interval_ious, run_pairs, runs, sample_edges

#: Where proposals are cut: fractions of the way from the curve's median to its height.
LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: Runs above one level kept as proposal ends (the ones with the largest area above it): the
#: proposals per level grow with the square of the runs, so a long, busy curve stays affordable.
MAX_RUNS = 30
#: The curve's scale (see :func:`curve_scale`): its floor is this percentile of it (the median), its height
#: the TOP_PERCENTILE-th percentile by default, but never below the TOP_RANK-th highest sample. The one place these
#: are set: a caller that has computed the same floor and height hands them in (``scale=``) where
#: :func:`same_scale` says the rule is this one.
BASE_PERCENTILE = 50.0
TOP_PERCENTILE = 95.0
TOP_RANK = 4

FEATURES = ("length", "length^2", "sqrt length", "mean inside", "mean outside", "max inside", "min inside",
            "level", "starts the video", "ends the video", "length x height", "length x mean inside",
            "length x log samples", "overlap with the half-level segment", "overlap x height",
            "overlap with a half-level segment", "that overlap x height")

#: Weights of :data:`FEATURES` (the score's constant is irrelevant to the ranking): printed by
#: ``python benchmarks/fit_ranker.py`` (QVHighlights real captions, dev half, seed 0).
WEIGHTS = np.array([
    -0.328393,  # length
    +0.404749,  # length^2
    +2.950177,  # sqrt length
    +1.272374,  # mean inside
    -0.326201,  # mean outside
    +0.168133,  # max inside
    -0.199705,  # min inside
    -0.374502,  # level
    +0.052932,  # starts the video
    +0.181552,  # ends the video
    -11.343970,  # length x height
    -0.125224,  # length x mean inside
    -0.072286,  # length x log samples
    +0.570073,  # overlap with the half-level segment
    +1.872070,  # overlap x height
    -0.203111,  # overlap with a half-level segment
    +2.589565,  # that overlap x height
])
#: Names the fitted weights in a reasoner's settings (a run made with other weights is another method).
WEIGHTS_ID = "qvh-dev-s0-v3"


def curve_scale(curve: np.ndarray, top_percentile: float = TOP_PERCENTILE, *, base_percentile: float = BASE_PERCENTILE,
                top_rank: int = TOP_RANK) -> tuple[float, float]:
    """The curve's floor (its ``base_percentile``: the median) and height (its ``top_percentile``, so that one
    outlying sample does not set it, but never below the ``top_rank``-th highest sample, so that an event a few
    samples long in a long video does). The defaults are the ranker's rule; the segments mode uses other ones too."""
    base = float(np.percentile(curve, base_percentile))
    top = max(float(np.percentile(curve, top_percentile)), kth_highest(curve, top_rank))
    return base, top


def same_scale(base_percentile: float, top_percentile: float, top_rank: int) -> bool:
    """Whether a floor at ``base_percentile`` and a height at ``top_percentile``, never below the ``top_rank``-th
    highest sample, are :func:`curve_scale`'s default rule (what :func:`rank_segments` computes unless told
    otherwise): then a caller that has them can hand them in as ``scale``."""
    return (base_percentile, top_percentile, top_rank) == (BASE_PERCENTILE, TOP_PERCENTILE, TOP_RANK)


def kth_highest(values: np.ndarray, k: int) -> float:
    """The ``k``-th highest of ``values`` (the lowest when there are fewer): ``np.sort(values)[-k]`` by a
    partition, without sorting the rest."""
    i = len(values) - min(k, len(values))
    return float(np.partition(values, i)[i])


def proposals(z: np.ndarray, weights_in_time: np.ndarray, levels=LEVELS, max_runs: int = MAX_RUNS) -> tuple[np.ndarray, ...]:
    """Every segment from a rise through to a fall through each level of ``z`` (the curve in units of
    its scale), as sample indices ``(starts, ends, level)``; a segment found at several levels keeps
    the lowest. At most ``max_runs`` runs per level (the largest by area above it) serve as ends."""
    found: list[tuple[np.ndarray, np.ndarray, float]] = []  # (starts, ends, level), lowest level first
    prefix = np.concatenate([[0.0], np.cumsum(z * weights_in_time)])
    wprefix = np.concatenate([[0.0], np.cumsum(weights_in_time)])
    for level in levels:
        above = z > level
        if not above.any():
            continue
        starts, ends = runs(above)
        if len(starts) > max_runs:
            area = (prefix[ends + 1] - prefix[starts]) - level * (wprefix[ends + 1] - wprefix[starts])
            keep = np.sort(np.argsort(-area, kind="stable")[:max_runs])
            starts, ends = starts[keep], ends[keep]
        i, j = run_pairs(len(starts))  # a run's start with its own end and every later run's
        found.append((starts[i], ends[j], level))
    if not found:  # nothing above the lowest level: the highest sample alone
        p = int(np.argmax(z))
        return np.array([p]), np.array([p]), np.array([float(levels[0])])
    s = np.concatenate([f[0] for f in found])
    e = np.concatenate([f[1] for f in found])
    lv = np.concatenate([np.full(len(f[0]), f[2], dtype=float) for f in found])
    # each segment once, at the first (lowest) level that found it, in the order first found
    _, first = np.unique(s * (len(z) + 1) + e, return_index=True)
    first.sort()
    return s[first], e[first], lv[first]


def features(z: np.ndarray, widths: np.ndarray, starts: np.ndarray, ends: np.ndarray, levels: np.ndarray,
             height: float, anchors: Sequence[tuple[float, float]] = ()) -> np.ndarray:
    """The :data:`FEATURES` of each proposal, one row each. ``z``: the curve in units of its scale;
    ``widths``: the seconds each sample stands for; ``height``: the scale (height minus floor) in
    similarity units, which says how clearly anything stands out."""
    n = len(z)
    total = float(widths.sum())
    prefix = np.concatenate([[0.0], np.cumsum(z * widths)])
    wprefix = np.concatenate([[0.0], np.cumsum(widths)])
    inside = wprefix[ends + 1] - wprefix[starts]
    length = inside / total
    mean_in = (prefix[ends + 1] - prefix[starts]) / np.maximum(inside, 1e-12)
    outside = total - inside
    mean_out = np.where(outside > 1e-9, (prefix[-1] - (prefix[ends + 1] - prefix[starts])) / np.maximum(outside, 1e-12), 0.0)
    # the half-level segments ranked by area (``anchors``: the ``segments`` rule's answers, in the same
    # units as ``widths``): on a clean curve every event is one of them, and the first is that rule's
    # answer. How much a proposal overlaps them is evidence the ranker weighs by the height
    lo_t, hi_t = wprefix[starts], wprefix[ends + 1]
    overlaps = [interval_ious(lo_t, hi_t, a, b) for a, b in anchors]
    half = overlaps[0] if overlaps else np.zeros(len(starts))
    near = np.max(overlaps, axis=0) if overlaps else np.zeros(len(starts))
    max_in, min_in = _range_extremes(z, starts, ends)
    return np.column_stack([length, length ** 2, np.sqrt(length), mean_in, mean_out, max_in, min_in, levels,
                            starts == 0, ends == n - 1, length * height, length * mean_in, length * np.log(n),
                            half, half * height, near, near * height]).astype(float)


def _range_extremes(z: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(max, min)`` of ``z[s:e + 1]`` for each pair, exactly: from tables of the maximum and minimum of every
    window of a power-of-two length (a sparse table), each range is covered by two windows of the largest
    such length that fits in it. Building the tables costs ``n log n``, each pair two look-ups (reducing every
    range itself cost the sum of their lengths: a few thousand proposals up to hours long)."""
    if len(starts) == 0:
        return np.zeros(0), np.zeros(0)
    length = ends - starts + 1
    k = np.frexp(length)[1] - 1  # floor(log2(length)), exactly
    n, rows = len(z), int(k.max()) + 1
    top, bottom = np.empty((rows, n), dtype=z.dtype), np.empty((rows, n), dtype=z.dtype)
    top[0], bottom[0] = z, z
    for j in range(1, rows):  # row j: the windows of 2**j samples, one starting at each index where one fits
        half = 1 << (j - 1)
        m = n - 2 * half + 1
        np.maximum(top[j - 1, :m], top[j - 1, half:half + m], out=top[j, :m])
        np.minimum(bottom[j - 1, :m], bottom[j - 1, half:half + m], out=bottom[j, :m])
    last = ends - (1 << k) + 1  # the second window ends where the range does
    return np.maximum(top[k, starts], top[k, last]), np.minimum(bottom[k, starts], bottom[k, last])


def scored_proposals(times: np.ndarray, curve: np.ndarray, duration: float, *, top_percentile: float = TOP_PERCENTILE,
                     scale: tuple[float, float] | None = None,
                     levels: Sequence[float] = LEVELS) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(starts, ends, features, edges)`` of every proposal of ``curve`` (sample indices; ``edges``:
    the sample boundaries in seconds, see :func:`~temporal_reasoner.spans.sample_edges`). ``scale``: what
    ``curve_scale(curve, top_percentile)`` gives, where the caller has computed it already; ``levels``:
    where the proposals are cut (``benchmarks/fit_ranker.py`` cuts at one level at a time to compare)."""
    edges = sample_edges(times, duration)
    widths = np.diff(edges)
    base, top = curve_scale(curve, top_percentile) if scale is None else scale
    if top - base <= 1e-6:  # flat but for a few samples: the highest one sets the height
        top = float(curve.max())
    height = max(top - base, 1e-6)
    z = (curve - base) / height
    s, e, lv = proposals(z, widths, levels)
    anchors = [(sp.start - edges[0], sp.end - edges[0]) for sp in find_segments(times, z, duration, 0.5, top_k=5)]
    return s, e, features(z, widths, s, e, lv, height, anchors), edges


def rank_segments(times: np.ndarray, curve: np.ndarray, duration: float, *, weights: np.ndarray = WEIGHTS,
                  top_k: int = 10, nms_iou: float = 0.5, top_percentile: float = TOP_PERCENTILE,
                  scale: tuple[float, float] | None = None) -> list[Span]:
    """The proposals ranked by ``features @ weights``, thinned at IoU ``nms_iou``, up to ``top_k``.
    A span's ``mass`` is its score (comparable within one query only), ``peak`` the curve's highest sample in it.
    ``scale``: see :func:`scored_proposals`."""
    s, e, f, edges = scored_proposals(times, curve, duration, top_percentile=top_percentile, scale=scale)
    return best_segments(s, e, f @ weights, edges, curve, duration, top_k=top_k, nms_iou=nms_iou)
