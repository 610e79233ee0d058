"""Ctrl-C state left wrong, or waited on for ever, by the eval's interrupt handling (pipelines/runs.py, executors.py,
frame_describer/sampling.py, vidground/interrupts.py); each case found by reviewer RV2 (/tmp/rv2/d*.py).

No test reads a clock: each SIGINT is raised at a counted point (a line of the code under test, found by
sys.settrace, or a frame described), and what could hang waits on a thread or a process with a bound that only
ends a stuck test."""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import textwrap
import threading
import types
from pathlib import Path

import pytest

from frame_describer import describers, sampling
from pipelines import cli, executors, runs
from pipelines.runs import RunConfig, read_jsonl, run_eval
from vidground import interrupts

from _helpers_eval import FakeDescriber, register_fakes, render_toy_videos, write_toy_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def clean_state():
    register_fakes()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    yield
    sampling.INTERRUPTED.clear()
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _toy(tmp_path, n_videos=2, per_video=2) -> RunConfig:
    ds, desc = write_toy_dataset(tmp_path / "d", n_videos=n_videos, per_video=per_video)
    return RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="fake-reasoner",
                     concurrency=1)


def _video_run(tmp_path, describer: str) -> RunConfig:
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=2, duration=3.0)
    videos = render_toy_videos(tmp_path / "videos", ["vid0", "vid1"], n_frames=30, fps=10.0)
    return RunConfig(dataset="jsonl", dataset_path=str(ds), videos=str(videos), describer=describer,
                     reasoner="fake-reasoner", fps=10.0, cache=str(tmp_path / "c.sqlite"), concurrency=1)


def test_a_ctrl_c_while_a_describer_stream_registers_does_not_hang():
    """HEAD: interrupt_streams(), run from the SIGINT handler, took the plain lock stop_on_interrupt() holds while it
    registers a describer stream's event (every OpenAI describe stream does, in the main thread for ground/describe/
    ask): a Ctrl-C there waited for ever, and so did every later one. The command line's handler is run here at each
    line of that registration in turn (in a thread of its own, so that a hang fails the test): it returns every
    time, the event is set (the stream sends nothing more), and no lock is left held."""
    files = {sampling.__file__, interrupts.__file__}  # not threading's: a KeyboardInterrupt in Thread.start is Python's
    position, fired = 0, 0
    while True:
        seen = [0]
        event = threading.Event()
        outcome: list[str] = []

        def tracer(frame, what, arg):
            if what == "line" and frame.f_code.co_filename in files:
                seen[0] += 1
                if seen[0] == position + 1:
                    cli._on_interrupt(signal.SIGINT, frame)  # the Ctrl-C, run here (it raises KeyboardInterrupt)
            return tracer

        def register():
            sys.settrace(tracer)
            try:
                sampling.stop_on_interrupt(event)
                outcome.append("returned")
            except KeyboardInterrupt:
                outcome.append("KeyboardInterrupt")
            finally:
                sys.settrace(None)

        t = threading.Thread(target=register, daemon=True)
        t.start()
        t.join(10)
        assert not t.is_alive(), f"the handler waited for ever at line {position + 1} of the registration"
        if seen[0] <= position:  # every line was tried
            break
        fired += 1
        assert outcome  # the Ctrl-C's KeyboardInterrupt (the stream ends), or registered: set then
        assert outcome == ["KeyboardInterrupt"] or event.wait(10)  # at once, or by the notifier thread
        sampling.INTERRUPTED.clear()
        position += 1
    assert fired >= 3  # the registration's lines, the notifier's start among them
    later = threading.Event()
    sampling.stop_on_interrupt(later)  # the registry is not left locked, nor the stop left set
    assert not later.is_set()
    cli._stop_streams(True)
    assert later.wait(10)


_BEFORE_IMPORT = """
import signal, sys, tempfile, threading, time
from pathlib import Path
assert "frame_describer.sampling" not in sys.modules
from frame_describer import describers
from pipelines import runs
from pipelines.cli import main
from _helpers_eval import FakeDescriber, register_fakes
register_fakes()
seen = []

class SlowToLoad(FakeDescriber):
    name = "fake"
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        assert "frame_describer.sampling" not in sys.modules
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # Ctrl-C while the model loads
        handler = signal.getsignal(signal.SIGINT)  # run_eval's, in place of Python's or the command line's
        assert handler.__self__.event.wait(10)  # until it has run (it only sets its stop and writes a line)
    def describe(self, frames, *, query=None):
        for d in super().describe(frames, query=query):
            seen.append(d.t)
            yield d

describers.register("z-slow-load", SlowToLoad)
tmp = Path(sys.argv[2])
if sys.argv[1] == "cli":
    code = main(["eval", "jsonl", "--dataset-file", sys.argv[3], "--videos", sys.argv[4], "--describer", "z-slow-load",
                 "--reasoner", "fake-reasoner", "--fps", "10", "--cache", str(tmp / "c.sqlite"), "--concurrency", "1",
                 "--quiet", "--out", str(tmp / "run")])
    print("exit", code)
else:
    cfg = runs.RunConfig(dataset="jsonl", dataset_path=sys.argv[3], videos=sys.argv[4], describer="z-slow-load",
                         reasoner="fake-reasoner", fps=10.0, cache=str(tmp / "c.sqlite"), concurrency=1)
    try:
        runs.run_eval(cfg, tmp / "run", progress=False)
        print("completed")
    except runs.RunInterrupted:
        print("interrupted")
print("described", len(seen))
"""


@pytest.mark.parametrize("how", ["python", "cli"])
def test_a_ctrl_c_before_the_sampler_is_imported_stops_the_first_video(tmp_path, how):
    """HEAD: a Ctrl-C while the describer was built (a local model loading in the worker), before
    frame_describer.sampling was first imported, stopped no frame stream: the handlers looked the sampler up in
    sys.modules and found nothing, and the first video was described to its end, 30 of 30 frames, after the Ctrl-C.
    The Ctrl-C state is now vidground.interrupts', and the worker begins nothing once its run is stopped: 0 frames.
    In a fresh interpreter (this one has imported the sampler)."""
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=2, duration=3.0)
    videos = render_toy_videos(tmp_path / "videos", ["vid0", "vid1"], n_frames=30, fps=10.0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    done = subprocess.run([sys.executable, "-c", _BEFORE_IMPORT, how, str(tmp_path), str(ds), str(videos)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    lines = done.stdout.split("\n")
    assert ("exit 130" if how == "cli" else "interrupted") in lines, done.stdout + done.stderr
    assert "described 0" in lines, done.stdout + done.stderr


def test_two_ctrl_cs_while_a_worker_gets_ready_leave_nothing_to_describe(tmp_path):
    """HEAD: two Ctrl-Cs while the worker was still building its describer: run_eval returned at once ('stopped at
    once'), its end cleared the process's stop, and the daemon worker then opened its frame stream and described
    (and paid for) 30 of 30 frames in the caller's process. The stop is now the run's too: the worker checks it once
    its describer is built, and every stream opened in the run honours it: 0 frames."""
    seen: list[float] = []
    returned = threading.Event()

    class SlowToLoad(FakeDescriber):
        name = "fake"

        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            main = threading.main_thread().ident
            signal.pthread_kill(main, signal.SIGINT)  # Ctrl-C while the model loads
            assert sampling.INTERRUPTED.wait(10)
            signal.pthread_kill(main, signal.SIGINT)  # and again: "stop now"
            returned.wait(10)  # the model is loaded after run_eval returned

        def describe(self, frames, *, query=None):
            for d in super().describe(frames, query=query):
                seen.append(d.t)
                yield d

    describers.register("z-slow-load-twice", SlowToLoad)
    with pytest.raises(runs.RunInterrupted) as info:
        run_eval(_video_run(tmp_path, "z-slow-load-twice"), tmp_path / "run", progress=False)
    assert info.value.abandoned and not sampling.INTERRUPTED.is_set()  # cleared: the process's next streams run
    returned.set()
    workers = [t for t in threading.enumerate() if t.name.startswith("vidground-video")]
    for t in workers:
        t.join(20)
    assert not any(t.is_alive() for t in workers)
    assert seen == []
    with sampling.sample_frames(tmp_path / "videos" / "vid0.mp4", fps=10) as frames:  # a later stream runs
        assert len(list(frames)) == 30


def _fake_signal_module(**replace) -> types.SimpleNamespace:
    ns = types.SimpleNamespace(**{k: getattr(signal, k) for k in dir(signal) if not k.startswith("__")})
    for k, v in replace.items():
        setattr(ns, k, v)
    return ns


def _later_describe_runs(tmp_path) -> int:
    videos = render_toy_videos(tmp_path / "later", ["vid0"], n_frames=30, fps=10.0)
    with sampling.sample_frames(videos / "vid0.mp4", fps=10) as frames:
        return len(list(frames))


def test_a_second_ctrl_c_as_restore_puts_the_handler_back_leaves_no_stop_set(tmp_path, monkeypatch):
    """HEAD: restore() put Python's handler back before it cleared INTERRUPTED: a second Ctrl-C between the two
    raised out of restore() with INTERRUPTED still set, and every later frame stream of the process stopped at its
    first frame (a later describe: KeyboardInterrupt at once)."""
    fired = []

    def signal_signal(sig, handler):
        old = signal.signal(sig, handler)
        if handler is signal.default_int_handler and not fired:
            fired.append(1)
            signal.raise_signal(signal.SIGINT)  # the user's second Ctrl-C, just after the handler switch
        return old

    monkeypatch.setattr(runs, "signal", _fake_signal_module(signal=signal_signal))
    seen = [0]

    def on_result(record):
        seen[0] += 1
        if seen[0] == 1:
            signal.raise_signal(signal.SIGINT)  # the first Ctrl-C

    with pytest.raises(KeyboardInterrupt):
        run_eval(_toy(tmp_path), tmp_path / "run", on_result=on_result, progress=False)
    monkeypatch.setattr(runs, "signal", signal)
    assert fired and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not sampling.INTERRUPTED.is_set()
    assert _later_describe_runs(tmp_path) == 30


def test_a_second_ctrl_c_inside_the_first_handler_leaves_no_stop_set(tmp_path):
    """HEAD: a second Ctrl-C run while the first one's handler was still stopping the streams (INTERRUPTED set, the
    handler not yet marked as the one that set it) raised out of the handler, and the run's end never cleared
    INTERRUPTED: every later frame stream stopped at its first frame. The second Ctrl-C is run at the first line
    after INTERRUPTED is set, inside the first handler."""
    fired = []

    def tracer(frame, what, arg):
        if what == "line" and not fired and sampling.INTERRUPTED.is_set():
            fired.append(frame.f_code.co_name)
            signal.getsignal(signal.SIGINT)(signal.SIGINT, frame)  # the second Ctrl-C, run here
        return tracer

    def on_result(record):
        if not fired:
            sys.settrace(tracer)
            try:
                signal.raise_signal(signal.SIGINT)  # the first Ctrl-C
            finally:
                sys.settrace(None)

    with pytest.raises(KeyboardInterrupt):
        run_eval(_toy(tmp_path), tmp_path / "run", on_result=on_result, progress=False)
    assert fired
    assert not sampling.INTERRUPTED.is_set()
    assert _later_describe_runs(tmp_path) == 30


def test_a_ctrl_c_inside_restore_leaves_no_dead_handler_to_a_later_run(tmp_path, monkeypatch):
    """HEAD: a second Ctrl-C just after restore()'s getsignal() left the ended run's handler installed; a later
    run_eval took it for an outer run's, and at its own first Ctrl-C called it: a KeyboardInterrupt at once and no
    frame stream stopped: the video being described was described to its end (30 frames after a Ctrl-C at the 5th).
    Now the later run puts back the handler the dead one replaced, and stops at the 5th or 6th frame."""
    state = {"first": False, "fired": False}

    def getsignal(sig):
        handler = signal.getsignal(sig)
        if state["first"] and not state["fired"] and sys._getframe(1).f_code.co_name == "restore":
            state["fired"] = True
            signal.raise_signal(signal.SIGINT)  # the user's second Ctrl-C, as getsignal returns in restore()
        return handler

    monkeypatch.setattr(runs, "signal", _fake_signal_module(getsignal=getsignal))

    def on_result(record):
        if not state["first"]:
            state["first"] = True
            signal.raise_signal(signal.SIGINT)  # the first Ctrl-C

    with pytest.raises(KeyboardInterrupt):
        run_eval(_toy(tmp_path), tmp_path / "run", on_result=on_result, progress=False)
    monkeypatch.setattr(runs, "signal", signal)
    assert state["fired"]
    sampling.INTERRUPTED.clear()

    seen: list[float] = []

    class CtrlCAtTheFifth(FakeDescriber):
        name = "fake"

        def describe(self, frames, *, query=None):
            for d in super().describe(frames, query=query):
                seen.append(d.t)
                if len(seen) == 5:
                    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
                    sampling.INTERRUPTED.wait(10)
                yield d

    describers.register("z-fifth", CtrlCAtTheFifth)
    with pytest.raises(runs.RunInterrupted) as info:
        run_eval(_video_run(tmp_path, "z-fifth"), tmp_path / "run2", progress=False)
    assert not info.value.abandoned  # the later run's own first Ctrl-C: it stopped gracefully
    for t in threading.enumerate():
        if t.name.startswith("vidground-video"):
            t.join(20)
    assert 5 <= len(seen) <= 6
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_anywhere_in_the_executors_end_still_closes_the_session(tmp_path, monkeypatch):
    """HEAD: a second Ctrl-C in LocalExecutor.run's finally between its stop.set() and handed_over = True raised out
    of it: neither the run nor a worker closed the session (its backends, a loaded model, the cache connection).
    The second Ctrl-C is run at each line of the executor's end (its outer finally) after the first Ctrl-C, one
    position per run: every session opened is closed, once."""
    opened: list[object] = []
    closed: list[object] = []
    real_session_for = executors.session_for

    def session_for(cfg):
        session = real_session_for(cfg)
        opened.append(session)
        real_close = session.close

        def close():
            closed.append(session)
            real_close()

        session.close = close
        return session

    monkeypatch.setattr(executors, "session_for", session_for)
    cfg = _toy(tmp_path, n_videos=3, per_video=2)
    cfg.concurrency = 2
    run_code = executors.LocalExecutor.run.__code__
    source, first = inspect.getsourcelines(executors.LocalExecutor.run)
    at = max(k for k, line in enumerate(source) if line.startswith("        finally:"))  # the run's end
    # its first statement is not a place for a Ctrl-C: CPython runs a handler at a call or a jump back, and the
    # finally's entry and a plain store (handed_over = True) have none; the trace below is run before every line
    at = next(k for k in range(at + 1, len(source)) if not source[k].strip().startswith("#"))
    end = first + at
    position, tried = 0, 0
    while True:
        state = {"first": False, "lines": 0, "fired": False}

        def tracer(frame, what, arg):
            if frame.f_code is not run_code:
                return None
            if what == "line" and state["first"] and not state["fired"] and frame.f_lineno > end:
                state["lines"] += 1
                if state["lines"] == position + 1:
                    state["fired"] = frame.f_lineno
                    signal.getsignal(signal.SIGINT)(signal.SIGINT, frame)  # the second Ctrl-C, here
            return tracer

        def on_result(record):
            if not state["first"]:
                state["first"] = True
                signal.raise_signal(signal.SIGINT)  # the first Ctrl-C

        sys.settrace(tracer)
        try:
            run_eval(cfg, tmp_path / f"run{position}", on_result=on_result, progress=False)
        except KeyboardInterrupt:
            pass
        finally:
            sys.settrace(None)
        for t in threading.enumerate():  # the last worker to end closes the session: wait for them (a bound, not a
            if t.name.startswith(("vidground-video", "vidground-query")):  # timing assertion; a loaded machine
                t.join(120)  # ran this whole file in 5 s, but failed it once in a full run with a 20-s bound)
        assert len(closed) == len(opened) == len(set(map(id, closed))), f"second Ctrl-C at executors.py:{state['fired']}"
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        sampling.INTERRUPTED.clear()
        if not state["fired"]:
            break
        tried += 1
        position += 1
    assert tried >= 3  # the lines of its end


def test_a_ray_tasks_own_keyboardinterrupt_is_that_videos_failure_not_a_ctrl_c(tmp_path):
    """HEAD: a RayTaskError wrapping a task's KeyboardInterrupt (both an Exception and a KeyboardInterrupt) was
    taken for a Ctrl-C: no Ctrl-C pressed, the run stopped as interrupted (RunInterrupted), cancelled the other
    videos and recorded nothing for that one. Now it is that video's failure, and the run goes on."""
    from test_m_interrupt_anywhere import _FakeRay

    class RayTaskError(Exception, KeyboardInterrupt):  # as ray.exceptions.RayTaskError.as_instanceof_cause builds
        pass

    gets, cancelled = [], []

    class Ray(_FakeRay):
        def get(self, ref):
            gets.append(1)
            if len(gets) == 1:
                raise RayTaskError("task vid0 raised KeyboardInterrupt in its worker")
            return super().get(ref)

        def wait(self, refs, num_returns=1, timeout=None):  # one video ends at a time
            return list(refs[:1]), list(refs[1:])

        def cancel(self, ref):
            cancelled.append(ref)

    ex = executors.RayExecutor.__new__(executors.RayExecutor)
    ex.ray, ex.num_cpus = Ray(), 1.0
    summary = run_eval(_toy(tmp_path, n_videos=3, per_video=2), tmp_path / "run", executor=ex, progress=False)
    assert (summary.ran, summary.failed, cancelled) == (6, 2, [])
    failed = [r for r in read_jsonl(tmp_path / "run" / "results.jsonl") if r["status"] != "ok"]
    assert {r["video"] for r in failed} == {"vid0"}
    assert all("KeyboardInterrupt" in r["error"]["message"] for r in failed)
    videos = {r["video"]: r for r in read_jsonl(tmp_path / "run" / "videos.jsonl")}
    assert videos["vid0"]["error"]["type"] == "RayTaskError"
