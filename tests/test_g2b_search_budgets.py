"""Budgets with skip-unchanged, and a seconds budget's concurrency (pipelines/search.py).

A user test on a 40-min static video (1-s grid, threshold 2, no cache): no budget 28 calls and 388 frames decoded;
--budget 300 43 calls, 2,293 frames decoded, 11 rounds; --budget 100 54 calls, 22 rounds, and a warning that the
budget "is smaller than the sparse pass ... looked every 29 s". Skip-unchanged's reuses are free, so the budget
widened the sparse pass for nothing and its rounds past the planned ones went on while each sent a frame or two.
A seconds budget sent the sparse pass in chunks no longer than its spread's levels (1, 1, 2, 4, ... frames), each
waiting for its slowest call: 38 requests in 10 s at 8 in flight and 1 s a request.

No wall clock: the describers count calls, the frames asked for and the requests in flight on fake clocks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from frame_describer.replay import timeline_frames
from pipelines.search import Search, coarse_to_fine
from vidground.types import FrameDescription, Usage

from test_search import Keyword
from test_search_in_flight import GRID, InFlight

N = 2400  # a 40-min video on a 1-s grid


def scene(t: float) -> str:
    """A static video: the background changes every 10 min, a square shows for a few seconds twice."""
    text = ["grey", "blue", "grey", "green"][int(t // 600) % 4] + " room"
    return text + (", a purple square" if 2160 <= t < 2168 else ", a red square" if 125 <= t < 140 else "")


class Static:
    """``describe`` as a session's with skip-unchanged: in each request (its times in order), a frame showing what
    the last frame sent showed is not sent and reuses its description. Counts the calls and the frames asked for
    (each one decoded)."""

    def __init__(self) -> None:
        self.calls = 0
        self.asked = 0

    def __call__(self, times: list[float]) -> Iterator[FrameDescription]:
        last: FrameDescription | None = None
        for t in times:
            self.asked += 1
            if last is not None and last.text == scene(t):
                yield FrameDescription(t=t, text=last.text, reused_from=last.t)
                continue
            self.calls += 1
            last = FrameDescription(t=t, text=scene(t), usage=Usage(requests=1))
            yield last


def search(budget: int | None, reuses: bool = True, reasoner: Any = None) -> tuple[Any, Static, int]:
    describe = Static()
    settings = Search(strategy="coarse-to-fine", budget=budget)
    out, stride = coarse_to_fine("a purple square", reasoner or Keyword(), describe, [k + 0.5 for k in range(N)],
                                 float(N), settings, reuses=reuses)
    assert out.calls == describe.calls and out.used <= (budget or N)
    return out, describe, stride


def test_with_skip_unchanged_a_budget_the_usual_sparse_pass_fits_is_the_search_without_one():
    """Without a budget: the usual sparse pass (300 frames, every 8 s). A budget that covers it whatever it reuses
    makes the same search, the same frames and calls (before: a budget of 300 kept a sixth for refining and looked
    every 10 s, 240 frames, as if every frame would count)."""
    free, free_describe, stride = search(None)
    assert stride == 8 and free.skipped > 0 and not free.warnings
    for budget in (300, 1000):
        out, describe, stride = search(budget)
        assert (out.frames, out.calls, describe.asked, stride) == (free.frames, free.calls, free_describe.asked, 8)
        assert (out.rounds, out.stop) == (free.rounds, free.stop) and not out.warnings


def test_with_skip_unchanged_a_budget_runs_only_the_planned_rounds():
    """A reasoner naming new candidates each time: with a budget, rounds past the planned 4 went on while each sent
    a frame or two (each request's first frame is sent), decoding and grounding again (the user test: 11 and 22
    rounds, 2,293 of 2,400 frames decoded). Reuses are free, so a budget only caps the planned rounds now: no more
    frames asked for, nor calls, than without a budget."""
    from test_search_budget import Wandering

    free, free_describe, _ = search(None, reasoner=Wandering())
    assert (free.rounds, free.stop) == (4, "rounds")
    out, describe, _ = search(300, reasoner=Wandering())
    assert (out.rounds, out.stop) == (4, "rounds") and out.frames == free.frames
    assert (out.calls, describe.asked) == (free.calls, free_describe.asked)
    before, before_describe, _ = search(300, reuses=False, reasoner=Wandering())  # a budget spent, as without reuses
    assert before.rounds > 4 and before_describe.asked > free_describe.asked and before.calls > free.calls


def test_with_skip_unchanged_a_budget_under_the_usual_pass_widens_it_and_says_what_was_left():
    """A budget of 100 under the usual pass of 300: it is widened, as for any budget (what the reuses save is not
    known before), and the warning says how many frames it counted and how many were left (it said "17 left to
    refine", counting every frame of the pass, where skip-unchanged sent 8 of its 83)."""
    out, describe, stride = search(100)
    sparse = [t for t, p, _ in out.frames if p == 0]
    assert stride == 29 and len(sparse) == 83 and out.rounds <= 4
    counted = sum(1 for d in out.descriptions if (d.model_extra or {}).get("reused_from") is None and d.t in sparse)
    assert len(out.warnings) == 1 and f"(83 frames, {counted} counted), {100 - counted} frame(s) left" in out.warnings[0]


def test_with_skip_unchanged_a_rerun_from_the_cache_uses_the_same_frames():
    """Which frames skip-unchanged reuses depends only on the frames of each request: a rerun whose every sent frame
    is a cache hit asks for the same frames, runs the same rounds and pays nothing."""
    for budget in (100, 300):
        cold, _, _ = search(budget)
        cache = {d.t for d in cold.descriptions if (d.model_extra or {}).get("reused_from") is None}
        inner = Static()

        def warm(times: list[float]) -> Iterator[FrameDescription]:
            for d in inner(times):
                sent = (d.model_extra or {}).get("reused_from") is None
                yield FrameDescription(t=d.t, text=d.text, usage=Usage(cached=1)) if sent and d.t in cache else d

        again, _ = coarse_to_fine("a purple square", Keyword(), warm, [k + 0.5 for k in range(N)], float(N),
                                  Search(strategy="coarse-to-fine", budget=budget), reuses=True)
        assert again.frames == cold.frames and again.calls == 0 and again.cached == cold.calls
        assert (again.rounds, again.stop, again.result.intervals) == (cold.rounds, cold.stop, cold.result.intervals)


class Counting(InFlight):
    """:class:`InFlight`, also counting the most requests in flight at once (begun, not yet ended) on its clock."""

    def most_in_flight(self) -> int:
        ends = {t: start + 1.0 for t, start in self.begun}  # 1 s a request
        instants = sorted({start for _, start in self.begun})
        return max(sum(1 for t, s in self.begun if s <= at < ends[t]) for at in instants)


def test_a_seconds_budget_keeps_the_requests_in_flight_the_describer_runs():
    """8 in flight, 1 s a request, 10 s: the sparse pass (75 frames) goes in chunks of 8 and more, so 8 requests are
    in flight while there are frames to send, and the whole pass is described (before: 38 requests, at most 8 in
    flight only from the 5th second). Still spread out: the first chunk holds the first frame, the middle one, the
    quarters, ..."""
    now = [0.0]
    inner = Counting(8, now)
    chunks: list[list[float]] = []

    def describe(times: list[float]) -> Any:
        chunks.append(list(times))
        return inner.describe(timeline_frames(times))

    out, _ = coarse_to_fine("dog", Keyword(), describe, GRID, 600.0, Search(strategy="coarse-to-fine", budget_seconds=10),
                            clock=lambda: now[0], in_flight=8)
    assert out.calls == len(inner.begun) == 75 and now[0] <= 10.0
    assert inner.most_in_flight() == 8
    assert sum(1 for _, start in inner.begun if start < 1.0) == 8  # the first second's wave is full
    assert len(chunks[0]) == 16 and chunks[0] == sorted(chunks[0])
    assert min(chunks[0]) < 10 and max(chunks[0]) > 500  # the first chunk spans the video
