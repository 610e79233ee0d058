"""Coarse-to-fine describing (pipelines/search.py) and the replay describer it is measured with."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from frame_describer import get_describer
from frame_describer.cache import CachedDescriber, DescriptionCache
from frame_describer.replay import ReplayDescriber, timeline_frames
from pipelines.search import Search, coarse_stride, coarse_to_fine, count_grid, rate_grid
from temporal_reasoner import BaseReasoner, Transcript
from vidground.errors import ConfigurationError, InputError
from vidground.types import FrameDescription, GroundingResult, Interval


class Keyword(BaseReasoner):
    """Answers the entries whose text holds the query's word (best first by how many frames say it);
    names no candidate when none does. Counts its calls."""

    name = "keyword"

    def __init__(self) -> None:
        self.calls = 0

    def ground(self, query: str, transcript: Transcript) -> GroundingResult:
        self.calls += 1
        hits = [e for e in transcript.entries if query in e.text]
        intervals = [Interval(start=e.start, end=e.end, score=float(len(e.times))) for e in hits]
        intervals.sort(key=lambda iv: -iv.length)
        return GroundingResult(query=query, duration=transcript.duration, intervals=intervals)


def timeline(duration: int = 600, event: tuple[int, int] = (300, 320), step: int = 2) -> list[FrameDescription]:
    """Clip captions every ``step`` s ("a dog runs" inside ``event``, a street elsewhere)."""
    return [FrameDescription(t=t + step / 2, text="a dog runs" if event[0] <= t < event[1] else "a quiet street")
            for t in range(0, duration, step)]


def replayed(captions: list[FrameDescription], duration: float) -> tuple[ReplayDescriber, Any]:
    replay = ReplayDescriber(captions, duration=duration)
    return replay, lambda times: replay.describe(timeline_frames(times))


# -- the replay describer ------------------------------------------------------------------------------

def test_replay_answers_the_nearest_caption_and_none_past_the_end(tmp_path):
    path = tmp_path / "v.jsonl"
    path.write_text("".join(f'{{"moment": {k}, "description": "clip {k}"}}\n' for k in range(3)))  # vtggpt, 2-s clips
    replay = get_describer(f"replay:{path}")
    assert replay.end == 6.0
    out = list(replay.describe(timeline_frames([0.0, 1.9, 2.0, 5.99, 6.0, 6.5])))
    assert [(d.t, d.text) for d in out] == [(0.0, "clip 0"), (1.9, "clip 0"), (2.0, "clip 1"), (5.99, "clip 2"),
                                            (6.0, "clip 2")]
    assert (replay.calls, replay.past_end) == (5, 1)
    assert all(d.usage.requests == 1 for d in out)


def test_replay_settings_name_the_captions_so_a_cache_never_mixes_two_sets():
    a = ReplayDescriber([FrameDescription(t=0.5, text="a")])
    b = ReplayDescriber([FrameDescription(t=0.5, text="b")])
    assert a.settings()["captions"] != b.settings()["captions"]


def test_replay_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(ConfigurationError, match="needs a captions file"):
        get_describer("replay")
    with pytest.raises(InputError, match="not found|no such|missing"):
        get_describer(f"replay:{tmp_path / 'none.jsonl'}")
    with pytest.raises(InputError, match="at least one caption"):
        ReplayDescriber([])
    with pytest.raises(InputError, match="share one time"):
        ReplayDescriber([FrameDescription(t=1, text="a"), FrameDescription(t=1, text="b")])
    with pytest.raises(InputError, match="before the last caption"):
        ReplayDescriber([FrameDescription(t=10, text="a")], duration=5)
    with pytest.raises(ConfigurationError, match="duration"):
        ReplayDescriber([FrameDescription(t=1, text="a")], duration=-1)


# -- the search ---------------------------------------------------------------------------------------

def test_coarse_to_fine_finds_the_event_for_a_fraction_of_the_calls():
    captions = timeline()
    replay, describe = replayed(captions, 600)
    grid = [d.t for d in captions]
    out, stride = coarse_to_fine("dog", Keyword(), describe, grid, 600.0, Search(strategy="coarse-to-fine"))
    assert stride == coarse_stride(len(grid)) == 4
    best = out.result.best
    assert best is not None and abs(best.start - 300) <= 2 and abs(best.end - 320) <= 2  # dense-grid precision
    assert out.calls == replay.calls < len(grid) / 2
    assert out.stop == "converged"
    passes = {p for _, p, _ in out.frames}
    assert passes == {0, *range(1, out.rounds + 1)}
    assert all(why.startswith("candidate 1") for _, p, why in out.frames if p > 0)
    assert [d.t for d in out.descriptions] == sorted({d.t for d in out.descriptions})


def test_zoom_refines_a_candidate_sparser_first_then_densely():
    captions = timeline()
    replay, describe = replayed(captions, 600)
    grid = [d.t for d in captions]
    out, stride = coarse_to_fine("dog", Keyword(), describe, grid, 600.0, Search(strategy="coarse-to-fine", zoom=2))
    assert stride == 4
    index = {t: i for i, t in enumerate(grid)}
    first = [index[t] for t, p, _ in out.frames if p == 1]
    assert first and all((i - stride // 2) % 2 == 0 for i in first)  # round 1: every 2nd grid frame
    assert any((index[t] - stride // 2) % 2 for t, p, _ in out.frames if p == 2)  # round 2: the rest
    best = out.result.best
    assert best is not None and abs(best.start - 300) <= 2 and abs(best.end - 320) <= 2
    assert out.stop == "converged" and out.calls == replay.calls < len(grid) / 2
    with pytest.raises(ConfigurationError, match="zoom"):
        Search.of(zoom=1)


def test_a_budget_smaller_than_the_coarse_pass_thins_it_and_refines_nothing():
    captions = timeline()
    replay, describe = replayed(captions, 600)
    out, _ = coarse_to_fine("dog", Keyword(), describe, [d.t for d in captions], 600.0,
                            Search(strategy="coarse-to-fine", budget=10, coarse=4))
    assert out.calls == replay.calls == 10
    assert {p for _, p, _ in out.frames} == {0}
    assert out.stop == "budget"
    assert any("smaller than the sparse pass" in w for w in out.warnings)
    times = [t for t, _, _ in out.frames]
    assert times[0] < 60 and times[-1] > 500  # spread over the whole video, not its start


def test_the_budget_bounds_the_refinement():
    captions = timeline(event=(100, 400))
    replay, describe = replayed(captions, 600)
    out, stride = coarse_to_fine("dog", Keyword(), describe, [d.t for d in captions], 600.0,
                                 Search(strategy="coarse-to-fine", budget=120))
    assert replay.calls == out.calls == 120
    assert out.stop == "budget"


def test_a_video_shorter_than_the_coarse_step_is_described_once():
    captions = [FrameDescription(t=1.0, text="a dog runs")]
    replay, describe = replayed(captions, 2.0)
    out, _ = coarse_to_fine("dog", Keyword(), describe, [1.0], 2.0, Search(strategy="coarse-to-fine", coarse=8))
    assert replay.calls == 1 and out.result.best.as_list()[:2] == [0.0, 2.0]
    assert out.stop == "converged"


def test_a_reasoner_that_names_no_candidate_stops_after_the_coarse_pass():
    captions = timeline()
    replay, describe = replayed(captions, 600)
    reasoner = Keyword()
    out, stride = coarse_to_fine("cat", reasoner, describe, [d.t for d in captions], 600.0,
                                 Search(strategy="coarse-to-fine"))
    assert out.stop == "no-candidate" and out.result.intervals == []
    assert replay.calls == len(range(0, len(captions), stride)) and reasoner.calls == 1
    assert any("no candidate" in w for w in out.warnings)


def test_frames_already_described_are_free(tmp_path):
    captions = timeline()
    grid = [d.t for d in captions]
    replay = ReplayDescriber(captions, duration=600)
    cache = DescriptionCache(tmp_path / "c.sqlite")
    cached = CachedDescriber(replay, cache, fingerprint="long-video")

    def describe(times: list[float]) -> Any:
        return cached.describe(timeline_frames(times))

    first, _ = coarse_to_fine("dog", Keyword(), describe, grid, 600.0, Search(strategy="coarse-to-fine"))
    assert first.cached == 0 and first.calls == replay.calls
    # a second search of the same query: the cache holds every frame it asks for
    again, _ = coarse_to_fine("dog", Keyword(), describe, grid, 600.0, Search(strategy="coarse-to-fine"))
    assert again.calls == 0 and again.cached == first.calls and replay.calls == first.calls
    assert again.result.intervals == first.result.intervals
    # another query, with the frames of the first known to it (a session's memory): only new frames are paid
    other = [FrameDescription(t=d.t, text=d.text + (" and a cat" if 100 <= d.t < 110 else "")) for d in captions]
    replay2, describe2 = replayed(other, 600)
    third, _ = coarse_to_fine("dog", Keyword(), describe2, grid, 600.0, Search(strategy="coarse-to-fine"),
                              known=first.answers)
    assert third.known == len(first.descriptions) and third.calls == replay2.calls == 0
    with pytest.raises(ConfigurationError, match=r"requests \(grid time, tolerance\)"):  # times alone
        coarse_to_fine("dog", Keyword(), describe2, grid, 600.0, known={d.t: d for d in first.descriptions})


def test_the_seconds_budget_stops_describing(monkeypatch):
    """Each description takes 1 s on a fake clock: a 5-s budget describes 5 frames. (The clock used to tick at each
    reading, whatever was described between: with the sparse pass handed over in fewer chunks, 3 readings covered
    13 descriptions.)"""
    captions = timeline()
    replay = ReplayDescriber(captions, duration=600)
    now = [0.0]

    def describe(times: list[float]) -> Any:
        for d in replay.describe(timeline_frames(times)):
            now[0] += 1.0
            yield d

    out, _ = coarse_to_fine("dog", Keyword(), describe, [d.t for d in captions], 600.0,
                            Search(strategy="coarse-to-fine", budget_seconds=5), clock=lambda: now[0])
    assert out.calls == replay.calls == 5 and now[0] == 5.0 and any("budget" in w for w in out.warnings)


def test_search_settings_are_checked():
    assert Search.of("coarse-to-fine", budget=5).budget == 5
    with pytest.raises(ConfigurationError, match="unknown strategy 'dense'"):
        Search.of("dense")
    with pytest.raises(ConfigurationError, match="budget"):
        Search.of({"strategy": "coarse-to-fine", "budget": 0})
    with pytest.raises(ConfigurationError, match="budget"):
        Search.of(budget=True)
    with pytest.raises(ConfigurationError, match="regions"):
        Search.of(regions=0)
    with pytest.raises(ConfigurationError, match="search must be"):
        Search.of(3)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="no frame times"):
        coarse_to_fine("dog", Keyword(), lambda t: [], [], 10.0)
    with pytest.raises(ConfigurationError, match="increasing"):
        coarse_to_fine("dog", Keyword(), lambda t: [], [2.0, 1.0], 10.0)


def test_grids():
    assert rate_grid(3.0, 2.0) == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert rate_grid(0.0, 1.0) == [0.0]
    assert count_grid(10.0, 2) == [2.5, 7.5]
    assert coarse_stride(3600) == 8 and coarse_stride(100) == 4 and coarse_stride(10) == 2
    assert coarse_stride(3600, budget=100) == 44  # five sixths of the budget for the sparse pass
    assert coarse_stride(3600, budget=540) == 8  # 15% of a 2-h 2-s grid: the sparse pass as without a budget
    assert coarse_stride(900, budget=135) == 9


def test_skip_unchanged_reuses_the_last_description_for_a_static_stretch():
    from frame_describer.skip import SkipUnchanged

    from vidground.types import Frame

    class Counting:
        name, mode = "counting", "agnostic"

        def __init__(self) -> None:
            self.seen: list[float] = []

        def settings(self) -> dict[str, Any]:
            return {"name": self.name}

        def describe(self, frames, *, query=None):
            for f in frames:
                self.seen.append(f.t)
                yield FrameDescription(t=f.t, text=f"grey {round(float(f.image.mean()))}")

    def frame(t: float, level: int, noise: int = 0) -> Frame:
        rng = np.random.default_rng(int(t * 10))
        img = np.full((48, 64, 3), level, np.int16) + rng.integers(-noise, noise + 1, (48, 64, 3))
        return Frame(t=t, index=int(t), image=np.clip(img, 0, 255).astype(np.uint8))

    levels = [10, 10, 10, 200, 200, 10]
    inner = Counting()
    skip = SkipUnchanged(inner, threshold=2.0)
    out = list(skip.describe([frame(float(t), lv, noise=3) for t, lv in enumerate(levels)]))
    assert [d.t for d in out] == [0, 1, 2, 3, 4, 5]
    assert inner.seen == [0, 3, 5] and (skip.sent, skip.skipped) == (3, 3)
    assert [d.text for d in out] == ["grey 10", "grey 10", "grey 10", "grey 200", "grey 200", "grey 10"]
    assert [getattr(d, "reused_from", None) for d in out] == [None, 0, 0, None, 3, None]
    assert SkipUnchanged(Counting(), threshold=0).settings()["skip_unchanged"] == 0.0
    with pytest.raises(ConfigurationError, match="threshold"):
        SkipUnchanged(Counting(), threshold=-1)


def test_command_line_search_options_and_the_skip_threshold():
    from argparse import Namespace

    from pipelines.search import check_skip_unchanged, search_options

    assert search_options(Namespace(strategy="uniform", budget=None, budget_seconds=None)) is None
    assert search_options(Namespace(strategy="coarse-to-fine", budget=40, budget_seconds=None)) == \
        {"strategy": "coarse-to-fine", "budget": 40}
    with pytest.raises(ConfigurationError, match="apply to --strategy coarse-to-fine"):
        search_options(Namespace(strategy="uniform", budget=40, budget_seconds=None))
    with pytest.raises(ConfigurationError, match="budget_seconds"):
        search_options(Namespace(strategy="coarse-to-fine", budget=None, budget_seconds=-1.0))
    assert check_skip_unchanged(None) is None and check_skip_unchanged(2) == 2.0
    for bad in (-1, float("nan"), True, "2"):
        with pytest.raises(ConfigurationError, match="skip_unchanged"):
            check_skip_unchanged(bad)


def test_a_budget_cut_keeps_the_frames_inside_the_best_candidate_not_its_margin():
    """With a budget the refinement kept the leftmost frames of [start - margin, end + margin], all in the
    margin before the candidate (the reviewer saw t=10, 11, 12 described for a candidate at 18-36 s)."""
    import re

    captions = timeline(duration=600, event=(300, 340), step=1)
    replay, describe = replayed(captions, 600)
    free, _ = coarse_to_fine("dog", Keyword(), describe, [d.t for d in captions], 600.0,
                             Search(strategy="coarse-to-fine", zoom=None))
    coarse = sum(1 for f in free.frames if f[1] == 0)
    replay, describe = replayed(captions, 600)
    out, _ = coarse_to_fine("dog", Keyword(), describe, [d.t for d in captions], 600.0,
                            Search(strategy="coarse-to-fine", zoom=None, budget=coarse + 6))
    refined = [f for f in out.frames if f[1] >= 1]
    assert refined and out.calls == coarse + 6 and out.stop == "budget"  # the budget cut the refinement
    for t, _, reason in refined:
        lo, hi = map(float, re.search(r"\[([\d.]+)-([\d.]+)\]", reason).groups())
        assert lo <= t <= hi, (t, reason)  # inside its candidate, none in the margins


def test_skip_unchanged_reuses_are_not_describer_calls_nor_spent_budget():
    """A reused description (skip-unchanged) cost nothing but was counted as a call: 25 'calls' for 17 real."""
    sent: list[float] = []

    def describe(times):
        for k, t in enumerate(times):
            if k % 2:  # every other frame unchanged: the last description, reused
                yield FrameDescription(t=t, text="a quiet street", reused_from=times[k - 1])
            else:
                sent.append(t)
                yield FrameDescription(t=t, text="a dog runs" if 300 <= t < 320 else "a quiet street")

    grid = [float(t) for t in range(0, 600, 2)]
    out, _ = coarse_to_fine("dog", Keyword(), describe, grid, 600.0, Search(strategy="coarse-to-fine"))
    assert out.calls == len(sent) and out.skipped == len(out.frames) - len(sent) - out.known > 0
    assert out.record(Search(strategy="coarse-to-fine"), 8)["skipped"] == out.skipped


class Recording(Keyword):
    """The keyword reasoner, keeping every transcript it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Transcript] = []

    def ground(self, query: str, transcript: Transcript) -> GroundingResult:
        self.seen.append(transcript)
        return super().ground(query, transcript)


def test_every_grounding_samples_the_whole_grid_whatever_was_described():
    """A partly described grid is grounded on the grid's own time base: each description held at every grid
    time nearer to its frame than to another described one (the spans as before), so a sparse stretch and a
    refined one weigh by their length, not by how many frames were described there."""
    from temporal_reasoner.spans import sample_times

    captions = [FrameDescription(t=d.t, text=d.text if "dog" in d.text else f"a quiet street, car {k}")
                for k, d in enumerate(timeline(600, (300, 320)))]  # no two alike outside the moment
    replay, describe = replayed(captions, 600.0)
    reasoner = Recording()
    out, _ = coarse_to_fine("dog", reasoner, describe, replay.times, 600.0, Search(strategy="coarse-to-fine"))
    assert out.calls < len(replay.times) / 3 and len(reasoner.seen) == out.rounds + 1 > 1
    for transcript in reasoner.seen:
        times, _ = sample_times(transcript)
        assert list(times) == replay.times and transcript.step == 2.0  # every grid time, once
    last = reasoner.seen[-1]
    plain = Transcript.from_descriptions(out.descriptions, duration=600.0)  # the described frames alone
    assert [(e.start, e.end, e.text) for e in last.entries] == [(e.start, e.end, e.text) for e in plain.entries]
    for e in last.entries:  # each grid time held by the description of the nearest described frame
        for g in e.times:
            nearest = min(abs(d.t - g) for d in out.descriptions)
            assert e.start <= g < e.end and min(abs(d.t - g) for d in out.descriptions if d.text == e.text) == nearest
    far = next(e for e in last.entries if e.end <= 250 and e.start > 0)  # a sparse frame (every 4th): 4 held
    assert len(far.times) == 4 and len(next(e for e in plain.entries if e.start == far.start).times) == 1


# -- frames that answer a grid time from further away (keyframes, known frames) ----------------------------

class Fallback(BaseReasoner):
    """The first entry whose text holds the query's word, else a wide region around 10-24 s."""

    name = "fallback"

    def ground(self, query: str, transcript: Transcript) -> GroundingResult:
        hit = next((e for e in transcript.entries if query in e.text), None)
        iv = Interval(start=hit.start, end=hit.end, score=1.0) if hit else Interval(start=10.0, end=24.0, score=0.5)
        return GroundingResult(query=query, duration=transcript.duration, intervals=[iv])


def keyframed(keys: list[float]) -> tuple[list[float], Any]:
    """A describer snapping a time to a keyframe within ``tolerance=``; the dog shows at 19-21 s only."""
    sent: list[float] = []

    def describe(times: list[float], tolerance: float = 0.0) -> Any:
        for t in times:
            t = next((k for k in keys if abs(k - t) <= tolerance), t)
            sent.append(t)
            yield FrameDescription(t=t, text="a dog jumps" if 19 <= t <= 21 else "an empty room")

    return sent, describe


def test_a_grid_time_a_keyframe_answered_is_described_exactly_when_refined():
    """The sparse grid time 20 s is answered by the keyframe at 21.9 s (within a quarter of the 8-s spacing);
    the moment shows only in the frame at 20 s, so a refinement around it must describe that frame."""
    grid = [2.0 * k for k in range(60)]
    search = Search(strategy="coarse-to-fine")
    sent, describe = keyframed([21.9])
    out, stride = coarse_to_fine("dog", Fallback(), describe, grid, 120.0, search, tolerant=True)
    assert stride == 4 and 21.9 in sent and 20.0 in sent and sent.count(20.0) == 1
    assert [f for f in out.frames if f[0] == 20.0][0][2] == "coarse (answered by the frame at 21.90s)"
    assert out.result.best.start == 19.0 and out.result.best.end == pytest.approx(20.95)  # not the 10-24 fallback
    exact, _ = coarse_to_fine("dog", Fallback(), keyframed([])[1], grid, 120.0, search, tolerant=True)
    assert (exact.result.best.start, exact.result.best.end) == (19.0, 21.0)


def test_a_grid_time_a_known_frame_answered_from_afar_is_described_exactly_when_refined():
    grid = [2.0 * k for k in range(60)]
    known = {(20.0, 2.0): FrameDescription(t=21.9, text="an empty room")}  # an earlier query's keyframe for 20 s
    sent, describe = keyframed([])
    out, _ = coarse_to_fine("dog", Fallback(), describe, grid, 120.0, Search(strategy="coarse-to-fine"),
                            known=known, tolerant=True)
    assert [f for f in out.frames if f[0] == 20.0][0][1:] == [0, "coarse (answered by the frame at 21.90s)"]
    assert out.known == 1
    assert 20.0 in sent and 21.9 not in sent and out.result.best.start == 19.0


def test_the_margin_widens_only_by_how_far_the_sparse_frames_snapped():
    """No keyframe near any sparse time (an MPEG-TS file, a long keyframe interval): a tolerant search
    describes exactly what an exact one does."""
    captions = timeline(1200, (600, 630))
    replay, _ = replayed(captions, 1200.0)

    def describe(times: list[float], tolerance: float = 0.0) -> Any:
        return replay.describe(timeline_frames(times))

    search = Search(strategy="coarse-to-fine")
    exact, _ = coarse_to_fine("dog", Keyword(), describe, replay.times, 1200.0, search)
    tolerant, _ = coarse_to_fine("dog", Keyword(), describe, replay.times, 1200.0, search, tolerant=True)
    assert tolerant.frames == exact.frames and tolerant.calls == exact.calls
    # on a 1-s grid sparse every 8 s (tolerance 2 s), the sparse time 20 s snapped 1.5 s to a keyframe at
    # 21.5 s: the 10-24 s candidate is refined 4 + 1.5 s either side (half the spacing and the snap: 4.5-29.5 s),
    # not 4 + 2 s (the whole tolerance: 4-30 s) nor 4 s (6-28 s)
    grid = [float(k) for k in range(120)]
    snapped, _ = coarse_to_fine("dog", Fallback(), keyframed([21.5])[1], grid, 120.0,
                                search.model_copy(update={"coarse": 8, "rounds": 1, "zoom": None}), tolerant=True)
    refined = sorted(t for t, p, _ in snapped.frames if p == 1)
    assert (refined[0], refined[-1]) == (5.0, 29.0) and 20.0 in refined


def test_the_held_transcript_samples_the_end_in_the_last_entry():
    from pipelines.search import held_transcript

    grid = [float(t) for t in range(0, 33, 2)]
    descs = [FrameDescription(t=t, text=f"frame {t}") for t in (0.0, 16.0, 32.0)]
    held = held_transcript(descs, grid, 32.0)
    assert [t for e in held.entries for t in e.times] == grid  # every grid time once, 32 s included
    assert held.entries[-1].times == (24.0, 26.0, 28.0, 30.0, 32.0)


# -- spending what a budget leaves ----------------------------------------------------------------------

def events(duration: int = 600, spans: tuple[tuple[int, int], ...] = ((100, 130), (300, 320), (500, 510)),
           step: int = 2) -> list[FrameDescription]:
    """Clip captions every ``step`` s, "a dog runs" inside each of ``spans``, a different street elsewhere."""
    return [FrameDescription(t=t + step / 2, text="a dog runs" if any(a <= t < b for a, b in spans)
                             else f"a quiet street, car {t}") for t in range(0, duration, step)]


def test_a_budget_left_after_the_planned_rounds_refines_the_next_best_candidates():
    """Refining only the best candidate for one round left most of a 150-call budget unspent (stop 'rounds');
    the rest now goes to the next-best candidates, densely, each frame saying so."""
    captions = events()
    grid = [d.t for d in captions]
    settings = dict(strategy="coarse-to-fine", regions=1, rounds=1, zoom=None, coarse=8)
    replay, describe = replayed(captions, 600)
    planned, _ = coarse_to_fine("dog", Keyword(), describe, grid, 600.0, Search(**settings))
    assert planned.stop == "rounds" and planned.calls < 150  # no budget: the planned rounds are the cost
    replay, describe = replayed(captions, 600)
    out, _ = coarse_to_fine("dog", Keyword(), describe, grid, 600.0, Search(**settings, budget=150))
    assert out.calls == replay.calls <= 150 and out.calls > planned.calls
    extra = [(t, why) for t, p, why in out.frames if why.endswith("(budget left)")]
    assert extra and all(t not in {f[0] for f in planned.frames} for t, _ in extra)
    for lo, hi in ((100, 130), (300, 320), (500, 510)):  # every moment the reasoner named was described densely
        assert all(any(abs(t - g) < 1e-6 for t, _, _ in out.frames) for g in grid if lo < g < hi)
    assert out.stop in ("converged", "budget")
    assert len({t for t, _, _ in out.frames}) == len(out.frames)  # no time asked twice


def test_a_budget_with_no_candidate_left_to_refine_is_left_unspent():
    captions = events(spans=((300, 320),))
    replay, describe = replayed(captions, 600)
    out, _ = coarse_to_fine("dog", Keyword(), describe, [d.t for d in captions], 600.0,
                            Search(strategy="coarse-to-fine", budget=250))
    assert out.stop == "converged" and out.calls == replay.calls < 250
    best = out.result.best
    assert best is not None and (best.start, best.end) == (300.0, 320.0)


def test_a_reasoner_naming_no_candidate_leaves_the_budget_unspent():
    captions = events()
    replay, describe = replayed(captions, 600)
    reasoner = Keyword()
    out, stride = coarse_to_fine("cat", reasoner, describe, [d.t for d in captions], 600.0,
                                 Search(strategy="coarse-to-fine", budget=200))
    assert out.stop == "no-candidate" and reasoner.calls == 1
    assert out.calls == replay.calls == len(range(stride // 2, len(captions), stride))


def test_a_video_shorter_than_the_step_with_a_budget_is_described_once():
    replay, describe = replayed([FrameDescription(t=1.0, text="a dog runs")], 2.0)
    out, _ = coarse_to_fine("dog", Keyword(), describe, [1.0], 2.0, Search(strategy="coarse-to-fine", budget=50))
    assert replay.calls == out.calls == 1 and out.stop == "converged"


@pytest.mark.parametrize("budget", [1, 7, 38, 39, 40, 60, 75, 90, 120, 299])
def test_a_budget_in_calls_is_never_exceeded(budget):
    captions = events()
    replay, describe = replayed(captions, 600)
    out, _ = coarse_to_fine("dog", Keyword(), describe, [d.t for d in captions], 600.0,
                            Search(strategy="coarse-to-fine", budget=budget))
    assert out.calls == replay.calls <= budget
    assert out.stop == "budget" or out.calls < budget


def test_a_budget_in_seconds_is_never_exceeded():
    """Each description takes 1 s on a fake clock: a 12.5-s budget allows 12 of them. The search used to check
    only after a description, so the 13th began at 12 s and ended at 13 s, past the budget."""
    captions = events()
    replay = ReplayDescriber(captions, duration=600)
    now = [0.0]

    def describe(times):
        for d in replay.describe(timeline_frames(times)):
            now[0] += 1.0
            yield d

    out, _ = coarse_to_fine("dog", Keyword(), describe, [d.t for d in captions], 600.0,
                            Search(strategy="coarse-to-fine", budget_seconds=12.5), clock=lambda: now[0])
    assert out.calls == replay.calls == 12 and now[0] == 12.0
    assert out.stop == "budget" and any("12.5 s ran out" in w for w in out.warnings)
    # a budget the sparse pass fits in is spent on refinements, still never over
    now[0] = 0.0
    replay = ReplayDescriber(captions, duration=600)
    out, stride = coarse_to_fine("dog", Keyword(), describe, [d.t for d in captions], 600.0,
                                 Search(strategy="coarse-to-fine", budget_seconds=100.5), clock=lambda: now[0])
    assert len(range(stride // 2, len(captions), stride)) < out.calls == replay.calls <= 100 and now[0] <= 100.5


def test_frames_a_cache_already_holds_count_against_the_budget_but_cost_no_call(tmp_path):
    """A cache holding the frames a first search described: a second search with a budget of 10 more frames takes
    them again from the cache (no call, but counted: a budget counts the frames used, wherever they come from) and
    pays for exactly the 10 new frames around the next-best candidates."""
    captions = events()
    grid = [d.t for d in captions]
    replay = ReplayDescriber(captions, duration=600)
    cached = CachedDescriber(replay, DescriptionCache(tmp_path / "c.sqlite"), fingerprint="events")

    def describe(times: list[float]) -> Any:
        return cached.describe(timeline_frames(times))

    settings = dict(strategy="coarse-to-fine", regions=1, coarse=4)
    first, _ = coarse_to_fine("dog", Keyword(), describe, grid, 600.0, Search(**settings))
    paid = replay.calls
    assert first.calls == paid and first.stop == "converged"
    out, _ = coarse_to_fine("dog", Keyword(), describe, grid, 600.0, Search(**settings, budget=paid + 10))
    assert out.cached == paid  # everything the first search described again, free
    assert out.calls == replay.calls - paid == 10 and out.stop == "budget"  # new frames, around the next-best ones
    assert out.calls + out.cached == out.used == paid + 10 == len(out.frames)
    assert all(why.endswith("(budget left)") for _, _, why in out.frames[paid:])
