"""`vidground events` and `vidground describe -o` state what their requests cost as `ground` and `ask` do
(pipelines/runs.py format_cost): a price, or "unknown" naming the requests to a model without a price.

Every request here goes to a local OpenAI-compatible server that counts them (tests/_helpers_openai_server.py)."""

from __future__ import annotations

import json

from _helpers_openai_server import Reply, openai_server  # noqa: F401
from pipelines.cli import main

#: gpt-4o-mini's built-in price: $0.15 / $0.60 per 1M prompt / completion tokens
PROMPT, COMPLETION = 1000, 100
ONE_REQUEST_USD = (PROMPT * 0.15 + COMPLETION * 0.60) / 1e6
UNPRICED_MODEL = "openai:my-local-model"  # no built-in price


def _paid(text: str) -> Reply:
    return Reply.chat(text, prompt_tokens=PROMPT, completion_tokens=COMPLETION)


def _events_summary(tmp_path, server, capsys, model: str) -> str:
    reply = '{"events": [{"start": 0, "end": 2, "caption": "a person cooks", "score": 1}]}'
    server.responder = lambda req: _paid(reply)
    desc = tmp_path / "d.jsonl"
    desc.write_text("".join(json.dumps({"t": i, "text": f"line {i}"}) + "\n" for i in range(5)))
    assert main(["events", "--descriptions", str(desc), "--reasoner", model, "--base-url", server.base_url,
                 "--reasoner-opt", "max_retries=0"]) == 0
    out = capsys.readouterr().out
    assert "a person cooks" in out
    return next(line for line in out.splitlines() if " event(s) in " in line)


def test_events_prints_the_estimated_cost(tmp_path, openai_server, capsys):
    """The events line said '1 request(s), 1100 tokens' and nothing of what they cost."""
    line = _events_summary(tmp_path, openai_server, capsys, "openai:gpt-4o-mini")
    assert len(openai_server.requests) == 1
    assert line.endswith(f"; 1 request(s), {PROMPT + COMPLETION} tokens, est. ${ONE_REQUEST_USD:.4f}")


def test_events_says_the_cost_of_an_unpriced_model_is_unknown(tmp_path, openai_server, capsys):
    line = _events_summary(tmp_path, openai_server, capsys, UNPRICED_MODEL)
    assert line.endswith(f"; 1 request(s), {PROMPT + COMPLETION} tokens, est. unknown (1 request(s) without a price "
                         "or token counts; see vidground.pricing)")


def _describe_line(tmp_path, server, capsys, video, model: str) -> str:
    server.responder = lambda req: _paid("A person is standing in a room.")
    out = tmp_path / "d.jsonl"
    assert main(["describe", str(video), "-o", str(out), "--describer", model, "--base-url", server.base_url,
                 "--num-frames", "3", "--describer-opt", "max_retries=0"]) == 0
    assert len(out.read_text().splitlines()) == 3 and len(server.requests) == 3
    err = capsys.readouterr().err
    return next(line for line in err.splitlines() if line.startswith("wrote 3 descriptions"))


def test_describe_prints_the_estimated_cost(tmp_path, openai_server, capsys, demo_video):
    line = _describe_line(tmp_path, openai_server, capsys, demo_video[0], "openai:gpt-4o-mini")
    assert line.endswith(f"; 3 requests, est. ${3 * ONE_REQUEST_USD:.4f})")


def test_describe_says_the_cost_of_an_unpriced_model_is_unknown(tmp_path, openai_server, capsys, demo_video):
    """describe -o printed '3 requests' and no cost when the model had no price, as if they had cost nothing."""
    line = _describe_line(tmp_path, openai_server, capsys, demo_video[0], UNPRICED_MODEL)
    assert line.endswith("; 3 requests, est. unknown (3 request(s) without a price or token counts; see vidground.pricing))")
