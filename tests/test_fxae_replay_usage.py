"""U17: a ``replay:`` describer's ground printed "usage: 36 requests, 0 prompt + 0 completion tokens, est. $0.0000",
the line the README says is never printed, of a describer that sends no request (FX-AE item 4). A replay reads
captions: its answers are said as that, "36 frames answered from captions, nothing paid", after what the other stages
asked of a model."""

from __future__ import annotations

import subprocess
import sys

from pipelines.cli import format_events_table, format_result_table
from vidground.types import Events, GroundingResult, Usage

REPLAYED = Usage(requests=36, cost_usd=0.0)  # what ReplayDescriber counts: one a frame answered, at $0


def _usage_line(result) -> list[str]:
    return [line for line in format_result_table(result).splitlines() if line.startswith("usage:")]


def test_a_replay_with_a_local_reasoner_says_what_it_did():
    result = GroundingResult(query="a door", duration=36.0, describer="replay", reasoner="embedding",
                             usage={"describe": REPLAYED})
    assert _usage_line(result) == ["usage:     36 frames answered from captions, nothing paid"]
    motion = result.model_copy(update={"describer": "replay+motion"})
    assert _usage_line(motion) == ["usage:     36 frames answered from captions, nothing paid"]


def test_a_replay_with_a_paid_reasoner_says_the_reasoners_requests_and_its_own():
    paid = Usage(requests=1, prompt_tokens=120, completion_tokens=30, cost_usd=0.0001)
    result = GroundingResult(query="a door", duration=36.0, describer="replay", reasoner="openai:gpt-4o-mini",
                             usage={"describe": REPLAYED, "ground": paid})
    assert _usage_line(result) == ["usage:     1 requests, 120 prompt + 30 completion tokens, est. $0.0001; "
                                   "36 frames answered from captions, nothing paid"]
    events = Events(events=[], duration=36.0, describer="replay", reasoner="openai:gpt-4o-mini",
                    usage={"describe": REPLAYED, "reason": paid})
    assert format_events_table(events).splitlines()[-1].endswith(
        "; 1 request(s), 150 tokens, est. $0.0001; 36 frames answered from captions, nothing paid")


def test_another_describers_requests_are_said_as_before():
    paid = Usage(requests=36, prompt_tokens=3600, completion_tokens=360, cost_usd=0.0123)
    result = GroundingResult(query="a door", duration=36.0, describer="openai:gpt-4o", reasoner="embedding",
                             usage={"describe": paid})
    assert _usage_line(result) == ["usage:     36 requests, 3600 prompt + 360 completion tokens, est. $0.0123"]
    nothing = result.model_copy(update={"describer": "cv", "usage": {"describe": Usage(cached=36)}})
    assert _usage_line(nothing) == []


def test_describe_o_with_a_replay_says_nothing_was_paid(demo_video, tmp_path):
    captions = tmp_path / "captions.jsonl"
    subprocess.run([sys.executable, "-m", "pipelines.cli", "describe", str(demo_video[0]), "--no-cache", "-o",
                    str(captions)], check=True, capture_output=True, timeout=300)
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "describe", str(demo_video[0]), "--no-cache",
                           "--describer", f"replay:{captions}", "-o", str(tmp_path / "again.jsonl")],
                          check=True, capture_output=True, text=True, timeout=300)
    assert "; 36 frames answered from captions, nothing paid)" in done.stderr, done.stderr  # was "36 requests, est. $0.0000"
    assert "requests" not in done.stderr
