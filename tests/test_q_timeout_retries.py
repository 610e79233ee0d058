"""``timeout_retries``: a backend option of both OpenAI-compatible stages that sends a timed-out request again, for a
localhost tunnel or proxy to a remote server (``ssh -L 8000:gpu-box:8000``), whose timeouts the loopback default
(0: a local server that timed out is still working) would not resend. Requests are counted, no time is measured:
the fake server (on 127.0.0.1) stalls past the client's timeout once, then answers."""

from __future__ import annotations

import json

import pytest

from frame_describer import get_describer
from frame_describer.openai_describer import OpenAIDescriber
from temporal_reasoner import get_reasoner
from temporal_reasoner.openai_reasoner import OpenAIReasoner
from temporal_reasoner.transcript import Transcript
from vidground import ratelimit
from vidground.errors import ConfigurationError, ProviderError
from vidground.types import Frame, FrameDescription

import numpy as np

from _helpers_eval import cli, write_toy_dataset
from _helpers_openai_server import Reply, openai_server  # noqa: F401  (the fixture)

GOOD = '{"intervals": [{"start": 2, "end": 4, "score": 0.9}]}'
STALL = 1.0  # the server's delay on the stalled request; the clients' timeout is well under it
TIMEOUT = 0.2


@pytest.fixture(autouse=True)
def fresh_shared_limiters(monkeypatch):
    monkeypatch.setattr(ratelimit, "_SHARED", {})


@pytest.fixture()
def transcript():
    return Transcript.from_descriptions([FrameDescription(t=t * 2.0, text=f"scene {t}") for t in range(5)])


def _reasoner(server, **kw) -> OpenAIReasoner:
    return OpenAIReasoner("m", base_url=server.base_url, api_key="sk-test", timeout=TIMEOUT, max_retries=4,
                          retry_base_delay=0.001, response_formats=["text"], **kw)


def _describer(server, **kw) -> OpenAIDescriber:
    return OpenAIDescriber("m", base_url=server.base_url, api_key="sk-test", timeout=TIMEOUT, max_retries=4,
                           retry_base_delay=0.001, **kw)


def _frame() -> Frame:
    return Frame(t=1.0, index=0, image=np.zeros((32, 32, 3), dtype=np.uint8))


def test_the_reasoner_resends_a_stalled_request_when_told_and_keeps_the_answer(openai_server, transcript):  # noqa: F811
    openai_server.script(Reply.chat(GOOD, delay=STALL), Reply.chat(GOOD))
    res = _reasoner(openai_server, timeout_retries=1).ground("a scene", transcript)
    assert len(openai_server.requests) == 2
    assert [(iv.start, iv.end) for iv in res.intervals] == [(2.0, 4.0)]
    assert res.usage["reason"].requests == 1 and res.usage["reason"].retried == 1


def test_the_reasoner_without_the_option_keeps_the_loopback_default(openai_server, transcript):  # noqa: F811
    openai_server.script(Reply.chat(GOOD, delay=STALL), Reply.chat(GOOD))
    with pytest.raises(ProviderError, match="timed out") as info:
        _reasoner(openai_server).ground("a scene", transcript)
    assert len(openai_server.requests) == 1 and info.value.attempts == 1
    assert "timeout_retries=N" in str(info.value)  # the error names the option for a tunnel


def test_the_describer_resends_a_stalled_request_when_told_and_keeps_the_answer(openai_server):  # noqa: F811
    openai_server.script(Reply.chat("a red door", delay=STALL), Reply.chat("a red door"))
    d = get_describer("openai:m", base_url=openai_server.base_url, api_key="sk-test", timeout=TIMEOUT,
                      max_retries=4, retry_base_delay=0.001, timeout_retries=1)  # as --describer-opt gives it
    desc = d.describe_frame(_frame())
    assert len(openai_server.requests) == 2 and desc.text == "a red door"
    assert desc.usage.requests == 1 and desc.usage.retried == 1


def test_the_describer_without_the_option_keeps_the_loopback_default(openai_server):  # noqa: F811
    openai_server.script(Reply.chat("a red door", delay=STALL), Reply.chat("a red door"))
    with pytest.raises(ProviderError, match="timed out"):
        _describer(openai_server).describe_frame(_frame())
    assert len(openai_server.requests) == 1


def test_timeout_retries_counts_within_max_retries(openai_server, transcript):  # noqa: F811
    """Two stalls, one timeout retry allowed: the second stall is the error, after 2 requests (not 5)."""
    openai_server.script(*[Reply.chat(GOOD, delay=STALL)] * 2, Reply.chat(GOOD))
    with pytest.raises(ProviderError, match="gave up after 2 attempts"):
        _reasoner(openai_server, timeout_retries=1).ground("a scene", transcript)
    assert len(openai_server.requests) == 2


@pytest.mark.parametrize("value", [-1, 1.5, "2", True, [1]])
@pytest.mark.parametrize("make", [get_reasoner, get_describer])
def test_a_bad_timeout_retries_is_a_configuration_error_naming_it(make, value):
    with pytest.raises(ConfigurationError, match="timeout_retries must be a non-negative integer"):
        make("openai:m", base_url="http://127.0.0.1:9/v1", api_key="sk-test", timeout_retries=value)


@pytest.mark.parametrize("make", [get_reasoner, get_describer])
def test_timeout_retries_above_max_retries_is_refused(make):
    with pytest.raises(ConfigurationError, match="timeout_retries=3 is more than max_retries=1"):
        make("openai:m", base_url="http://127.0.0.1:9/v1", api_key="sk-test", max_retries=1, timeout_retries=3)
    make("openai:m", base_url="http://127.0.0.1:9/v1", api_key="sk-test", max_retries=1, timeout_retries=None)


def _eval(tmp_path, server, *opts: str) -> int:
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=1)
    return cli("eval", "jsonl", "--dataset-file", ds, "--descriptions", desc, "--reasoner", "openai:m",
               "--reasoner-opt", f"base_url={server.base_url}", "--reasoner-opt", "api_key=sk-test",
               "--reasoner-opt", f"timeout={TIMEOUT}", "--reasoner-opt", "retry_base_delay=0.001",
               "--reasoner-opt", "response_formats=text", *opts,
               "--out", tmp_path / "run", "--no-report", "--quiet")


def test_eval_takes_timeout_retries_as_a_reasoner_option(tmp_path, openai_server):  # noqa: F811
    openai_server.script(Reply.chat(GOOD, delay=STALL), Reply.chat(GOOD))
    assert _eval(tmp_path, openai_server, "--reasoner-opt", "timeout_retries=1") == 0
    (row,) = [json.loads(ln) for ln in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert row["status"] == "ok" and len(openai_server.requests) == 2
    assert row["usage"]["reason"]["retried"] == 1

