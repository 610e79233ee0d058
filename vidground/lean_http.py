"""A lean HTTP/1.1 JSON client for the describer's hot path: one POST per frame.

Why: through the OpenAI SDK (request options, httpx, response wrappers) a chat request costs
more CPU than the request itself needs, and against a fast server (vLLM serving a small vision
model answers in tens of milliseconds) that client work, not the server, bounds throughput while
it competes with decoding. ``python benchmarks/stage1_throughput.py --diagnose`` measures the
describer's CPU per frame through both. Here a request is one write of prebuilt bytes (blocking
sockets for threads, asyncio streams for event loops) and the reply is read by one parser for
both (:func:`_read_reply`). (An earlier version used ``http.client``: it cost about 0.1 ms more
per request when it was replaced, writing each header separately and parsing the reply's headers
through the ``email`` package.)

What it keeps from the SDK client it is built from: the base URL, every default header (auth,
organisation, project, user agent) and the timeout. It is used only for clients vidground built
itself, and never when a proxy is configured (``*_PROXY``; httpx reads ``NO_PROXY`` its own way):
there the SDK's own transport is used, as it is for a redirect or a compressed reply.
Connections are kept alive and pooled (one pool for threads, one per event loop); an idle
connection the server has closed is noticed before reuse, and a request that fails after it was
sent is *not* resent here: the caller's retry layer owns retries.

Errors are reported as :class:`TransportError` (timeout or connection failure) or a
:class:`Reply` with the status, headers and body; :mod:`vidground.chat` turns
both into the same :class:`~vidground.errors.ProviderError` the SDK path raises.
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
import ssl
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from .errors import ConfigurationError

_MAX_HEADER_BYTES = 64 * 1024
_MAX_IDLE = 64  # idle connections kept per pool


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


class TransportError(Exception):
    """The request got no complete reply: ``timeout`` True for a timeout, else a connection failure."""

    def __init__(self, message: str, *, timeout: bool = False):
        super().__init__(message)
        self.timeout = timeout


def proxy_configured(scheme: str) -> bool:
    """Whether the environment names a proxy for ``scheme`` (``*_PROXY``, as httpx reads them).

    Deliberately coarse: httpx and the standard library read ``NO_PROXY`` differently (a
    leading-dot domain, for one), so any configured proxy sends the requests through the SDK,
    which routes them exactly as the user's httpx would; only ``NO_PROXY=*`` turns proxies off.
    """
    proxies = urllib.request.getproxies_environment()
    if not (proxies.get(scheme) or proxies.get("all")):
        return False
    return proxies.get("no", "").strip() != "*"


def check_timeout(timeout: Any) -> None:
    """A request timeout must be a positive, finite number of seconds (a socket cannot wait forever)."""
    if isinstance(timeout, bool) or not (isinstance(timeout, (int, float)) and 0 < timeout < float("inf")):
        raise ConfigurationError(f"timeout must be a positive, finite number of seconds, got {timeout!r}")


def _safe_header(name: str, value: str) -> bool:
    return not any(c in name + value for c in "\r\n\0") and ":" not in name


def encode_json(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


class LeanTransport:
    """POST JSON to ``base_url + path`` with fixed headers; sync (any thread) and async (any loop)."""

    def __init__(self, base_url: str, headers: dict[str, str], *, timeout: float, ssl_context: Any = None):
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname or url.query or url.fragment \
                or quote(url.path, safe="/%:@!$&'()*+,;=-._~") != url.path:
            raise ConfigurationError("the lean transport needs a plain http(s) URL with no query")
        if not all(_safe_header(k, v) for k, v in headers.items()):  # never echo values: one is the key
            raise ConfigurationError("a header name or value holds a line break, NUL or colon")
        self.scheme, self.host = url.scheme, url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.prefix = url.path.rstrip("/")
        check_timeout(timeout)
        self.timeout = float(timeout)
        self._ssl = ssl_context if ssl_context is not None or url.scheme != "https" else ssl.create_default_context()
        host_header = self.host if ":" not in self.host else f"[{self.host}]"
        if url.port is not None:
            host_header += f":{url.port}"
        # names as the SDK spells them; Host, Content-Length and Accept-Encoding are ours (no
        # compressed bodies: the reply parser does not decode them)
        kept = {k: v for k, v in headers.items()
                if k.lower() not in ("host", "content-length", "accept-encoding", "connection")}
        self._head = "".join(f"{k}: {v}\r\n" for k, v in {**kept, "Accept-Encoding": "identity"}.items())
        self._host_header = host_header
        self._lock = threading.Lock()
        self._idle: list[_Connection] = []
        self._apools: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {}

    @classmethod
    def for_client(cls, client: Any, *, timeout: float, ssl_context: Any = None) -> "LeanTransport | None":
        """A transport equivalent to ``client`` (an ``openai.OpenAI`` vidground built), or None where
        only the SDK can do it faithfully (a proxy applies, a non-HTTP URL, non-string headers)."""
        try:
            url = urlsplit(str(client.base_url))
            if url.scheme not in ("http", "https") or not url.hostname or url.username or url.password:
                return None
            if proxy_configured(url.scheme):
                return None
            if getattr(client, "_provider_runtime", None) is not None or getattr(client, "workload_identity", None):
                return None  # credentials fetched per request: only the SDK knows how
            merged: dict[str, tuple[str, Any]] = {}  # the SDK's order: auth first, default headers override
            for k, v in [*client.auth_headers.items(), *client.default_headers.items()]:
                merged[k.lower()] = (k, v)
            headers: dict[str, str] = {}
            for k, v in merged.values():
                if isinstance(v, str):
                    headers[k] = v
                elif type(v).__name__ != "Omit":
                    return None
            return cls(str(client.base_url), headers, timeout=timeout, ssl_context=ssl_context)
        except Exception:  # an SDK shape, URL or header we cannot send faithfully: the SDK does the work
            return None

    def _request(self, path: str, data: bytes) -> bytes:
        return (f"POST {self.prefix + path} HTTP/1.1\r\nHost: {self._host_header}\r\n{self._head}"
                f"Content-Length: {len(data)}\r\n\r\n").encode("latin-1") + data

    # --- sync ---------------------------------------------------------------------------------

    def _connect(self, deadline: float) -> "_Connection":
        sock = socket.create_connection((self.host, self.port), timeout=_remaining(deadline))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.scheme == "https":
                sock.settimeout(_remaining(deadline))  # the handshake within what the connect left
                sock = self._ssl.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)

    def _take(self, deadline: float) -> tuple["_Connection", bool]:
        """(a connection, whether it was used before)."""
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if conn.alive():
                    return conn, True
                conn.close()
        return self._connect(deadline), False

    def _give_back(self, conn: "_Connection") -> None:
        with self._lock:
            if len(self._idle) < _MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def post(self, path: str, body: Any) -> Reply:
        """POST ``body`` as JSON; the reply whatever its status. Raises :class:`TransportError`.
        ``timeout`` bounds the whole exchange, as in :meth:`apost`."""
        request = self._request(path, encode_json(body))
        deadline = time.monotonic() + self.timeout
        conn = None
        try:
            conn, reused = self._take(deadline)
            try:
                conn.send(request, deadline)
            except (BrokenPipeError, ConnectionResetError):
                if not reused:
                    raise
                # A kept-alive connection the server had closed (its idle timeout) refused the
                # request while it was being written, so the server cannot have acted on it:
                # write it once more on a fresh connection. A failure after the request was
                # written is the retry layer's to judge, never resent here.
                conn.close()
                conn = self._connect(deadline)
                conn.send(request, deadline)
            conn.reader.deadline = deadline
            reply, keep = _run_now(_read_reply(conn.reader))
        except BaseException as exc:
            if conn is not None:
                conn.close()
            err = _transport_error(exc)
            if err is exc:
                raise
            raise err from None
        if keep:
            self._give_back(conn)
        else:
            conn.close()
        return reply

    def close(self) -> None:
        """Close the idle connections (sync and, where their loop is closed, async); the
        transport stays usable and opens new ones on demand."""
        with self._lock:
            idle, self._idle = self._idle, []
            pools = [(loop, conns) for loop, conns in self._apools.items() if loop.is_closed()]
            for loop, _ in pools:
                del self._apools[loop]
        for conn in idle:
            conn.close()
        for _, conns in pools:
            for _, writer in conns:
                _drop(writer)

    # --- async --------------------------------------------------------------------------------

    def _apool(self) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        loop = asyncio.get_running_loop()
        with self._lock:
            for old in [lp for lp in self._apools if lp.is_closed()]:  # connections of finished loops
                for _, writer in self._apools.pop(old):
                    _drop(writer)
            return self._apools.setdefault(loop, [])

    async def _aopen(self, reuse: bool = True) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        """(reader, writer, whether the connection was used before)."""
        pool = self._apool() if reuse else []
        while pool:
            reader, writer = pool.pop()
            # usable when open and silent: bytes waiting on an idle connection (a 408 before a
            # close, stray data) mean it is not in a state to carry a new request
            if not reader.at_eof() and not writer.is_closing() and not getattr(reader, "_buffer", b""):
                return reader, writer, True
            _drop(writer)
        if self.scheme == "https":
            reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self._ssl,
                                                           server_hostname=self.host, limit=_MAX_HEADER_BYTES)
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=_MAX_HEADER_BYTES)
        return reader, writer, False

    async def apost(self, path: str, body: Any) -> Reply:
        """Async twin of :meth:`post` (connections belong to the running event loop)."""
        request = self._request(path, encode_json(body))
        writer = None
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer, reused = await self._aopen()
                try:
                    writer.write(request)
                    await writer.drain()
                except ConnectionError:
                    if not reused:
                        raise
                    _drop(writer)  # refused while being written (closed while idle): once more, fresh
                    writer = None
                    reader, writer, _ = await self._aopen(reuse=False)
                    writer.write(request)
                    await writer.drain()
                reply, keep = await _read_reply(reader)
        except BaseException as exc:  # failed or cancelled mid-request: the connection's state is unknown
            if writer is not None:
                _drop(writer)
            err = _transport_error(exc)
            if err is exc:
                raise
            raise err from None
        pool = self._apool()
        if keep and len(pool) < _MAX_IDLE:
            pool.append((reader, writer))
        else:
            writer.close()
        return reply

    async def aclose_loop(self) -> None:
        """Close the running loop's idle connections (call before the loop ends: connections
        left to a closed loop are only shut down, and their sockets closed when collected)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            conns = self._apools.pop(loop, [])
        for _, writer in conns:
            writer.close()
        for _, writer in conns:
            try:
                await writer.wait_closed()
            except OSError:
                pass

    async def aclose(self) -> None:
        """Close the running loop's idle connections, and the sync ones."""
        await self.aclose_loop()
        self.close()


def _drop(writer: asyncio.StreamWriter) -> None:
    """Close a connection at once, also one whose event loop has already closed (then the
    socket is shut down here and its file closed when the transport is collected)."""
    try:
        writer.transport.abort()
    except RuntimeError:  # "Event loop is closed"
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _transport_error(exc: BaseException) -> BaseException:
    """What a failed exchange raises: TransportError for timeouts and connection failures (a
    malformed reply included), anything else (a cancellation, a bug) as it was."""
    if isinstance(exc, TimeoutError):  # before OSError, of which it is a subclass
        return TransportError("the request timed out", timeout=True)
    if isinstance(exc, (OSError, EOFError, ValueError, asyncio.LimitOverrunError, asyncio.IncompleteReadError)):
        return TransportError(f"connection failed ({type(exc).__name__})")
    return exc


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the request timed out")
    return left


class _SocketReader:
    """The part of :class:`asyncio.StreamReader` that :func:`_read_reply` uses, over a blocking
    socket: its coroutines never suspend (each read blocks until ``deadline``), so the one
    parser serves threads too (see :func:`_run_now`)."""

    def __init__(self, sock: socket.socket):
        self.sock, self.buffer, self.deadline = sock, bytearray(), float("inf")

    def _fill(self) -> bool:
        self.sock.settimeout(_remaining(self.deadline))
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def _eof(self, expected: int | None) -> asyncio.IncompleteReadError:
        partial = bytes(self.buffer)
        self.buffer.clear()
        return asyncio.IncompleteReadError(partial, expected)

    async def readuntil(self, separator: bytes) -> bytes:
        start = 0
        while (found := self.buffer.find(separator, start)) < 0:
            if len(self.buffer) > _MAX_HEADER_BYTES:
                raise asyncio.LimitOverrunError("no end of the response head within the limit", len(self.buffer))
            start = max(0, len(self.buffer) - len(separator) + 1)
            if not self._fill():
                raise self._eof(None)
        end = found + len(separator)
        out = bytes(self.buffer[:end])
        del self.buffer[:end]
        return out

    async def readexactly(self, n: int) -> bytes:
        if n < 0:  # as asyncio's reader
            raise ValueError("readexactly size can not be less than zero")
        while len(self.buffer) < n:
            if not self._fill():
                raise self._eof(n)
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out

    async def read(self) -> bytes:
        while self._fill():
            pass
        out = bytes(self.buffer)
        self.buffer.clear()
        return out


class _Connection:
    """A kept-alive blocking connection and its read buffer."""

    def __init__(self, sock: socket.socket):
        self.sock, self.reader = sock, _SocketReader(sock)

    def send(self, data: bytes, deadline: float) -> None:
        self.sock.settimeout(_remaining(deadline))
        self.sock.sendall(data)

    def alive(self) -> bool:
        """An idle connection is usable when it is open and silent: readable while idle means the
        server closed it or sent something unasked (a 408 before closing, stray bytes)."""
        if self.reader.buffer or (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
            return False
        try:
            if hasattr(select, "poll"):  # no descriptor-number limit
                poller = select.poll()
                poller.register(self.sock, select.POLLIN)
                return not poller.poll(0)
            return not select.select([self.sock], [], [], 0)[0]  # Windows has no poll()
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _run_now(coro: Any) -> Any:
    """Run a coroutine that never suspends (one reading a :class:`_SocketReader`) to its result."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("a blocking read suspended")  # pragma: no cover - _SocketReader never yields


class _NothingBack(ConnectionError):
    """The server closed the connection without sending a byte of a response."""


async def _read_reply(reader: Any) -> tuple[Reply, bool]:
    """One HTTP/1.1 response (interim 1xx responses skipped); (reply, connection reusable).
    ``reader``: an :class:`asyncio.StreamReader`, or a :class:`_SocketReader` (then run it with
    :func:`_run_now`)."""
    first = True
    while True:
        try:
            block = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if first and not exc.partial:
                raise _NothingBack("the server closed the connection without a response") from None
            raise
        first = False
        lines = block.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ValueError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        version, status = parts[0], int(parts[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise ValueError(f"malformed header line: {line[:80]!r}")
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if 100 <= status < 200:
            continue
        break
    connection = headers.get("connection", "").lower()
    keep = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    if status in (204, 304):
        return Reply(status, headers, b""), keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                break
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return Reply(status, headers, b"".join(chunks)), keep
    length = headers.get("content-length")
    if length is not None:
        values = {v.strip() for v in length.split(",")}  # a header sent twice arrives joined
        if len(values) != 1 or not (size := values.pop()).isdigit():
            raise ValueError(f"invalid Content-Length {length[:40]!r}")
        return Reply(status, headers, await reader.readexactly(int(size))), keep
    return Reply(status, headers, await reader.read()), False


__all__ = ["LeanTransport", "Reply", "TransportError", "check_timeout", "proxy_configured", "encode_json"]
