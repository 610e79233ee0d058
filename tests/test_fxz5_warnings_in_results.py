"""Warnings a Python or --json user was not told (they went to the log only): a sampling rate above the video's
reaches the result's warnings; the rate cap of a search's grid and the replay describer's captions ending before
the video are handed over (``rate_used(notes=)``, ``ReplayDescriber.warnings``) for a session to add them."""

from __future__ import annotations

import json
import logging

from frame_describer.rates import rate_used
from frame_describer.replay import ReplayDescriber, timeline_frames
from pipelines import Session
from vidground.types import FrameDescription


def test_a_rate_above_the_videos_reaches_the_results_warnings_once(demo_video, caplog):
    from _helpers_eval import FakeDescriber, FakeReasoner

    with caplog.at_level(logging.WARNING), Session(describer=FakeDescriber(), reasoner=FakeReasoner(),
                                                   sampling={"fps": 100}, cache=None) as s:
        result = s.ground(demo_video[0], "frame at 18.0")
    said = [w for w in result.warnings if "fps=100 asks for more frames than the video has (10 fps)" in w]
    assert len(said) == 1, result.warnings  # before: in the log only
    assert said[0] in json.loads(result.model_dump_json())["warnings"]
    assert [r.getMessage() for r in caplog.records if "asks for more frames" in r.getMessage()] == said  # as before


def test_a_search_grids_capped_rate_is_handed_over_when_asked(caplog):
    notes: list[str] = []
    with caplog.at_level(logging.WARNING, logger="frame_describer.rates"):
        assert rate_used(4.0, 1.0, warn="/v/long30m.mp4", notes=notes) == 1.0
        assert rate_used(1.0, 1.0, warn="/v/long30m.mp4", notes=notes) == 1.0  # not above: nothing to say
    assert notes == ["long30m.mp4: fps=4 asks for more frames than the video has (1 fps): sampled at the video's "
                     "rate, every frame once at most"]
    assert [r.getMessage() for r in caplog.records] == notes  # logged too, as before


def test_the_replay_says_its_captions_ended_in_its_warnings(caplog):
    replay = ReplayDescriber([FrameDescription(t=float(t), text=f"clip {t}") for t in range(10)], duration=10.0)
    assert list(replay.describe(timeline_frames([1.0, 2.0]))) and replay.warnings == []
    with caplog.at_level(logging.WARNING):
        got = list(replay.describe(timeline_frames([9.0, 12.0, 14.0])))
    assert [d.t for d in got] == [9.0] and replay.past_end == 2
    assert replay.warnings == ["<descriptions>: the captions end at 10.0 s, and the video goes on (a frame at 12.0 "
                               "s): frames past their end get no description; captions of another video, or of a "
                               "part of it?"]
    assert [r.getMessage() for r in caplog.records] == replay.warnings  # logged once, as before


def test_a_searchs_capped_rate_and_a_replays_ended_captions_reach_the_results_warnings(demo_video):
    """The session's part (FX-Z5 handed it over): both in ``result.warnings`` on the search path, and the replay's
    on the dense path, where they were in the log only."""
    from _helpers_eval import FakeDescriber, FakeReasoner

    video = demo_video[0]
    with Session(describer=FakeDescriber(), reasoner=FakeReasoner(), sampling={"fps": 100}, cache=None,
                 search={"strategy": "coarse-to-fine"}) as s:
        result = s.ground(video, "frame at 18.0")
    assert any("fps=100 asks for more frames than the video has (10 fps)" in w for w in result.warnings), \
        result.warnings
    short = ReplayDescriber([FrameDescription(t=float(t), text=f"clip {t}") for t in range(10)], duration=10.0)
    with Session(describer=short, reasoner=FakeReasoner(), cache=None) as s:
        result = s.ground(video, "frame at 18.0")
    ended = [w for w in result.warnings if "the captions end at 10.0 s" in w]
    assert len(ended) == 1, result.warnings
    assert ended[0] in json.loads(result.model_dump_json())["warnings"]
