"""A plug-in that breaks its protocol (PluginError, d463c91) is a run-wide error, as a configuration error is (user
task FX-J item 3): a one-query eval it fails exits 1 with that one error; a plug-in breaking on one video's input only
still fails that video's queries alone. The exit-1 test fails on b828a10 (exit 0)."""

from __future__ import annotations

import json
from typing import Any

from pipelines.cli import main
from pipelines.runs import is_run_wide
from temporal_reasoner import reasoners
from temporal_reasoner.base import BaseReasoner
from vidground.types import GroundingResult, Interval

from _helpers_eval import write_toy_dataset


class _Broken(BaseReasoner):
    """A plug-in reasoner that returns a dict (not a GroundingResult) for every query (``fxj-broken``), or only for
    the queries of video vid1 (``fxj-broken:vid1``), whose transcripts it tells apart by their text."""

    name = "fxj-broken"

    def __init__(self, arg: str | None = None, **_: Any):
        self.arg = arg

    def settings(self) -> dict[str, Any]:
        return {"name": self.name}

    def ground(self, query: str, transcript: Any) -> Any:
        if self.arg is None or transcript.entries[0].text == "person drink coffee":  # vid1 starts with coffee
            return {"intervals": [[0, 2]]}
        return GroundingResult(query=query, duration=transcript.duration,
                               intervals=[Interval(start=0, end=2, score=1.0)], reasoner=self.name)


reasoners.register("fxj-broken", _Broken)


def _eval(ds, desc, out, reasoner: str) -> int:
    return main(["eval", "jsonl", "--dataset-file", str(ds), "--descriptions", str(desc), "--reasoner", reasoner,
                 "--out", str(out), "--no-report", "--quiet"])


def test_a_plugin_error_is_the_runs():
    assert is_run_wide("PluginError", "reasoner 'x' (m.X) broke the reasoner protocol: ground(query, transcript) "
                                      "must return a GroundingResult, got dict {}")


def test_a_one_query_eval_that_a_broken_plugin_fails_exits_1_with_its_error(tmp_path, capsys):
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=3)
    one = tmp_path / "one.jsonl"
    one.write_text(ds.read_text().splitlines()[0] + "\n")
    assert _eval(one, desc, tmp_path / "run", "fxj-broken") == 1  # b828a10: 0, as for one hard query
    err = capsys.readouterr().err
    assert "the one query run failed with the same error, so this run has no result: PluginError" in err
    assert "broke the reasoner protocol" in err


def test_a_plugin_breaking_on_one_videos_input_fails_that_videos_queries_only(tmp_path):
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=3)
    out = tmp_path / "run"
    assert _eval(ds, desc, out, "fxj-broken:vid1") == 0
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    status = {r["qid"]: (r["status"], (r.get("error") or {}).get("type")) for r in results}
    assert status == {**{f"vid0-{k}": ("ok", None) for k in range(3)},
                      **{f"vid1-{k}": ("failed", "PluginError") for k in range(3)}}
