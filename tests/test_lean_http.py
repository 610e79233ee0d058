"""The lean HTTP/1.1 client on the wire: framing (length, chunked, until close), interim
responses, keep-alive rules, and every way a reply can fail, sync and async alike."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import pytest

from vidground.errors import ConfigurationError, ProviderError
from vidground.lean_http import LeanTransport, TransportError, proxy_configured
from vidground.chat import lean_reply, map_error


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


def run_both(transport: LeanTransport, body: dict, *, use_async: bool, times: int = 1, pause: float = 0.0):
    """``times`` requests one after the other (async: all on one event loop); the replies, or the
    first TransportError."""
    if not use_async:
        out = []
        for i in range(times):
            if i and pause:
                time.sleep(pause)
            out.append(transport.post("/chat/completions", body))
        return out

    async def go():
        try:
            out = []
            for i in range(times):
                if i and pause:
                    await asyncio.sleep(pause)
                out.append(await transport.apost("/chat/completions", body))
            return out
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
        replies = run_both(t, {"model": "m", "text": "é"}, use_async=use_async, times=3)
        assert [json.loads(r.body) for r in replies] == [{"a": 1}, {"b": [1, 2, 3]}, {"c": 3}]
        assert replies[1].headers["transfer-encoding"] == "chunked" and replies[0].status == 200
        head, body = server.requests[0][1].split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        assert lines[0] == "POST /v1/chat/completions HTTP/1.1"
        assert "Authorization: Bearer sk-x" in lines and "Accept-Encoding: identity" in lines
        assert json.loads(body) == {"model": "m", "text": "é"}
        assert [n for n, _ in server.requests] == [1, 1, 1]  # kept alive through length and chunked framing
        server.replies.append(ok({"d": 4}))
        assert json.loads(run_both(t, {}, use_async=use_async)[0].body) == {"d": 4}
        assert server.requests[-1][0] == 2  # HTTP/1.0 without keep-alive: that connection was not reused
    finally:
        server.close()


@BOTH
def test_failures_are_transport_errors(use_async):
    server = RawServer((b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"short\"", "close"),
                       b"garbage\r\n\r\n", (b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\nabcdef", "close"),
                       (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", "close"), None)
    t = LeanTransport(server.url, {}, timeout=5)
    try:
        # cut short, not HTTP, a negative length, two lengths that disagree, closed without an
        # answer (a fresh connection each time: no resend)
        for _ in range(5):
            with pytest.raises(TransportError, match="connection failed") as info:
                run_both(t, {}, use_async=use_async)
            assert len(server.requests) == _ + 1
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


@BOTH
def test_idle_connections_closed_by_the_server_are_not_reused_and_nothing_is_sent_twice(use_async):
    # 1: answered, then a 408 and a close while idle; 2: a fresh connection; 3: read, never answered
    server = RawServer((ok({"n": 1}) + b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n", "close"),
                       ok({"n": 2}), None)
    t = LeanTransport(server.url, {}, timeout=5)
    try:
        replies = run_both(t, {}, use_async=use_async, times=2, pause=0.1)
        assert [json.loads(r.body) for r in replies] == [{"n": 1}, {"n": 2}]
        assert [n for n, _ in server.requests] == [1, 2]
        with pytest.raises(TransportError, match="connection failed"):
            run_both(t, {}, use_async=use_async)  # sent on a kept-alive connection, then dropped unanswered
        assert len(server.requests) == 3  # not resent: a request the server has read is the retry layer's call
    finally:
        server.close()


@pytest.mark.parametrize("without_poll", [False, True], ids=["poll", "select"])
def test_an_idle_connection_closed_by_the_server_is_noticed_with_or_without_poll(without_poll, monkeypatch):
    # the sync pool's idle check; Windows has no select.poll(), and there it uses select.select()
    if without_poll:
        monkeypatch.delattr("select.poll")
    server = RawServer((ok({"n": 1}), "close"), ok({"n": 2}))
    t = LeanTransport(server.url, {}, timeout=5)
    try:
        replies = run_both(t, {}, use_async=False, times=2, pause=0.1)
        assert [json.loads(r.body) for r in replies] == [{"n": 1}, {"n": 2}]
        assert [n for n, _ in server.requests] == [1, 2]  # the closed connection was not written to
    finally:
        server.close()


@pytest.mark.parametrize("timeout", [0, -1, float("inf"), float("nan"), True, "5"])
def test_a_timeout_must_be_a_positive_finite_number(timeout):
    with pytest.raises(ConfigurationError, match="positive, finite"):
        LeanTransport("http://127.0.0.1:1/v1", {}, timeout=timeout)


def test_urls_and_headers_that_cannot_be_sent_faithfully_are_refused_without_echoing_them():
    for headers in ({"Authorization": "Bearer sk-SECRET\n"}, {"X-A": "a\r\nX-Injected: 1"}):
        with pytest.raises(ConfigurationError) as info:
            LeanTransport("http://127.0.0.1:1/v1", headers, timeout=1)
        assert "SECRET" not in str(info.value) and "Injected" not in str(info.value)
    for url in ("http://127.0.0.1:1/v1?api-version=2", "http://127.0.0.1:1/my models/v1", "ftp://h/v1"):
        with pytest.raises(ConfigurationError):
            LeanTransport(url, {}, timeout=1)
    t = LeanTransport("https://[::1]:8443/base/v1/", {}, timeout=1)
    assert (t.host, t.port, t.prefix, t._host_header) == ("::1", 8443, "/base/v1", "[::1]:8443")


def test_replies_read_like_the_sdk_path():
    from vidground.lean_http import Reply

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
    # a Retry-After sent twice arrives joined ("5, 5"); an HTTP date; garbage is no hint, not a crash
    for value, expected in (("5, 5", 5.0), ("2", 2.0), ("soon", None), ("nan", None)):
        with pytest.raises(ProviderError) as info:
            lean_reply(Reply(503, {"retry-after": value}, b"busy"), provider="p")
        assert info.value.retryable and info.value.retry_after == expected, value
    with pytest.raises(ProviderError) as info:
        lean_reply(Reply(429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, b"busy"), provider="p")
    assert info.value.retry_after == 0.0  # a date in the past: no wait


@BOTH
def test_a_length_sent_twice_with_one_value_is_read(use_async):
    server = RawServer(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nContent-Length: 8\r\n\r\n{\"a\": 1}")
    t = LeanTransport(server.url, {}, timeout=5)
    try:
        assert json.loads(run_both(t, {}, use_async=use_async)[0].body) == {"a": 1}
    finally:
        server.close()


def test_proxy_rules(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert not proxy_configured("https")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    assert proxy_configured("https") and not proxy_configured("http")
    monkeypatch.setenv("NO_PROXY", ".openai.com")  # read differently by httpx and urllib: the SDK decides
    assert proxy_configured("https")
    monkeypatch.setenv("ALL_PROXY", "http://proxy:3128")
    assert proxy_configured("http")
    monkeypatch.setenv("NO_PROXY", "*")
    assert not proxy_configured("http") and not proxy_configured("https")
