"""A timeout of a server on this machine is not sent again (it is still working on the prompt); a remote one is
retried as before. Requests are counted, no time is measured."""

from __future__ import annotations

import openai
import pytest

from temporal_reasoner.openai_reasoner import OpenAIReasoner
from vidground.chat import call_with_retries, is_local
from vidground.errors import ConfigurationError, ProviderError
from temporal_reasoner.transcript import Transcript
from vidground.types import FrameDescription

from _helpers_openai_server import Reply, openai_server  # noqa: F401  (the fixture)

GOOD = '{"intervals": [{"start": 2, "end": 4, "score": 0.9}]}'


@pytest.fixture()
def transcript():
    return Transcript.from_descriptions([FrameDescription(t=t * 2.0, text=f"scene {t}") for t in range(5)])


def test_a_local_servers_timeout_is_sent_once_and_the_error_says_why(openai_server, transcript):  # noqa: F811
    """HEAD sent the same prompt 1 + max_retries times to a server still busy with the first (5 with the defaults)."""
    openai_server.responder = lambda req: Reply.chat(GOOD, delay=1.0)
    rsn = OpenAIReasoner("m", base_url=openai_server.base_url, api_key="sk-test", timeout=0.2, max_retries=4,
                         retry_base_delay=0.001, response_formats=["text"])
    with pytest.raises(ProviderError, match="timed out") as info:
        rsn.ground("a scene", transcript)
    assert len(openai_server.requests) == 1 and info.value.attempts == 1 and info.value.retryable
    message = str(info.value)
    assert "a timeout of a server on this machine is not sent again" in message
    assert "--reasoner-opt timeout=SECONDS" in message and openai_server.base_url.rstrip("/") in message


def test_other_faults_of_a_local_server_are_still_retried(openai_server, transcript):  # noqa: F811
    openai_server.script(Reply.error(503, "busy"), Reply.error(503, "busy"), Reply.chat(GOOD))
    rsn = OpenAIReasoner("m", base_url=openai_server.base_url, api_key="sk-test", max_retries=4,
                         retry_base_delay=0.001, response_formats=["text"])
    assert rsn.ground("a scene", transcript).intervals and len(openai_server.requests) == 3


def _timeouts(calls: list[int]):
    def fn():
        calls.append(1)
        raise openai.APITimeoutError(request=None)  # type: ignore[arg-type]
    return fn


def test_a_remote_timeout_is_retried_and_the_policy_is_configurable():
    calls: list[int] = []
    with pytest.raises(ProviderError, match="gave up after 5 attempts") as info:
        call_with_retries(_timeouts(calls), provider="p", max_retries=4, sleep=lambda s: None,
                          url="https://api.example.com/v1/chat/completions")
    assert len(calls) == 5 and "not sent again" not in str(info.value)
    calls.clear()  # a caller may send a local timeout again, a set number of times
    with pytest.raises(ProviderError, match="gave up after 3 attempts"):
        call_with_retries(_timeouts(calls), provider="p", max_retries=4, sleep=lambda s: None,
                          url="http://localhost:8080/v1/chat/completions", timeout_retries=2)
    assert len(calls) == 3
    calls.clear()  # or none to a remote one
    with pytest.raises(ProviderError, match="gave up after 1 attempt "):
        call_with_retries(_timeouts(calls), provider="p", max_retries=4, sleep=lambda s: None,
                          url="https://api.example.com/v1", timeout_retries=0)
    assert len(calls) == 1
    with pytest.raises(ConfigurationError, match="timeout_retries must be a non-negative integer"):
        call_with_retries(_timeouts(calls), provider="p", timeout_retries=-1)


@pytest.mark.parametrize("url, local", [("http://127.0.0.1:8080/v1", True), ("http://localhost/v1", True),
                                        ("http://[::1]:9000/v1", True), ("http://0.0.0.0:8000", True),
                                        ("http://127.3.2.1", True), ("https://api.openai.com/v1", False),
                                        ("http://10.0.0.5:8080/v1", False), ("not a url", False), (None, False)])
def test_is_local(url, local):
    assert is_local(url) is local
