"""A grounding eval given no cache uses the default description cache only where a session would
(pipelines.session.implied_cache): a plug-in describer is keyed by its name and settings() alone, which another
plug-in can share, so it is cached only in a cache the user names (cache=, --cache, $VIDGROUND_CACHE)."""

from __future__ import annotations

import json
from pathlib import Path

from _helpers_eval import (default_description_cache, register_fakes, render_toy_videos, stored_descriptions,
                           write_toy_dataset)
from pipelines.executors import LocalExecutor
from pipelines.runs import RunConfig, run_eval


def _inputs(tmp_path: Path) -> dict:
    register_fakes()
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=1, duration=3.0)
    videos = render_toy_videos(tmp_path / "videos", ["vid0"])
    return dict(dataset="jsonl", dataset_path=str(ds), videos=str(videos), reasoner="fake-reasoner")


_default_cache = default_description_cache
_stored = stored_descriptions


def test_a_plugin_describer_is_not_cached_in_the_default_cache(tmp_path):
    base = _inputs(tmp_path)
    first = run_eval(RunConfig(**base, describer="fake"), tmp_path / "run1")
    second = run_eval(RunConfig(**base, describer="fake"), tmp_path / "run2")
    assert (first.describe_calls, second.describe_calls) == (3, 3)  # described again: nothing was kept
    assert second.describe_saved == 0
    assert _stored(_default_cache()) == 0
    assert json.loads((tmp_path / "run1" / "config.json").read_text())["cache"] == ""


def test_a_plugin_describer_is_cached_in_a_cache_the_user_names(tmp_path):
    base = _inputs(tmp_path)
    named = tmp_path / "mine.sqlite"
    run_eval(RunConfig(**base, describer="fake", cache=str(named)), tmp_path / "run1")
    second = run_eval(RunConfig(**base, describer="fake", cache=str(named)), tmp_path / "run2")
    assert (second.describe_calls, second.describe_saved) == (0, 3)
    assert _stored(named) == 3 and _stored(_default_cache()) == 0


def test_vidground_cache_is_a_named_cache_for_a_plugin_describer(tmp_path, monkeypatch):
    base = _inputs(tmp_path)
    named = tmp_path / "env.sqlite"
    monkeypatch.setenv("VIDGROUND_CACHE", str(named))
    run_eval(RunConfig(**base, describer="fake"), tmp_path / "run1")
    second = run_eval(RunConfig(**base, describer="fake"), tmp_path / "run2")
    assert (second.describe_calls, second.describe_saved) == (0, 3)
    assert _stored(named) == 3


def test_the_projects_own_describer_still_uses_the_default_cache(tmp_path):
    base = _inputs(tmp_path)
    run_eval(RunConfig(**base, describer="cv"), tmp_path / "run1")
    second = run_eval(RunConfig(**base, describer="cv"), tmp_path / "run2")
    assert (second.describe_calls, second.describe_saved) == (0, 3)
    assert _stored(_default_cache()) == 3


class _Recording(LocalExecutor):
    """Hands on what the driver decided, as RayExecutor does (it ray.put()s the config its workers use)."""

    def __init__(self) -> None:
        super().__init__(1)
        self.caches: list = []

    def run(self, tasks, config, **kw):
        self.caches.append(config.cache)
        return super().run(tasks, config, **kw)


def test_the_executor_is_handed_the_drivers_decision(tmp_path):
    base = _inputs(tmp_path)
    ex = _Recording()
    run_eval(RunConfig(**base, describer="fake"), tmp_path / "run1", executor=ex)
    run_eval(RunConfig(**base, describer="cv"), tmp_path / "run2", executor=ex)
    assert ex.caches == ["", str(_default_cache())]


def test_an_eval_that_keeps_no_descriptions_says_so_and_how_to_keep_them(tmp_path, caplog):
    """A plug-in describer's eval keeps no cache (above): a warning says so before the run, with the option that
    keeps them (before: only the docs said it, and an interrupted paid eval re-described its videos silently).
    The project's own describers, cached by default, and a named cache get no such warning; nor does the events
    eval's own describer."""
    import logging

    base = _inputs(tmp_path)

    def warned() -> list[str]:
        return [r.getMessage() for r in caplog.records if "kept only in a cache you name" in r.getMessage()]

    with caplog.at_level(logging.WARNING, logger="vidground"):
        run_eval(RunConfig(**base, describer="fake"), tmp_path / "run1")
        assert len(warned()) == 1 and "describer fake" in warned()[0] and "--cache FILE" in warned()[0]
        caplog.clear()
        run_eval(RunConfig(**base, describer="cv"), tmp_path / "run2")
        run_eval(RunConfig(**base, describer="fake", cache=str(tmp_path / "mine.sqlite")), tmp_path / "run3")
        assert warned() == []


def test_eval_cache_warns_for_an_object_describer_and_not_for_the_projects_own(caplog):
    """pipelines.session.eval_cache, which the events eval uses too (vidground eval activitynet-events)."""
    import logging

    from pipelines.session import eval_cache

    with caplog.at_level(logging.WARNING, logger="vidground"):
        assert eval_cache(object()) is None
        assert eval_cache("cv") == _default_cache()
    assert [m for m in caplog.messages if "kept only in a cache you name" in m] != []
    assert len(caplog.messages) == 1 and "describer object" in caplog.messages[0]
