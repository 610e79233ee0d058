"""Coarse-to-fine search budgets (pipelines/search.py): what the rounds past the planned ones cost, what a seconds
budget that cuts the sparse pass leaves seen and listed, and which frames a calls budget thins."""

from __future__ import annotations

import math
from typing import Any

from frame_describer.cache import CachedDescriber, DescriptionCache
from frame_describer.replay import ReplayDescriber, timeline_frames
from pipelines.search import Search, coarse_to_fine
from temporal_reasoner import BaseReasoner, Transcript
from vidground.types import FrameDescription, GroundingResult, Interval

from test_search import Keyword, events, replayed


class Wandering(BaseReasoner):
    """An LLM-like reasoner that names ``count`` short candidates somewhere else on every call. Counts its calls."""

    name = "wandering"

    def __init__(self, count: int = 5, length: float = 10.0, avoid: tuple[int, int] | None = None) -> None:
        self.calls = 0
        self.count = count
        self.length = length
        self.avoid = avoid  # (stride, offset): never name the seconds offset + k * stride (the sparse frames)

    def ground(self, query: str, transcript: Transcript) -> GroundingResult:
        self.calls += 1
        span = transcript.duration - 20
        starts = [(self.calls * 997 + j * 1499) % span for j in range(self.count)]
        if self.avoid:
            starts = [a + 1 if a % self.avoid[0] == self.avoid[1] else a for a in starts]
        return GroundingResult(query=query, duration=transcript.duration,
                               intervals=[Interval(start=max(0.0, a + 0.5 - self.length / 2),
                                                   end=a + 0.5 + self.length / 2, score=1.0) for a in starts])


def street(duration: int = 7200) -> list[FrameDescription]:
    return [FrameDescription(t=t + 0.5, text=f"street {t}") for t in range(duration)]


def test_known_frames_count_against_a_calls_budget():
    """An earlier query described every frame: they used to be free, so a budget of 10 went on grounding past the
    planned rounds (683 groundings once, then one round more than without a budget) and asked for other frames
    than a search knowing none. Known frames now count: the same 10 frames, the same rounds, no call."""
    captions = street()
    grid = [d.t for d in captions]
    runs = []
    for known in (None, {(d.t, 0.0): d for d in captions}):
        reasoner = Wandering()
        replay, describe = replayed(captions, 7200)
        out, _ = coarse_to_fine("dog", reasoner, describe, grid, 7200.0,
                                Search(strategy="coarse-to-fine", budget=10), known=known)
        runs.append((out, replay.calls, reasoner.calls))
    (cold, cold_calls, cold_grounds), (warm, warm_calls, warm_grounds) = runs
    assert cold.frames == warm.frames and len(cold.frames) == 10
    assert (cold.stop, cold.rounds, cold_grounds) == (warm.stop, warm.rounds, warm_grounds) == ("budget", cold.rounds,
                                                                                                 cold.rounds + 1)
    assert cold.calls == cold_calls == 10 and warm.calls == warm_calls == 0 and warm.known == 10


def test_a_round_past_the_planned_ones_that_uses_only_reused_frames_is_the_last():
    """Skip-unchanged's reuses stay free: a round past the planned ones whose frames were all reuses is the last
    (more rounds would buy only reasoner calls). As before the change, on a run with no cache and nothing known."""
    captions = street(3600)
    grid = [d.t for d in captions]
    sparse = set(grid[4::8])

    def describe(times: list[float]) -> Any:
        for t in times:  # every frame but the sparse pass's unchanged since the last one sent
            yield FrameDescription(t=t, text=f"street {t}", **({} if t in sparse else {"reused_from": t - 1}))

    reasoner = Wandering()
    out, stride = coarse_to_fine("dog", reasoner, describe, grid, 3600.0,
                                 Search(strategy="coarse-to-fine", budget=1000, rounds=1))
    assert stride == 8 and out.calls == len(sparse) and out.skipped > 0
    assert (out.stop, out.rounds, reasoner.calls) == ("rounds", 2, 3)  # the planned round, one past it


def test_a_cache_that_answered_every_frame_changes_what_is_paid_not_what_is_used(tmp_path):
    """A cache holding every frame the first run described: a rerun used to spend the budget of 50 again on other
    frames (its hits were free). Now it uses the same 50 frames, grounds as often and answers the same."""
    captions = street(3600)
    grid = [d.t for d in captions]
    replay = ReplayDescriber(captions, duration=3600)
    cached = CachedDescriber(replay, DescriptionCache(tmp_path / "c.sqlite"), fingerprint="street")

    def describe(times: list[float]) -> Any:
        return cached.describe(timeline_frames(times))

    runs = []
    for _ in range(2):
        reasoner = Wandering()
        out, _ = coarse_to_fine("dog", reasoner, describe, grid, 3600.0, Search(strategy="coarse-to-fine", budget=50))
        runs.append((out, reasoner.calls))
    (cold, cold_grounds), (warm, warm_grounds) = runs
    assert cold.calls == 50 == len(cold.frames) and cold.stop == "budget" and replay.calls == 50
    assert warm.calls == 0 and warm.cached == 50 and warm.frames == cold.frames
    assert (warm.stop, warm.rounds, warm_grounds) == (cold.stop, cold.rounds, cold_grounds)
    assert warm.result.intervals == cold.result.intervals


def test_rounds_past_the_planned_ones_are_bounded_whatever_each_pays():
    """A reasoner naming one new candidate a frame long per call, each round paying for one frame: the rounds past
    the planned ones used to go on until the budget was spent (343 rounds, a reasoner call per describer call); now
    at most ceil(budget / regions) of them ground again."""
    captions = street(3600)
    grid = [d.t for d in captions]
    settings = Search(strategy="coarse-to-fine", budget=400, coarse=64, margin=0.0, zoom=None)
    reasoner = Wandering(count=1, length=0.4, avoid=(64, 32))
    replay, describe = replayed(captions, 3600)
    out, _ = coarse_to_fine("dog", reasoner, describe, grid, 3600.0, settings)
    assert out.calls == replay.calls <= 400
    cap = 1 + settings.rounds + math.ceil(400 / settings.regions)
    assert reasoner.calls == cap and out.stop == "rounds"


def seconds_budget(budget: float) -> tuple[Any, ReplayDescriber, list[FrameDescription]]:
    """A search of ``events()`` whose descriptions take 1 s each on a fake clock, with a seconds budget."""
    captions = events()
    replay = ReplayDescriber(captions, duration=600)
    now = [0.0]
    batches: list[list[float]] = []

    def describe(times: list[float]) -> Any:
        batches.append(list(times))
        for d in replay.describe(timeline_frames(times)):
            now[0] += 1.0
            yield d

    out, stride = coarse_to_fine("dog", Keyword(), describe, [d.t for d in captions], 600.0,
                                 Search(strategy="coarse-to-fine", budget_seconds=budget), clock=lambda: now[0])
    assert all(b == sorted(b) for b in batches)  # each request in time order, as a video's frames come
    return out, replay, captions


def test_frames_a_seconds_budget_cut_off_are_not_listed_as_described():
    """A 12.5-s budget describes 12 of the sparse pass's 75 frames: the other 63 were listed as described
    ('coarse') in the search's provenance."""
    out, replay, _ = seconds_budget(12.5)
    described = sorted(round(d.t, 3) for d in out.descriptions)
    assert out.calls == replay.calls == 12
    assert sorted(t for t, _, _ in out.frames) == described
    assert any("ran out in the sparse pass: 63 of its frames were not described" in w for w in out.warnings)
    assert out.record(Search(strategy="coarse-to-fine"), 8)["frames"] == out.frames


def test_a_seconds_budget_that_cuts_the_sparse_pass_still_sees_the_whole_video():
    """The sparse pass used to run in time order, so a 40.5-s budget saw 5-317 s of 600 and answered
    297-600 s; it now describes the sparse frames spread out (the first, the middle, the quarters, ...), so a
    cut leaves even coverage, and the transcript stays in time order."""
    for budget in (12.5, 40.5):
        out, replay, _ = seconds_budget(budget)
        times = [d.t for d in out.descriptions]
        assert times == sorted(times) and len(times) == int(budget)
        gaps = [b - a for a, b in zip([0.0, *times], [*times, 600.0])]
        assert max(gaps) <= 1.5 * 600 / len(times)  # no stretch left unseen much beyond an even spacing's
        assert [t for t, _, _ in out.frames] == sorted(t for t, _, _ in out.frames)
    best = out.result.best
    assert best is not None and best.start < 130 and best.end > 100  # the first dog, not a held stretch of street


def test_a_calls_budget_thins_the_sparse_pass_whatever_is_known():
    """The sparse pass used to be thinned by its frames not known (every frame known: a stride of 8 under a budget of
    50, against 88 with none): a query's frames depended on the queries before it. Now it is the same pass."""
    captions = street(3600)
    grid = [d.t for d in captions]
    sparse = {}
    for known in (None, {(d.t, 0.0): d for d in captions}):
        replay, describe = replayed(captions, 3600)
        out, stride = coarse_to_fine("dog", Keyword(), describe, grid, 3600.0,
                                     Search(strategy="coarse-to-fine", budget=50), known=known)
        sparse[known is None] = (stride, [t for t, p, _ in out.frames if p == 0])
        assert out.calls == replay.calls == (0 if known else out.calls) and out.calls + out.known <= 50
    assert sparse[True] == sparse[False] and sparse[True][0] == 88


def test_a_calls_budget_smaller_than_the_sparse_pass_thins_it_evenly_known_or_not():
    """Half the video known: the budget of 10 used to pay for 10 frames of the other half and take every known sparse
    frame besides (48 frames). Now the whole pass is thinned to 10 frames evenly, the known ones among them free."""
    captions = events()
    grid = [d.t for d in captions]
    known = {(d.t, 0.0): d for d in captions if d.t < 300}
    replay, describe = replayed(captions, 600)
    out, stride = coarse_to_fine("dog", Keyword(), describe, grid, 600.0,
                                 Search(strategy="coarse-to-fine", budget=10, coarse=4), known=known)
    sparse = [t for t, p, _ in out.frames if p == 0]
    assert sparse == [grid[2 + 4 * int(k * 75 / 10)] for k in range(10)] and out.stop == "budget"
    assert out.known == sum(t < 300 for t in sparse) == 5 and out.calls == replay.calls == 5
    assert any("(75 frames): it used 10 evenly spaced frames" in w for w in out.warnings)


def test_a_calls_budget_smaller_than_the_sparse_pass_says_so():
    """--budget 3 on a 36-frame video widened the sparse pass from 18 frames 2 s apart to 2 frames 18 s apart and
    said nothing: the warning for a budget smaller than the sparse pass was only reached with --coarse."""
    captions = street(36)
    grid = [d.t for d in captions]
    warned = {}
    for budget in (None, 3, 18, 30):
        _, describe = replayed(captions, 36)
        out, stride = coarse_to_fine("dog", Keyword(), describe, grid, 36.0,
                                     Search(strategy="coarse-to-fine", budget=budget))
        warned[budget] = [w for w in out.warnings if "smaller than the sparse pass" in w]
    assert warned[3] == ["the budget of 3 frame(s) is smaller than the sparse pass (18 frames 2 s apart): it looked "
                         "every 18 s (2 frames), 1 frame(s) left to refine"]
    assert warned[None] == warned[18] == warned[30] == []  # 18: widened a little to keep calls for refining
