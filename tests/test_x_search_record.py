"""A coarse-to-fine result's ``settings["search"]`` keeps the search's settings and says what it did: its ``rounds``
(the most refinement rounds, a setting) was overwritten by the number of rounds done, so the record lost the value
the search ran with; that count is now ``rounds_done``."""

from __future__ import annotations

from _helpers_eval import FakeDescriber, register_fakes, render_toy_videos
from pipelines import Session
from pipelines.cli import _frames_line

register_fakes()


def test_the_record_keeps_the_rounds_setting_beside_the_rounds_done(tmp_path):
    video = render_toy_videos(tmp_path, ["v"], n_frames=40, fps=10.0) / "v.mp4"
    with Session(describer=FakeDescriber(), reasoner="fake-reasoner", cache=False, sampling={"fps": 10},
                 search={"strategy": "coarse-to-fine", "coarse": 8, "rounds": 50}) as s:
        result = s.ground(video, "frame at 2.0")
    search = result.settings["search"]
    assert search["rounds"] == 50  # the setting, as given (HEAD: the rounds done, 1 here)
    passes = {p for _, p, _ in search["frames"]}
    assert passes == set(range(search["rounds_done"] + 1)) and 0 < search["rounds_done"] < 50
    assert f"; {search['rounds_done']} refinement round(s)" in _frames_line(result.settings)
