"""A seconds budget that runs out in a refinement round keeps that round's best frames (pipelines/search.py).

A round orders the frames it wants best first (the best candidate's, inside it before its margins, from its centre
out). A calls budget kept the head of that list, but the frames then went to the describer in time order, and a
seconds budget, which sends them in chunks and stops when the seconds run out, kept the earliest frames in time:
the next-best candidate's margin when it lay earlier than the best one. The chunks are now taken from the head of
the priority list, each sent in time order. No test here reads a wall clock: each description moves a fake clock.
"""

from __future__ import annotations

import re
from typing import Any

from frame_describer.replay import ReplayDescriber, timeline_frames
from pipelines.search import Search, coarse_to_fine

from test_search import Keyword, events

SPANS = ((100, 110), (300, 340))  # Keyword ranks the longer first: the best candidate lies later in time
SETTINGS = dict(strategy="coarse-to-fine", zoom=None, coarse=8, regions=2)
SPARSE = len(range(4, 300, 8))  # the sparse pass's frames: every 8th of 300


def search(**budget: Any) -> tuple[Any, list[list[float]]]:
    """A search of ``events(spans=SPANS)`` whose descriptions take 1 s each on a fake clock; the chunks it sent."""
    captions = events(spans=SPANS)
    replay = ReplayDescriber(captions, duration=600)
    now = [0.0]
    chunks: list[list[float]] = []

    def describe(times: list[float]) -> Any:
        chunks.append(list(times))
        for d in replay.describe(timeline_frames(times)):
            now[0] += 1.0
            yield d

    out, _ = coarse_to_fine("dog", Keyword(), describe, [d.t for d in captions], 600.0,
                            Search(**SETTINGS, **budget), clock=lambda: now[0])
    assert out.calls == replay.calls and now[0] == out.calls  # every call begun was counted
    return out, chunks


def span(reason: str) -> tuple[float, float]:
    lo, hi = re.search(r"\[([\d.]+)-([\d.]+)\]", reason).groups()
    return float(lo), float(hi)


def test_a_seconds_budget_cut_in_a_round_keeps_the_best_candidates_frames_not_the_earliest():
    """38 sparse frames, then 12.5 s left for round 1: the 12 frames described were those nearest 100-110 s (the
    second candidate's margin and inside, earliest in time); they are now the best candidate's (the dog at 300-340 s),
    inside it, from its centre out, as a calls budget of the same size keeps."""
    out, chunks = search(budget_seconds=SPARSE + 12.5)
    refined = [f for f in out.frames if f[1] == 1]
    assert out.stop == "budget" and len(refined) == 12
    assert any("ran out in round 1:" in w for w in out.warnings)
    lo, hi = span(refined[0][2])
    for t, _, reason in refined:
        assert reason.startswith("candidate 1 ") and span(reason) == (lo, hi) and lo <= t <= hi, (t, reason)
    assert 300 <= lo < hi <= 340  # the sparse pass's view of the dog at 300-340 s
    # the same frames as a calls budget that cuts the round's priority list after 12
    calls, _ = search(budget=SPARSE + 12)
    assert [f for f in calls.frames if f[1] == 1] == refined
    # from the centre out: the 12 grid frames inside it nearest its centre (those the sparse pass left)
    mid = (lo + hi) / 2
    sparse = {f[0] for f in out.frames if f[1] == 0}
    inside = sorted(abs(t - mid) for t in range(1, 600, 2) if lo <= t <= hi and t not in sparse)
    assert sorted(abs(t - mid) for t, _, _ in refined) == inside[:12]
    # each chunk in time order (decoding and skip-unchanged see a video's order); the list per round too
    assert all(c == sorted(c) for c in chunks)
    assert [t for t, _, _ in refined] == sorted(t for t, _, _ in refined)
    assert sorted(t for t, _, _ in out.frames) == sorted(round(d.t, 3) for d in out.descriptions)


def test_a_seconds_budget_that_covers_the_round_describes_the_same_frames_as_no_budget():
    """A search the seconds last through describes every frame it wanted, only chunked: the same frames, listed the
    same, as the search without a budget."""
    free, free_chunks = search()
    ample, ample_chunks = search(budget_seconds=10_000.0)
    assert len(free_chunks) == 1 + free.rounds and len(ample_chunks) > len(free_chunks)  # a request per pass, or chunks
    assert all(c == sorted(c) for c in free_chunks + ample_chunks)
    assert ample.frames == free.frames and ample.descriptions == free.descriptions
    assert ample.result.intervals == free.result.intervals


def test_a_round_a_seconds_budget_cuts_is_the_last_and_asks_nothing_after_it():
    """The frames a cut left out are taken off the list and off ``asked``, so that a later round could ask for them,
    but no round follows a cut: a chunk is cut only when not one more call fits in the seconds left, and each round
    first checks that one does (the seconds spent and the slowest wave only grow). So at every budget the pass that ran out is the search's last, stopped for the budget,
    no request follows the cut, and only the frames described are listed."""
    cut = 0
    for seconds in (5.5, SPARSE - 0.5, SPARSE + 0.5, SPARSE + 3.5, SPARSE + 12.5, SPARSE + 30.5, SPARSE + 70.5):
        out, chunks = search(budget_seconds=seconds)
        ran_out = [0 if m.group(1) == "the sparse pass" else int(m.group(2)) for w in out.warnings
                   if (m := re.search(r"ran out in (the sparse pass|round (\d+)):", w))]
        assert out.calls <= seconds
        if ran_out:
            cut += 1
            assert ran_out == [out.rounds] and out.stop == "budget"
            assert sum(map(len, chunks)) == out.calls  # nothing asked after the chunk the seconds ended in
        assert sorted(f[0] for f in out.frames) == sorted(round(d.t, 3) for d in out.descriptions)
        assert len({f[0] for f in out.frames}) == len(out.frames)  # no time asked twice
    assert cut == 5  # 2 in the sparse pass, 3 in round 1; the others end between passes or converge
