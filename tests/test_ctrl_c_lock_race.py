"""A Ctrl-C that lands as a wait ends is a KeyboardInterrupt, never a lock error.

CI once failed on a second Ctrl-C during ``vidground describe``: the command exited 1 with ``internal error:
RuntimeError: release unlocked lock`` instead of 130. ``concurrent.futures.wait`` waits on an Event, a Condition
over a plain Lock; an interrupt raised on entering ``Condition._acquire_restore`` (Python code) leaves the lock
released, and the ``with`` around the wait releases it again. These tests raise the KeyboardInterrupt at every
Python line and call of the main thread's wait in turn (a trace function, so deterministic), which is where a
signal handler can raise it."""

from __future__ import annotations

import argparse
import sys
import threading
from concurrent.futures import Future
from typing import Any, Callable

import pytest

from pipelines import cli
from pipelines.executors import _in_daemon_threads
from vidground.interrupts import wait_all




def _starting_a_thread(frame: Any) -> bool:
    """Inside ``threading.Thread.start``/``__init__``: the standard library's own bookkeeping of threads (a global
    lock), which an interrupt in its middle leaves inconsistent whoever waits; not a wait of the project's."""
    return frame.f_code.co_filename == threading.__file__ and frame.f_code.co_name in ("start", "__init__") \
        and isinstance(frame.f_locals.get("self"), threading.Thread)


def _interrupted_at(k: int, run: Callable[[], Any], counted: list[int] | None = None) -> BaseException | None:
    """``run()`` with a KeyboardInterrupt raised at its ``k``-th trace event (calls and lines of the main thread; 0:
    none, ``counted`` then says how many it went through): what it raised (None: it ended first). Events inside
    starting a thread are not counted (:func:`_starting_a_thread`)."""
    n = counted if counted is not None else [0]
    skipping: list[Any] = []  # the Thread.start frame being skipped, if any

    def skip_until_return(frame: Any, event: str, arg: Any) -> Any:
        if event == "return" and skipping and frame is skipping[0]:
            skipping.clear()
        return skip_until_return

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if skipping:
            return None
        if event == "call" and _starting_a_thread(frame):
            skipping.append(frame)
            return skip_until_return
        if frame.f_code.co_filename.endswith(("_weakrefset.py", "weakref.py")):
            return None  # a weak reference's callback the garbage collector runs: an interrupt there is unraisable
        if event in ("call", "line"):
            n[0] += 1
            if n[0] == k:
                sys.settrace(None)
                raise KeyboardInterrupt
        return tracer

    sys.settrace(tracer)
    try:
        run()
    except BaseException as exc:  # what the interrupt became
        return exc
    finally:
        sys.settrace(None)
    return None


def _finishing_later(gate: threading.Event) -> Future:
    """A future that ends once ``gate`` opens, from another thread (the wait is under way by then)."""
    future: Future = Future()

    def finish() -> None:
        gate.wait(30)
        future.set_result("answer")

    threading.Thread(target=finish, daemon=True).start()
    return future


def _sweep(make_run: Callable[[threading.Event], Callable[[], Any]]) -> tuple[int, list[BaseException]]:
    """Every trace event of the wait, a KeyboardInterrupt raised at each in turn: how many and what came out that
    is not a KeyboardInterrupt. The future ends while the wait blocks: ``gate`` opens from a timer."""
    def one(k: int) -> BaseException | None:
        gate = threading.Event()
        run = make_run(gate)
        timer = threading.Timer(0.05, gate.set)
        timer.start()
        try:
            return _interrupted_at(k, run)
        finally:
            gate.set()
            timer.cancel()

    gate = threading.Event()
    run = make_run(gate)
    threading.Timer(0.05, gate.set).start()
    counted = [0]
    assert _interrupted_at(0, run, counted) is None
    total = counted[0]
    assert total > 3, total  # the wait was traced
    wrong = [exc for k in range(1, total + 1) if (exc := one(k)) is not None and not isinstance(exc, KeyboardInterrupt)]
    return total, wrong


def test_waiting_for_the_requests_in_flight_ends_in_a_keyboard_interrupt_wherever_it_lands() -> None:
    total, wrong = _sweep(lambda gate: (lambda f=_finishing_later(gate): wait_all([f])))
    assert wrong == [], (total, wrong)


def test_the_wait_returns_once_every_future_ended_done_or_not_before() -> None:
    done: Future = Future()
    done.set_result(1)
    gate = threading.Event()
    later = _finishing_later(gate)
    threading.Timer(0.02, gate.set).start()
    wait_all([done, later, done])  # one already done, one ending later, one given twice
    assert later.done() and later.result() == "answer"
    wait_all([])  # nothing to wait for


def test_a_keyboard_interrupt_while_waiting_for_the_requests_leaves_them_to_end() -> None:
    gate = threading.Event()
    future = _finishing_later(gate)
    exc = _interrupted_at(1, lambda: wait_all([future]))
    assert isinstance(exc, KeyboardInterrupt)
    gate.set()
    wait_all([future])  # no lock left held: the same future is waited for again
    assert future.result() == "answer"


def test_the_queries_in_order_end_in_a_keyboard_interrupt_wherever_it_lands() -> None:
    def make_run(gate: threading.Event) -> Callable[[], Any]:
        def slow(x: int) -> int:
            if x == 1:
                gate.wait(30)
            return x * 10
        return lambda: list(_in_daemon_threads(slow, [0, 1, 2], 2))

    total, wrong = _sweep(make_run)
    assert wrong == [], (total, wrong)
    assert list(_in_daemon_threads(lambda x: x * 10, [0, 1, 2], 2)) == [(0, None), (10, None), (20, None)]


def test_a_lock_error_raised_while_a_ctrl_c_was_handled_exits_as_the_interrupt(capsys: pytest.CaptureFixture) -> None:
    """The command line's net for a wait in a library the project does not own: the lock error that a Ctrl-C
    became is taken as that Ctrl-C (exit 130 and the interrupted line, not 'internal error', exit 1)."""
    def stopped_in_a_lock(args: argparse.Namespace) -> int:
        try:
            raise KeyboardInterrupt
        finally:
            raise RuntimeError("release unlocked lock")

    args = argparse.Namespace(func=stopped_in_a_lock, debug=False, command="info")
    assert cli._run(args) == 130
    err = capsys.readouterr().err
    assert "vidground: interrupted" in err and "internal error" not in err, err


def test_a_lock_error_without_a_ctrl_c_stays_an_internal_error(capsys: pytest.CaptureFixture) -> None:
    def broken(args: argparse.Namespace) -> int:
        raise RuntimeError("release unlocked lock")

    def other_error_during_ctrl_c(args: argparse.Namespace) -> int:
        try:
            raise KeyboardInterrupt
        finally:
            raise RuntimeError("something else")

    for func in (broken, other_error_during_ctrl_c):
        assert cli._run(argparse.Namespace(func=func, debug=False, command="info")) == 1
        assert "internal error: RuntimeError" in capsys.readouterr().err


def test_an_evals_second_ctrl_c_as_its_wait_for_a_record_ends_stops_it_at_once(tmp_path):
    """RV-N's case: an eval's run loop waited for its records on a queue.Queue (a Condition over a Lock, every
    0.25 s); a second Ctrl-C landing as that wait ended became "RuntimeError: release unlocked lock", which skipped
    the executor's stop: the run waited for the queries under way (a reasoner's call to its timeout), and run_eval's
    counts were lost. The handlers are the real ones, run from a trace function where the interpreter would run them:
    the first once a reasoner call is under way, the second at the main thread's next entry into a Condition's
    _acquire_restore (the race) or, where the loop makes none, at its next line of the executor (a second Ctrl-C
    there too)."""
    import signal

    from _helpers_eval import FakeReasoner, write_toy_dataset
    from pipelines import executors
    from pipelines.runs import RunConfig, RunInterrupted, run_eval
    from temporal_reasoner import reasoners

    started, gate = threading.Event(), threading.Event()

    class Held(FakeReasoner):
        name = "held-reasoner-lock-race"

        def ground(self, query, transcript):
            started.set()
            gate.wait(30)  # a call under way: a second Ctrl-C does not wait for it
            return super().ground(query, transcript)

    reasoners.register("held-reasoner-lock-race", Held)
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=4, per_video=3)
    cfg = RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="held-reasoner-lock-race",
                    concurrency=2)
    sent, lines_after = [0], [0]
    executor_file = executors.__file__

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        if started.is_set() and sent[0] < 2:
            code = frame.f_code
            in_loop = event == "line" and code.co_filename == executor_file
            if sent[0] == 1 and in_loop:
                lines_after[0] += 1
            first = sent[0] == 0 and in_loop
            # the race where the loop waits on a Condition (it did within its first lines); else a few turns later
            second = sent[0] == 1 and ((event == "call" and code.co_name == "_acquire_restore") or lines_after[0] > 40)
            if first or second:
                sent[0] += 1
                signal.getsignal(signal.SIGINT)(signal.SIGINT, frame)  # raises in the second
        return tracer

    before = signal.getsignal(signal.SIGINT)
    sys.settrace(tracer)
    try:
        with pytest.raises(BaseException) as raised:
            run_eval(cfg, tmp_path / "run")
    finally:
        sys.settrace(None)
        held_at_the_end = not gate.is_set()
        gate.set()
        signal.signal(signal.SIGINT, before)
    assert sent[0] == 2
    assert isinstance(raised.value, RunInterrupted), repr(raised.value)  # before: RuntimeError
    assert raised.value.abandoned and held_at_the_end  # stopped at once: the calls under way not waited for


def test_a_sessions_call_raises_the_ctrl_c_a_lock_turned_into_its_error(demo_video):
    """The Python API's net (RV-N: a Condition over an RLock, as Future.result() and Session.close() wait on, ends a
    Ctrl-C landing between its release and the try in "cannot release un-acquired lock"): a session's calls and
    close() raise the KeyboardInterrupt itself, whatever wait in them the interrupt ended."""
    from _helpers_eval import FakeDescriber, FakeReasoner
    from pipelines import Session

    class StoppedInALock(FakeReasoner):
        def ground(self, query, transcript):
            try:
                raise KeyboardInterrupt
            finally:
                raise RuntimeError("cannot release un-acquired lock")

    with Session(describer=FakeDescriber(), reasoner=StoppedInALock(), cache=None) as session:
        with pytest.raises(KeyboardInterrupt):
            session.ground(demo_video[0], "frame at 18.0")

    class Broken(FakeReasoner):
        def ground(self, query, transcript):
            raise RuntimeError("cannot release un-acquired lock")  # no Ctrl-C behind it: a bug, left as it is

    with Session(describer=FakeDescriber(), reasoner=Broken(), cache=None) as session:
        with pytest.raises(RuntimeError, match="un-acquired"):
            session.ground(demo_video[0], "frame at 18.0")
