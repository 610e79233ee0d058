"""A Ctrl-C during an eval on Ray keeps the results of the videos whose tasks had ended (pipelines/executors.py).

The Ray executor took one ended task at a time: a Ctrl-C while it waited for the next cancelled every task left,
those that had ended too, and their results were never written. A local Ray is started, as in tests/test_ray.py.
"""

from __future__ import annotations

import pytest

from pipelines.runs import RunConfig, RunInterrupted, read_jsonl, run_eval

from _helpers_eval import register_fakes, write_toy_dataset

ray = pytest.importorskip("ray", reason="the Ray executor needs the 'ray' extra: pip install 'vidground[ray]'")
from test_ray import ray_executor  # noqa: E402,F401 (a fixture)

register_fakes()


@pytest.mark.slow
@pytest.mark.integration
def test_a_ctrl_c_while_waiting_for_ray_keeps_the_videos_that_ended(tmp_path, ray_executor, monkeypatch):
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=3, per_video=2)
    cfg = RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="fake-reasoner")
    real_wait = ray.wait
    waits = []

    def wait(refs, num_returns=1, timeout=None, **kw):
        waits.append(len(refs))
        if len(waits) == 2:  # the Ctrl-C comes as the run waits for its 2nd video, once the others have ended
            real_wait(refs, num_returns=len(refs))
            raise KeyboardInterrupt
        return real_wait(refs, num_returns=num_returns, timeout=timeout, **kw)

    monkeypatch.setattr(ray, "wait", wait)
    out = tmp_path / "run"
    with pytest.raises(RunInterrupted) as info:
        run_eval(cfg, out, executor=ray_executor)
    assert len(read_jsonl(out / "results.jsonl")) == info.value.saved == 6  # 2 before: the first video's
    monkeypatch.setattr(ray, "wait", real_wait)
    again = run_eval(cfg, out, executor=ray_executor)
    assert (again.already_done, again.ran) == (6, 0)
