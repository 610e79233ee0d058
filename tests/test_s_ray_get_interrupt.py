"""A Ctrl-C inside ``ray.get`` keeps that video's finished records (pipelines/executors.py), on a local Ray started as
in tests/test_ray.py. HEAD took the video off its list before the get: its records were dropped, and the resume
asked its queries again (paid twice)."""

from __future__ import annotations

import pytest

from pipelines.runs import RunConfig, RunInterrupted, read_jsonl, run_eval

from _helpers_eval import register_fakes, write_toy_dataset

ray = pytest.importorskip("ray", reason="the Ray executor needs the 'ray' extra: pip install 'vidground[ray]'")
from test_ray import ray_executor  # noqa: E402,F401 (a fixture)

register_fakes()


@pytest.mark.slow
@pytest.mark.integration
def test_a_ctrl_c_inside_ray_get_keeps_the_videos_records(tmp_path, ray_executor, monkeypatch):
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=3, per_video=2)
    cfg = RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="fake-reasoner")
    real_get = ray.get
    gets, interrupted = [], []

    def get(ref, **kw):
        gets.append(1)
        if len(gets) == 2:  # the Ctrl-C lands inside the 2nd video's get, its task ended
            interrupted.extend(record["video"] for kind, record in real_get(ref, **kw) if kind == "video")
            raise KeyboardInterrupt
        return real_get(ref, **kw)

    monkeypatch.setattr(ray, "get", get)
    out = tmp_path / "run"
    with pytest.raises(RunInterrupted) as info:
        run_eval(cfg, out, executor=ray_executor)
    saved = info.value.saved
    lines = read_jsonl(out / "results.jsonl")
    assert len(lines) == len({r["qid"] for r in lines}) == saved >= 4  # the 2nd video's 2 results are among them
    assert len(interrupted) == 1 and sum(r["video"] == interrupted[0] for r in lines) == 2  # its 2 results: kept
    monkeypatch.setattr(ray, "get", real_get)
    again = run_eval(cfg, out, executor=ray_executor)
    assert (again.already_done, again.ran) == (saved, 6 - saved)
