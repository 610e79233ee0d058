"""A server that sends no ``usage``: its requests' cost is unknown (49b58ca, 6b875c7), and so are their tokens. The
tables of ``ground`` (one query and -q), ``ask``, ``events`` and the events eval printed "0 prompt + 0 completion
tokens" beside "est. unknown"; they now say the token counts are unknown, and count the part that is known."""

from __future__ import annotations

import json

import pytest

from _helpers_openai_server import Reply, openai_server  # noqa: F401
from pipelines.cli import format_events_table, main
from pipelines.runs import format_tokens
from vidground.pricing import with_cost
from vidground.types import Events, Usage

GROUNDED = '{"intervals":[{"start":4,"end":8,"score":0.9}]}'
ANSWERED = '{"choice": 1, "answer": "unwrap it", "intervals": [{"start": 4, "end": 8, "score": 0.8}]}'
EVENTS = '{"events": [{"start": 0, "end": 5, "caption": "x", "score": 1}]}'


def _no_usage(text: str) -> Reply:
    reply = Reply.chat(text)
    del reply.body["usage"]
    return reply


@pytest.fixture
def descriptions(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"t": float(t), "text": f"scene {t}"}) + "\n" for t in range(12)))
    return path


def _remote(server) -> list[str]:
    return ["--base-url", server.base_url, "--api-key", "k"]


def test_ground_says_the_tokens_of_a_server_without_usage_are_unknown(openai_server, descriptions, capsys):
    openai_server.responder = lambda req: _no_usage(GROUNDED)
    assert main(["ground", "--descriptions", str(descriptions), "a door", "--reasoner", "openai:gpt-4o",
                 *_remote(openai_server)]) == 0
    usage = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("usage:"))
    assert usage == ("usage:     1 requests, tokens unknown (1 request(s) sent no token counts), est. unknown "
                     "(1 request(s) without a price or token counts; see vidground.pricing)")
    assert main(["ground", "--descriptions", str(descriptions), "-q", "a door", "-q", "a cat", "--reasoner",
                 "openai:gpt-4o", *_remote(openai_server)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("usage:")]
    assert len(lines) == 2 and all("tokens unknown (1 request(s) sent no token counts)" in line for line in lines)


def test_ask_says_the_tokens_of_a_server_without_usage_are_unknown(openai_server, descriptions, capsys):
    openai_server.responder = lambda req: _no_usage(ANSWERED)
    assert main(["ask", "--descriptions", str(descriptions), "what is done?", "--choice", "wrap it", "--choice",
                 "unwrap it", "--reasoner", "openai:gpt-4o", *_remote(openai_server)]) == 0
    out = capsys.readouterr().out
    assert "tokens unknown (1 request(s) sent no token counts)" in out and "0 prompt + 0 completion" not in out


def test_events_say_the_tokens_of_a_server_without_usage_are_unknown(openai_server, descriptions, capsys):
    openai_server.responder = lambda req: _no_usage(EVENTS)
    assert main(["events", "--descriptions", str(descriptions), "--reasoner", "openai:gpt-4o",
                 *_remote(openai_server)]) == 0
    out = capsys.readouterr().out
    assert "1 request(s), tokens unknown (1 request(s) sent no token counts), est. unknown" in out
    assert " 0 tokens" not in out


def test_a_stage_whose_tokens_are_known_keeps_its_count_beside_one_whose_are_not():
    unknown = with_cost(Usage(requests=1), "gpt-4o")  # a server that sent no counts: unpriced, as with_cost leaves it
    counted = with_cost(Usage(requests=3, prompt_tokens=300, completion_tokens=30), "gpt-4o-mini")
    replay = Usage(requests=12, cost_usd=0.0)  # replay: captions read, nothing sent: 0 tokens is the count
    assert format_tokens([replay, unknown]) == ("0 prompt + 0 completion tokens + unknown (1 of 13 requests sent no "
                                                "token counts)")
    assert format_tokens([counted, unknown]) == ("300 prompt + 30 completion tokens + unknown (1 of 4 requests sent "
                                                 "no token counts)")
    assert format_tokens([counted, unknown], split=False) == "330 tokens + unknown (1 of 4 requests sent no token counts)"
    assert format_tokens([replay]) == "0 prompt + 0 completion tokens"  # as before
    assert format_tokens([counted]) == "300 prompt + 30 completion tokens"
    table = format_events_table(Events(duration=10.0, events=[], usage={"describe": counted, "reason": unknown}))
    assert "4 request(s), 330 tokens + unknown (1 of 4 requests sent no token counts)" in table


def test_the_events_eval_table_says_unknown_tokens_per_stage():
    from pipelines.events_eval import format_metrics

    stages = {"describe": Usage(requests=12, cost_usd=0.0), "reason": with_cost(Usage(requests=2), "gpt-4o")}
    metrics = {"videos": 1, "missing_inputs": 0, "failed": [], "events_per_video": 1.0, "tious": [0.5],
               "localisation": {"precision@0.5": 1.0, "recall@0.5": 1.0, "f1@0.5": 1.0, "precision": 1.0,
                                "recall": 1.0, "f1": 1.0},
               "usage": {**{k: u.model_dump() for k, u in stages.items()},
                         "total": sum(stages.values(), Usage()).model_dump()},
               "failed_usage_this_run": with_cost(Usage(requests=1), "gpt-4o").model_dump(), "references": {}}
    lines = format_metrics(metrics).splitlines()
    assert ("usage: 14 requests, 0 prompt + 0 completion tokens + unknown (2 of 14 requests sent no token counts), "
            "est. $0.0000 + unknown (2 of 14 requests without a price or token counts)") in lines
    assert ("paid for failed videos (this run): 1 requests, tokens unknown (1 request(s) sent no token counts), "
            "est. unknown (1 request(s) without a price or token counts; see vidground.pricing)") in lines
