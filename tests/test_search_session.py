"""Coarse-to-fine describing and skip-unchanged through a Session, on rendered videos."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from _helpers_eval import FakeDescriber, register_fakes
from pipelines import ConfigurationError, Session
from frame_describer.skip import SkipUnchanged
from vidground.types import Interval

register_fakes()


@pytest.fixture(scope="module")
def static_video(tmp_path_factory) -> Path:
    """20 s at 5 fps: grey for 8 s, white for 4 s, grey again for 8 s (long static stretches), with
    faint noise so that no two frames are byte-identical."""
    from frame_describer.synthetic import _write

    rng = np.random.default_rng(0)

    def frame(i: int) -> np.ndarray:
        level = 230 if 40 <= i < 60 else 60
        return np.clip(level + rng.integers(-2, 3, (48, 64, 3)), 0, 255).astype(np.uint8)

    path = tmp_path_factory.mktemp("static") / "static.mp4"
    _write(path, frame, [i / 5 for i in range(100)], fps=5, codec=None, rotation=None)
    return path


@pytest.mark.slow
def test_coarse_to_fine_on_the_demo_video_describes_fewer_frames_and_finds_the_event(demo_video, tmp_path):
    path, events = demo_video
    dark = next(e for e in events if e.name == "lights off")
    cache = tmp_path / "c.sqlite"
    with Session(describer="cv", cache=cache, search={"strategy": "coarse-to-fine"}) as s:
        first = s.ground(path, dark.query)
        search = first.settings["search"]
        frames = search["frames"]
        assert search["strategy"] == "coarse-to-fine" and search["calls"] == len(frames) < first.duration  # 1 fps grid
        assert {p for _, p, _ in frames} == set(range(search["rounds_done"] + 1))
        assert all(why == "coarse" for _, p, why in frames if p == 0)
        assert first.best.iou(Interval(start=dark.start, end=dark.end)) >= 0.5
        # another query of the session: cv compares each frame with the previous one it saw, and a search's rounds
        # depend on the query, so neither the session's frames of an earlier query nor the cache answer it
        second = s.ground(path, events[0].query)
        assert second.settings["search"]["known"] == 0 == second.settings["search"]["cached"]
    with Session(describer="cv", cache=cache, search="coarse-to-fine") as s:  # a later run: described again, alike
        again = s.ground(path, dark.query)
        assert again.settings["search"]["calls"] == search["calls"] and again.settings["search"]["cached"] == 0
        assert again.intervals == first.intervals


def test_session_search_settings_are_checked(static_video):
    with pytest.raises(ConfigurationError, match="unknown strategy"):
        Session(search="everything")
    with pytest.raises(ConfigurationError, match="skip_unchanged"):
        Session(skip_unchanged=-1)
    with Session(describer=FakeDescriber(mode="aware"), reasoner="fake-reasoner", search="coarse-to-fine") as s:
        with pytest.raises(ConfigurationError, match="query-aware"):
            s.ground(static_video, "frame at 1.0")
        with pytest.raises(ConfigurationError, match="clip_seconds"):
            s.ground(static_video, "frame at 1.0", clip_seconds=2)


def test_coarse_to_fine_with_a_fake_describer_counts_every_call(static_video):
    describer = FakeDescriber()
    with Session(describer=describer, reasoner="fake-reasoner", search={"strategy": "coarse-to-fine", "budget": 8},
                 cache=False) as s:
        result = s.ground(static_video, "frame at 12.0")
    search = result.settings["search"]
    assert describer.calls == search["calls"] <= 8
    assert result.usage["describe"].requests == search["calls"]
    assert result.video == str(static_video) and result.duration == pytest.approx(20.0, abs=0.3)


def test_skip_unchanged_sends_only_the_frames_that_changed(static_video):
    describer = FakeDescriber()
    with Session(describer=describer, reasoner="fake-reasoner", skip_unchanged=3.0, cache=False) as s:
        described = s.describe(static_video)
    assert len(described.descriptions) == 20  # 1 fps
    reused = [d for d in described.descriptions if getattr(d, "reused_from", None) is not None]
    assert describer.calls == 20 - len(reused) == 3  # the first grey, the first white, the grey after it
    sent = [d.t for d in described.descriptions if getattr(d, "reused_from", None) is None]
    assert sent == pytest.approx([0.0, 8.0, 12.0], abs=0.25)
    assert described.usage.requests == 3


def test_skip_unchanged_records_the_frames_sent_and_reused(static_video):
    """ground --skip-unchanged recorded neither its threshold nor how many frames it reused (the search path
    only as settings["search"]["skipped"])."""
    for search in (None, "coarse-to-fine"):
        describer = FakeDescriber()
        with Session(describer=describer, reasoner="fake-reasoner", skip_unchanged=3.0, cache=False,
                     search=search) as s:
            result = s.ground(static_video, "frame at 12.0")
        record = result.settings["skip_unchanged"]
        assert record["threshold"] == 3.0 and record["sent"] == describer.calls == result.usage["describe"].requests
        if search is None:
            assert (record["sent"], record["reused"]) == (3, 17)  # 20 frames at 1 fps
        else:
            assert record["reused"] == result.settings["search"]["skipped"] > 0
    with Session(describer=FakeDescriber(), reasoner="fake-reasoner", cache=False) as s:
        assert "skip_unchanged" not in s.ground(static_video, "frame at 12.0").settings


def test_skip_unchanged_lies_outside_the_cache(static_video, tmp_path):
    cache = tmp_path / "c.sqlite"
    with Session(describer=FakeDescriber(), reasoner="fake-reasoner", skip_unchanged=3.0, cache=cache) as s:
        s.describe(static_video)
    describer = FakeDescriber()
    with Session(describer=describer, reasoner="fake-reasoner", cache=cache) as s:  # no skipping now
        described = s.describe(static_video)
    assert describer.calls == 17  # the 3 frames described before come from the cache, the rest are new
    assert not any(getattr(d, "reused_from", None) is not None for d in described.descriptions)


def test_skip_unchanged_wraps_any_describer():
    assert SkipUnchanged(FakeDescriber(), 1.5).name == "fake"


def test_the_cli_refuses_a_search_without_a_video(tmp_path, capsys):
    from pipelines.cli import main

    desc = tmp_path / "d.jsonl"
    desc.write_text('{"t": 0.5, "text": "a dog"}\n{"t": 1.5, "text": "a cat"}\n')
    assert main(["ground", "--descriptions", str(desc), "--strategy", "coarse-to-fine", "a dog"]) == 1
    assert "give a video, not --descriptions" in capsys.readouterr().err
    assert main(["ground", "--descriptions", str(desc), "--budget", "5", "a dog"]) == 1
    assert "apply to --strategy coarse-to-fine" in capsys.readouterr().err
    assert main(["ground", "--descriptions", str(desc), "--skip-unchanged", "2", "a dog"]) == 1
    assert "give a video" in capsys.readouterr().err


def test_the_cli_grounds_coarse_to_fine(static_video, capsys):
    import json

    from pipelines.cli import main

    assert main(["ground", str(static_video), "frame at 12.0", "--describer", "fake", "--reasoner", "fake-reasoner",
                 "--strategy", "coarse-to-fine", "--budget", "6", "--skip-unchanged", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["settings"]["search"]["strategy"] == "coarse-to-fine"
    assert 0 < result["settings"]["search"]["calls"] <= 6


def test_the_cli_table_says_what_a_search_or_skipping_described(static_video, tmp_path, capsys):
    """The table printed no word of the search: a user could not tell that 6 of 20 frames were described, nor
    that a rerun took them from the cache."""
    from pipelines.cli import main

    cache = tmp_path / "c.sqlite"
    argv = ["ground", str(static_video), "frame at 12.0", "--describer", "fake", "--reasoner", "fake-reasoner",
            "--strategy", "coarse-to-fine", "--budget", "6", "--cache", str(cache)]
    assert main(argv) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("frames:"))
    first = re.fullmatch(r"frames: +coarse-to-fine: (\d) describer call\(s\) \(budget 6 frame\(s\), \1 used\); "
                         r"(\d) refinement round\(s\), stopped: (.+)", line)
    assert first and 0 < int(first[1]) <= 6, line
    assert main(argv) == 0  # the same query again: the frames described come from the cache, free
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("frames:"))
    assert f": 0 describer call(s), {first[1]} frame(s) from the cache (budget 6 frame(s), {first[1]} used);" in line, line
    assert main(["ground", str(static_video), "frame at 12.0", "--describer", "fake", "--reasoner", "fake-reasoner",
                 "--skip-unchanged", "3"]) == 0
    out = capsys.readouterr().out
    assert "frames:    skip-unchanged 3: 3 sent, 17 reused" in out.splitlines(), out
    assert main(["ground", str(static_video), "frame at 12.0", "--describer", "fake", "--reasoner", "fake-reasoner"]) == 0
    out = capsys.readouterr().out  # a plain run: every frame of the grid (a plug-in: no default cache)
    assert [x for x in out.splitlines() if x.startswith("frames:")] == [
        "frames:    20 sampled, 0 from the description cache (20 described now)"], out


def test_eval_settings_carry_the_search_and_are_checked(tmp_path):
    from pipelines.runs import RunConfig

    config = RunConfig(dataset="charades-sta", videos=str(tmp_path), search={"strategy": "coarse-to-fine", "budget": 50},
                       skip_unchanged=2.0)
    config.check()
    assert config.to_json()["search"] == {"strategy": "coarse-to-fine", "budget": 50}
    with pytest.raises(ConfigurationError, match="need --videos"):
        RunConfig(dataset="charades-sta", descriptions=str(tmp_path), search={"strategy": "coarse-to-fine"}).check()
    with pytest.raises(ConfigurationError, match="budget"):
        RunConfig(dataset="charades-sta", videos=str(tmp_path), search={"strategy": "coarse-to-fine", "budget": 0}).check()
    with pytest.raises(ConfigurationError, match="skip_unchanged"):
        RunConfig(dataset="charades-sta", videos=str(tmp_path), skip_unchanged=-2.0).check()


def test_eval_runs_coarse_to_fine_and_records_it(tmp_path):
    import json

    from _helpers_eval import render_toy_videos, write_toy_dataset
    from pipelines.executors import LocalExecutor
    from pipelines.runs import RunConfig, run_eval

    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=2, duration=3.0)
    folder = render_toy_videos(tmp_path / "videos", ["vid0", "vid1"])
    config = RunConfig(dataset="jsonl", dataset_path=str(ds), videos=str(folder), describer="fake",
                       reasoner="fake-reasoner", cache=str(tmp_path / "c.sqlite"), fps=10.0,
                       search={"strategy": "coarse-to-fine", "budget": 12})
    summary = run_eval(config, tmp_path / "run", executor=LocalExecutor(1))
    assert summary.failed == 0 and summary.ran == 4
    records = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    searches = [r["search"] for r in records if "search" in r]
    assert len(searches) == 4 and all(s["strategy"] == "coarse-to-fine" and s["calls"] <= 12 for s in searches)
    # per query, what it described was paid once: later queries of a video reuse the frames earlier ones described
    assert all(r["usage"]["describe"]["requests"] == s["calls"] for r, s in zip(records, searches) if s["calls"])
    assert any(s["known"] > 0 for s in searches)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["search"]["budget"] == 12


@pytest.mark.slow
def test_a_search_or_skipping_does_not_poison_the_cache_of_a_describer_that_sees_the_previous_frame(demo_video, tmp_path):
    """`cv` describes each frame against the previous one it saw: what a coarse-to-fine pass or skip-unchanged
    wrote (the previous frame seconds away) was served to a later uniform run from the same cache (9 of 36
    descriptions differed from a run without the cache)."""
    path, _ = demo_video
    cache = tmp_path / "c.sqlite"
    with Session(cache=cache, search="coarse-to-fine") as s:
        s.ground(path, "the camera pans quickly to the side")
    with Session(cache=cache, skip_unchanged=2.0) as s:
        s.describe(path)
    with Session(cache=cache) as s:
        cached = [d.text for d in s.describe(path).descriptions]
    with Session(cache=False) as s:
        fresh = [d.text for d in s.describe(path).descriptions]
    assert cached == fresh


def test_motion_and_a_coarse_to_fine_search_are_refused_together(tmp_path):
    from pipelines.runs import RunConfig

    with pytest.raises(ConfigurationError, match="--motion.*coarse-to-fine cannot be combined|coarse-to-fine"):
        Session(motion=True, search="coarse-to-fine")
    with pytest.raises(ConfigurationError, match="--motion and --strategy coarse-to-fine"):
        RunConfig(dataset="jsonl", videos=str(tmp_path), motion=True, search={"strategy": "coarse-to-fine"}).check()


def test_answer_and_events_describe_the_whole_grid_and_say_the_search_is_for_ground(static_video):
    describer = FakeDescriber()
    with Session(describer=describer, reasoner="embedding", search="coarse-to-fine", cache=False) as s:
        answer = s.answer(static_video, "what colour is the frame?", ["grey", "white"])
        grid = describer.calls  # every frame of the 1-fps grid
        events = s.events(static_video)
        assert describer.calls == grid  # described once for both, nothing searched
    for result, what in ((answer, "answer()"), (events, "events()")):
        assert any(w.startswith(f"{what} described every frame") and "ground() only" in w for w in result.warnings)
    uniform = FakeDescriber()
    with Session(describer=uniform, reasoner="embedding", cache=False) as s:  # uniform: the same frames, no note
        assert not any("ground() only" in w for w in s.answer(static_video, "what colour?", ["grey", "white"]).warnings)
    assert uniform.calls == grid


def test_the_one_call_api_searches_and_skips_as_a_session_does(static_video, tmp_path):
    """README: coarse-to-fine and skip-unchanged 'work from Python'; ``ground()`` and ``describe()`` had no
    argument for them (a TypeError), only ``Session`` did."""
    from pipelines import describe, ground

    describer = FakeDescriber()
    result = ground(static_video, "frame at 12.0", describer=describer, reasoner="fake-reasoner", cache=False,
                    search={"strategy": "coarse-to-fine", "budget": 8})
    search = result.settings["search"]
    assert search["strategy"] == "coarse-to-fine" and describer.calls == search["calls"] <= 8
    assert result.usage["describe"].requests == describer.calls
    describer = FakeDescriber()
    result = ground(static_video, "frame at 12.0", describer=describer, reasoner="fake-reasoner", cache=False,
                    skip_unchanged=3.0)
    assert result.settings["skip_unchanged"]["sent"] == describer.calls == 3  # 20 frames at 1 fps, 3 changed
    described = describe(static_video, describer=FakeDescriber(), cache=False, skip_unchanged=3.0)
    assert sum(getattr(d, "reused_from", None) is not None for d in described.descriptions) == 17
    with pytest.raises(ConfigurationError, match="unknown strategy"):
        ground(static_video, "frame at 12.0", describer=FakeDescriber(), reasoner="fake-reasoner", search="all")
    lines = tmp_path / "d.jsonl"
    lines.write_text('{"t": 0.0, "text": "grey"}\n{"t": 1.0, "text": "white"}\n')
    for option in ({"search": "coarse-to-fine"}, {"skip_unchanged": 2.0}):  # they choose a video's frames
        with pytest.raises(ConfigurationError, match="give a video"):
            ground(descriptions=lines, query="white", **option)


def test_describe_says_what_its_seconds_are_and_skip_unchanged_what_it_sent(static_video, tmp_path, capsys):
    """'wrote 20 descriptions to d.jsonl (20.0 s of video, 8.0 s)' did not say the second figure is the time taken,
    and with --skip-unchanged (ground) the log said 'described 20 frames' where 3 were sent."""
    import logging

    from pipelines.cli import main

    assert main(["describe", str(static_video), "--describer", "fake", "-o", str(tmp_path / "d.jsonl")]) == 0
    assert re.search(r"\(20\.0 s of video, described in [\d.]+ s", capsys.readouterr().err)
    seen: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("vidground")
    logger.addHandler(handler)
    try:  # the command line's own handler set-up decides what reaches the root logger: listen on vidground's
        assert main(["ground", str(static_video), "frame at 12.0", "--describer", "fake", "--reasoner",
                     "fake-reasoner", "--skip-unchanged", "3", "--verbose"]) == 0
    finally:
        logger.removeHandler(handler)
    said = [m for m in seen if "described 20 frames" in m]
    assert said and "(3 sent, 17 unchanged" in said[0], said


def test_a_budget_without_the_coarse_to_fine_strategy_is_refused_not_ignored(static_video, tmp_path):
    """``ground(video, q, search={"budget": 6})`` described and paid for every frame of the grid: the budget of a
    uniform run was silently dropped (the command line refuses ``--budget`` without ``--strategy``)."""
    from pipelines import ground
    from pipelines.search import Search

    for search in ({"budget": 6}, {"budget_seconds": 0.5}, {"strategy": "uniform", "budget": 6}):
        describer = FakeDescriber()
        with pytest.raises(ConfigurationError, match="apply|applies to strategy 'coarse-to-fine'"):
            ground(static_video, "frame at 12.0", describer=describer, reasoner="fake-reasoner", cache=False,
                   search=search)
        assert describer.calls == 0
        with pytest.raises(ConfigurationError):
            Session(search=search)
        with pytest.raises(ValueError):
            Search(**search)
    lines = tmp_path / "d.jsonl"  # a uniform search with descriptions chooses nothing: accepted, as on the CLI
    lines.write_text('{"t": 0.0, "text": "grey"}\n{"t": 1.0, "text": "white"}\n')
    assert ground(descriptions=lines, query="white", reasoner="fake-reasoner", search="uniform").intervals is not None
