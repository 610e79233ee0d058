"""The tests never write the user's description cache. Without ``cache=``, run_eval and ``vidground eval`` use
``$VIDGROUND_CACHE``, else ``$XDG_CACHE_HOME/vidground/descriptions.sqlite`` (``~/.cache`` by default): a test
that left the cache out added its rows to ~/.cache/vidground/descriptions.sqlite. conftest.py gives each test a
cache folder of its own, and keeps the model files the tests read where the user's cache has them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SEEN: set[Path] = set()


def _real_caches(user_cache: Path) -> set[Path]:
    return {user_cache.resolve(), (Path.home() / ".cache").resolve()}


@pytest.mark.parametrize("nth", [1, 2])
def test_a_tests_default_description_cache_is_its_own(nth, user_cache, tmp_path_factory):
    """Under the pytest folder, not the user's cache, and another path than the other test's (run both)."""
    from pipelines.runs import default_cache_path

    path = default_cache_path().resolve()
    for real in _real_caches(user_cache):
        assert not path.is_relative_to(real), f"a test's description cache {path} is in the user's cache {real}"
    assert path.is_relative_to(tmp_path_factory.getbasetemp().resolve())
    assert path not in SEEN
    SEEN.add(path)


def test_run_eval_without_a_cache_stores_the_frames_in_the_tests_own(tmp_path):
    from _helpers_eval import register_fakes, render_toy_videos, write_toy_dataset
    from frame_describer.cache import DescriptionCache
    from pipelines.runs import RunConfig, default_cache_path, run_eval

    register_fakes()
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=1, duration=3.0)
    videos = render_toy_videos(tmp_path / "videos", ["vid0"])
    summary = run_eval(RunConfig(dataset="jsonl", dataset_path=str(ds), videos=str(videos), describer="cv",
                                 reasoner="fake-reasoner"), tmp_path / "run")  # a plug-in gets no default cache
    assert summary.describe_calls == 3  # 3 s at 1 frame a second
    path = Path(os.environ["XDG_CACHE_HOME"]) / "vidground" / "descriptions.sqlite"
    assert default_cache_path() == path
    cache = DescriptionCache(path)
    try:
        assert cache.count() == 3
    finally:
        cache.close()


def test_the_model_files_are_still_read_from_the_users_cache(tmp_path_factory):
    """The GGUFs vidground.models assembles stay where they are (pinned by $VIDGROUND_MODELS), not rebuilt in
    each test's folder."""
    from vidground.models import models_dir

    assert models_dir() == Path(os.environ["VIDGROUND_MODELS"]).expanduser()
    assert not models_dir().resolve().is_relative_to(tmp_path_factory.getbasetemp().resolve())
