"""A Ctrl-C never throws away a describer's paid answers (task K).

Every request an API describer begins is paid. When the thread reading its stream got a Ctrl-C (``vidground
describe``/``ground``/``ask``, Python's ``describe``/``ground``/Session), the stream waited for the requests in
flight and dropped their answers, while the command line said they were kept: the repro's server got 8 requests
and the cache held 2. Now every answer that comes during that wait reaches the description cache (through the
skip-unchanged and motion wrappers too), a rerun sends no request for those frames, the command line says how
many descriptions it kept, and a second Ctrl-C still ends the wait at once. The transformers describer keeps the
rest of a batch it had written.

The tests count: requests the local server received against descriptions cached, and the requests of a rerun. The
Ctrl-C comes at a counted point: after N descriptions were handed over, or once every request slot holds a request.
"""

from __future__ import annotations

import base64
import signal
import threading
import time
from collections.abc import Callable
from concurrent import futures

import cv2
import numpy as np
import pytest

from _helpers_openai_server import FakeOpenAIServer, Reply
from frame_describer import openai_describer
from frame_describer.cache import CachedDescriber, DescriptionCache
from frame_describer.motion import MotionDescriber
from frame_describer.openai_describer import OpenAIDescriber
from frame_describer.skip import SkipUnchanged
from vidground.types import Frame

N = 2  # descriptions handed over before the Ctrl-C
FRAMES = 20


def frame(k: int) -> Frame:
    return Frame(t=float(k), index=k, image=np.full((16, 16, 3), 10 * k, np.uint8))


def index_of(req) -> int:
    """Which ``frame(k)`` a request sent (its grey level over ten)."""
    url = req.json["messages"][0]["content"][1]["image_url"]["url"]
    image = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_GRAYSCALE)
    return round(float(image.mean()) / 10)


def until(condition: Callable[[], bool]) -> bool:
    """Wait for a condition another thread makes true (at most 10 s); the caller asserts it."""
    deadline = time.monotonic() + 10
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)
    return condition()


def describer(server: FakeOpenAIServer, concurrency: int = 4) -> OpenAIDescriber:
    return OpenAIDescriber("test-model", base_url=server.base_url, api_key="sk-test", concurrency=concurrency,
                           prices=False)


@pytest.fixture
def on_wait(monkeypatch):
    """``hook(futures)`` runs when a stream that stopped begins its wait for the requests in flight."""
    hooks: list[Callable] = []

    real_wait = openai_describer.wait_all

    def wait_all(fs):
        fs = list(fs)
        for hook in hooks:
            hook(fs)
        return real_wait(fs)

    monkeypatch.setattr(openai_describer, "wait_all", wait_all)
    return hooks


def held_after(n: int, gate: threading.Event, answered: list[int] | None = None) -> Callable:
    """Answer frames below ``n`` at once; hold the others until ``gate`` is set."""
    def respond(req):
        k = index_of(req)
        if k >= n:
            gate.wait(10)
        if answered is not None:
            answered.append(k)
        return Reply.chat(f"frame {k}")
    return respond


@pytest.mark.parametrize("wrap", [None, SkipUnchanged, MotionDescriber], ids=["plain", "skip-unchanged", "motion"])
def test_a_ctrl_c_in_the_reader_keeps_every_answer_in_flight_and_a_rerun_pays_for_none(tmp_path, on_wait, wrap):
    """The repro: the reader's Ctrl-C after two descriptions, with every request slot busy; the answers come while
    the stream waits for them. HEAD cached 2 of the 6 requests; a rerun sent them again. Also with the wrappers
    that may sit between the describer and the cache."""
    gate = threading.Event()
    on_wait.append(lambda fs: gate.set())  # the answers come during the wait
    cache = DescriptionCache(tmp_path / "c.sqlite")
    with FakeOpenAIServer(held_after(N, gate)) as server:
        inner = describer(server)
        cached = CachedDescriber(inner if wrap is None else wrap(inner), cache, fingerprint="v")
        got = 0
        with pytest.raises(KeyboardInterrupt):
            for _ in cached.describe(frame(k) for k in range(FRAMES)):
                got += 1
                if got == N:
                    assert until(lambda: len(server.requests) == N + 4)  # frames 2-5 in flight, one per slot
                    raise KeyboardInterrupt  # the user's Ctrl-C, in the thread reading the stream
        first = sorted(index_of(r) for r in server.requests)
        assert first == list(range(N + 4))
        assert cache.count() == len(first)  # every request paid is kept
        assert sorted(cache.lookup("v", cached.key, [float(k) for k in range(FRAMES)])) == [float(k) for k in first]
        gate.set()
        again = list(CachedDescriber(describer(server) if wrap is None else wrap(describer(server)), cache,
                                     fingerprint="v").describe(frame(k) for k in range(FRAMES)))
        assert len(again) == FRAMES
        # the motion wrapper compares each frame with the one before: the last cached frame is sent again before
        # the first miss (its description dropped, CachedDescriber.primed), so the miss's motion is measured as a
        # fresh run measures it; the inner describer is paid for it once more
        primed = [N + 3] if wrap is MotionDescriber else []
        assert sorted(index_of(r) for r in server.requests[len(first):]) == primed + list(range(N + 4, FRAMES))


def test_a_second_ctrl_c_ends_the_wait_at_once_and_keeps_what_came_before_it(tmp_path, on_wait):
    """The first Ctrl-C (thrown into the stream where the reader stopped) waits for the two requests in flight; the
    second, once one of them has answered, ends the wait at once: the other is still unanswered when the stream
    has stopped, and the one that answered is in the cache (HEAD waited for both and kept neither)."""
    gate_a, gate_b, answered = threading.Event(), threading.Event(), []

    def respond(req):
        k = index_of(req)
        if k == N:
            gate_a.wait(10)  # A: answers only after the test ends
        elif k == N + 1:
            gate_b.wait(10)  # B: answers once the stream waits
        answered.append(k)
        return Reply.chat(f"frame {k}")

    def second_ctrl_c(fs):
        gate_b.set()
        futures.wait(fs, return_when=futures.FIRST_COMPLETED)  # B's answer is in
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # the user presses Ctrl-C again
        time.sleep(1)  # the KeyboardInterrupt is raised here, or at the latest in the wait that follows

    on_wait.append(second_ctrl_c)
    cache = DescriptionCache(tmp_path / "c.sqlite")
    with FakeOpenAIServer(respond) as server:
        cached = CachedDescriber(describer(server, concurrency=2), cache, fingerprint="v")
        stream = cached.describe(frame(k) for k in range(FRAMES))
        assert [next(stream).text for _ in range(N)] == ["frame 0", "frame 1"]
        assert until(lambda: len(server.requests) == N + 2)  # A and B sent, one per slot
        with pytest.raises(KeyboardInterrupt):
            stream.throw(KeyboardInterrupt())  # the first Ctrl-C
        assert cache.count() == N + 1  # B, answered before the second Ctrl-C, is kept
        assert sorted(answered) == [0, 1, N + 1]  # A is still out: the stream did not wait for it
        assert sorted(cache.lookup("v", cached.key, [float(k) for k in range(FRAMES)])) == [0.0, 1.0, N + 1.0]
        gate_a.set()


class CtrlCOnceSlotsAreFull:
    """A responder that answers the first ``first`` requests at once and holds the others until the Ctrl-C has
    been heard (``heard``: set once the stream waits for the requests in flight), sending
    SIGINT to the main thread once every one of the ``slots`` request slots holds a request: the stream can take
    nothing more then, and the requests held are in flight at the Ctrl-C."""

    def __init__(self, first: int, slots: int, heard: threading.Event):
        self.first, self.slots, self.heard = first, slots, heard
        self.lock, self.arrived, self.held = threading.Lock(), 0, 0
        self.main = threading.main_thread().ident

    def __call__(self, req):
        with self.lock:
            self.arrived += 1
            hold = self.arrived > self.first
            self.held += hold
            full = hold and self.held == self.slots
        if full:
            signal.pthread_kill(self.main, signal.SIGINT)
        if hold:
            self.heard.wait(10)
        return Reply.chat(f"a frame ({self.arrived})")


def test_a_sigint_during_describe_keeps_the_answers_in_flight_and_says_how_many(tmp_path, capsys, monkeypatch,
                                                                                  on_wait):
    """``vidground describe`` with the OpenAI describer: a SIGINT once 4 frames were answered and 3 more requests
    are out. The command said the frames described were kept, and the cache held 4 of 7 requests paid (the rerun
    paid for 3 again); now it holds all 7, says so, and the rerun sends only the 23 frames never sent."""
    from _helpers_eval import render_toy_videos
    from pipelines.cli import main

    monkeypatch.delenv("VIDGROUND_CACHE", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    video = render_toy_videos(tmp_path / "videos", ["v"], n_frames=30, fps=10.0) / "v.mp4"
    cache = tmp_path / "c.sqlite"
    heard = threading.Event()
    on_wait.append(lambda fs: heard.set())  # the answers come while the stream waits for them
    with FakeOpenAIServer(CtrlCOnceSlotsAreFull(4, 3, heard)) as server:
        argv = ["describe", str(video), "--describer", "openai:test-model", "--base-url", server.base_url,
                "--describer-opt", "concurrency=3", "--describer-opt", "prices=false", "--fps", "10",
                "--cache", str(cache), "-o", str(tmp_path / "v.jsonl")]
        assert main(argv) == 130
        err = capsys.readouterr().err
        sent = len(server.requests)
        # 7 are out when the SIGINT comes; on a busy machine the feeder may begin one more before the stop reaches
        # it: whatever was sent is paid, and every one of them must be cached and counted
        assert 7 <= sent <= 7 + 3
        assert DescriptionCache(cache).count() == sent
        assert "vidground: stopping: the frames being described finish first and are kept" in err
        assert f"kept in the description cache {cache} ({sent} new description(s) stored by this command)" in err
        server.responder = lambda req: Reply.chat("a frame")
        assert main(argv) == 0
        assert len(server.requests) - sent == 30 - sent
        assert "wrote 30 descriptions" in capsys.readouterr().err


def test_a_sigint_during_a_session_describe_with_skip_and_motion_keeps_them_too(tmp_path, on_wait):
    """The Python path, as Session builds it (the cache inside skip-unchanged and the motion stream), with
    Python's own Ctrl-C handler: the KeyboardInterrupt comes out of describe() and every request paid is cached."""
    from _helpers_eval import render_toy_videos
    from pipelines.session import Session

    video = render_toy_videos(tmp_path / "videos", ["v"], n_frames=30, fps=10.0) / "v.mp4"
    heard = threading.Event()
    on_wait.append(lambda fs: heard.set())  # the answers come while the stream waits for them
    with FakeOpenAIServer(CtrlCOnceSlotsAreFull(4, 3, heard)) as server:
        def session() -> Session:
            return Session(describer=describer(server, concurrency=3), cache=tmp_path / "c.sqlite",
                           sampling={"fps": 10}, skip_unchanged=0.0, motion=True)

        with session() as s, pytest.raises(KeyboardInterrupt):
            s.describe(video)
        sent = len(server.requests)  # 7, or one more begun before the stop reached the feeder on a busy machine
        assert 7 <= sent <= 7 + 3 and DescriptionCache(tmp_path / "c.sqlite").count() == sent
        server.responder = lambda req: Reply.chat("a frame")
        with session() as s:
            assert len(s.describe(video).descriptions) == 30
        assert len(server.requests) - sent == 30 - sent
