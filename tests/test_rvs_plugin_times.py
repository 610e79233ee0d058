"""A plug-in describer that works its frames' times out as index/fps (a frame at 0.3 s of a 10-fps video sampled at
3 fps described at 0.333 s) worked before the plug-in checks and was refused by them (RV-S): a time within half the
frames' spacing of a frame given and not yet described is that frame's, moved to its time, with a warning."""

from __future__ import annotations

import logging

import pytest

from frame_describer.base import BaseDescriber
from pipelines import Session
from vidground.errors import PluginError
from vidground.types import FrameDescription


class ByIndex(BaseDescriber):
    name = "by-index"

    def __init__(self, fps: float, shift: float = 0.0):
        self.fps, self.shift = fps, shift

    def settings(self):
        return {"name": self.name, "mode": "agnostic", "fps": self.fps, "shift": self.shift}

    def describe(self, frames, *, query=None):
        for i, f in enumerate(frames):
            yield FrameDescription(t=i / self.fps + self.shift, text=f"frame {i}")


def test_times_worked_out_as_index_over_fps_are_their_frames(demo_video, caplog):
    with caplog.at_level(logging.WARNING), Session(describer=ByIndex(3.0), sampling={"fps": 3}, cache=None) as s:
        described = s.describe(demo_video[0])
    with Session(describer="cv", sampling={"fps": 3}, cache=None) as s:
        frames = [d.t for d in s.describe(demo_video[0]).descriptions]
    assert [d.t for d in described.descriptions] == frames  # each at its frame's time
    assert [d.text for d in described.descriptions][:3] == ["frame 0", "frame 1", "frame 2"]
    assert sum("taken as that frame's" in r.getMessage() for r in caplog.records) == 1  # once a stream


def test_a_time_past_the_frames_given_is_still_refused(demo_video):
    with Session(describer=ByIndex(3.0, shift=100.0), sampling={"fps": 3}, cache=None) as s:
        with pytest.raises(PluginError, match="past the last frame it was given"):
            s.describe(demo_video[0])
