"""The lean HTTP/1.1 client on the wire: framing (length, chunked, until close), interim
responses, keep-alive rules, and every way a reply can fail, sync and async alike."""

from __future__ import annotations

import asyncio
import json
import socket
import threading

import pytest

from frame_describer.errors import ProviderError
from frame_describer.lean_http import LeanTransport, TransportError, proxy_applies
from frame_describer.openai_client import lean_reply, map_error


class RawServer:
    """Accepts connections on 127.0.0.1 and answers each request with the next scripted raw bytes
    (``None``: close without answering; ``(bytes, "close")``: answer, then close); records the
    request bytes and the connection each came on."""

    def __init__(self, *replies: bytes | tuple[bytes, str] | None):
        self.replies = list(replies)
        self.requests: list[tuple[int, bytes]] = []  # (connection number, head + body)
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._conns = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self._conns += 1
                number = self._conns
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, rest = buf.partition(b"\r\n\r\n")
                length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                while len(rest) < length:
                    rest += conn.recv(65536)
                buf = rest[length:]
                with self._lock:
                    self.requests.append((number, head + b"\r\n\r\n" + rest[:length]))
                    reply = self.replies.pop(0) if self.replies else None
                if reply is None:
                    return
                close = isinstance(reply, tuple)
                reply = reply[0] if isinstance(reply, tuple) else reply
                conn.sendall(reply)
                if close or b"connection: close" in reply.lower() or b"HTTP/1.0" in reply.split(b"\r\n", 1)[0]:
                    return

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self._sock.close()


def ok(body: dict, *, extra: str = "") -> bytes:
    data = json.dumps(body).encode()
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n{extra}\r\n"
            ).encode() + data


def chunked(body: dict) -> bytes:
    data = json.dumps(body).encode()
    parts = [data[:5], data[5:]]
    return (b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\nX-Trailer: t\r\n\r\n")


def run_both(transport: LeanTransport, body: dict, *, use_async: bool):
    if not use_async:
        return transport.post("/chat/completions", body)

    async def go():
        try:
            return await transport.apost("/chat/completions", body)
        finally:
            await transport.aclose()
    return asyncio.run(go())


BOTH = pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])


@BOTH
def test_framings_interim_replies_and_the_request_itself(use_async):
    server = RawServer(ok({"a": 1}), chunked({"b": [1, 2, 3]}),
                       b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"c\": 3}")
    t = LeanTransport(server.url, {"Authorization": "Bearer sk-x", "Content-Type": "application/json"}, timeout=5)
    try:
        replies = []
        for _ in range(3):
            replies.append(run_both(t, {"model": "m", "text": "é"}, use_async=use_async))
        assert [json.loads(r.body) for r in replies] == [{"a": 1}, {"b": [1, 2, 3]}, {"c": 3}]
        assert replies[1].headers["transfer-encoding"] == "chunked" and replies[0].status == 200
        head, body = server.requests[0][1].split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        assert lines[0] == "POST /v1/chat/completions HTTP/1.1"
        assert "Authorization: Bearer sk-x" in lines and json.loads(body) == {"model": "m", "text": "é"}
        if not use_async:  # one kept-alive connection for the first two; HTTP/1.0 closes after its reply
            assert [n for n, _ in server.requests] == [1, 1, 1]
    finally:
        server.close()


@BOTH
def test_failures_are_transport_errors(use_async):
    server = RawServer((b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"short\"", "close"),
                       b"garbage\r\n\r\n", None)
    t = LeanTransport(server.url, {}, timeout=5)
    try:
        for _ in range(3):  # cut short, not HTTP, closed without an answer (a fresh connection: no resend)
            with pytest.raises(TransportError, match="connection failed") as info:
                run_both(t, {}, use_async=use_async)
            assert not info.value.timeout
            mapped = map_error(info.value, provider="p")
            assert isinstance(mapped, ProviderError) and mapped.retryable
    finally:
        server.close()
    hang = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    try:
        slow = LeanTransport(f"http://127.0.0.1:{hang.getsockname()[1]}", {}, timeout=0.3)
        with pytest.raises(TransportError, match="timed out") as info:
            run_both(slow, {}, use_async=use_async)
        assert info.value.timeout
    finally:
        hang.close()


def test_replies_read_like_the_sdk_path():
    from frame_describer.lean_http import Reply

    err = {"error": {"message": "slow down", "type": "rate"}}
    with pytest.raises(ProviderError, match="HTTP 429: slow down") as info:
        lean_reply(Reply(429, {"retry-after": "2"}, json.dumps(err).encode()), provider="p")
    assert info.value.retryable and info.value.retry_after == 2.0 and info.value.status == 429
    with pytest.raises(ProviderError, match="HTTP 400: .*bad") as info:
        lean_reply(Reply(400, {}, b"bad request, plain text"), provider="p")
    assert not info.value.retryable
    with pytest.raises(ProviderError, match="key \\*\\*\\*") as info:
        lean_reply(Reply(401, {}, json.dumps({"error": {"message": "key sk-SECRET1 is wrong"}}).encode()),
                   provider="p", secret="sk-SECRET1")
    with pytest.raises(ProviderError, match="malformed") as info:
        lean_reply(Reply(200, {"content-type": "application/json"}, b"{'x':"), provider="p")
    assert info.value.retryable
    with pytest.raises(ProviderError, match="not a JSON object") as info:
        lean_reply(Reply(200, {"content-type": "text/html"}, b"<html>proxy login</html>"), provider="p")
    assert not info.value.retryable
    assert lean_reply(Reply(200, {}, b'{"choices": []}'), provider="p") == {"choices": []}


def test_proxy_rules(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert not proxy_applies("https", "api.openai.com")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    assert proxy_applies("https", "api.openai.com") and not proxy_applies("http", "localhost")
    monkeypatch.setenv("NO_PROXY", "openai.com,localhost")
    assert not proxy_applies("https", "api.openai.com")
    monkeypatch.setenv("ALL_PROXY", "http://proxy:3128")
    assert proxy_applies("http", "example.org") and not proxy_applies("http", "localhost")
