"""Client-side pacing: requests-per-minute and tokens-per-minute limits over a sliding minute,
and a bound on the requests in flight.

A rate limit and a concurrency limit belong to an endpoint and an API key, not to one backend
object: :func:`shared_limiter` hands every backend built in the process with the same endpoint and
key (describers and reasoners alike) the same :class:`RateLimiter`, so eval workers, sessions and
the two stages share one budget; the tightest limits any of them set apply to all, for as long as one is open: a
backend that passes ``owner=`` holds its limits until :func:`release_limits` (its ``close()``, which a session's
``close()`` calls) or until it is garbage-collected; then the limits are those the backends still open hold, and
none once the last is closed, so a long-running service's next session starts from its own limits, though not from an
empty window: the requests sent in the last minute still count against them (the provider counts them too). A request
reserves its *estimated* tokens
before it leaves; :meth:`Reservation.settle` replaces the estimate with the tokens the server
reported, so the budget tracks reality.
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from .errors import ConfigurationError

WINDOW_S = 60.0
_TURN_POLL_S = 0.01  # how often a request whose turn has not come looks again


class Reservation:
    __slots__ = ("t", "tokens")

    def __init__(self, t: float, tokens: int):
        self.t = t
        self.tokens = tokens

    def settle(self, actual_tokens: int) -> None:
        """Record the tokens the request really used (prompt + completion)."""
        self.tokens = max(0, int(actual_tokens))


class RateLimiter:
    """Waits so that at most ``rpm`` requests and ``tpm`` tokens start in any ``window_s``
    (60-second) window, and at most ``max_in_flight`` requests run at once (:meth:`slot`). Requests waiting for the
    window leave in the order they came.

    ``None`` disables a limit. A single request estimated above ``tpm`` is let through alone
    (when the window is empty) instead of waiting forever. ``clock`` and ``sleep`` are
    injectable so tests can run a fake clock.
    """

    def __init__(self, rpm: float | None = None, tpm: float | None = None, *, max_in_flight: int | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] | None = None,
                 window_s: float | None = None):
        self.rpm = self.tpm = self.max_in_flight = None
        self.window_s = WINDOW_S if window_s is None else window_s
        self._clock, self._sleep = clock, sleep
        self._window: deque[Reservation] = deque()
        #: the requests waiting for the window, in the order they came: each goes when the window and those before it
        #: let it (else whichever waiter woke first when a place freed took it: a frame could wait out several
        #: minutes of later frames under rpm, the stream held up behind it)
        self._queue: deque[object] = deque()
        self._head_until = 0.0  # when the first of them expects to go: those behind it look again no sooner
        self._lock = threading.Lock()
        self._slots = threading.Condition()
        self._running = 0  # requests in flight (counted even without a bound, so a later one applies at once)
        #: the limits in force, by who holds them: ``None`` for those set for good (the constructor's, tighten()'s),
        #: else a hold's key (:meth:`hold`); the limits applied are the tightest of them all
        self._holds: dict[object, tuple[int | None, float | None, int | None]] = {}
        self.tighten(rpm=rpm, tpm=tpm, max_in_flight=max_in_flight)

    @staticmethod
    def _checked(rpm: float | None, tpm: float | None, max_in_flight: int | None) -> tuple[int | None, float | None,
                                                                                            int | None]:
        for name, v in (("rpm", rpm), ("tpm", tpm)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 1):
                raise ConfigurationError(f"{name} must be a number >= 1 or None, got {v!r}")
        if max_in_flight is not None and (isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int)
                                          or max_in_flight < 1):
            raise ConfigurationError(f"max_in_flight must be a whole number >= 1 or None, got {max_in_flight!r}")
        return (None if rpm is None else int(rpm)), tpm, max_in_flight  # whole requests

    def _apply(self) -> None:
        """The limits in force: the tightest each of the holds sets (the caller holds both locks)."""
        def tightest(i: int) -> Any:
            values: list[float] = [h[i] for h in self._holds.values() if h[i] is not None]  # type: ignore[misc]
            return min(values) if values else None
        self.rpm, self.tpm, self.max_in_flight = tightest(0), tightest(1), tightest(2)
        self._slots.notify_all()  # a bound loosened lets waiting requests go

    def tighten(self, *, rpm: float | None = None, tpm: float | None = None, max_in_flight: int | None = None) -> None:
        """Apply these limits, for good, where they are stricter than the current ones (``None`` adds no limit)."""
        self.hold(None, rpm=rpm, tpm=tpm, max_in_flight=max_in_flight)

    def hold(self, key: object, *, rpm: float | None = None, tpm: float | None = None,
             max_in_flight: int | None = None) -> None:
        """Apply these limits where they are stricter, until :meth:`release` of ``key`` (``None``: for good, the
        tightest of all such calls). A key held again tightens its own limits too."""
        limits = self._checked(rpm, tpm, max_in_flight)
        if key is None and limits == (None, None, None):
            return  # no limit for good: nothing to hold
        with self._lock, self._slots:
            old = self._holds.get(key)
            if old is not None:
                limits = tuple(min((v for v in (a, b) if v is not None), default=None)
                               for a, b in zip(old, limits))  # type: ignore[assignment]
            self._holds[key] = limits
            self._apply()

    def release(self, key: object) -> bool:
        """Drop the limits ``key`` holds (:meth:`hold`): those in force are then the tightest the other holds set.
        True when no hold is left. Requests already waiting or in flight are not disturbed."""
        with self._lock, self._slots:
            if key is not None:
                self._holds.pop(key, None)
            self._apply()
            return not self._holds

    @property
    def enabled(self) -> bool:
        return self.rpm is not None or self.tpm is not None

    def _expire(self, now: float) -> None:
        """Drop the reservations that have left the window (the caller holds ``_lock``)."""
        while self._window and now - self._window[0].t >= self.window_s:
            self._window.popleft()

    def _recent(self) -> list[Reservation]:
        """The reservations still in the window: the requests that count against the limits now."""
        with self._lock:
            self._expire(self._clock())
            return list(self._window)

    def _try(self, tokens: int, turn: object = None) -> tuple[Reservation | None, float]:
        """Reserve now, or say how long to wait before trying again: ``turn`` (:meth:`acquire`'s place in the queue)
        waits for those before it too."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            wait = 0.0
            if self.rpm is not None and len(self._window) >= self.rpm:
                idx = len(self._window) - int(self.rpm)
                wait = max(wait, self._window[idx].t + self.window_s - now)
            if self.tpm is not None and self._window:
                used = sum(r.tokens for r in self._window)
                excess = used + tokens - self.tpm
                for r in self._window:  # wait until enough old tokens leave the window
                    if excess <= 0:
                        break
                    excess -= r.tokens
                    wait = max(wait, r.t + self.window_s - now)
            if turn is not None and self._queue[0] is not turn:  # the window may have room, but one that came
                wait = max(wait, self._head_until - now, _TURN_POLL_S)  # earlier goes first
            elif turn is not None:
                self._head_until = now + wait
            if wait > 0:
                return None, wait
            if turn is not None:
                self._queue.popleft()
            res = Reservation(now, tokens)
            self._window.append(res)
            return res, 0.0

    def acquire(self, tokens: int = 0, *, cancel: threading.Event | None = None) -> Reservation:
        """Reserve a request's place in the window, waiting as long as the limits say, and for the requests that
        came before it; raises :class:`concurrent.futures.CancelledError` once ``cancel`` is set while waiting."""
        if not self.enabled:
            return Reservation(self._clock(), tokens)
        turn = object()
        with self._lock:
            self._queue.append(turn)
        try:
            while True:
                res, wait = self._try(tokens, turn)
                if res is not None:
                    return res
                self._pause(min(wait, 1.0) + 0.001, cancel)
        finally:  # cancelled or interrupted: the next in the queue goes
            with self._lock:
                if turn in self._queue:
                    self._queue.remove(turn)

    def _pause(self, seconds: float, cancel: threading.Event | None) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        elif cancel is not None:
            cancel.wait(seconds)
        else:
            time.sleep(seconds)
        if cancel is not None and cancel.is_set():
            raise CancelledError("cancelled while waiting for the rate limit")

    @contextmanager
    def slot(self, tokens: int = 0, *, cancel: threading.Event | None = None) -> Iterator[Reservation]:
        """One request: a place among the ``max_in_flight``, then one in the window (taken in
        that order, so a reservation's time is when the request leaves, not when it began to
        queue for a place), the place given back when the block ends. Releases first the holds of backends
        collected since the last call (:func:`shared_limiter`), when no other thread is at it."""
        _drain_if_free()
        with self._slots:
            while self.max_in_flight is not None and self._running >= self.max_in_flight:
                self._slots.wait(0.05)
                if cancel is not None and cancel.is_set():
                    raise CancelledError("cancelled while waiting for a request slot")
            self._running += 1
        try:
            yield self.acquire(tokens, cancel=cancel)
        finally:
            with self._slots:
                self._running -= 1
                self._slots.notify()


_SHARED: dict[tuple[object, ...], RateLimiter] = {}
_SHARED_LOCK = threading.Lock()
#: limiters forgotten when their last hold was released, kept for the requests they let go in the last window: the
#: provider still counts those, so the next limiter for the key (a new session of a service, a second ``ground()``)
#: starts with them in its window, and not empty (rpm=2 let 4 requests go in 1.5 s across a close and a reopen). Each
#: is dropped once its window is empty, at the next :func:`shared_limiter` or :func:`release_limits` call, so a process
#: that used many endpoints keeps only those used within a window.
_RECENT: dict[tuple[object, ...], RateLimiter] = {}
_DETACHED: ContextVar[bool] = ContextVar("vidground_limiter_detached", default=False)


@contextmanager
def detached() -> Iterator[None]:
    """In this block (this thread or task), :func:`shared_limiter` gives each caller a limiter of its own, its limits
    checked, and leaves the process's as they are: what a check that builds a backend to check its options
    (:func:`vidground.chat.check_by_building`) builds in, so that a session refused or never used does not tighten
    the limits of later ones (a backend without ``owner=`` holds its limits for good; one with it, until it closes)."""
    token = _DETACHED.set(True)
    try:
        yield
    finally:
        _DETACHED.reset(token)


#: who holds limits on which shared limiter: id(owner) -> (limiter key, the finalizer that releases them)
_OWNED: dict[int, list[tuple[tuple[object, ...], Any]]] = {}
#: holds whose owner was collected or closed, to release at the next :func:`shared_limiter` or
#: :func:`release_limits` call: a finalizer runs at garbage collection, on any thread, possibly while that thread
#: holds ``_SHARED_LOCK`` or a limiter's lock (an allocation inside ``shared_limiter``), so it only appends here
#: (atomic, no lock) and never takes a lock itself.
_PENDING: deque[tuple[int, tuple[object, ...]]] = deque()


def shared_limiter(base_url: object, api_key: object, *, rpm: float | None = None, tpm: float | None = None,
                   max_in_flight: int | None = None,
                   clock: Callable[[], float] = time.monotonic, owner: object = None) -> RateLimiter:
    """The process's one :class:`RateLimiter` for this endpoint and API key, created on first use and
    tightened by every later caller's limits. With ``owner`` (the backend), its limits hold until
    :func:`release_limits` of it (its ``close()``) or its garbage collection (released at the next call here);
    the limiter is forgotten when its last hold is released, so the next caller starts afresh with its own
    limits, its window holding the requests the last one let go within the window (on the same ``clock``). Without, they hold for good (:meth:`RateLimiter.tighten`). It is keyed by a hash of the key, never the
    key itself; ``clock`` only applies to the limiter this call creates. Inside :func:`detached`, a limiter of the
    caller's own, the shared ones left as they are."""
    if _DETACHED.get():
        return RateLimiter(rpm, tpm, max_in_flight=max_in_flight, clock=clock)
    digest = hashlib.sha256(str(api_key).encode()).hexdigest()[:16] if api_key else None  # the SDK's may be a callable
    key = (str(base_url).rstrip("/"), digest)
    with _SHARED_LOCK:
        _drain()  # first: a collected owner's id may be the new owner's
        limiter = _SHARED.get(key)
        if limiter is None:
            RateLimiter._checked(rpm, tpm, max_in_flight)  # a bad limit leaves no limiter behind
            limiter = _SHARED[key] = RateLimiter(clock=clock)
            last = _RECENT.pop(key, None)
            if last is not None and last._clock == clock:  # another clock's times do not compare with this one's
                limiter._window.extend(last._recent())
        if owner is None:
            limiter.tighten(rpm=rpm, tpm=tpm, max_in_flight=max_in_flight)
        else:
            held = _OWNED.setdefault(id(owner), [])
            limiter.hold(id(owner), rpm=rpm, tpm=tpm, max_in_flight=max_in_flight)
            if all(k != key for k, _ in held):
                held.append((key, weakref.finalize(owner, _PENDING.append, (id(owner), key))))
        return limiter


def _drain() -> None:
    """Release the holds in :data:`_PENDING`, and forget the :data:`_RECENT` windows now empty (the caller holds
    ``_SHARED_LOCK``)."""
    for key, limiter in list(_RECENT.items()):
        if not limiter._recent():
            del _RECENT[key]
    while _PENDING:
        owner_id, key = _PENDING.popleft()
        held = _OWNED.get(owner_id, [])
        held[:] = [(k, f) for k, f in held if k != key]
        if not held:
            _OWNED.pop(owner_id, None)
        limiter = _SHARED.get(key)
        if limiter is not None and limiter.release(owner_id):
            del _SHARED[key]  # no backend holds it: the next one starts from its own limits ...
            if limiter._recent():
                _RECENT[key] = limiter  # ... and the requests it let go within the window


def _drain_if_free() -> None:
    """:func:`_drain` unless another call (or this thread, in a garbage collection) holds ``_SHARED_LOCK``."""
    if _PENDING and _SHARED_LOCK.acquire(blocking=False):
        try:
            _drain()
        finally:
            _SHARED_LOCK.release()


def release_limits(owner: object) -> None:
    """Release the limits ``owner`` holds on the shared limiters (:func:`shared_limiter` with ``owner=``): a
    backend's ``close()`` calls it. Idempotent."""
    with _SHARED_LOCK:
        for _, finalizer in list(_OWNED.get(id(owner), [])):
            finalizer()  # queues the release once, and no more at garbage collection
        _drain()


__all__ = ["RateLimiter", "Reservation", "detached", "release_limits", "shared_limiter", "WINDOW_S"]
