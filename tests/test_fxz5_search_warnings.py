"""A coarse-to-fine search without a budget that uses most of the grid says so (result warnings and the log), and
a seconds budget that runs out names the stage as the docs do ("the sparse pass", "round N")."""

from __future__ import annotations

import logging

from frame_describer.replay import ReplayDescriber, timeline_frames
from pipelines.search import Search, coarse_to_fine
from temporal_reasoner.base import BaseReasoner
from vidground.types import FrameDescription, GroundingResult, Interval


class Span(BaseReasoner):
    """The span from the first entry holding the query's word to the last: on footage where the word comes back
    every few minutes, one candidate spanning most of the video (as the embedding reasoner's on plain colours)."""

    name = "span"

    def ground(self, query, transcript):
        hits = [e for e in transcript.entries if query in e.text]
        spans = [Interval(start=hits[0].start, end=hits[-1].end, score=1.0)] if hits else []
        return GroundingResult(query=query, duration=transcript.duration, intervals=spans, reasoner=self.name)


def colours(seconds: int = 1800, every: int = 150) -> list[FrameDescription]:
    """A 1-fps plain-colour video's captions: the colour changes every ``every`` s, green every third time."""
    names = ("green", "red", "blue")
    return [FrameDescription(t=float(t), text=f"a plain frame, mostly {names[(t // every) % 3]}")
            for t in range(seconds)]


def search(captions, clock=None, **settings):
    replay = ReplayDescriber(captions, duration=captions[-1].t + 1)
    now = [0.0]

    def describe(times):
        for d in replay.describe(timeline_frames(times)):
            now[0] += 1.0  # each call a second on the fake clock
            yield d

    out, _ = coarse_to_fine("green", Span(), describe, [d.t for d in captions], captions[-1].t + 1,
                            Search(strategy="coarse-to-fine", **settings), clock=lambda: now[0])
    return out, replay


def test_a_search_without_a_budget_that_uses_most_of_the_grid_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="pipelines.search"):
        out, replay = search(colours())
    assert out.used == out.calls == replay.calls and out.calls > 900  # most of the 1,800 frames
    said = [w for w in out.warnings if "the grid's 1800 frames" in w]
    assert len(said) == 1, out.warnings  # before: no warning at all
    assert f"made {out.calls} describer call(s) for the grid's 1800 frames" in said[0] and "--budget N" in said[0]
    assert "--skip-unchanged" in said[0]
    assert [r.getMessage() for r in caplog.records if r.name == "pipelines.search"] == said  # stderr too


def test_no_such_warning_with_a_budget_or_when_the_search_stays_small():
    capped, _ = search(colours(), budget=400)
    assert capped.used <= 400 and not any("the grid's" in w for w in capped.warnings)
    # green once, for 150 s: the search stays near it
    one = [FrameDescription(t=d.t, text=d.text.replace("green", "grey") if d.t >= 150 else d.text)
           for d in colours()]
    small, _ = search(one)
    assert small.used < 900 and not any("the grid's" in w for w in small.warnings)


def test_no_such_warning_for_what_cost_nothing_or_for_a_short_video():
    """RV-Q: a rerun answered from the cache (0 calls) warned "to cap what a query costs, give a budget", and a
    60-s video described whole warned "60 of 60 frames (100%)". The warning is on calls, from 600 grid frames."""
    captions = colours()
    cold, _ = search(captions)
    assert any("the grid's" in w for w in cold.warnings)
    replay = ReplayDescriber(captions, duration=captions[-1].t + 1)
    known = {}

    def describe(times):
        yield from replay.describe(timeline_frames(times))

    # the same search with every frame known (a warm cache, or an earlier query of the session): nothing paid
    from pipelines.search import request
    known = {request(d.t, 0.0): d for d in captions}
    warm, _ = coarse_to_fine("green", Span(), describe, [d.t for d in captions], captions[-1].t + 1,
                             Search(strategy="coarse-to-fine"), known=known, clock=lambda: 0.0)
    assert warm.calls == 0 and warm.used > 900 and not any("the grid's" in w for w in warm.warnings)
    short, _ = search(colours(seconds=90, every=30))
    assert short.calls > 45 and not any("the grid's" in w for w in short.warnings)


def test_a_seconds_budget_that_runs_out_names_the_stage_as_the_docs_do():
    sparse, _ = search(colours(), budget_seconds=100.0)  # the sparse pass is 225 frames, 1 s each
    cut = [w for w in sparse.warnings if "ran out" in w]
    assert cut and "ran out in the sparse pass:" in cut[0] and "pass 0" not in cut[0]  # before: "in pass 0"
    refined, _ = search(colours(), budget_seconds=300.0)  # the sparse pass, then part of round 1
    cut = [w for w in refined.warnings if "ran out" in w]
    assert cut == [w for w in cut if f"ran out in round {refined.rounds}:" in w] and refined.rounds >= 1


def test_the_budget_help_says_a_budget_is_spent():
    """--budget read as a plain cap ("at most N frames"); a budget above what the search needs costs more than none
    (a 2-h replayed timeline: 554 calls without one, 1,087 with --budget 100000)."""
    import argparse

    from pipelines.search import add_search_arguments

    ap = argparse.ArgumentParser()
    add_search_arguments(ap, only="a video")
    text = " ".join(ap.format_help().split())
    assert "a budget is also spent" in text and "costs more than none" in text
