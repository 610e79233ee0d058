"""A describer stream its reader drops unclosed is closed at once (task O).

0110935 made a describer's stream a :class:`~frame_describer.base.DescriptionStream` whose generator held the
stream itself (to write ``unread`` and ``handed``): a reference cycle. A stream its reader dropped without
``close()`` (a ``break``, ``next()`` then nothing, an exception in the reader) was then closed only when the cyclic
GC ran, in any thread: meanwhile it went on sending paid requests and kept its threads, and when the GC ran in one
of the stream's own request threads, that thread waited for itself (the process never exited). The generator now
writes to a separate :class:`~frame_describer.base.StreamState`, so reference counting closes a dropped stream as
it closed the plain generator before 0110935. CachedDescriber's query-aware path closes the stream it passes on.

The tests run with the cyclic GC off (so only reference counting can close a stream), hold the requests after the
first two in the local server until the stream begins its wait for the requests in flight, and count: whether that
wait began when the reader let go, the requests the server received, the threads still alive.
"""

from __future__ import annotations

import gc
import queue
import signal
import threading
import time
import weakref
from collections.abc import Callable, Iterator

import pytest

from _helpers_openai_server import FakeOpenAIServer, Reply
from frame_describer.base import DescriptionStream
from frame_describer.cache import CachedDescriber, DescriptionCache
from frame_describer.motion import MotionDescriber
from frame_describer.openai_describer import OpenAIDescriber
from frame_describer.skip import SkipUnchanged
from test_k_interrupt_describers import FRAMES, N, frame, held_after, index_of, on_wait, until  # noqa: F401
from vidground.types import FrameDescription

CONCURRENCY = 4


@pytest.fixture
def no_cyclic_gc():
    """Only reference counting frees objects during the test; afterwards the GC collects what a failing run left."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
        gc.collect()


def new_threads(before: set[threading.Thread]) -> list[str]:
    return [t.name for t in threading.enumerate() if t not in before and t.name.startswith("vidground")
            and t.name != "vidground-interrupts"]  # the process's one Ctrl-C notifier, started by the first stream


def read_two_by_break(stream: Iterator[FrameDescription], ready: Callable[[], object]) -> None:
    for got, _ in enumerate(stream, 1):
        if got == N:
            ready()
            break  # a reader that stops early without close()


def read_two_by_next(stream: Iterator[FrameDescription], ready: Callable[[], object]) -> None:
    for _ in range(N):
        next(stream)
    ready()


class ReaderFailed(Exception):
    pass


def read_two_then_fail(stream: Iterator[FrameDescription], ready: Callable[[], object]) -> None:
    for got, _ in enumerate(stream, 1):
        if got == N:
            ready()
            raise ReaderFailed("the reader's own error, with the stream unclosed")


def read(reader: Callable, stream: Iterator[FrameDescription], server: FakeOpenAIServer | None = None) -> None:
    """``reader`` stops after N descriptions, once the server holds a request in each slot (one per frame after
    the N answered)."""
    try:
        reader(stream, lambda: server is None or until(lambda: len(server.requests) == N + CONCURRENCY))
    except ReaderFailed:
        pass


READERS = [read_two_by_break, read_two_by_next, read_two_then_fail]


@pytest.mark.parametrize("reader", READERS, ids=["break", "next", "exception"])
@pytest.mark.parametrize("wrap", [None, SkipUnchanged, MotionDescriber], ids=["plain", "skip-unchanged", "motion"])
def test_a_stream_dropped_unclosed_is_closed_when_its_reader_lets_go(no_cyclic_gc, on_wait, reader, wrap):
    """HEAD (0110935): the stream was alive after the reader let go (a cycle), its wait for the requests in flight
    never began, the held requests stayed held and its pool and feeder threads stayed alive until a gc.collect()."""
    gate = threading.Event()
    waits: list[int] = []
    on_wait.append(lambda fs: (waits.append(len(fs)), gate.set()))  # the held answers come during the wait
    before = set(threading.enumerate())
    with FakeOpenAIServer(held_after(N, gate)) as server:
        inner = OpenAIDescriber("test-model", base_url=server.base_url, api_key="sk-test", concurrency=CONCURRENCY,
                                prices=False)
        describer = inner if wrap is None else wrap(inner)
        stream = describer.describe(frame(k) for k in range(FRAMES))
        alive = weakref.ref(stream)
        read(reader, stream, server)
        del stream  # the reader's last reference
        try:
            assert alive() is None  # freed by reference counting: no cycle holds it
            assert waits == [CONCURRENCY]  # closed then and there: it waited for the requests in flight
            assert until(lambda: not new_threads(before)), new_threads(before)
            assert sorted(index_of(r) for r in server.requests) == list(range(N + CONCURRENCY))
        finally:
            gate.set()


def test_a_description_streams_generator_holds_no_reference_to_the_stream(no_cyclic_gc):
    """The body gets the stream's state, not the stream; the stream reads it back."""
    from frame_describer.base import StreamState  # new with this fix
    seen: list[object] = []
    d = FrameDescription(t=0.0, text="a")

    def body(out) -> Iterator[FrameDescription]:
        seen.append(out)
        out.handed = d
        yield d
        out.unread.append(FrameDescription(t=1.0, text="b"))

    stream = DescriptionStream(body)
    assert next(stream) == d
    assert isinstance(seen[0], StreamState) and stream.handed == d
    stream.close()  # the generator ends at its yield: no more appended
    assert stream.unread == []
    alive = weakref.ref(stream)
    del stream
    assert alive() is None


@pytest.mark.parametrize("reader", READERS, ids=["break", "next", "exception"])
def test_the_query_aware_cache_path_closes_the_stream_it_passes_on(no_cyclic_gc, on_wait, tmp_path, reader):
    """A query-aware API describer behind CachedDescriber (nothing is cached: the query is in the prompt): HEAD
    passed its stream through without closing it, so it went on (the reviewer's repro: 3 requests at the break,
    8 two seconds later, 4 threads alive)."""
    gate = threading.Event()
    waits: list[int] = []
    on_wait.append(lambda fs: (waits.append(len(fs)), gate.set()))
    before = set(threading.enumerate())
    with FakeOpenAIServer(held_after(N, gate)) as server:
        inner = OpenAIDescriber("test-model", base_url=server.base_url, api_key="sk-test", concurrency=CONCURRENCY,
                                prices=False, mode="aware")
        cached = CachedDescriber(inner, DescriptionCache(tmp_path / "c.sqlite"), fingerprint="v")
        try:
            read(reader, cached.describe((frame(k) for k in range(FRAMES)), query="a dog"), server)
            assert waits == [CONCURRENCY]
            assert until(lambda: not new_threads(before)), new_threads(before)
            assert sorted(index_of(r) for r in server.requests) == list(range(N + CONCURRENCY))
        finally:
            gate.set()


class _Kept:
    """A describer that keeps every stream it returns (as a caller holding it would) and records its closing."""

    name = "kept"
    mode = "aware"

    def __init__(self) -> None:
        self.streams: list[DescriptionStream] = []
        self.closed = 0

    def settings(self) -> dict:
        return {"name": self.name, "mode": self.mode}

    def describe(self, frames, *, query=None) -> Iterator[FrameDescription]:
        def body(out) -> Iterator[FrameDescription]:
            try:
                for f in frames:
                    out.handed = FrameDescription(t=f.t, text=f"{query} at {f.t}")
                    yield out.handed
            finally:
                self.closed += 1
        self.streams.append(DescriptionStream(body))
        return self.streams[-1]


def test_the_query_aware_path_closes_a_stream_that_something_else_still_holds(tmp_path):
    """Closing on the aware path does not rest on reference counting: a stream still referenced elsewhere is
    closed when the cached stream is (HEAD closed it never)."""
    kept = _Kept()
    cached = CachedDescriber(kept, DescriptionCache(tmp_path / "c.sqlite"), fingerprint="v")
    read(read_two_by_break, cached.describe((frame(k) for k in range(FRAMES)), query="a dog"))
    assert kept.closed == 1
    assert cached.calls == N
    assert cached.cache.count() == 0  # the aware path stores nothing


def test_a_second_ctrl_c_during_describe_exits_without_waiting_for_the_requests_still_held(tmp_path):
    """``vidground describe`` with two request slots held by the server: the first SIGINT waits for them, the
    second ends that wait, and the process exits while they are still held, having stored the five answered
    before. HEAD ended the wait too but exited only when the held requests ended (Python joins every
    ThreadPoolExecutor thread at exit): the reviewer's repro exited 21 s after the first SIGINT."""
    import os
    import subprocess
    import sys

    from _helpers_eval import render_toy_videos

    video = render_toy_videos(tmp_path / "videos", ["v"], n_frames=30, fps=10.0) / "v.mp4"
    gate, lock, arrived, late = threading.Event(), threading.Lock(), [0], []

    def respond(req):
        with lock:
            arrived[0] += 1
            k = arrived[0]
        if k > 5:
            gate.wait(60)  # held until the test ends
            late.append(k)
        return Reply.chat(f"frame {k}")

    with FakeOpenAIServer(respond) as server:
        env = {**os.environ, "OPENAI_API_KEY": "sk-test"}
        env.pop("VIDGROUND_CACHE", None)
        cmd = [sys.executable, "-c", "import sys; from pipelines.cli import main; sys.exit(main())", "describe",
               str(video), "--describer", "openai:test-model", "--base-url", server.base_url,
               "--describer-opt", "concurrency=3", "--describer-opt", "prices=false", "--fps", "10",
               "--cache", str(tmp_path / "c.sqlite"), "-o", str(tmp_path / "o.jsonl"), "--verbose"]
        # SIGINT at its default in the child, whatever this process inherited (a background job's is ignored, and
        # the command line keeps an ignored SIGINT ignored: the test would wait for a line that never comes)
        p = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        lines: "queue.Queue[str | None]" = queue.Queue()

        def read() -> None:
            for line in p.stderr:
                lines.put(line)
            lines.put(None)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            # five answered, one held in each slot; the child process starts, imports and decodes first: on a
            # loaded machine that took over the 10 s `until` allows (2 of 3 runs at load 8), so a 60-s bound here
            deadline = time.monotonic() + 60
            while len(server.requests) < 5 + 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(server.requests) == 5 + 3, len(server.requests)
            p.send_signal(signal.SIGINT)
            # the second only once the stream waits (two at once are one Ctrl-C: the second's KeyboardInterrupt
            # is raised inside the first's handler)
            seen = []
            while True:
                try:
                    line = lines.get(timeout=60)  # a bound, not a timing assertion: the line comes in well under 1 s
                except queue.Empty:
                    break
                if line is None:
                    break
                seen.append(line)
                if "request(s) in flight, paid" in line:
                    break
            heard = "".join(seen)
            assert "request(s) in flight, paid" in heard, heard
            p.send_signal(signal.SIGINT)
            try:
                code = p.wait(30)
            except subprocess.TimeoutExpired:
                code = None
            if code is not None:
                reader.join(10)
            rest = []
            while not lines.empty():
                rest.append(lines.get() or "")
            err = heard + "".join(rest)
            assert code == 130 and not gate.is_set() and late == [], err  # exited; the three still held
            assert "5 new description(s) stored by this command" in err
            assert DescriptionCache(tmp_path / "c.sqlite").count() == 5
        finally:
            gate.set()
            p.kill()
            p.wait()
            reader.join(10)
            p.stderr.close()
