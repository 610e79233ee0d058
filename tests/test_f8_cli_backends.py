"""Defects a user test of the command line found (F8): --base-url/--api-key overrode a stage's own base_url=/api_key=
option, a failed query of a multi-query ground threw away the answers paid for before it and never asked the ones
after it, and eval had no --base-url/--api-key."""

from __future__ import annotations

import json

import pytest

from _helpers_eval import write_toy_dataset
from _helpers_openai_server import FakeOpenAIServer, Reply, openai_server  # noqa: F401
from frame_describer.descriptions_io import write_descriptions
from pipelines.cli import main
from temporal_reasoner import GroundingResult, Interval, reasoners
from temporal_reasoner.base import BaseReasoner
from vidground import ratelimit
from vidground.errors import ConfigurationError
from vidground.types import FrameDescription

GOOD = '{"intervals": [{"start": 2, "end": 4, "score": 0.9}]}'
QUERIES = ["the lights go out", "a person walks in", "the camera pans", "a scene cut"]


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(ratelimit, "_SHARED", {})  # no rate-limit state shared with other tests' servers
    monkeypatch.setattr(ratelimit, "_RECENT", {})  # nor the windows of closed limiters (24c919f)


@pytest.fixture
def descs(tmp_path):
    path = tmp_path / "d.jsonl"
    write_descriptions(path, [FrameDescription(t=float(t), text=f"frame {t}") for t in range(6)])
    return path


def _queries(*queries: str) -> list[str]:
    return [arg for q in queries for arg in ("-q", q)]


# ------------------------------------------------------------------ --base-url / --api-key and a stage's own options

def test_a_stages_own_base_url_and_api_key_win_over_the_flags(demo_video, capsys):
    """A vision server for the frames (--describer-opt base_url=, api_key=) and a text server for the reasoner
    (--base-url, --api-key): every frame went to the reasoner's server, with its key."""
    with FakeOpenAIServer(lambda req: Reply.chat("a room")) as vision, \
            FakeOpenAIServer(lambda req: Reply.chat(GOOD)) as text:
        assert main(["ground", str(demo_video[0]), "a door opens", "--describer", "openai:m", "--max-frames", "3",
                     "--no-cache", "--describer-opt", f"base_url={vision.base_url}", "--describer-opt",
                     "api_key=vision-key", "--reasoner", "openai:r", "--reasoner-opt", "response_formats=text",
                     "--base-url", text.base_url, "--api-key", "text-key", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["settings"]["describer"]["base_url"].rstrip("/") == vision.base_url
    assert len(vision.requests) == 3 and len(text.requests) == 1  # the frames, then the one grounding request
    assert {r.headers["authorization"] for r in vision.requests} == {"Bearer vision-key"}
    assert text.requests[0].headers["authorization"] == "Bearer text-key"


def test_the_flags_still_reach_a_stage_that_names_no_server(descs, capsys, openai_server):  # noqa: F811
    openai_server.responder = lambda req: Reply.chat(GOOD)
    assert main(["ground", "--descriptions", str(descs), "q", "--reasoner", "openai:r", "--reasoner-opt",
                 "response_formats=text", "--base-url", openai_server.base_url, "--api-key", "k-1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["intervals"]
    assert [r.headers["authorization"] for r in openai_server.requests] == ["Bearer k-1"]


# ------------------------------------------------------------------ a failed query among several

@pytest.mark.parametrize("as_json", [True, False])
def test_a_failed_query_keeps_the_others_and_names_itself_and_what_was_paid(descs, capsys, openai_server,  # noqa: F811
                                                                           as_json):
    """The third of four queries fails (HTTP 500, no retries): stdout was empty and the exit 1 named neither the
    query nor the two answers paid for; the fourth was never asked."""
    openai_server.script(Reply.chat(GOOD), Reply.chat(GOOD), Reply.error(500, "boom"), Reply.chat(GOOD))
    rc = main(["ground", "--descriptions", str(descs), *_queries(*QUERIES), "--reasoner", "openai:r",
               "--reasoner-opt", "response_formats=text", "--reasoner-opt", "max_retries=0",
               "--base-url", openai_server.base_url, "--api-key", "k"] + (["--json"] if as_json else []))
    out, err = capsys.readouterr()
    assert rc == 1 and len(openai_server.requests) == 4  # the query after the failed one was asked
    if as_json:
        assert [r["query"] for r in json.loads(out)] == [QUERIES[0], QUERIES[1], QUERIES[3]]
        assert "warning: query 3 of 4 failed" in err
    else:
        assert [line for line in out.splitlines() if line.startswith("== ")] == [
            f"== query {i} of 4: {q}" for i, q in enumerate(QUERIES, 1)]
        assert out.count("failed: ") == 1 and "HTTP 500" in out.split("== query 3 of 4")[1].split("== query 4")[0]
    last = err.strip().splitlines()[-1]
    assert last.startswith("vidground: error: 1 of the 4 queries failed: query 3 ('the camera pans'): "), last
    assert "HTTP 500" in last and "the 3 finished result(s) are printed" in last
    assert "paid so far: 3 request(s)" in last  # the three answered requests, the failed one not among them


class _Misconfigured(BaseReasoner):
    """Answers the first query, then fails as every later query would (a configuration error)."""

    name = "f8-misconfigured"
    asked = 0

    def __init__(self, arg: str | None = None, **_: object):
        pass

    def ground(self, query, transcript):
        type(self).asked += 1
        if type(self).asked > 1:
            raise ConfigurationError("the model's context is too small for this transcript")
        e = transcript.entries[0]
        return GroundingResult(query=query, duration=transcript.duration,
                               intervals=[Interval(start=e.start, end=e.end, score=1.0)], reasoner=self.name)


reasoners.register("f8-misconfigured", _Misconfigured)


def test_an_error_every_query_would_meet_stops_the_rest_and_keeps_what_finished(descs, capsys, monkeypatch):
    monkeypatch.setattr(_Misconfigured, "asked", 0)
    assert main(["ground", "--descriptions", str(descs), *_queries(*QUERIES), "--reasoner", "f8-misconfigured",
                 "--json"]) == 1
    out, err = capsys.readouterr()
    assert [r["query"] for r in json.loads(out)] == QUERIES[:1] and _Misconfigured.asked == 2
    assert "1 of the 4 queries failed: query 2 ('a person walks in'): the model's context" in err
    assert "the 2 after query 2 were not asked (every query would fail with it)" in err
    assert err.count("\n") == 1


def test_a_video_whose_describing_failed_is_not_described_again_for_each_query(demo_video, capsys,
                                                                              openai_server):  # noqa: F811
    """The describer's server fails every frame: the other queries would describe the video again (paid again
    without a cache), so they are not asked."""
    openai_server.responder = lambda req: Reply.error(500, "boom")
    assert main(["ground", str(demo_video[0]), *_queries(*QUERIES[:3]), "--describer", "openai:m", "--describer-opt",
                 "max_retries=0", "--max-frames", "2", "--no-cache", "--base-url", openai_server.base_url,
                 "--api-key", "k", "--json"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out) == [] and len(openai_server.requests) <= 2  # the first query's frames only
    assert "the 2 after query 1 were not asked (the video was not described" in err


# ------------------------------------------------------------------ eval --base-url / --api-key

def _eval(ds, desc, out, *more: str) -> int:
    return main(["eval", "jsonl", "--dataset-file", str(ds), "--descriptions", str(desc), "--out", str(out),
                 "--quiet", "--reasoner", "openai:r", "--reasoner-opt", "response_formats=text", *more])


def test_eval_takes_base_url_and_api_key_and_never_writes_the_key(tmp_path, capsys, openai_server):  # noqa: F811
    """'eval ... --base-url URL' was 'unrecognized arguments'."""
    openai_server.responder = lambda req: Reply.chat(GOOD)
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=2)
    out = tmp_path / "run"
    key = "f8-not-a-usual-key-shape-4711"
    assert _eval(ds, desc, out, "--base-url", openai_server.base_url, "--api-key", key) == 0
    assert len(openai_server.requests) == 2
    assert {r.headers["authorization"] for r in openai_server.requests} == {f"Bearer {key}"}
    config = json.loads((out / "config.json").read_text())
    assert config["reasoner_options"]["base_url"] == openai_server.base_url
    written = [p for p in out.rglob("*") if p.is_file()]
    assert {"config.json", "provenance.json", "report.md", "results.jsonl"} <= {p.name for p in written}
    assert not [p.name for p in written if key.encode() in p.read_bytes()]
    # a resume with another key is not another run's settings; another server is
    capsys.readouterr()
    assert _eval(ds, desc, out, "--base-url", openai_server.base_url, "--api-key", "another-key-0815") == 0
    assert "2 already done" in capsys.readouterr().out
    assert _eval(ds, desc, out, "--base-url", openai_server.base_url + "/other", "--api-key", key) == 1
    err = capsys.readouterr().err
    assert "holds a run with other settings (reasoner_options: {'base_url'" in err and key not in err


def test_eval_takes_the_stage_option_over_the_flag(tmp_path, openai_server):  # noqa: F811
    openai_server.responder = lambda req: Reply.chat(GOOD)
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=1)
    out = tmp_path / "run"
    assert _eval(ds, desc, out, "--reasoner-opt", f"base_url={openai_server.base_url}", "--reasoner-opt",
                 "api_key=stage-key", "--base-url", "http://127.0.0.1:9/v1", "--api-key", "flag-key") == 0
    assert [r.headers["authorization"] for r in openai_server.requests] == ["Bearer stage-key"]
    assert json.loads((out / "config.json").read_text())["reasoner_options"]["base_url"] == openai_server.base_url


def test_without_a_key_eval_advises_its_own_api_key_flag(tmp_path, capsys, monkeypatch):
    """The message said '--describer-opt/--reasoner-opt api_key=KEY with eval': eval had no --api-key then."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=1)
    assert _eval(ds, desc, tmp_path / "run") == 1
    err = capsys.readouterr().err
    assert "no API key" in err and "command line: --api-key KEY, or --describer-opt/--reasoner-opt api_key=KEY for " \
        "one stage)" in err, err
