"""OpenAIReasoner against the local fake server: exact requests, faults, retries, usage, secrecy."""

from __future__ import annotations

import json
import logging

import openai
import pytest

from vidground.errors import ConfigurationError, OutputValidationError, ProviderError
from vidground.types import FrameDescription, Usage
from temporal_reasoner import get_reasoner
from temporal_reasoner.base import BaseReasoner
from temporal_reasoner.openai_reasoner import OpenAIReasoner
from temporal_reasoner.structured import INTERVALS_SCHEMA, build_messages
from temporal_reasoner.transcript import Transcript
from vidground.types import GroundingResult, Interval

from _helpers_openai_server import FakeOpenAIServer, Reply, openai_server  # noqa: F401

KEY = "sk-test-SECRET-0123456789"
GOOD = '{"intervals": [{"start": 6, "end": 10, "score": 0.9}]}'


@pytest.fixture
def transcript() -> Transcript:
    texts = ["a person sits"] * 3 + ["a person opens the fridge"] * 2 + ["a person drinks"] * 5
    return Transcript.from_descriptions([FrameDescription(t=i * 2.0, text=t) for i, t in enumerate(texts)])


def make(server, **kw) -> OpenAIReasoner:
    kw.setdefault("retry_base_delay", 0.01)
    return OpenAIReasoner("gpt-4o-mini", base_url=server.base_url, api_key=KEY, **kw)


def test_exact_request_and_result(openai_server, transcript):
    openai_server.script(Reply.chat(GOOD, prompt_tokens=300, completion_tokens=20))
    r = make(openai_server).ground("the person opens the fridge", transcript)
    (req,) = openai_server.requests
    assert req.path == "/v1/chat/completions" and req.headers["authorization"] == f"Bearer {KEY}"
    body = req.json
    assert body["model"] == "gpt-4o-mini" and body["temperature"] == 0.0 and body["max_tokens"] == 512
    assert body["messages"] == build_messages("the person opens the fridge", transcript)
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "intervals", "strict": True, "schema": INTERVALS_SCHEMA}}
    assert r.intervals == [Interval(start=6, end=10, score=0.9)] and r.reasoner == "openai:gpt-4o-mini"
    assert r.usage["reason"].prompt_tokens == 300 and r.usage["reason"].cost_usd == pytest.approx(
        (300 * 0.15 + 20 * 0.60) / 1e6)


def test_429_with_retry_after_is_honoured_once(openai_server, transcript, monkeypatch):
    from vidground.chat import call_with_retries

    waits: list[float] = []  # a fake clock: the waits the retry layer asks for, none of them taken
    monkeypatch.setitem(call_with_retries.__kwdefaults__, "sleep", waits.append)
    openai_server.script(Reply.error(429, "slow down", headers={"Retry-After": "1"}), Reply.chat(GOOD))
    r = make(openai_server, retry_base_delay=5.0).ground("q", transcript)
    assert waits == [1.0]  # Retry-After, not the 5 s backoff
    assert len(openai_server.requests) == 2 and r.intervals  # the SDK did not retry on top of us


@pytest.mark.parametrize("fault", [Reply.error(503, "busy"), Reply(drop=True), Reply(body="{not json", status=200)])
def test_transport_faults_are_retried(openai_server, transcript, fault):
    openai_server.script(fault, Reply.chat(GOOD))
    r = make(openai_server, response_formats=["text"]).ground("q", transcript)
    assert r.intervals[0].start == 6 and len(openai_server.requests) == 2
    assert (r.usage["reason"].requests, r.usage["reason"].retried) == (1, 1)
    openai_server.script(Reply.chat(GOOD))
    clean = make(openai_server, response_formats=["text"]).ground("q", transcript).usage["reason"]
    assert clean.retried == 0 and "retried" not in clean.model_dump()  # 0 is left out: the JSON keeps its shape


def test_malformed_http_body_is_a_provider_error(openai_server, transcript):
    openai_server.script(Reply(body="{not json", status=200))
    with pytest.raises(ProviderError, match="malformed response body"):
        make(openai_server, response_formats=["text"], max_retries=0).ground("q", transcript)


def test_timeout_raises_typed(openai_server, transcript):
    """The fake server is local: its timeout is not sent again (tests/test_l_local_timeouts.py: a remote one is)."""
    openai_server.script(Reply.chat(GOOD, delay=1.5), Reply.chat(GOOD, delay=1.5))
    with pytest.raises(ProviderError, match="timed out") as info:
        make(openai_server, timeout=0.3, max_retries=1, response_formats=["text"]).ground("q", transcript)
    assert info.value.retryable and len(openai_server.requests) == 1


def test_retries_exhausted_and_non_retryable(openai_server, transcript):
    openai_server.script(*[Reply.error(502, "bad gateway")] * 3)
    with pytest.raises(ProviderError) as info:
        make(openai_server, max_retries=2, response_formats=["text"]).ground("q", transcript)
    assert info.value.status == 502 and info.value.retryable and len(openai_server.requests) == 3
    openai_server.script(Reply.error(401, f"Incorrect API key provided: {KEY}"))
    with pytest.raises(ProviderError) as info:
        make(openai_server, response_formats=["text"]).ground("q", transcript)
    assert info.value.status == 401 and not info.value.retryable and len(openai_server.requests) == 4
    assert KEY not in str(info.value) and "***" in str(info.value)


def _formats(server) -> list[str | None]:
    return [(r.json.get("response_format") or {}).get("type") for r in server.requests]


def test_json_schema_refusal_degrades_once_per_instance(openai_server, transcript):
    # llama.cpp's server answers 500 to json_schema, its body naming the response format
    refusal = Reply.error(500, "1 validation error: {'loc': ('body', 'response_format', 'type'), "
                               "'input': 'json_schema'}")
    openai_server.script(refusal, Reply.chat(GOOD), Reply.chat(GOOD))
    reasoner = make(openai_server)
    first = reasoner.ground("q", transcript)
    second = reasoner.ground("q", transcript)
    assert _formats(openai_server) == ["json_schema", "json_object", "json_object"]  # not retried, nor paid again
    assert openai_server.requests[1].json["response_format"]["schema"]["properties"]["intervals"]["maxItems"] == 3
    assert first.settings["response_format"] == second.settings["response_format"] == "json_object_schema"
    assert reasoner.refused_formats == {"json_schema"}


def test_a_transient_500_is_retried_and_keeps_strict_mode(openai_server, transcript):
    openai_server.script(Reply.error(500, "internal server error"), Reply.chat(GOOD), Reply.chat(GOOD))
    reasoner = make(openai_server)
    assert reasoner.ground("q", transcript).settings["response_format"] == "json_schema"
    assert reasoner.ground("q", transcript).settings["response_format"] == "json_schema"
    assert _formats(openai_server) == ["json_schema"] * 3 and reasoner.refused_formats == set()


def test_a_400_naming_the_format_downgrades_only_that_instance(openai_server, transcript):
    openai_server.script(Reply.error(400, "Invalid parameter: 'response_format' of type 'json_schema' is not "
                                          "supported with this model."), Reply.chat(GOOD))
    refused, other = make(openai_server), make(openai_server)
    assert refused.ground("q", transcript).settings["response_format"] == "json_object_schema"
    openai_server.script(Reply.chat(GOOD), Reply.chat(GOOD))
    assert other.ground("q", transcript).settings["response_format"] == "json_schema"
    assert refused.ground("q", transcript).settings["response_format"] == "json_object_schema"
    assert _formats(openai_server) == ["json_schema", "json_object", "json_schema", "json_object"]
    assert refused.refused_formats == {"json_schema"} and other.refused_formats == set()


@pytest.mark.parametrize("bad", [
    '{"intervals": [{"start": 50, "end": 90}]}', '{"intervals": [{"start": 10, "end": 6}]}',
    '{"intervals": [{"start": NaN, "end": 6}]}', '{"intervals": [{"start": "soon", "end": "later"}]}',
    '{"intervals": []}', "```json\n{\"intervals\": [{\"start\": 6,", "Sorry, I can't help."])
def test_invalid_output_is_reasked_with_the_error(openai_server, transcript, bad):
    openai_server.script(Reply.chat(bad), Reply.chat(GOOD))
    r = make(openai_server).ground("q", transcript)
    assert r.intervals == [Interval(start=6, end=10, score=0.9)]
    assert r.usage["reason"].requests == 2 and r.usage["reason"].prompt_tokens == 20
    reask = openai_server.requests[1].json["messages"]
    assert reask[-2] == {"role": "assistant", "content": bad} and "could not be used" in reask[-1]["content"]


def test_truncated_reply_then_error_carries_everything(openai_server, transcript):
    cut = Reply.chat('{"intervals": [{"start": 6, "end": 1', finish_reason="length")
    openai_server.script(cut, Reply.chat("nonsense"), Reply.chat('{"intervals": []}'))
    with pytest.raises(OutputValidationError) as info:
        make(openai_server).ground("q", transcript)
    err = info.value
    assert err.attempts == 3 and len(err.raw_outputs) == 3 and err.raw_outputs[1] == "nonsense"
    assert "cut off" in err.errors[0] and err.usage.requests == 3
    assert "cut off" in openai_server.requests[1].json["messages"][-1]["content"]


class Fixed(BaseReasoner):
    name = "fixed"

    def ground(self, query, transcript):
        return GroundingResult(query=query, duration=transcript.duration, intervals=[Interval(start=0, end=2)])


def test_fallback_instance_or_spec(openai_server, transcript, monkeypatch):
    openai_server.responder = lambda req: Reply.chat("no json here")
    r = make(openai_server, fallback=Fixed(), max_attempts=2).ground("q", transcript)
    assert r.intervals == [Interval(start=0, end=2)] and r.settings["fallback"] == "fixed"
    assert r.usage["reason"].requests == 2 and len(r.raw) == 2
    from temporal_reasoner import reasoners

    monkeypatch.setitem(reasoners._targets, "fixedtest", Fixed)
    lazy = make(openai_server, fallback="fixedtest", max_attempts=1)
    assert lazy.settings()["fallback"] == "fixedtest" and lazy._fallback == "fixedtest"  # not resolved yet
    assert lazy.ground("q", transcript).intervals == [Interval(start=0, end=2)]


def test_key_never_leaks(openai_server, transcript, caplog):
    caplog.set_level(logging.DEBUG)
    openai_server.script(Reply.error(500, f"boom {KEY}"), Reply.chat(GOOD))
    reasoner = make(openai_server, response_formats=["text"])
    result = reasoner.ground("q", transcript)
    openai_server.script(Reply.error(400, f"bad {KEY}"))
    with pytest.raises(ProviderError) as info:
        reasoner.ground("q", transcript)
    exposed = [repr(reasoner), json.dumps(reasoner.settings()), result.model_dump_json(), str(info.value),
               repr(info.value), caplog.text]
    assert not [s for s in exposed if KEY in s]


def test_spec_env_and_configuration_errors(openai_server, monkeypatch, transcript):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    openai_server.script(Reply.chat(GOOD))
    r = get_reasoner("openai:gpt-4o-mini", retry_base_delay=0.01)
    assert isinstance(r, OpenAIReasoner) and r.ground("q", transcript).intervals
    assert openai_server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    with pytest.raises(ConfigurationError, match="openai:MODEL"):
        get_reasoner("openai")
    with pytest.raises(ConfigurationError, match="choose one of: json_schema"):
        OpenAIReasoner("m", base_url=openai_server.base_url, response_formats=["xml"])
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL")
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIReasoner("m")
    client = openai.OpenAI(base_url=openai_server.base_url, api_key=KEY, max_retries=5)
    injected = OpenAIReasoner("m", client=client)
    assert injected._client.max_retries == 0  # one retry layer: ours
    with pytest.raises(ConfigurationError, match="either a client or base_url"):
        OpenAIReasoner("m", client=client, base_url="http://x")


def test_cli_end_to_end_against_a_local_server(openai_server, tmp_path, capsys):
    """`vidground ground VIDEO QUERY --describer openai:M --reasoner openai:M --base-url URL` works."""
    from frame_describer.synthetic import render_numbered_video
    from pipelines.cli import main

    def respond(req):
        if isinstance(req.json["messages"][0]["content"], list):  # a frame to describe
            return Reply.chat("A person opens a door.", image_tokens=85)
        return Reply.chat('{"intervals": [{"start": 1, "end": 2, "score": 0.7}]}')

    openai_server.responder = respond
    video = render_numbered_video(tmp_path / "v.mp4", n_frames=40, fps=10)
    rc = main(["ground", str(video), "a person opens a door", "--describer", "openai:gpt-4o-mini",
               "--reasoner", "openai:gpt-4o-mini", "--base-url", openai_server.base_url, "--api-key", KEY,
               "--json"])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    result = GroundingResult.model_validate_json(printed.out)
    assert result.intervals == [Interval(start=1, end=2, score=0.7)]
    assert result.usage["describe"].image_tokens == 85 * result.usage["describe"].requests > 0
    assert result.usage["reason"].cost_usd is not None
    assert KEY not in printed.out + printed.err


@pytest.mark.slow
def test_embedding_fallback_by_spec(openai_server, transcript):
    openai_server.responder = lambda req: Reply.chat("I am not sure.")
    r = make(openai_server, fallback="embedding", max_attempts=2).ground("a person opens the fridge", transcript)
    assert r.settings["fallback"] == "embedding" and r.intervals
    assert all(0 <= iv.start < iv.end <= transcript.duration for iv in r.intervals)
    assert r.usage["reason"].requests == 2


def test_response_formats_from_the_command_line_are_names_not_letters(openai_server, transcript):
    """`--reasoner-opt response_formats=text` arrives as the string "text": it was read letter by letter
    ("unknown response format 't'") and failed every query of an eval."""
    assert make(openai_server, response_formats="text").response_formats == ("text",)
    assert make(openai_server, response_formats="json_object, text").response_formats == ("json_object", "text")
    with pytest.raises(ConfigurationError, match="at least one"):
        make(openai_server, response_formats=" , ")


def test_no_api_key_names_what_a_python_caller_and_a_cli_user_each_give(tmp_path, monkeypatch, capsys):
    """The message named only Python arguments (api_key=, base_url=), which a command-line user cannot pass."""
    from frame_describer import write_descriptions
    from pipelines.cli import main
    from vidground.chat import build_client

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    words = ("OPENAI_API_KEY", "api_key=", "--api-key KEY", "--reasoner-opt api_key=KEY", "base_url=", "--base-url URL")
    with pytest.raises(ConfigurationError, match="no API key") as info:
        build_client()
    assert all(w in str(info.value) for w in words)
    write_descriptions(tmp_path / "d.jsonl", [FrameDescription(t=0.0, text="a door")])
    assert main(["ground", "--descriptions", str(tmp_path / "d.jsonl"), "a door", "--reasoner", "openai:m"]) == 1
    err = capsys.readouterr().err
    # the session checks its reasoner when it is made, and names it
    assert err.startswith("vidground: error: reasoner 'openai:m': no API key") and all(w in err for w in words) \
        and err.count("\n") == 1
