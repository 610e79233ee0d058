"""RunConfig.top_k after the FX-D review: only a whole number of at least 1, None (every interval) or "not given"
is a K; 2.5, True and "3" are refused before the run folder is written (they passed the check, then failed every
query or the run). The default K and the "not given" marker live in pipelines.topk, which runs and executors
both import, and the marker stays one object through pickling."""

from __future__ import annotations

import pickle

import pytest

from pipelines import executors, runs, topk
from pipelines.runs import RunConfig, run_eval
from vidground.errors import ConfigurationError

from _helpers_eval import write_toy_dataset
from test_f1_eval_reporting import _ManyReasoner  # noqa: F401  (registers many-reasoner: 12 intervals a query)


def _config(tmp_path, **kw) -> RunConfig:
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=1)
    return RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="many-reasoner", **kw)


@pytest.mark.parametrize("top_k", [2.5, True, False, "3", 0, -1, 3.0])
def test_a_top_k_that_is_not_a_whole_number_of_at_least_one_is_refused_before_the_run(tmp_path, top_k):
    out = tmp_path / "out"
    with pytest.raises(ConfigurationError, match="top_k"):
        run_eval(_config(tmp_path, top_k=top_k), out)
    assert not out.exists()  # nothing written: no run folder with every query failed


@pytest.mark.parametrize("top_k", [1, 3, None, topk.TOP_K_NOT_GIVEN])
def test_a_whole_number_none_or_not_given_passes_the_check(tmp_path, top_k):
    _config(tmp_path, top_k=top_k).check()


def test_the_default_and_the_marker_are_one_module_s_and_survive_pickling():
    assert runs.TOP_K_NOT_GIVEN is topk.TOP_K_NOT_GIVEN and runs.DEFAULT_TOP_K == topk.DEFAULT_TOP_K
    assert pickle.loads(pickle.dumps(topk.TOP_K_NOT_GIVEN)) is topk.TOP_K_NOT_GIVEN
    assert type(topk.TOP_K_NOT_GIVEN)() is topk.TOP_K_NOT_GIVEN
    assert topk.kept_top_k(topk.TOP_K_NOT_GIVEN) == topk.DEFAULT_TOP_K
    assert topk.kept_top_k(None) is None and topk.kept_top_k(4) == 4
    assert executors.kept_top_k is topk.kept_top_k  # executors read the K through it, not an attribute of the marker
