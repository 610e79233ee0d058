"""A run folder started before a default changed is read with the value it ran with: resuming it under the new
default is refused (naming the setting and how to keep the old value) instead of mixing the two behaviours."""

from __future__ import annotations

import json

import pytest

from pipelines.eval_cli import parse_option
from pipelines.runs import DEFAULTS_VERSION, RunConfig, _check_resume
from vidground.errors import ConfigurationError


def _old_folder(tmp_path, config: RunConfig, **written):
    """config.json as a run written before the defaults' generation was recorded: no ``defaults`` key."""
    out = tmp_path / "run"
    out.mkdir()
    data = config.to_json() | written
    data.pop("defaults")
    (out / "config.json").write_text(json.dumps(data), encoding="utf-8")
    return out


def _config(tmp_path, **kw) -> RunConfig:
    return RunConfig(dataset="jsonl", dataset_path="ds.jsonl", videos=str(tmp_path), **kw)


@pytest.mark.parametrize("reasoner, option, old_value", [("embedding", "polarity", 0),
                                                         ("offline", "polarity", 0),
                                                         ("openai:gpt-4o", "context_tokens", None)])
def test_an_old_folder_is_refused_under_a_changed_reasoner_default_and_resumes_with_the_old_value(
        tmp_path, reasoner, option, old_value):
    out = _old_folder(tmp_path, _config(tmp_path, reasoner=reasoner), reasoner_options={})
    with pytest.raises(ConfigurationError, match=rf"reasoner_options\.{option}.*changed since this run started"):
        _check_resume(out, _config(tmp_path, reasoner=reasoner))
    _check_resume(out, _config(tmp_path, reasoner=reasoner, reasoner_options={option: old_value}))


def test_context_tokens_null_parses_to_none_the_old_default():
    assert parse_option("context_tokens=null") == ("context_tokens", None)


def test_an_old_coarse_to_fine_folder_ran_without_keyframe_tolerance(tmp_path):
    out = _old_folder(tmp_path, _config(tmp_path, reasoner="vtggpt"), search={"strategy": "coarse-to-fine"})
    with pytest.raises(ConfigurationError, match=r"keyframe_tolerance': 0\.0\}.*0\.25.*--keyframe-tolerance 0\b"):
        _check_resume(out, _config(tmp_path, reasoner="vtggpt", search={"strategy": "coarse-to-fine"}))
    _check_resume(out, _config(tmp_path, reasoner="vtggpt",
                               search={"strategy": "coarse-to-fine", "keyframe_tolerance": 0.0}))


def test_a_folder_written_now_records_its_defaults_and_resumes_as_before(tmp_path):
    config = _config(tmp_path, search={"strategy": "coarse-to-fine"}, reasoner="embedding")
    assert config.to_json()["defaults"] == DEFAULTS_VERSION
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps(config.to_json()), encoding="utf-8")
    _check_resume(out, config)
    with pytest.raises(ConfigurationError, match="keyframe_tolerance") as caught:  # an explicit change: no hint
        _check_resume(out, _config(tmp_path, search={"strategy": "coarse-to-fine", "keyframe_tolerance": 0.0},
                                   reasoner="embedding"))
    assert "changed since" not in str(caught.value)


def test_settings_a_changed_default_does_not_touch_still_resume(tmp_path):
    out = _old_folder(tmp_path, _config(tmp_path, reasoner="vtggpt"), reasoner_options={})
    _check_resume(out, _config(tmp_path, reasoner="vtggpt"))  # uniform sampling, a reasoner without the options
