"""A local OpenAI-compatible test server on 127.0.0.1 that records requests and injects faults.

    with FakeOpenAIServer() as server:
        server.script(Reply(status=429, headers={"Retry-After": "0"}), Reply.chat("hello"))
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test")
        ...
        server.requests[0].json  # the exact request body

Replies are taken from the script in order; when it is empty, ``responder(request)`` answers
(default: a chat completion saying "ok"). A :class:`Reply` can delay, drop the connection
without answering, close it after answering, or send a raw (malformed) body.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # a dict (sent as JSON) or str/bytes (sent raw)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False  # close the connection without an answer
    close_after: bool = False  # answer, then close the connection unannounced (an idle keep-alive timeout)

    @classmethod
    def chat(cls, text: str, *, finish_reason: str = "stop", prompt_tokens: int = 10, completion_tokens: int = 5,
             image_tokens: int | None = None, delay: float = 0.0) -> "Reply":
        usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                 "total_tokens": prompt_tokens + completion_tokens}
        if image_tokens is not None:
            usage["prompt_tokens_details"] = {"image_tokens": image_tokens, "cached_tokens": 0}
        return cls(body={
            "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": "test-model",
            "choices": [{"index": 0, "finish_reason": finish_reason,
                         "message": {"role": "assistant", "content": text}}],
            "usage": usage}, delay=delay)

    @classmethod
    def error(cls, status: int, message: str = "error", *, headers: dict[str, str] | None = None) -> "Reply":
        return cls(status=status, body={"error": {"message": message, "type": "test_error", "code": None}},
                   headers=headers or {})


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    json: Any
    t: float
    client_port: int = 0  # tells the client's connections apart


class FakeOpenAIServer:
    def __init__(self, responder: Callable[[Recorded], Reply] | None = None):
        self.responder = responder or (lambda req: Reply.chat("ok"))
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests being answered at once
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out without a 40 ms delayed-ACK stall

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                req = Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic(),
                               self.client_address[1])
                reply = server._next(req)
                try:
                    if reply.delay:
                        time.sleep(reply.delay)
                finally:
                    with server._lock:
                        server.in_flight -= 1
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                payload = reply.body if isinstance(reply.body, (str, bytes)) else json.dumps(reply.body)
                data = payload.encode() if isinstance(payload, str) else payload
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                    if reply.close_after:
                        self.wfile.flush()
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    def _next(self, req: Recorded) -> Reply:
        with self._lock:
            self.requests.append(req)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self._script:
                return self._script.popleft()
        return self.responder(req)

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "FakeOpenAIServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeOpenAIServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


#: a grounding answer: one interval, 10-14 s
GROUNDING_REPLY = '{"intervals": [{"start": 10, "end": 14, "score": 0.8}]}'


def serve_small_context(server: FakeOpenAIServer, *, limit_chars: int = 6000, limit_tokens: int = 2048,
                        reply: str = GROUNDING_REPLY) -> None:
    """Make ``server`` a model with a small context: any request whose messages hold more than ``limit_chars``
    characters is refused as vLLM and llama-cpp-python word it (a 400 stating ``limit_tokens`` as the context, a
    token per 3 characters requested); an events chunk ("part of the transcript from S") gets one event at S,
    any other request ``reply``."""
    def respond(req: Recorded) -> Reply:
        chars = sum(len(m["content"]) for m in req.json["messages"])
        if chars > limit_chars:
            return Reply.error(400, f"This model's maximum context length is {limit_tokens} tokens. However, you "
                                    f"requested {chars // 3} tokens ({chars // 3 - 512} in the messages, 512 in the "
                                    f"completion). Please reduce the length of the messages or completion.")
        part = re.search(r"part of the transcript from ([\d.]+)", req.json["messages"][-1]["content"])
        if part:
            return Reply.chat(json.dumps({"events": [{"start": float(part[1]), "end": float(part[1]) + 1,
                                                      "caption": "a person stands"}]}))
        return Reply.chat(reply)
    server.responder = respond


@pytest.fixture
def openai_server():
    with FakeOpenAIServer() as server:
        yield server
