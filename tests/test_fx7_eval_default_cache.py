"""A grounding eval given no cache uses the default description cache only where a session would
(pipelines.session.implied_cache): a plug-in describer is keyed by its name and settings() alone, which another
plug-in can share, so it is cached only in a cache the user names (cache=, --cache, $VIDGROUND_CACHE)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from _helpers_eval import register_fakes, render_toy_videos, write_toy_dataset
from frame_describer.cache import DescriptionCache
from pipelines.executors import LocalExecutor
from pipelines.runs import RunConfig, run_eval


def _inputs(tmp_path: Path) -> dict:
    register_fakes()
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=1, duration=3.0)
    videos = render_toy_videos(tmp_path / "videos", ["vid0"])
    return dict(dataset="jsonl", dataset_path=str(ds), videos=str(videos), reasoner="fake-reasoner")


def _default_cache() -> Path:
    return Path(os.environ["XDG_CACHE_HOME"]) / "vidground" / "descriptions.sqlite"


def _stored(path: Path) -> int:
    if not path.exists():
        return 0
    cache = DescriptionCache(path)
    try:
        return cache.count()
    finally:
        cache.close()


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
