"""A search refines the best-matching single frames besides the reasoner's candidates (``Search.explore``)."""

from __future__ import annotations

import numpy as np
import pytest

from frame_describer.replay import ReplayDescriber, timeline_frames
from pipelines.search import Search, _with_frames, best_frames, coarse_to_fine
from temporal_reasoner import BaseReasoner, Transcript
from vidground.errors import ConfigurationError
from vidground.types import FrameDescription, GroundingResult, Interval

SCORES = {"a dog jumps": 1.0, "a dog sits": 0.6}


class Longest(BaseReasoner):
    """Answers the entries that mention a dog, longest first (a segment rule ranking by extent), and scores each
    entry by how well it matches (``SCORES``), as the embedding reasoners' ``entry_scores`` does."""

    name = "longest"

    def ground(self, query: str, transcript: Transcript) -> GroundingResult:
        hits = [e for e in transcript.entries if "dog" in e.text]
        intervals = sorted((Interval(start=e.start, end=e.end, score=e.end - e.start) for e in hits),
                           key=lambda iv: -iv.length)
        return GroundingResult(query=query, duration=transcript.duration, intervals=intervals)

    def entry_scores(self, query: str, transcript: Transcript) -> np.ndarray:
        return np.array([SCORES.get(e.text, 0.0) for e in transcript.entries])


class Unscored(Longest):
    entry_scores = None  # a reasoner that does not score frames (a chat model)


def video() -> tuple[list[FrameDescription], ReplayDescriber]:
    """600 s of 2-s captions: a dog sits in three long stretches, jumps in one short one (400-412 s)."""
    def text(t: int) -> str:
        if 400 <= t < 412:
            return "a dog jumps"
        if any(a <= t < b for a, b in ((50, 110), (200, 260), (500, 560))):
            return "a dog sits"
        return "a quiet street"
    captions = [FrameDescription(t=t + 1, text=text(t)) for t in range(0, 600, 2)]
    return captions, ReplayDescriber(captions, duration=600)


def search(reasoner: BaseReasoner, **settings) -> list[list]:
    captions, replay = video()
    out, _ = coarse_to_fine("the dog jumps", reasoner, lambda ts: replay.describe(timeline_frames(ts)),
                            [d.t for d in captions], 600.0,
                            Search(strategy="coarse-to-fine", coarse=8, regions=3, rounds=1, zoom=None, **settings))
    return out.frames


def refined_in(frames: list[list], lo: float, hi: float) -> list[list]:
    return [f for f in frames if f[1] > 0 and lo <= f[0] < hi]


def test_the_best_frame_outside_the_reasoners_candidates_is_refined():
    # the sparse pass sees the jump in one frame (409 s); the reasoner ranks the three long sits first
    without = search(Longest(), explore=0)
    assert refined_in(without, 392, 420) == []
    with_ = search(Longest(), explore=1)
    near = refined_in(with_, 392, 420)
    assert near and all(f[2].startswith("best frame") for f in near)
    assert any(400 <= f[0] < 412 for f in near)
    # the reasoner's two best candidates are still refined, its third gave way
    assert refined_in(with_, 50, 110) and refined_in(with_, 200, 260) and not refined_in(with_, 500, 560)


def test_a_reasoner_that_scores_no_frames_refines_its_own_candidates():
    assert search(Unscored(), explore=2) == search(Unscored(), explore=0)


def test_explore_never_takes_the_reasoners_best_candidate():
    frames = search(Longest(), explore=5)  # more than regions - 1: capped at 2
    assert refined_in(frames, 50, 110) and refined_in(frames, 392, 420)


def test_best_frames_picks_the_best_scores_outside_the_candidates_and_each_other():
    descs = [FrameDescription(t=float(t), text=text) for t, text in
             ((10, "a dog sits"), (20, "a dog jumps"), (30, "a dog jumps"), (60, "a dog sits"), (90, "a quiet street"))]
    # 20 and 30 merge into one entry, each frame its own candidate: 5 s apart they are both taken
    picked = best_frames(Longest(), "q", descs, [], 3, 5.0, 1.0, 100.0)
    assert [(iv.start, iv.end, iv.score) for iv in picked] == [(19.0, 21.0, 1.0), (29.0, 31.0, 1.0), (9.0, 11.0, 0.6)]
    # with a 10-s margin 30 and 10 lie within the first pick's reach: 60, then 90
    picked = best_frames(Longest(), "q", descs, [], 3, 10.0, 1.0, 100.0)
    assert [(iv.start, iv.score) for iv in picked] == [(19.0, 1.0), (59.0, 0.6), (89.0, 0.0)]
    taken = [Interval(start=15, end=35)]
    assert [iv.start for iv in best_frames(Longest(), "q", descs, taken, 1, 5.0, 1.0, 100.0)] == [59.0]
    assert best_frames(Unscored(), "q", descs, [], 3, 5.0, 1.0, 100.0) == []
    assert best_frames(Longest(), "q", descs, [], 0, 5.0, 1.0, 100.0) == []
    assert best_frames(Longest(), "q", [], [], 3, 5.0, 1.0, 100.0) == []
    assert best_frames(Longest(), "q", descs[:1], [], 1, 5.0, 30.0, 100.0)[0].start == 0.0  # clipped at the start


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True])
def test_explore_is_checked(bad):
    with pytest.raises(ConfigurationError, match="explore"):
        Search.of("coarse-to-fine", explore=bad)



def test_the_reasoners_candidates_and_the_frames_alternate_each_once():
    c = [Interval(start=10 * k, end=10 * k + 5) for k in range(5)]
    f = [Interval(start=100 + k, end=101 + k) for k in range(4)]
    assert _with_frames(c, f, 1) == [c[0], *f, *c[1:]]
    assert _with_frames(c, f[:2], 3) == [c[0], f[0], c[1], f[1], c[2], c[3], c[4]]
    assert _with_frames(c[:1], f[:2], 3) == [c[0], f[0], f[1]]
    assert _with_frames(c, [], 3) == c


def test_the_record_names_the_reasoners_own_rank_and_each_best_frame():
    frames = search(Longest(), explore=1)
    names = {f[2].split(" [")[0] for f in frames if f[1] == 1}
    # the mixed list is: the reasoner's 1st, the best frame, the reasoner's 2nd (its 3rd gave way)
    assert names == {"candidate 1", "best frame 1", "candidate 2"}
    # "candidate 2" is the reasoner's 2nd (the sits from 200 s, held from 193 s), though 3rd in the round's list
    assert {f[2].split(" score")[0] for f in frames if f[1] == 1 and f[2].startswith("candidate 2")} == \
        {"candidate 2 [193.0-257.0]"}


def test_a_grid_of_one_frame_has_no_best_frame_to_refine():
    class Elsewhere(Longest):  # a candidate that does not hold the only frame
        def ground(self, query, transcript):
            return GroundingResult(query=query, duration=transcript.duration,
                                   intervals=[Interval(start=0.0, end=1.0)])

    one = [FrameDescription(t=5.0, text="a dog jumps")]
    replay = ReplayDescriber(one, duration=10.0)
    out, _ = coarse_to_fine("the dog jumps", Elsewhere(), lambda ts: replay.describe(timeline_frames(ts)),
                            [5.0], 10.0, Search(strategy="coarse-to-fine", explore=2))
    assert [d.t for d in out.descriptions] == [5.0]
    assert best_frames(Longest(), "q", one, [], 2, 5.0, 0.0, 10.0) == []
