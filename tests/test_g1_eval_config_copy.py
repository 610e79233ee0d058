"""run_eval resolves the default backends and cache into a copy of the caller's RunConfig (G1): one config reused for
a second eval (another folder, input mode or describer) resolves afresh, as it would have the first time, and the
settings the run used come back as ``RunSummary.config``."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from _helpers_eval import (default_description_cache, register_fakes, render_toy_videos, stored_descriptions,
                           write_toy_dataset)
from pipelines.runs import TOP_K_NOT_GIVEN, RunConfig, run_eval


_default_cache = default_description_cache
_stored = stored_descriptions


def _config(tmp_path: Path, **kw) -> RunConfig:
    register_fakes()
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=1, duration=3.0)
    videos = render_toy_videos(tmp_path / "videos", ["vid0"])
    return RunConfig(dataset="jsonl", dataset_path=str(ds), videos=str(videos), reasoner="fake-reasoner", **kw)


def test_the_callers_config_is_left_as_given_and_the_summary_has_what_the_run_used(tmp_path):
    config = _config(tmp_path, reasoner_options={"k": 1})
    given = copy.deepcopy(config)
    summary = run_eval(config, tmp_path / "run")
    assert config == given  # before: describer "cv", cache the default file, filled into the caller's object
    assert (config.describer, config.cache, config.top_k) == (None, None, TOP_K_NOT_GIVEN)
    used = summary.config
    assert used is not config and used.reasoner_options is not config.reasoner_options
    assert (used.describer, used.reasoner, used.cache, used.top_k) == ("cv", "fake-reasoner", str(_default_cache()), 10)
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (recorded["describer"], recorded["cache"]) == ("cv", str(_default_cache()))


def test_a_config_reused_with_a_plugin_describer_does_not_inherit_the_first_runs_default_cache(tmp_path):
    """The first run (the default describer) may use the default cache; a plug-in describer's may not (its entries
    are keyed by its name and settings alone): before, the reused config carried the first run's cache path into
    the second, and the plug-in's 3 descriptions were stored in the default cache."""
    config = _config(tmp_path)
    run_eval(config, tmp_path / "run1")
    stored = _stored(_default_cache())
    assert stored == 3
    config.describer = "fake"
    second = run_eval(config, tmp_path / "run2")
    assert _stored(_default_cache()) == stored  # before: 6
    assert json.loads((tmp_path / "run2" / "config.json").read_text())["cache"] == ""
    assert second.config.cache == ""


def test_a_config_reused_for_descriptions_is_not_refused_for_the_describer_the_first_run_filled_in(tmp_path):
    """Before, the first run wrote describer="cv" into the config, and the second (descriptions mode) was refused
    with '--describer has no effect with --descriptions'."""
    config = _config(tmp_path)
    first = run_eval(config, tmp_path / "run1")
    assert first.ran == 1
    config.videos, config.descriptions = None, str(tmp_path / "run1" / "transcripts")
    second = run_eval(config, tmp_path / "run2")
    assert (second.ran, second.failed, second.config.describer, second.config.cache) == (1, 0, None, None)
