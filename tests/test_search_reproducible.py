"""A budgeted coarse-to-fine search answers the same cold, with a warm description cache, and after other queries of
the session (pipelines/search.py): a calls budget counts every frame the search uses, wherever its description came
from, so a cache or an earlier query changes what is paid, never which frames are used nor the answer."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from _helpers_eval import register_fakes
from frame_describer.base import BaseDescriber
from frame_describer.cache import CachedDescriber, DescriptionCache
from frame_describer.replay import ReplayDescriber, timeline_frames
from pipelines import Session
from pipelines.search import Search, coarse_to_fine
from vidground.types import Frame, FrameDescription, Usage

from test_search import Keyword, events, replayed
import test_search_session

register_fakes()
video = test_search_session.static_video  # the fixture: 20 s, grey, white from 8 s to 12 s, grey again


def same(a: Any, b: Any) -> None:
    """Two searches used the same frames, ran the same rounds, stopped alike and answered the same."""
    assert a.frames == b.frames
    assert (a.rounds, a.stop) == (b.rounds, b.stop)
    assert a.result.intervals == b.result.intervals


def cached_replay(captions: list[FrameDescription], tmp_path: Path) -> tuple[ReplayDescriber, Any]:
    replay = ReplayDescriber(captions, duration=600)
    cached = CachedDescriber(replay, DescriptionCache(tmp_path / "c.sqlite"), fingerprint="events")
    return replay, lambda times: cached.describe(timeline_frames(times))


@pytest.mark.parametrize("settings", [{"budget": 100}, {"budget": 20, "coarse": 2}],
                         ids=["refining", "smaller-than-the-sparse-pass"])
def test_a_warm_cache_rerun_uses_the_same_frames_and_pays_nothing(tmp_path, settings):
    """Cache hits were free: the rerun spent the budget again on other frames (100 more calls where the first run
    made 100; with a budget of 20 under a sparse pass of 150 frames, 20 more refining) and could answer otherwise."""
    replay, describe = cached_replay(events(), tmp_path)
    search = Search(strategy="coarse-to-fine", **settings)
    grid = replay.times
    cold, _ = coarse_to_fine("dog", Keyword(), describe, grid, 600.0, search)
    assert cold.stop == "budget" and cold.calls == replay.calls == settings["budget"] == len(cold.frames)
    warm, _ = coarse_to_fine("dog", Keyword(), describe, grid, 600.0, search)
    same(cold, warm)
    assert warm.calls == 0 and warm.cached == cold.calls and replay.calls == cold.calls
    if "coarse" in settings:
        assert {p for _, p, _ in warm.frames} == {0} and any("smaller than the sparse pass" in w for w in warm.warnings)


def test_a_query_after_another_uses_the_frames_it_uses_alone(tmp_path):
    """Query B alone and B after A (knowing A's answers, as a session does): the same frames, rounds and answer;
    B pays only for the frames A did not describe. B used to get A's frames free and spend its budget elsewhere."""
    captions = events(spans=((100, 130), (300, 320), (500, 510)))
    cat = [FrameDescription(t=d.t, text=d.text + (" and a cat" if 200 <= d.t < 230 else "")) for d in captions]
    search = Search(strategy="coarse-to-fine", budget=100)
    grid = [d.t for d in captions]
    replay, describe = replayed(cat, 600)
    alone, _ = coarse_to_fine("cat", Keyword(), describe, grid, 600.0, search)
    replay, describe = replayed(cat, 600)
    first, _ = coarse_to_fine("dog", Keyword(), describe, grid, 600.0, search)
    made = replay.calls
    after, _ = coarse_to_fine("cat", Keyword(), describe, grid, 600.0, search, known=first.answers)
    same(alone, after)
    assert after.known > 0 and after.calls == replay.calls - made == alone.calls - after.known
    assert after.known >= sum(1 for _, p, _ in after.frames if p == 0) == 75  # the whole sparse pass was known


class Plain(BaseDescriber):
    """Says which frame it saw and how bright it is, nothing about the frames before: its answers do not depend on
    the frames asked for with it. Counts its calls."""

    name = "plain"

    def __init__(self) -> None:
        self.calls = 0
        self.times: list[float] = []  # each frame's time, once per call

    def settings(self) -> dict[str, Any]:
        return {"name": self.name}

    def describe(self, frames: Iterable[Frame], *, query: str | None = None) -> Iterator[FrameDescription]:
        for f in frames:
            self.calls += 1
            self.times.append(f.t)
            shade = "white" if f.image.mean() > 128 else "grey"
            yield FrameDescription(t=f.t, text=f"frame at {f.t:.1f} {shade}", usage=Usage(requests=1))


@pytest.mark.parametrize("skip", [None, 3.0], ids=["plain", "skip-unchanged"])
def test_in_a_session_a_query_answers_the_same_whatever_ran_before_it(video, skip):
    """In any order: B alone, B after A, A after B. With skip-unchanged the session does not hand a query the frames
    an earlier one described (which frames are reused depends on the frames asked for together), so the same."""
    search = {"strategy": "coarse-to-fine", "budget": 8}
    results: dict[str, Any] = {}
    for order in (["B"], ["A", "B"], ["B", "A"], ["A"]):
        describer = Plain()
        with Session(describer=describer, reasoner="fake-reasoner", cache=False, search=search,
                     skip_unchanged=skip) as s:
            for q in order:
                result = s.ground(video, {"A": "frame at 3.0 grey", "B": "frame at 10.0 white"}[q])
                results.setdefault(q, []).append(result)
    for runs in results.values():
        first = runs[0]
        for other in runs[1:]:
            for k in ("frames", "rounds_done", "stop"):
                assert other.settings["search"][k] == first.settings["search"][k], k
            assert other.intervals == first.intervals
    searches = [r.settings["search"] for rs in results.values() for r in rs]
    assert all(s["calls"] + s["cached"] + s["known"] <= s["used"] <= 8 for s in searches)
    if skip is None:
        assert any(s["known"] > 0 and s["calls"] < results["B"][0].settings["search"]["calls"] for s in searches)
    else:
        assert all(s["known"] == 0 for s in searches) and any(s["skipped"] > 0 for s in searches)


def test_the_cli_rerun_with_a_cache_uses_the_same_frames_and_makes_no_call(video, tmp_path, capsys):
    from pipelines.cli import main

    argv = ["ground", str(video), "frame at 10.0", "--describer", "fake", "--reasoner", "fake-reasoner",
            "--strategy", "coarse-to-fine", "--budget", "6", "--cache", str(tmp_path / "c.sqlite")]
    runs = []
    for _ in range(2):
        assert main([*argv, "--json"]) == 0
        runs.append(json.loads(capsys.readouterr().out))
    first, again = (r["settings"]["search"] for r in runs)
    assert first["calls"] == 6 == again["cached"] and again["calls"] == 0
    assert (again["frames"], again["rounds_done"], again["stop"]) == (first["frames"], first["rounds_done"],
                                                                       first["stop"])
    assert runs[1]["intervals"] == runs[0]["intervals"]
    assert main(argv) == 0  # the table says what was paid and what the budget counted
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("frames:"))
    assert re.fullmatch(r"frames: +coarse-to-fine: 0 describer call\(s\), 6 frame\(s\) from the cache \(budget 6 "
                        r"frame\(s\), 6 used\); \d refinement round\(s\), stopped: .+", line), line


def slideshow(calls: list[float]) -> Any:
    """``describe`` as a session's on a 0.5-fps slideshow sampled at 1 fps: each time asked for gets its nearest
    real frame (one every 2 s), and a frame nearest several times of one request comes once."""

    def describe(times: list[float]) -> Iterator[FrameDescription]:
        for f in sorted({2.0 * round(t / 2.0) for t in times}):
            calls.append(f)
            text = "a dog runs" if 100 <= f < 130 or 300 <= f < 320 else f"street {f}"
            yield FrameDescription(t=f, text=text, usage=Usage(requests=1))

    return describe


def test_one_frame_answering_several_grid_times_is_known_for_each_of_them():
    """A decoded frame nearest two grid times came once and answered one of them: the rerun that knew the first
    run's answers asked for the other times again (11 calls, 125 frames against 138, other rounds). Every time
    asked for now has its answer (its nearest frame), and the budget counts times asked for."""
    calls: list[float] = []
    grid = [float(k) for k in range(600)]  # an odd second lies between two frames: one of them answers it
    search = Search(strategy="coarse-to-fine", budget=125)
    cold, _ = coarse_to_fine("dog", Keyword(), slideshow(calls), grid, 600.0, search)
    assert len(cold.answers) == len(cold.frames) == cold.used == 125 and cold.stop == "budget"
    assert cold.calls == len(calls) < cold.used  # a frame answering two times is one call
    assert all(abs(d.t - t) <= 1 for (t, _), d in cold.answers.items())  # each time's nearest frame
    calls.clear()
    again, _ = coarse_to_fine("dog", Keyword(), slideshow(calls), grid, 600.0, search, known=cold.answers)
    same(cold, again)
    assert again.calls == len(calls) == 0 and again.known == again.used == 125


def test_a_session_describes_each_decoded_frame_once_and_reruns_for_free(video):
    """The fixture is 5 fps (100 frames) sampled by count at 200 (--fps above a video's rate samples at its rate
    since FX-G): two grid times share each decoded frame. A later round asking for a
    time whose frame an earlier round described sent that frame to the describer again, and a rerun in the
    session asked again for the times the first run's answers did not name."""
    describer = Plain()
    search = {"strategy": "coarse-to-fine", "budget": 150}
    with Session(describer=describer, reasoner="fake-reasoner", cache=False, sampling={"num_frames": 200},
                 search=search) as s:
        first = s.ground(video, "frame at 10.0 white")
        made = list(describer.times)
        again = s.ground(video, "frame at 10.0 white")
    one, two = first.settings["search"], again.settings["search"]
    assert len(made) == len(set(made)) == one["calls"] < one["used"] == len(one["frames"]) <= 150
    assert (two["frames"], two["rounds_done"], two["stop"]) == (one["frames"], one["rounds_done"], one["stop"])
    assert again.intervals == first.intervals
    assert two["calls"] == 0 and two["known"] == two["used"] == one["used"] and describer.times == made


def test_skip_unchanged_without_a_calls_budget_reuses_earlier_queries_frames(video):
    """Under skip-unchanged the session handed a query no frame of an earlier one, budget or not: without a budget
    the same query asked again paid its calls again. A calls budget still gets none (which frames skip-unchanged
    reuses depends on the frames sent together; a cache is what makes reuse happen there)."""
    for search, reused in (({"strategy": "coarse-to-fine"}, True), ({"strategy": "coarse-to-fine", "budget": 8}, False)):
        with Session(describer=Plain(), reasoner="fake-reasoner", cache=False, search=search,
                     skip_unchanged=3.0) as s:
            runs = [s.ground(video, q).settings["search"] for q in ("frame at 3.0 grey", "frame at 10.0 white",
                                                                     "frame at 10.0 white")]
        assert runs[0]["known"] == 0 and runs[0]["calls"] > 0
        if reused:
            assert runs[2]["calls"] == 0 and runs[2]["known"] == len(runs[2]["frames"]) > 0
        else:
            assert all(r["known"] == 0 and r["calls"] > 0 for r in runs)


class SeesThePreviousFrame(Plain):
    """Plain, but declaring that its description of a frame depends on the frame sent before it (as ``cv``)."""

    name = "sees-previous"
    uses_previous_frame = True


def test_a_describer_that_sees_the_previous_frame_is_given_no_frames_of_earlier_queries(video):
    """Known frames change which frames are sent together, and so what such a describer says of the others: the
    session used to hand them over all the same, against coarse_to_fine's own advice."""
    describer = SeesThePreviousFrame()
    with Session(describer=describer, reasoner="fake-reasoner", cache=False,
                 search={"strategy": "coarse-to-fine", "budget": 8}) as s:
        runs = [s.ground(video, "frame at 10.0 white").settings["search"] for _ in range(2)]
    assert runs[1]["known"] == 0 and runs[1]["calls"] == runs[0]["calls"] > 0
    assert runs[1]["frames"] == runs[0]["frames"]


def test_the_frames_line_says_the_frames_the_budget_counted(video, capsys):
    """On a video with fewer frames than the grid the budget counts grid times, not descriptions: the table said
    'N used' from calls + cached + known, fewer than the budget counted."""
    from pipelines.cli import main

    argv = ["ground", str(video), "frame at 10.0", "--describer", "fake", "--reasoner", "fake-reasoner",
            "--num-frames", "200", "--strategy", "coarse-to-fine", "--budget", "150", "--no-cache"]
    assert main([*argv, "--json"]) == 0
    search = json.loads(capsys.readouterr().out)["settings"]["search"]
    assert search["calls"] < search["used"] == len(search["frames"]) <= 150
    assert main(argv) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("frames:"))
    assert f"{search['calls']} describer call(s) (budget 150 frame(s), {search['used']} used)" in line, line


class Chained(SeesThePreviousFrame):
    """As ``cv``: its text of a frame names the frame sent before it in the same stream."""

    name = "chained"

    def describe(self, frames: Iterable[Frame], *, query: str | None = None) -> Iterator[FrameDescription]:
        before = None
        for d in super().describe(frames, query=query):
            yield d.model_copy(update={"text": f"{d.text} after {before}"})
            before = d.t


class Recording:
    """The fake reasoner, keeping the texts of every transcript it grounds in."""

    name = "recording"

    def __init__(self) -> None:
        from _helpers_eval import FakeReasoner

        self.inner = FakeReasoner()
        self.texts: list[dict[float, str]] = []

    def settings(self) -> dict[str, Any]:
        return {"name": self.name}

    def ground(self, query: str, transcript: Any) -> Any:
        self.texts.append({e.start: e.text for e in transcript.entries})
        return self.inner.ground(query, transcript)


def test_a_search_of_a_describer_that_sees_the_previous_frame_reads_as_fresh_after_other_queries(video, tmp_path):
    """Each search round is a stream of its own: a frame a query's refinement round described (after that round's
    frame before it) was served from the cache to another query's round, where a fresh run compares it with another
    frame (cv: 'Motion: the camera is panning...' against 'The main colours are beige and brown'). Such a search now
    does not use the cache: what a query reads is what it reads alone."""
    kw = {"search": {"strategy": "coarse-to-fine", "budget": 8}, "sampling": {"fps": 1}}
    a, b = "frame at 3.0 grey", "frame at 10.0 white"
    alone = Recording()
    with Session(describer=Chained(), reasoner=alone, cache=False, **kw) as s:
        fresh = s.ground(video, b)
    cache = tmp_path / "c.sqlite"
    after = Recording()
    with Session(describer=Chained(), reasoner=after, cache=cache, **kw) as s:
        s.ground(video, a)
    with Session(describer=Chained(), reasoner=after, cache=cache, **kw) as s:
        later = s.ground(video, b)
    assert after.texts[-1] == alone.texts[-1] and later.intervals == fresh.intervals
    assert later.settings["search"]["cached"] == 0 and DescriptionCache(cache).count() == 0
