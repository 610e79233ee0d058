"""What a Ctrl-C has stopped, kept apart from the video modules so that a SIGINT handler can say so before any of
them is imported (a Ctrl-C while a local model loads, before the frame sampler was first imported, stopped nothing).

Two kinds of stop: :data:`INTERRUPTED` (and the count of Ctrl-Cs so far), the process's, which the command line's
handler sets and clears when its command ends; and a run's own :class:`Flag` (``run_eval``'s ``stop``), which a video
worker enters with :func:`scope`: every frame stream and describer stream opened in it honours that stop too, and
that stop is never cleared, so a worker still getting ready when its run ended (a second Ctrl-C returns at once)
opens nothing that runs.

Nothing a handler calls here waits on a lock: the handler runs in the main thread, between any two of its
instructions, and would wait for ever on a lock that thread holds (``threading.Event.set`` takes one). The flags are
plain attributes; the describer streams' events (:func:`watch`) are set at once where their lock is free, else by a
notifier thread the handler wakes through a pipe."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import Any

__all__ = ["INTERRUPTED", "STOP_SIGNALS", "Flag", "count", "doing", "exit_status", "interrupt", "naming", "scope", "stopped",
           "stops", "under_way", "wait_all", "watch", "behind", "as_interrupt"]

#: The signals that stop a command or a run as a Ctrl-C does: SIGINT, and SIGTERM, what Slurm, Kubernetes and
#: ``timeout`` send (it killed the process silently, the finished queries' output and the queries under way lost).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def naming(text: str, signum: int) -> str:
    """A Ctrl-C's message ``text`` said for the signal ``signum``: as it is for SIGINT; for another (SIGTERM),
    ``vidground: stopping`` and ``vidground: interrupted`` name it, and the second Ctrl-C it speaks of is a second
    signal of either kind. Safe in a signal handler."""
    if signum == signal.SIGINT:
        return text
    name = signal.Signals(signum).name
    for said in ("vidground: stopping", "vidground: interrupted"):
        if text.startswith(said):
            rest = text[len(said):]  # " (nothing is being described)" joins the signal's parenthesis
            text = f"{said} ({name}; {rest[2:]}" if rest.startswith(" (") else f"{said} ({name}){rest}"
    return text.replace("a second Ctrl-C", f"a second {name} or Ctrl-C")


def exit_status(signum: int) -> int:
    """The exit status of a command that ``signum`` stopped: 128 + its number (130 for SIGINT, 143 for SIGTERM), as
    a shell reports a process the signal killed."""
    return 128 + int(signum)


class Flag:
    """An event that a signal handler may set: :meth:`set` and :meth:`clear` take no lock (setting one also sets the
    describer events :func:`watch`\\ ed under it); :meth:`wait` polls. Used as ``threading.Event`` is (``is_set``,
    ``set``, ``clear``, ``wait``)."""

    def __init__(self) -> None:
        self._value = False

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        self._value = True
        _tell()

    def clear(self) -> None:
        self._value = False

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._value:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            time.sleep(0.005 if left is None else min(0.005, left))
        return True


#: Set by the command line's Ctrl-C handler (and run_eval's, run from Python): every frame stream then stops at its
#: next frame with a KeyboardInterrupt, in whatever thread it is read (Ctrl-C reaches only the main thread, so an
#: eval's video workers went on decoding and describing, and paying for, their videos to the end after it).
INTERRUPTED = Flag()
_count = 0  # Ctrl-Cs so far in this process: a stream opened before the latest one stops even once it is cleared


def count() -> int:
    """How many Ctrl-Cs (:func:`interrupt`) this process has had: a stream remembers it when it opens."""
    return _count


def interrupt() -> None:
    """Ctrl-C: every stream open now, in any thread, stops for good, and so does every one opened while
    :data:`INTERRUPTED` stays set. Safe in a signal handler."""
    global _count
    _count += 1
    INTERRUPTED.set()


_local = threading.local()


def stops() -> tuple[Any, ...]:
    """The run stops (:func:`scope`) of this thread: a stream opened now honours them."""
    return getattr(_local, "stops", ())


@contextlib.contextmanager
def scope(stop: Any) -> Iterator[None]:
    """While in it, the streams this thread opens stop once ``stop`` (a run's :class:`Flag`, or any object with
    ``is_set``) is set, as at a Ctrl-C; ``None``: no stop of its own."""
    before = stops()
    _local.stops = before if stop is None else (*before, stop)
    try:
        yield
    finally:
        _local.stops = before


@contextlib.contextmanager
def doing(what: str) -> Iterator[None]:
    """Mark what this thread is doing while in it (``"describing"``, ``"reasoning"``), so that a Ctrl-C handler,
    which runs in the main thread, says what its stop keeps and what it loses (:func:`under_way`)."""
    before = getattr(_local, "doing", None)
    _local.doing = what
    try:
        yield
    finally:
        _local.doing = before


def under_way() -> str | None:
    """What this thread marked with :func:`doing` (the innermost), or ``None``. Safe in a signal handler."""
    return getattr(_local, "doing", None)


def stopped(opened_after: int, run_stops: tuple[Any, ...] = ()) -> bool:
    """Whether a stream opened after ``opened_after`` Ctrl-Cs (:func:`count`), in the scope of ``run_stops``
    (:func:`stops`), is to stop now."""
    return INTERRUPTED.is_set() or opened_after < _count or any(s.is_set() for s in run_stops)


# event -> (the Ctrl-Cs before it, its run stops); an event nobody holds any more is forgotten
_watched: dict[weakref.ref[threading.Event], tuple[int, tuple[Any, ...]]] = {}


def _forget(ref: weakref.ref[threading.Event]) -> None:
    _watched.pop(ref, None)


def watch(event: threading.Event) -> None:
    """Set ``event`` at the next Ctrl-C, or when a run stop of this thread's :func:`scope` is set, or now if either
    is so already: a describer's stream sends no request it has not begun then. Not for a signal handler (it may
    start the notifier thread)."""
    _start_notifier()
    at, run_stops = _count, stops()
    _watched[weakref.ref(event, _forget)] = (at, run_stops)
    if stopped(at, run_stops):
        event.set()


def _tell() -> None:
    """Set every watched event whose stream is stopped now: at once where its lock is free, else (the thread this
    handler interrupted may hold it) by the notifier thread."""
    late = False
    for ref, (at, run_stops) in _watched.copy().items():  # a copy: one C call, which no callback can change
        event = ref()
        if event is None or event.is_set() or not stopped(at, run_stops):
            continue
        cond = getattr(event, "_cond", None)  # threading.Event's lock
        if cond is not None and cond.acquire(blocking=False):
            cond.release()  # free: no thread of this process was inside its set/clear/wait
            event.set()
        else:
            late = True
    if late:
        _wake()


_pipe: tuple[int, int] | None = None
_start_lock = threading.Lock()  # taken by watch() only, never by a handler


def _start_notifier() -> None:
    global _pipe
    if _pipe is not None:
        return
    with _start_lock:
        if _pipe is not None:
            return
        r, w = os.pipe()
        os.set_blocking(w, False)  # a full pipe: a wake is pending already
        threading.Thread(target=_notify, args=(r,), name="vidground-interrupts", daemon=True).start()
        _pipe = (r, w)


def _wake() -> None:
    if _pipe is not None:
        try:
            os.write(_pipe[1], b"!")
        except OSError:
            pass


def _notify(r: int) -> None:
    while True:
        try:
            if not os.read(r, 512):
                return
        except OSError:
            return
        for ref, (at, run_stops) in _watched.copy().items():
            event = ref()
            if event is not None and not event.is_set() and stopped(at, run_stops):
                event.set()  # from this thread: it waits for the thread holding the lock, if any, to let it go


def _after_fork() -> None:  # the notifier thread is not in the child: the next watch() starts one of its own
    global _pipe, _start_lock
    _pipe, _start_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def wait_all(futures: Iterable[Future]) -> None:
    """Wait until every future has ended; a Ctrl-C ends the wait with its ``KeyboardInterrupt`` and nothing else.

    ``concurrent.futures.wait`` (and ``threading.Event.wait``, ``queue.Queue.get``: a ``Condition`` over a plain
    ``Lock``) can turn a Ctrl-C that lands as the wait ends into ``RuntimeError: release unlocked lock``: the
    interrupt is raised on entering ``Condition._acquire_restore``, Python code, before the lock is taken back, and
    the ``with`` around the wait then releases a lock it no longer holds (a second Ctrl-C during a describe exited 1
    as an internal error, not 130). A ``queue.SimpleQueue``'s ``get`` is C code: interrupted, it raises the
    interrupt and leaves no lock behind."""
    ended: queue.SimpleQueue[Future] = queue.SimpleQueue()
    pending = list(futures)
    for future in pending:
        future.add_done_callback(ended.put)  # at once for one already done
    for _ in pending:
        ended.get()


#: what a lock says when a Ctrl-C lands in a wait on a ``threading.Condition`` as it ends (see :func:`wait_all`)
LOCK_RELEASE_ERRORS = ("release unlocked lock", "cannot release un-acquired lock", "cannot notify on un-acquired lock",
                       "cannot wait on un-acquired lock")


def behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C that turned into ``exc``: a lock error raised while a ``KeyboardInterrupt`` was being handled (a
    ``Condition`` wait of the standard library, over a ``Lock`` or an ``RLock``, ended by the interrupt between
    releasing its lock and taking it back), else None."""
    if not (isinstance(exc, RuntimeError) and str(exc) in LOCK_RELEASE_ERRORS):
        return None
    seen: set[int] = set()
    cause = exc.__context__
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return cause
        seen.add(id(cause))
        cause = cause.__context__
    return None


@contextlib.contextmanager
def as_interrupt() -> Iterator[None]:
    """Raise the Ctrl-C itself where a lock turned it into its error (:func:`behind`): a caller that stops on a
    ``KeyboardInterrupt`` (the command line, an eval keeping what finished, a user's own handler) is not handed a
    ``RuntimeError``. The lock is left as the wait left it: released."""
    try:
        yield
    except RuntimeError as exc:
        interrupt = behind(exc)
        if interrupt is None:
            raise
        raise interrupt from None

