"""The vectorised segment code (greedy NMS, successive maximum-sum segments, range extremes) against plain
Python references of the rules they implement: the same spans, scores and order, on edge cases and random input."""

from __future__ import annotations

import numpy as np
import pytest

from vidground.errors import ConfigurationError
from temporal_reasoner import ranker, spans
from temporal_reasoner.spans import Span, best_segments, find_segments, interval_iou, interval_ious, sample_edges


def greedy_reference(starts, ends, scores, edges, curve, duration, *, top_k, nms_iou):
    """Greedy NMS one candidate at a time, best score first (ties: the earlier candidate)."""
    out: list[Span] = []
    for o in np.argsort(-scores, kind="stable"):
        seg = (float(edges[starts[o]]), min(float(edges[ends[o] + 1]), float(duration)))
        if seg[1] <= seg[0] or any(interval_iou(seg, (k.start, k.end)) >= nms_iou for k in out):
            continue
        out.append(Span(seg[0], seg[1], float(curve[starts[o]:ends[o] + 1].max()), float(scores[o])))
        if len(out) >= top_k:
            break
    return out


def successive_kadane_reference(gain: np.ndarray, count: int) -> list[tuple[int, int]]:
    """Kadane's scan over the samples not yet taken, once per segment."""
    free = np.ones(len(gain), dtype=bool)
    found = []
    for _ in range(count):
        best, lo, hi, acc, run_lo = 0.0, -1, -1, 0.0, 0
        for i in np.flatnonzero(free):
            if acc <= 0 or (i > 0 and not free[i - 1]):
                acc, run_lo = 0.0, i
            acc += gain[i]
            if acc > best:
                best, lo, hi = acc, run_lo, i
        if lo < 0:
            break
        found.append((int(lo), int(hi)))
        free[lo:hi + 1] = False
    return found


def _case(n: int, m: int, seed: int):
    rng = np.random.default_rng(seed)
    times = np.arange(n, dtype=float) + 0.5
    curve = rng.random(n)
    starts = rng.integers(0, n, m)
    ends = np.minimum(starts + rng.integers(0, 20, m), n - 1)
    return times, curve, starts, ends, sample_edges(times, float(n))


def _same(a: list[Span], b: list[Span]) -> None:
    assert [(s.start, s.end, s.peak, s.mass) for s in a] == [(s.start, s.end, s.peak, s.mass) for s in b]


def test_no_candidates_and_a_single_one():
    times, curve, _, _, edges = _case(10, 0, 0)
    none = np.zeros(0, dtype=int)
    assert best_segments(none, none, np.zeros(0), edges, curve, 10.0, top_k=5, nms_iou=0.5) == []
    one = best_segments(np.array([2]), np.array([4]), np.array([1.5]), edges, curve, 10.0, top_k=5, nms_iou=0.5)
    assert [(s.start, s.end, s.mass) for s in one] == [(2.0, 5.0, 1.5)] and one[0].peak == curve[2:5].max()
    # a segment past the end of a shorter duration is empty and never kept
    assert best_segments(np.array([8]), np.array([9]), np.array([1.0]), edges, curve, 7.0, top_k=5, nms_iou=0.5) == []


def test_top_k_zero_gives_no_span_and_a_negative_one_is_refused():
    """``top_k=0`` asks for no span and gets none (the code before the vectorisation appended one span before
    it compared the count, so it gave one); ``top_k < 0`` is a typed error, through every entry point that
    hands its ``top_k`` on (short curves and ones past MAX_CROSSINGS, and the ranker)."""
    times, curve, starts, ends, edges = _case(50, 30, 3)
    scores = np.linspace(1.0, 0.1, 30)
    assert best_segments(starts, ends, scores, edges, curve, 50.0, top_k=0, nms_iou=0.5) == []
    assert len(best_segments(starts, ends, scores, edges, curve, 50.0, top_k=1, nms_iou=0.5)) == 1
    rng = np.random.default_rng(4)
    many = rng.random(3000)  # level 0.5: about 750 runs above it, past MAX_CROSSINGS
    for t, c, level in ((times, curve, 0.5), (np.arange(3000.0), many, 0.5)):
        duration = float(len(c))
        assert find_segments(t, c, duration, level, top_k=0) == []
        assert ranker.rank_segments(t, c, duration, top_k=0) == []
        for call in (lambda: find_segments(t, c, duration, level, top_k=-1),
                     lambda: ranker.rank_segments(t, c, duration, top_k=-1)):
            with pytest.raises(ConfigurationError, match="top_k must be 0 or more, got -1"):
                call()
    with pytest.raises(ConfigurationError, match="top_k must be 0 or more"):
        best_segments(starts, ends, scores, edges, curve, 50.0, top_k=-3, nms_iou=0.5)


def test_ties_keep_the_earlier_candidate_and_identical_segments_collapse_to_one():
    times, curve, _, _, edges = _case(10, 0, 0)
    starts, ends = np.array([5, 1, 1, 1]), np.array([6, 2, 2, 2])
    scores = np.array([1.0, 1.0, 1.0, 1.0])
    got = best_segments(starts, ends, scores, edges, curve, 10.0, top_k=10, nms_iou=0.5)
    assert [(s.start, s.end) for s in got] == [(5.0, 7.0), (1.0, 3.0)]  # the copies of [1, 3) are suppressed
    _same(got, greedy_reference(starts, ends, scores, edges, curve, 10.0, top_k=10, nms_iou=0.5))


def test_all_overlapping_keeps_the_best_only_and_top_k_stops_the_search():
    times, curve, _, _, edges = _case(1000, 0, 0)
    starts, ends = np.arange(0, 500), np.arange(500, 1000)  # every pair overlaps at IoU >= 0.5... near the top
    scores = np.linspace(1.0, 0.0, 500)
    for k in (1, 3, 50):
        for iou in (0.5, 0.99, 1.0):
            _same(best_segments(starts, ends, scores, edges, curve, 1000.0, top_k=k, nms_iou=iou),
                  greedy_reference(starts, ends, scores, edges, curve, 1000.0, top_k=k, nms_iou=iou))
    assert len(best_segments(starts, ends, scores, edges, curve, 1000.0, top_k=3, nms_iou=1.0)) == 3


@pytest.mark.parametrize("seed", range(40))
def test_random_candidates_match_the_one_at_a_time_rule(seed):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(2, 400)), int(rng.integers(1, 3000))
    times, curve, starts, ends, edges = _case(n, m, seed)
    scores = np.round(rng.random(m) * 4) / 4 if seed % 2 else rng.standard_normal(m)  # many ties, or none
    if seed % 5 == 0:
        scores[rng.integers(0, m, 5)] = np.nan  # NaN ranks last, as argsort puts it
    duration = float(n) - (0.5 if seed % 3 == 0 else 0.0)
    top_k, iou = int(rng.choice([1, 2, 10, 40])), float(rng.choice([0.05, 0.3, 0.5, 1.0]))
    _same(best_segments(starts, ends, scores, edges, curve, duration, top_k=top_k, nms_iou=iou),
          greedy_reference(starts, ends, scores, edges, curve, duration, top_k=top_k, nms_iou=iou))


def test_only_the_candidates_the_search_reaches_are_sorted(monkeypatch):
    """Thousands of candidates, a few kept from the best: the full list is never sorted."""
    times, curve, starts, ends, edges = _case(2000, 20000, 1)
    scores = np.random.default_rng(1).random(20000)
    sorted_sizes = []
    argsort = np.argsort

    def counting(a, *args, **kwargs):
        sorted_sizes.append(len(a))
        return argsort(a, *args, **kwargs)

    monkeypatch.setattr(spans.np, "argsort", counting)
    got = best_segments(starts, ends, scores, edges, curve, 2000.0, top_k=5, nms_iou=0.5)
    monkeypatch.undo()
    _same(got, greedy_reference(starts, ends, scores, edges, curve, 2000.0, top_k=5, nms_iou=0.5))
    assert sorted_sizes and max(sorted_sizes) <= 4 * spans.FIRST_BLOCK


def test_best_first_blocks_join_to_the_stable_argsort():
    rng = np.random.default_rng(3)
    for n in (0, 1, 2, 129, 130, 5000):
        scores = np.round(rng.random(n) * 20) / 20
        scores[rng.integers(0, max(n, 1), n // 50)] = np.nan
        for first in (1, 4, 64):
            blocks = list(spans._best_first(scores, first))
            joined = np.concatenate(blocks) if blocks else np.zeros(0, dtype=int)
            assert joined.tolist() == np.argsort(-scores, kind="stable").tolist()


@pytest.mark.parametrize("seed", range(12))
def test_successive_maximum_sum_segments_match_a_scan_per_segment(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    gain = rng.standard_normal(n) - (0.3 if seed % 2 else 0.0)
    if seed % 3 == 0:
        gain = np.round(gain)  # exact ties between sums: the earlier segment wins in both
    for count in (1, 5, 10, 60):
        assert spans._successive_max_sums(gain, count) == successive_kadane_reference(gain, count)
    assert spans._successive_max_sums(-np.abs(gain) - 1, 5) == []  # nothing sums above 0


def test_successive_maximum_sums_scan_each_stretch_once(monkeypatch):
    """The k-th segment rescans only the stretch the (k-1)-th split, not the whole curve again."""
    gain = np.random.default_rng(0).standard_normal(7200) - 0.2
    scanned = []
    scan = spans._max_sum

    def counting(values, lo, hi):
        scanned.append(hi - lo)
        return scan(values, lo, hi)

    monkeypatch.setattr(spans, "_max_sum", counting)
    found = spans._successive_max_sums(gain, 10)
    assert len(found) == 10 and sum(scanned) < 6 * len(gain)  # a scan per segment: 10 x 7200 (here: 39,572)


def test_find_segments_past_max_crossings_matches_the_reference():
    rng = np.random.default_rng(5)
    n = 7200
    curve = rng.random(n) * 0.4
    curve[3000:3010] = 0.95
    times = np.arange(n, dtype=float)
    level = 0.3
    edges = sample_edges(times, float(n))
    gain = (curve - level) * np.diff(edges)
    prefix = np.concatenate([[0.0], np.cumsum(gain)])
    above = curve > level
    starts = np.flatnonzero(above & np.concatenate([[True], ~above[:-1]]))
    ends = np.flatnonzero(above & np.concatenate([~above[1:], [True]]))
    assert len(starts) > spans.MAX_CROSSINGS
    extra = successive_kadane_reference(gain, 4)
    s = np.concatenate([starts, [a for a, _ in extra]]).astype(int)
    e = np.concatenate([ends, [b for _, b in extra]]).astype(int)
    want = greedy_reference(s, e, prefix[e + 1] - prefix[s], edges, curve, float(n), top_k=4, nms_iou=0.5)
    _same(find_segments(times, curve, float(n), level, top_k=4), want)


def test_range_extremes_match_slices():
    rng = np.random.default_rng(2)
    for n in (1, 2, 3, 64, 65, 1000):
        z = np.round(rng.standard_normal(n), 1)
        starts = rng.integers(0, n, 500)
        ends = np.minimum(starts + rng.integers(0, n, 500), n - 1)
        starts, ends = np.append(starts, [0, n - 1]), np.append(ends, [n - 1, n - 1])  # the whole curve, the last sample
        top, bottom = ranker._range_extremes(z, starts, ends)
        assert top.tolist() == [z[a:b + 1].max() for a, b in zip(starts, ends)]
        assert bottom.tolist() == [z[a:b + 1].min() for a, b in zip(starts, ends)]
    empty = np.zeros(0, dtype=int)
    assert [len(a) for a in ranker._range_extremes(np.ones(5), empty, empty)] == [0, 0]


def test_range_extremes_do_not_reduce_every_range(monkeypatch):
    """Thousands of long ranges: the work is a table over the curve, not a reduction over each range."""
    z = np.random.default_rng(0).random(7200)
    starts = np.arange(0, 3000)
    ends = starts + 4000
    calls = []
    maximum = np.maximum

    class Counting:
        def __call__(self, *args, **kwargs):
            calls.append(args[0].size if hasattr(args[0], "size") else 1)
            return maximum(*args, **kwargs)

        def __getattr__(self, name):
            if name == "reduceat":
                raise AssertionError("each range was reduced")
            return getattr(maximum, name)

    monkeypatch.setattr(ranker.np, "maximum", Counting())
    top, _ = ranker._range_extremes(z, starts, ends)
    monkeypatch.undo()
    assert top.tolist() == [z[a:b + 1].max() for a, b in zip(starts, ends)]
    assert sum(calls) < 14 * len(z) + 2 * len(starts)  # log2(4001) rows of the table, two look-ups per range


def test_one_vectorised_iou_is_interval_iou_element_by_element_and_serves_the_ranker_too(monkeypatch):
    """interval_ious gives interval_iou's value for each span (apart, touching, nested, equal, reversed), and both
    the suppression and the ranker's overlap features use it (one implementation, not two)."""
    rng = np.random.default_rng(7)
    lo = np.round(rng.uniform(0, 20, 400), 1)
    hi = lo + np.round(rng.uniform(-2, 8, 400), 1)
    lo[:4], hi[:4] = [2.0, 5.0, 3.0, 1.0], [3.0, 9.0, 4.0, 9.0]  # touching, touching, equal, containing
    for a, b in ((3.0, 5.0), (0.0, 20.0), (7.5, 7.75), (12.0, 30.0)):
        assert interval_ious(lo, hi, a, b).tolist() == [interval_iou((x, y), (a, b)) for x, y in zip(lo, hi)]
    calls = []
    real = spans.interval_ious
    monkeypatch.setattr(spans, "interval_ious", lambda *a: calls.append("suppression") or real(*a))
    monkeypatch.setattr(ranker, "interval_ious", lambda *a: calls.append("features") or real(*a))
    times = np.arange(60, dtype=float)
    curve = np.where((times >= 20) & (times < 30), 0.9, 0.1) + rng.random(60) * 0.05
    assert ranker.rank_segments(times, curve, 60.0, top_k=3)
    assert {"suppression", "features"} <= set(calls)


def test_runs_are_the_runs_of_true_and_pairs_are_made_once_per_small_count(monkeypatch):
    """spans.runs and spans.run_pairs serve find_segments and the ranker's proposals alike: the runs are those a
    plain scan finds, the pairs are np.triu_indices (read-only), made once per count up to CACHED_PAIRS and shared
    by both, and made each time above it (not kept)."""
    rng = np.random.default_rng(11)
    for n in (1, 2, 7, 50):
        for _ in range(20):
            above = rng.random(n) < 0.5
            want = [(i, j) for i in range(n) for j in range(i, n)
                    if above[i:j + 1].all() and (i == 0 or not above[i - 1]) and (j == n - 1 or not above[j + 1])]
            got_s, got_e = spans.runs(above)
            assert list(zip(got_s.tolist(), got_e.tolist())) == want
    made = []
    real = np.triu_indices
    monkeypatch.setattr(spans.np, "triu_indices", lambda n, *a: made.append(n) or real(n, *a))
    spans._cached_pairs.cache_clear()

    def alternating(k):  # k runs above 0.5, one sample each
        curve = np.tile([0.0, 1.0], k)
        return np.arange(2 * k, dtype=float), curve

    few, many = 20, spans.CACHED_PAIRS + 10
    for _ in range(2):
        find_segments(*alternating(few), 2.0 * few, 0.5, top_k=3)
    assert made == [few]
    s, e, _ = ranker.proposals(np.tile([0.0, 1.0], few), np.ones(2 * few), levels=(0.5,))
    assert made == [few] and len(s) == few * (few + 1) // 2  # the ranker's proposals take the same pairs
    for _ in range(2):
        find_segments(*alternating(many), 2.0 * many, 0.5, top_k=3)
    assert made == [few, many, many]
    i, j = spans.run_pairs(few)
    assert not i.flags.writeable and not j.flags.writeable
    assert [a.tolist() for a in spans.run_pairs(5)] == [a.tolist() for a in real(5)]
