"""An eval run's cost totals count each paid request once: a failed describe's requests once per video (not once
per query, as the reasoner's), a run folder written before videos.jsonl held usage, and a stage summing priced and
unpriced requests (a priced primary and an unpriced fallback)."""

from __future__ import annotations

import json
from typing import Any

from pipelines.runs import RunConfig, format_cost, read_jsonl, run_eval, run_totals
from frame_describer import describers
from frame_describer.base import BaseDescriber
from temporal_reasoner import reasoners
from temporal_reasoner.base import BaseReasoner
from vidground.errors import IncompleteOutputError
from vidground.pricing import with_cost
from vidground.types import FrameDescription, GroundingResult, Interval, Usage

from _helpers_eval import register_fakes, render_toy_videos, write_toy_dataset

register_fakes()


class _CutOffDescriber(BaseDescriber):
    """A priced describer ($0.001 a frame) whose first reply is cut off at max_tokens: the IncompleteOutputError
    carries that paid request, as OpenAIDescriber's does."""

    name = "p-cut-off"

    def __init__(self, arg: str | None = None, **_: Any):
        pass

    def settings(self) -> dict[str, Any]:
        return {"name": self.name}

    def describe(self, frames: Any, *, query: str | None = None) -> Any:
        for f in frames:
            raise IncompleteOutputError("reply cut off at max_tokens", raw_outputs=["a pers"], attempts=1,
                                        usage=Usage(requests=1, prompt_tokens=10, cost_usd=0.001))
            yield FrameDescription(t=f.t, text="never")


class _UsageReasoner(BaseReasoner):
    """``p-usage:unpriced``: one request to a model without a price per query; ``p-usage:fallback``: a priced
    primary that failed once ($0.01) and an unpriced fallback that answered, summed in one 'reason' stage."""

    name = "p-usage"

    def __init__(self, arg: str | None = None, **_: Any):
        self.usage = Usage(requests=1, prompt_tokens=5) if arg == "unpriced" else \
            Usage(requests=1, cost_usd=0.01) + Usage(requests=1)

    def settings(self) -> dict[str, Any]:
        return {"name": self.name}

    def ground(self, query: str, transcript: Any) -> GroundingResult:
        return GroundingResult(query=query, duration=transcript.duration, reasoner=self.name,
                               intervals=[Interval(start=0.0, end=2.0, score=1.0)], usage={"reason": self.usage})


describers.register("p-cut-off", _CutOffDescriber)
reasoners.register("p-usage", _UsageReasoner)


def _video_run(tmp_path, describer: str, reasoner: str):
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=3)
    videos = render_toy_videos(tmp_path / "videos", ["vid0", "vid1"], n_frames=30, fps=10.0)
    config = RunConfig(dataset="jsonl", dataset_path=str(ds), videos=str(videos), describer=describer,
                       reasoner=reasoner, cache=str(tmp_path / "cache.sqlite"), concurrency=1)
    return run_eval(config, tmp_path / "run")


def test_a_failed_describe_is_paid_once_per_video_not_once_per_query(tmp_path):
    """Each failed row copied the describe error's usage under 'reason': 2 videos x 3 queries counted 6 requests
    and $0.006 for the 2 requests ($0.002) the describer was paid, and called them the reasoner's."""
    summary = _video_run(tmp_path, "p-cut-off", "fake-reasoner")
    rows = read_jsonl(tmp_path / "run" / "results.jsonl")
    assert len(rows) == 6 and all(r["status"] == "failed" and "usage" not in r for r in rows)
    videos = read_jsonl(tmp_path / "run" / "videos.jsonl")
    assert [(v["error"]["type"], v["usage"]["requests"], v["cost_usd"]) for v in videos] == \
        [("IncompleteOutputError", 1, 0.001)] * 2
    totals = run_totals(tmp_path / "run")
    assert (totals["requests"], totals["failed_requests"], totals["unpriced_requests"]) == (2, 2, 0)
    assert abs(totals["cost_usd"] - 0.002) < 1e-9 and summary.cost_text == "$0.0020"


def _strip_video_usage(run) -> None:
    """The run folder as eval wrote it before 4ebf7c3: video records without ``usage``."""
    path = run / "videos.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert all("usage" in r for r in records)
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "usage"}) + "\n" for r in records))


def test_an_old_run_folder_counts_its_describe_requests_and_cost(tmp_path):
    """Without usage on its video records, an old folder counted only the 6 unpriced reasoner requests: the report
    said 'cost: unknown (6 request(s) ...)' though the 6 describe requests cost a known $0.006."""
    from pipelines.report import write_report

    _video_run(tmp_path, "fake", "p-usage:unpriced")
    _strip_video_usage(tmp_path / "run")
    totals = run_totals(tmp_path / "run")
    assert (totals["describe_calls"], totals["requests"], totals["unpriced_requests"]) == (6, 12, 6)
    assert abs(totals["cost_usd"] - 0.006) < 1e-9
    write_report(tmp_path / "run")
    text = (tmp_path / "run" / "report.md").read_text()
    assert "- cost: $0.0060 + unknown (6 of 12 requests without a price or token counts)" in text


def test_a_known_cost_is_not_called_unknown_when_its_requests_were_not_counted():
    assert format_cost(0.01, 6, 6) == "$0.0100 + unknown (6 request(s) without a price or token counts)"
    assert format_cost(0.0, 6, 6).startswith("unknown (6 request(s)")
    assert format_cost(0.01, 12, 6) == "$0.0100 + unknown (6 of 12 requests without a price or token counts)"


def test_a_sum_of_priced_and_unpriced_usage_keeps_count_of_the_unpriced():
    mixed = Usage(requests=1, cost_usd=0.01) + Usage(requests=2)
    assert (mixed.requests, mixed.cost_usd, mixed.unpriced_requests) == (3, 0.01, 2)
    assert (mixed + Usage(requests=1, cost_usd=0.02)).unpriced_requests == 2
    assert (mixed + mixed).unpriced_requests == 4
    assert (Usage(requests=2) + Usage(requests=3)).unpriced_requests == 5  # no cost at all: every request
    assert Usage(requests=1, cost_usd=0.01).model_dump(mode="json", exclude_none=True).get("unpriced") is None
    assert Usage.model_validate(mixed.model_dump(mode="json")).unpriced_requests == 2


def test_pricing_a_whole_usage_leaves_none_unpriced():
    priced = with_cost(Usage(requests=1) + Usage(requests=1, prompt_tokens=1000), "gpt-4o-mini")
    assert priced.cost_usd is not None and priced.unpriced_requests == 0


def test_an_eval_stage_mixing_priced_and_unpriced_requests_says_so(tmp_path):
    """A fallback's unpriced requests summed into a priced 'reason' stage were hidden: '$0.0600', 0 unpriced."""
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=3)
    summary = run_eval(RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc),
                                 reasoner="p-usage:fallback", concurrency=1), tmp_path / "run")
    assert (summary.requests, summary.unpriced_requests) == (12, 6)
    assert summary.cost_text == "$0.0600 + unknown (6 of 12 requests without a price or token counts)"
