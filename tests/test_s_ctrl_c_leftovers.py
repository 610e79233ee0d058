"""Ctrl-C leftovers of the eval runner (pipelines/runs.py, pipelines/executors.py), each found by a review.

No test reads a clock: each SIGINT is raised (signal.raise_signal, in the main thread, as the terminal's Ctrl-C is
run) at a counted point, and the held queries wait on events, at most 10 s (a stuck test fails, not hangs).
"""

from __future__ import annotations

import signal
import threading
import types
from typing import Any

import pytest

from pipelines import executors, runs
from pipelines.runs import read_jsonl, run_eval
from temporal_reasoner import reasoners
from vidground import interrupts

from _helpers_eval import FakeReasoner

from test_m_interrupt_anywhere import ANSWERED, HOLD, LOCK, config, fresh  # noqa: F401 (fresh: a fixture)


def _watched_sessions(monkeypatch) -> tuple[list[int], list[int]]:
    """``(closes, queries under way at each close)`` of the sessions the local executor opens."""
    closes: list[int] = []
    in_call_at_close: list[int] = []
    real_session_for = executors.session_for

    def session_for(cfg):
        session = real_session_for(cfg)
        real_close = session.close

        def close():
            with LOCK:
                closes.append(1)
                in_call_at_close.append(HOLD["held"] - max(0, len(ANSWERED) - HOLD["after"]))
            real_close()

        session.close = close
        return session

    monkeypatch.setattr(executors, "session_for", session_for)
    return closes, in_call_at_close


def test_two_ctrl_cs_during_the_join_after_on_result_raised_do_not_close_the_session_under_a_worker(
        tmp_path, monkeypatch):
    """HEAD: ``on_result`` raised, the run closed its executor, which waited for its workers; two Ctrl-Cs there (the
    second raises) ended that wait, and the run closed the session at once, while both workers were still in a
    query (in_call_at_close == [2]). Now the last worker to end closes it, after its call."""
    closes, in_call_at_close = _watched_sessions(monkeypatch)
    joined = []

    class Thread(threading.Thread):
        def join(self, timeout=None):
            if not joined:  # the run waits for its workers: the user presses Ctrl-C twice
                joined.append(1)
                signal.raise_signal(signal.SIGINT)
                signal.raise_signal(signal.SIGINT)
            super().join(timeout)

    monkeypatch.setattr(executors, "threading", types.SimpleNamespace(Thread=Thread, Event=threading.Event,
                                                                      Lock=threading.Lock))
    HOLD["after"] = 1  # every query after the first waits: two under way, one per worker

    def on_result(record: dict[str, Any]) -> None:
        while HOLD["held"] < 2:
            HOLD["held_changed"].clear()
            assert HOLD["held_changed"].wait(10)
        raise ValueError("the caller's callback failed")

    cfg, out = config(tmp_path), tmp_path / "run"
    with pytest.raises(KeyboardInterrupt) as info:
        run_eval(cfg, out, on_result=on_result)
    assert joined == [1] and isinstance(info.value.__context__.__context__, ValueError)  # via the close's GeneratorExit
    workers = [t for t in threading.enumerate() if t.name.startswith("vidground-video")]
    assert len(workers) == 2 and closes == []  # both still in their query: the session is theirs
    HOLD["release"].set()
    for t in workers:
        t.join(10)
    assert closes == [1] and in_call_at_close == [0]  # closed once, after the calls under way ended
    assert len(read_jsonl(out / "results.jsonl")) == 1



class Gated(FakeReasoner):
    """Answers ``free`` queries, then holds each later one until ``go`` is set (at most 10 s); counts its answers."""

    free, go, answered = 0, threading.Event(), 0

    def ground(self, query: str, transcript: Any) -> Any:
        cls = type(self)
        with LOCK:
            held = cls.answered >= cls.free
        if held:
            assert cls.go.wait(10)
        result = super().ground(query, transcript)
        with LOCK:
            cls.answered += 1
        return result


class Outer(Gated):
    name = "s-outer"


class Inner(Gated):
    name = "s-inner"


reasoners.register("s-outer", Outer)
reasoners.register("s-inner", Inner)


def test_a_ctrl_c_stops_a_run_eval_nested_in_another_ones_callback_and_both_keep_what_finished(tmp_path, capsys):
    """HEAD: the inner run_eval found the outer one's SIGINT handler in place, not Python's, and left it there: the
    Ctrl-C set only the outer run's stop, said 'stopping', and the inner run went on to answer all its 12 queries.
    Now the inner run takes the Ctrl-C too and passes it on: the inner stops, then the outer, each having written
    what finished (the queries under way too: one Ctrl-C abandons no call), and the line is said once."""
    for cls, free in ((Outer, 1), (Inner, 2)):
        cls.free, cls.go, cls.answered = free, threading.Event(), 0
    inner_cfg, inner_out = config(tmp_path / "inner"), tmp_path / "inner" / "run"
    inner_cfg.reasoner = "s-inner"
    inner: dict[str, Any] = {}

    def inner_result(record: dict[str, Any]) -> None:
        inner["seen"] = inner.get("seen", 0) + 1
        if inner["seen"] == 2:
            signal.raise_signal(signal.SIGINT)
            Inner.go.set()  # the queries under way end (after the Ctrl-C: each still written)
            Outer.go.set()

    def outer_result(record: dict[str, Any]) -> None:
        if not inner:
            with pytest.raises(runs.RunInterrupted) as info:
                run_eval(inner_cfg, inner_out, on_result=inner_result)
            inner["exc"] = info.value
            raise info.value

    outer_cfg, outer_out = config(tmp_path / "outer"), tmp_path / "outer" / "run"
    outer_cfg.reasoner = "s-outer"
    with pytest.raises(runs.RunInterrupted) as outer:
        run_eval(outer_cfg, outer_out, on_result=outer_result)
    assert not inner["exc"].abandoned and not outer.value.abandoned
    assert capsys.readouterr().err.count("vidground: stopping:") == 1
    for out, exc, answered in ((inner_out, inner["exc"], Inner.answered), (outer_out, outer.value, Outer.answered)):
        lines = read_jsonl(out / "results.jsonl")
        assert len(lines) == len({r["qid"] for r in lines}) == exc.saved == answered  # each answer written once
    assert 2 <= Inner.answered <= 4 and 1 <= Outer.answered <= 3  # at most one more per worker: no query begun
    saved = Inner.answered
    again = run_eval(inner_cfg, inner_out)
    assert (again.already_done, again.ran) == (saved, 12 - saved)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_after_a_ctrl_c_no_frame_waiting_for_a_request_slot_is_sent(tmp_path):
    """HEAD: once a Ctrl-C stopped the frame streams (the command line's handler, which an eval's video workers
    only see there), the frames already decoded and waiting for a request, in the stream's own queue or for a place
    in the endpoint's shared limit, were still sent (paid; cached): two workers' streams, 2 requests in flight, sent
    6 in all. Now they are not sent: 2 requests, both answered after the Ctrl-C and cached; each reader gets the
    KeyboardInterrupt, and the rerun sends only the frames never sent."""
    from frame_describer import sampling
    from frame_describer.cache import CachedDescriber, DescriptionCache

    from _helpers_openai_server import FakeOpenAIServer, Reply
    from test_k_interrupt_describers import describer, frame, index_of, until

    gate = threading.Event()
    pulled: list[int] = []

    def respond(req):
        assert gate.wait(10)
        return Reply.chat(f"frame {index_of(req)}")

    def frames(first: int):  # a video's frame stream: it stops at its next frame after a Ctrl-C
        for k in range(first, first + 8):
            if sampling.INTERRUPTED.is_set():
                raise KeyboardInterrupt("interrupted")
            pulled.append(k)
            yield frame(k)

    cache = DescriptionCache(tmp_path / "c.sqlite")
    raised: list[BaseException] = []

    def worker(stream) -> None:  # an eval's video worker: no Ctrl-C reaches its thread
        try:
            for _ in stream:
                pass
        except BaseException as exc:
            raised.append(exc)

    try:
        with FakeOpenAIServer(respond) as server:
            streams = [CachedDescriber(describer(server, concurrency=2), cache, fingerprint="v").describe(frames(first))
                       for first in (0, 10)]  # the two describers share the endpoint's limit: 2 in flight
            threads = [threading.Thread(target=worker, args=(s,)) for s in streams]
            for t in threads:
                t.start()
            # each stream's window is full (4 frames decoded), 2 requests in flight, the other 6 frames wait
            assert until(lambda: len(server.requests) == 2 and len(pulled) == 8)
            interrupts.interrupt()  # the Ctrl-C, as the command line's handler gives it to every thread
            gate.set()
            for t in threads:
                t.join(10)
            sent = sorted(index_of(r) for r in server.requests)
            assert len(sent) == 2 and cache.count() == 2  # the 2 in flight: answered and kept; no other sent
            assert len(raised) == 2 and all(isinstance(e, KeyboardInterrupt) for e in raised)
            sampling.INTERRUPTED.clear()  # the command's end: the next command's streams run
            for first in (0, 10):
                again = list(CachedDescriber(describer(server, concurrency=2), cache, fingerprint="v").describe(
                    frame(k) for k in range(first, first + 8)))
                assert len(again) == 8
            assert sorted(index_of(r) for r in server.requests[2:]) == sorted(
                k for k in [*range(8), *range(10, 18)] if k not in sent)
    finally:
        sampling.INTERRUPTED.clear()


def test_ray_a_ctrl_c_inside_ray_get_keeps_that_videos_records(tmp_path):
    """HEAD: the ended video was taken off the list before ``ray.get``; a KeyboardInterrupt inside the get (a Ctrl-C
    where run_eval does not take SIGINT itself: a program's own handler, a thread) dropped its records: 4 of 6
    written, and the resume asked that video's 2 queries again (paid twice). Now the video is read again."""
    from test_m_interrupt_anywhere import _FakeRay

    gets = []

    class Ray(_FakeRay):
        def get(self, ref):
            gets.append(1)
            if len(gets) == 2:  # inside the 2nd video's get, its task ended
                raise KeyboardInterrupt
            return super().get(ref)

    ex = executors.RayExecutor.__new__(executors.RayExecutor)
    ex.ray, ex.num_cpus = Ray(), 1.0
    cfg, out = config(tmp_path, n_videos=3, per_video=2), tmp_path / "run"
    with pytest.raises(runs.RunInterrupted) as info:
        run_eval(cfg, out, executor=ex)
    lines = read_jsonl(out / "results.jsonl")
    assert len(gets) == 4 and len(lines) == len({r["qid"] for r in lines}) == info.value.saved == 6
    assert sorted(r["video"] for r in read_jsonl(out / "videos.jsonl")) == ["vid0", "vid1", "vid2"]


def test_a_ctrl_c_in_a_python_run_eval_stops_the_video_being_described(tmp_path):
    """HEAD: run_eval called from Python (no command line, so no handler of its own stopped the frame streams) took the
    Ctrl-C as its stop, but the video worker went on describing (and paying for) its whole video: 30 of 30 frames
    after a Ctrl-C at the 5th. Now the first Ctrl-C stops the frame streams too, as the command line's does (a frame
    stream stops at its next frame; an API describer sends nothing more): the frames described are cached, and the
    rerun describes only the others."""
    from frame_describer import describers, sampling
    from frame_describer.cache import DescriptionCache

    from _helpers_eval import FakeDescriber, render_toy_videos, write_toy_dataset

    seen: list[float] = []

    class CtrlCAtTheFifth(FakeDescriber):
        name = "fake"  # the same settings key as the plain fake, which the rerun uses

        def describe(self, frames, *, query=None):
            for d in super().describe(frames, query=query):
                seen.append(d.t)
                if len(seen) == 5:
                    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # the user's Ctrl-C
                    sampling.INTERRUPTED.wait(10)  # until the run has taken it (HEAD: never)
                yield d

    describers.register("s-ctrl-c-at-fifth", CtrlCAtTheFifth)
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=2, duration=3.0)
    videos = render_toy_videos(tmp_path / "videos", ["vid0", "vid1"], n_frames=30, fps=10.0)
    cfg = runs.RunConfig(dataset="jsonl", dataset_path=str(ds), videos=str(videos), describer="s-ctrl-c-at-fifth",
                         reasoner="fake-reasoner", fps=10.0, cache=str(tmp_path / "c.sqlite"), concurrency=1)
    try:
        with pytest.raises(runs.RunInterrupted):
            run_eval(cfg, tmp_path / "run")
        assert not sampling.INTERRUPTED.is_set()  # cleared when the run ended: the next run's streams run
    finally:
        sampling.INTERRUPTED.clear()
    described = len(seen)
    assert 5 <= described <= 6 and DescriptionCache(tmp_path / "c.sqlite").count() == described
    describers.register("s-ctrl-c-at-fifth", FakeDescriber)
    again = run_eval(cfg, tmp_path / "run")
    assert (again.describe_calls_now, again.describe_saved_now) == (60 - described, described)
    # the run folder's total: the frames the stopped describe sent count too (its "unfinished" record: 55 before)
    assert (again.describe_calls, again.describe_saved) == (60, described)
