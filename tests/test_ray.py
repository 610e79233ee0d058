"""The Ray executor gives the same results as the local one (a local Ray started by the test)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.runs import RunConfig, latest_results, run_eval

from _helpers_eval import register_fakes, render_toy_videos, write_toy_dataset

ray = pytest.importorskip("ray", reason="the Ray executor needs the 'ray' extra: pip install 'vidground[ray]'")
register_fakes()
HERE = Path(__file__).resolve().parent
REPO = HERE.parent


@pytest.fixture(scope="module")
def ray_executor():
    from pipelines.executors import RayExecutor

    env = {"env_vars": {"PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)]),
                        "VIDGROUND_RAY_SETUP": "_helpers_eval:register_fakes"}}
    ex = RayExecutor(None, runtime_env=env, num_cpus_per_task=0.5)
    yield ex
    ray.shutdown()


def _comparable(out: Path) -> dict[str, tuple]:
    return {qid: (r["status"], r.get("intervals"), r.get("duration"), (r.get("error") or {}).get("type"))
            for qid, r in latest_results(out / "results.jsonl").items()}


@pytest.mark.slow
@pytest.mark.integration
def test_ray_matches_local_on_videos_and_descriptions(tmp_path, ray_executor):
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=3, per_video=3, duration=3.0)
    lines = ds.read_text().splitlines()
    ds.write_text("\n".join(lines[:-1] + [lines[-1].replace('"query": "', '"query": "FAIL ')]) + "\n")
    videos = render_toy_videos(tmp_path / "videos", ["vid0", "vid1", "vid2"])
    base = dict(dataset="jsonl", dataset_path=str(ds), describer="fake", reasoner="fake-reasoner")
    local = run_eval(RunConfig(**base, videos=str(videos), cache=str(tmp_path / "c1.sqlite")), tmp_path / "local")
    remote = run_eval(RunConfig(**base, videos=str(videos), cache=str(tmp_path / "c2.sqlite")), tmp_path / "ray",
                      executor=ray_executor)
    assert remote.ran == local.ran == 9 and remote.failed == local.failed == 1
    assert _comparable(tmp_path / "ray") == _comparable(tmp_path / "local")
    assert remote.metrics.values == local.metrics.values
    assert (remote.describe_calls, remote.describe_saved) == (local.describe_calls, local.describe_saved) == (9, 0)
    # stage 2 only
    d_base = dict(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="fake-reasoner")
    run_eval(RunConfig(**d_base), tmp_path / "dl")
    run_eval(RunConfig(**d_base), tmp_path / "dr", executor=ray_executor)
    assert _comparable(tmp_path / "dr") == _comparable(tmp_path / "dl")


@pytest.mark.slow
@pytest.mark.integration
def test_ray_workers_use_no_default_cache_for_a_plugin_describer(tmp_path, ray_executor):
    """The driver decides the cache (pipelines.session.implied_cache) and the workers use what it says: a plug-in
    describer given no cache is described again, never kept in the default cache."""
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=1, duration=3.0)
    videos = render_toy_videos(tmp_path / "videos", ["vid0"])
    base = dict(dataset="jsonl", dataset_path=str(ds), videos=str(videos), describer="fake", reasoner="fake-reasoner")
    run_eval(RunConfig(**base), tmp_path / "ray1", executor=ray_executor)
    second = run_eval(RunConfig(**base), tmp_path / "ray2", executor=ray_executor)
    assert (second.describe_calls, second.describe_saved) == (3, 0)
    assert not (Path(os.environ["XDG_CACHE_HOME"]) / "vidground" / "descriptions.sqlite").exists()
