"""RunConfig.top_k after the FX-C review: None keeps every interval again (36d1a96 made a new run keep 10), "not
given" is its own sentinel resolved by run_eval, and run_eval resolves it on a copy, so one config reused for
several folders does not carry one folder's K to the next."""

from __future__ import annotations

import copy
import json
import pickle

from pipelines.runs import DEFAULT_TOP_K, TOP_K_NOT_GIVEN, RunConfig, read_jsonl, resolve_top_k, run_eval

from _helpers_eval import write_toy_dataset
from test_f1_eval_reporting import _ManyReasoner  # noqa: F401  (registers many-reasoner: 12 intervals a query)


def _config(tmp_path, **kw) -> RunConfig:
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=1)
    return RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="many-reasoner", **kw)


def _kept(out) -> list[int]:
    return [len(r["intervals"]) for r in read_jsonl(out / "results.jsonl")]


def test_top_k_none_keeps_every_interval(tmp_path):
    config = _config(tmp_path, top_k=None)
    run_eval(config, tmp_path / "all")
    assert json.loads((tmp_path / "all" / "config.json").read_text())["top_k"] is None
    assert _kept(tmp_path / "all") == [12, 12]  # 36d1a96: [10, 10]
    assert config.top_k is None


def test_a_config_reused_for_several_folders_resolves_k_per_folder(tmp_path):
    run_eval(_config(tmp_path, top_k=5), tmp_path / "old")
    shared = _config(tmp_path)
    run_eval(shared, tmp_path / "old")  # resumes with the folder's 5
    assert shared.top_k is TOP_K_NOT_GIVEN
    run_eval(shared, tmp_path / "new")
    assert json.loads((tmp_path / "new" / "config.json").read_text())["top_k"] == DEFAULT_TOP_K  # before: 5
    assert _kept(tmp_path / "old") == [5, 5] and _kept(tmp_path / "new") == [DEFAULT_TOP_K] * 2


def test_resolve_top_k_returns_the_k_and_leaves_the_config(tmp_path):
    config = _config(tmp_path)
    assert resolve_top_k(config, tmp_path / "none") == (DEFAULT_TOP_K, "default")
    assert resolve_top_k(_config(tmp_path, top_k=None), tmp_path / "none") == (None, "--top-k")
    assert config.top_k is TOP_K_NOT_GIVEN
    # the sentinel survives the copies a run makes (a Ray worker's pickled config)
    assert pickle.loads(pickle.dumps(config)).top_k is TOP_K_NOT_GIVEN
    assert copy.deepcopy(config).top_k is TOP_K_NOT_GIVEN


def test_an_executor_run_directly_keeps_the_default_k(tmp_path):
    """An executor given a config that run_eval did not resolve (not given) keeps DEFAULT_TOP_K; None keeps all."""
    from pipelines.executors import LocalExecutor
    from pipelines.runs import VideoTask, select_queries

    for top_k, kept in ((TOP_K_NOT_GIVEN, DEFAULT_TOP_K), (None, 12), (3, 3)):
        cfg = _config(tmp_path, top_k=top_k)
        ds = select_queries(cfg)
        tasks = [VideoTask(v, str(tmp_path / "data" / "descriptions" / f"{v}.jsonl"), [q for q in ds if q.video == v])
                 for v in ds.videos]
        got = [rec for kind, rec in LocalExecutor(1).run(tasks, cfg) if kind == "result"]
        assert [len(r["intervals"]) for r in got] == [kept, kept]
