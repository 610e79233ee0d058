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


def test_rounds_past_the_planned_ones_end_when_every_frame_came_free():
    """An earlier query described every frame: a budget of 10 calls used to ground 683 times (682 rounds, no
    describer call, each a paid reasoner call with an LLM) while some candidate was not dense; without a budget
    the search grounds 5 times. Rounds past the planned ones now end after the first that pays for nothing."""
    captions = street()
    grid = [d.t for d in captions]
    known = {d.t: d for d in captions}
    calls = {}
    for budget in (None, 10):
        reasoner = Wandering()
        replay, describe = replayed(captions, 7200)
        out, _ = coarse_to_fine("dog", reasoner, describe, grid, 7200.0,
                                Search(strategy="coarse-to-fine", budget=budget), known=known)
        assert out.calls == replay.calls == 0
        calls[budget] = reasoner.calls
        assert out.stop == "rounds"
    assert calls[None] == 1 + Search().rounds
    assert calls[10] == calls[None] + 1  # one round past the planned ones, which paid for nothing


def test_rounds_past_the_planned_ones_end_when_a_cache_answered_every_frame(tmp_path):
    """The same with a description cache holding every frame: the search cannot know that before asking."""
    captions = street(3600)
    grid = [d.t for d in captions]
    replay = ReplayDescriber(captions, duration=3600)
    cached = CachedDescriber(replay, DescriptionCache(tmp_path / "c.sqlite"), fingerprint="street")
    list(cached.describe(timeline_frames(grid)))  # the cache holds every frame

    def describe(times: list[float]) -> Any:
        return cached.describe(timeline_frames(times))

    reasoner = Wandering()
    out, _ = coarse_to_fine("dog", reasoner, describe, grid, 3600.0, Search(strategy="coarse-to-fine", budget=50))
    assert out.calls == 0 and out.cached == len(out.frames)
    assert out.stop == "rounds" and reasoner.calls == 2 + Search().rounds


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
    assert any("ran out in pass 0: 63 of its frames were not described" in w for w in out.warnings)
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


def test_a_calls_budget_does_not_thin_the_sparse_frames_already_known():
    """Frames an earlier query described cost nothing: a budget no longer thins (nor widens) the sparse pass for
    them. A budget of 50 with every frame known used to describe the pass at a stride of 88 (41 frames)."""
    captions = street(3600)
    grid = [d.t for d in captions]
    known = {d.t: d for d in captions}
    sparse = {}
    for budget in (None, 50):
        replay, describe = replayed(captions, 3600)
        out, stride = coarse_to_fine("dog", Keyword(), describe, grid, 3600.0,
                                     Search(strategy="coarse-to-fine", budget=budget), known=known)
        sparse[budget] = (stride, [t for t, p, _ in out.frames if p == 0])
        assert out.calls == replay.calls == 0
    assert sparse[50] == sparse[None] and sparse[50][0] == 8


def test_a_calls_budget_thins_only_the_sparse_frames_not_known():
    """Half the video known: the budget pays for the other half's sparse frames alone, and they are thinned evenly
    when it cannot."""
    captions = events()
    grid = [d.t for d in captions]
    known = {d.t: d for d in captions if d.t < 300}
    replay, describe = replayed(captions, 600)
    out, stride = coarse_to_fine("dog", Keyword(), describe, grid, 600.0,
                                 Search(strategy="coarse-to-fine", budget=10, coarse=4), known=known)
    sparse = [t for t, p, _ in out.frames if p == 0]
    assert out.calls == replay.calls == 10 and out.stop == "budget"
    assert [t for t in sparse if t < 300] == [grid[i] for i in range(2, 150, 4)]  # every known sparse frame
    late = [t for t in sparse if t > 300]
    assert len(late) == 10 and late[0] < 330 and late[-1] > 560  # the paid ones spread over the rest
    assert any("38 of them not known" in w for w in out.warnings)


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
    assert warned[3] == ["the budget of 3 calls is smaller than the sparse pass (18 frames 2 s apart): it looked "
                         "every 18 s (2 frames), 1 call(s) left to refine"]
    assert warned[None] == warned[18] == warned[30] == []  # 18: widened a little to keep calls for refining
