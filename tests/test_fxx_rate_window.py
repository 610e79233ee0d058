"""The requests an endpoint's shared limiter let go still count once the last backend holding it closes: the next
limiter for that endpoint and key (a new session of a service, a second ``ground()``) starts with them in its window,
not empty. Before, rpm=2 let 4 requests go in 1.5 s across a close and a reopen. Paced on a fake clock: no wall time
is asserted."""

from __future__ import annotations

import functools
import threading
from concurrent.futures import CancelledError

import numpy as np
import pytest

from frame_describer import openai_describer
from vidground import ratelimit
from vidground.types import Frame

from _helpers_openai_server import Reply, openai_server  # noqa: F401
from test_openai_describer import FakeClock


class _Owner:
    """A backend's stand-in: what holds limits on a shared limiter."""


@pytest.fixture(autouse=True)
def no_shared_limiters(monkeypatch):
    monkeypatch.setattr(ratelimit, "_SHARED", {})
    monkeypatch.setattr(ratelimit, "_RECENT", {})


def _session(clock: FakeClock, url: str = "http://fxx.invalid/v1", **limits) -> tuple[_Owner, ratelimit.RateLimiter]:
    owner = _Owner()
    limiter = ratelimit.shared_limiter(url, "key", clock=clock, owner=owner, **limits)
    limiter._sleep = clock.sleep
    return owner, limiter


def test_a_reopened_endpoint_keeps_the_requests_of_the_last_minute():
    clock = FakeClock()
    first, limiter = _session(clock, rpm=2)
    limiter.acquire(), limiter.acquire()
    ratelimit.release_limits(first)  # the last backend on the endpoint closes
    assert ratelimit._SHARED == {}  # its limits are forgotten ...
    clock.now = 1.5
    second, again = _session(clock, rpm=2)
    assert again is not limiter
    again.acquire()
    assert 60.0 <= clock.now < 61.5  # ... its requests are not: the third of the minute waited (before: at 1.5 s)
    ratelimit.release_limits(second)


def test_the_next_sessions_own_limits_apply_to_the_requests_already_sent():
    clock = FakeClock()
    first, limiter = _session(clock, rpm=2, tpm=1000)
    limiter.acquire(300).settle(900)  # the server said 900 tokens
    ratelimit.release_limits(first)
    second, looser = _session(clock, rpm=3)
    assert (looser.rpm, looser.tpm) == (3, None)  # its own limits, not the last session's
    looser.acquire(), looser.acquire()
    assert clock.now == 0.0  # 3 a minute: two more go at once ...
    looser.acquire()
    assert clock.now >= 60.0  # ... a third waits
    ratelimit.release_limits(second)
    clock.now = 200.0
    third, by_tokens = _session(clock, tpm=1000)
    reservation = by_tokens.acquire(500)
    ratelimit.release_limits(third)
    reservation.settle(800)  # answered after its session closed: the tokens the server reported still count
    fourth, again = _session(clock, tpm=1000)
    again.acquire(300)
    assert clock.now >= 260.0
    ratelimit.release_limits(fourth)


def test_a_window_left_is_dropped_once_it_is_over_so_many_endpoints_do_not_grow_memory():
    clock = FakeClock()
    for i in range(200):  # a service that talks to many endpoints, one request every 10 s
        owner, limiter = _session(clock, url=f"http://fxx-{i}.invalid/v1", rpm=5)
        limiter.acquire()
        ratelimit.release_limits(owner)
        assert len(ratelimit._RECENT) <= 7  # the windows of the last minute only
        clock.now += 10.0
    clock.now += 60.0
    ratelimit.shared_limiter("http://other.invalid/v1", "key", clock=clock)
    assert ratelimit._RECENT == {} and len(ratelimit._SHARED) == 1
    unlimited, plain = _session(clock, url="http://fxx-199.invalid/v1")
    ratelimit.release_limits(unlimited)
    assert plain._recent() == [] and ratelimit._RECENT == {}  # nothing counted without limits: nothing kept


def test_another_clock_starts_an_empty_window():
    """A limiter timed on another clock cannot compare the last one's times with its own (a test's fake clock)."""
    clock = FakeClock()
    first, limiter = _session(clock, rpm=1)
    limiter.acquire()
    ratelimit.release_limits(first)
    other = FakeClock()
    second, fresh = _session(other, rpm=1)
    fresh.acquire()
    assert other.now == 0.0
    ratelimit.release_limits(second)


def test_two_describers_one_after_the_other_keep_to_rpm(openai_server, monkeypatch):  # noqa: F811
    """What ``ground()`` twice does: a session (its describer) per call, each closed before the next is made."""
    clock = FakeClock()
    monkeypatch.setattr(openai_describer, "shared_limiter", functools.partial(ratelimit.shared_limiter, clock=clock))
    openai_server.responder = lambda req: Reply.chat("a person")
    frames = [Frame(t=i, index=i, image=np.full((64, 64, 3), 10 * i, np.uint8)) for i in range(2)]
    for _ in range(2):
        desc = openai_describer.OpenAIDescriber("m", base_url=openai_server.base_url, api_key="sk-fxx", rpm=2,
                                                concurrency=1, prices=False)
        desc.limiter._sleep = clock.sleep
        assert len(list(desc.describe(frames))) == 2
        desc.close()
    assert len(openai_server.requests) == 4
    assert 60.0 <= clock.now < 61.5  # before: 0.0, four requests in the minute


def test_requests_waiting_for_the_window_leave_in_the_order_they_came():
    """Three requests wait for a place (rpm=1); when one frees, the newest waiter wakes first. Before, whoever woke
    first took it: with concurrency 8 and rpm, frames left up to 13 places late (a frame held up for minutes of later
    frames, the stream, which hands descriptions over in frame order, stalled behind it); now they leave in turn."""
    clock, parked, changed = FakeClock(), {}, threading.Condition()

    def sleep(seconds):  # a waiter parks until the test wakes it
        gate = threading.Event()
        with changed:
            parked[threading.current_thread().name] = gate
            changed.notify_all()
        assert gate.wait(30)

    limiter = ratelimit.RateLimiter(rpm=1, clock=clock, sleep=sleep)
    limiter.acquire()  # the minute's one place
    order: list[str] = []

    def request():
        limiter.acquire()
        with changed:
            order.append(threading.current_thread().name)
            changed.notify_all()
    came = ["a", "b", "c"]
    threads = [threading.Thread(target=request, name=name, daemon=True) for name in came]
    for t in threads:  # one after the other: each waiting before the next comes
        t.start()
        with changed:
            assert changed.wait_for(lambda: t.name in parked, 30)
    for _ in came:
        clock.now += 60.0  # a place frees ...
        for name in reversed(came):  # ... and the newest waiter wakes first
            with changed:
                gate = parked.pop(name, None)
            if gate is None:
                continue
            gate.set()
            with changed:  # it went, or waits again
                assert changed.wait_for(lambda: name in parked or name in order, 30)
    for t in threads:
        t.join(30)
    assert order == came  # before: ["c", "b", "a"]


def test_a_cancelled_waiter_gives_its_turn_to_the_next():
    clock, cancel = FakeClock(), threading.Event()

    def sleep(seconds):
        clock.sleep(seconds)
        cancel.set()
    limiter = ratelimit.RateLimiter(rpm=1, clock=clock, sleep=sleep)
    limiter.acquire()
    with pytest.raises(CancelledError):
        limiter.acquire(cancel=cancel)
    assert not limiter._queue
    limiter._sleep = clock.sleep
    limiter.acquire()  # it waits for the window, not for the cancelled one
    assert 60.0 <= clock.now < 61.5
