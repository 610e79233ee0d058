"""A coarse-to-fine search's sparse pass takes keyframes within a quarter of its spacing (issue #19): fewer
frames decoded, every description at its frame's real time, the bookkeeping of which grid time each answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from _helpers_eval import FakeDescriber, register_fakes
from _helpers_video import render_gop_video, spy_decoding
from pipelines import ConfigurationError, Session
from pipelines.search import Search, search_options

register_fakes()
FPS, SECONDS, GOP = 5, 120, 25  # a keyframe every 5 s
SEARCH = {"strategy": "coarse-to-fine", "coarse": 8, "regions": 1}  # the sparse pass: a frame every 8 s


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return render_gop_video(tmp_path_factory.mktemp("search_keys") / "gop5s.mp4", n_frames=FPS * SECONDS, fps=FPS,
                            gop=GOP)


class Recording(FakeDescriber):
    """Remembers the real time of every frame it describes."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def describe(self, frames, *, query=None):
        for d in super().describe(frames, query=query):
            self.times.append(d.t)
            yield d


def sparse_pass(video: Path, monkeypatch, **settings):
    decoded = spy_decoding(monkeypatch)
    describer = Recording()
    with Session(describer=describer, reasoner="fake-reasoner", cache=False,
                 search={**SEARCH, "rounds": 0, **settings}) as s:
        result = s.ground(video, "frame at 60.0")
    return result, describer, sum(n for _, n in decoded)


def test_the_sparse_pass_takes_keyframes_and_decodes_only_them(video, monkeypatch):
    result, describer, decoded = sparse_pass(video, monkeypatch)
    search = result.settings["search"]
    grid_times = [t for t, p, _ in search["frames"]]
    assert grid_times == [4.0 + 8 * k for k in range(15)] and {p for _, p, _ in search["frames"]} == {0}
    # each grid time gets the keyframe within 2 s of it (a quarter of 8 s): 4 -> 5, 12 -> 10, 20, 28 -> 30, ...
    keys = [GOP / FPS * round(t / (GOP / FPS)) for t in grid_times]
    assert describer.times == pytest.approx(keys)  # their real times
    assert describer.calls == search["calls"] == 15
    for (t, _, why), key in zip(search["frames"], keys):
        assert why == "coarse" if t == key else why == f"coarse (answered by the frame at {key:.2f}s)"
    assert decoded <= 2 * 15  # a keyframe, and at most one its decoder reads ahead, per frame

    _, exact, decoded_exact = sparse_pass(video, monkeypatch, keyframe_tolerance=0.0)
    assert exact.times == pytest.approx(grid_times)  # the frames at the grid times
    assert decoded_exact > 5 * decoded


def test_refining_after_keyframes_asks_exact_frames_and_none_twice(video, tmp_path):
    cache = tmp_path / "c.sqlite"
    describer = Recording()
    with Session(describer=describer, reasoner="fake-reasoner", cache=cache, search=SEARCH) as s:
        result = s.ground(video, "frame at 10.0")
        search = result.settings["search"]
        times = sorted(describer.times)
        assert len(times) == len(set(times)) == describer.calls == search["calls"]  # no frame described twice
        refined = [t for t, p, _ in search["frames"] if p > 0]
        assert refined and all(t == round(t) for t in refined)  # exact frames on the 1-s grid
        assert set(refined) <= set(times)
        assert result.best.start <= 10.0 <= result.best.end
        # the sparse pass's keyframes at 5 s (for 4 s) and 10 s (for 12 s) lie on the grid the refine passes
        # fill around 10 s: they are not asked for again; the grid times they answered from 1-2 s away are
        # (each described once, exactly: a frame shown only at 12 s is not lost to the keyframe at 10 s)
        assert not {5.0, 10.0} & set(refined) and {5.0, 10.0} <= set(times) and {6.0, 8.0, 9.0, 11.0} <= set(refined)
        assert {4.0, 12.0} <= set(refined) and times.count(12.0) == 1
        # another query of the session: its sparse pass is answered by the keyframes already described
        second = s.ground(video, "frame at 30.0").settings["search"]
        assert second["known"] >= sum(1 for _, p, _ in second["frames"] if p == 0) > 0
    later = Recording()
    with Session(describer=later, reasoner="fake-reasoner", cache=cache, search=SEARCH) as s:
        again = s.ground(video, "frame at 10.0")  # a later run: the cache keys the keyframes by their real times
    assert again.settings["search"]["calls"] == later.calls == 0
    assert again.settings["search"]["cached"] == search["calls"] and again.intervals == result.intervals


def test_the_keyframe_tolerance_is_checked_and_reaches_the_command_line():
    assert Search().keyframe_tolerance == 0.25
    for bad in (-0.1, 0.5, float("nan"), "a quarter"):
        with pytest.raises(ConfigurationError, match="keyframe_tolerance"):
            Search.of("coarse-to-fine", keyframe_tolerance=bad)

    class Args:
        strategy, budget, budget_seconds, keyframe_tolerance = "coarse-to-fine", None, None, 0.0

    assert search_options(Args()) == {"strategy": "coarse-to-fine", "keyframe_tolerance": 0.0}
    Args.strategy = "uniform"
    with pytest.raises(ConfigurationError, match="--keyframe-tolerance apply to --strategy coarse-to-fine"):
        search_options(Args())


def test_the_command_line_flag(video, capsys):
    import json

    from pipelines.cli import main

    common = ["ground", str(video), "frame at 10.0", "--describer", "fake", "--reasoner", "fake-reasoner",
              "--strategy", "coarse-to-fine", "--json"]
    assert main([*common, "--keyframe-tolerance", "0"]) == 0
    search = json.loads(capsys.readouterr().out)["settings"]["search"]
    assert search["keyframe_tolerance"] == 0.0 and all(why == "coarse" for _, p, why in search["frames"] if p == 0)
    assert main([*common, "--keyframe-tolerance", "0.7"]) == 1
    assert "keyframe_tolerance" in capsys.readouterr().err
