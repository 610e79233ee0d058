"""A Ctrl-C during an eval loses no finished result wherever it lands (pipelines/runs.py, pipelines/executors.py).

f747215 wrote what had finished when the Ctrl-C's KeyboardInterrupt came at the points it knew of; one landing
elsewhere in the run's thread (inside the sink's size() before the record was noted as being written, inside
Queue.get after the record was taken, at the executor loop's back edge) dropped every record the executor had
finished. Now run_eval, in the main thread, takes SIGINT itself: the first Ctrl-C raises nothing, it sets an event the
executor polls, and says so at once; the second raises KeyboardInterrupt and the run stops at once, without waiting
for the calls under way (daemon workers; the last to end closes the session), and says so.

No test reads a clock: each SIGINT is sent (signal.raise_signal, in the main thread, as the terminal's Ctrl-C is run)
at a counted point, and the held queries wait on events, at most 10 s (a stuck test fails, not hangs).
"""

from __future__ import annotations

import collections
import queue
import signal
import threading
import types
from typing import Any

import pytest

from pipelines import executors, runs
from pipelines.runs import RunConfig, RunInterrupted, read_jsonl, run_eval
from temporal_reasoner import reasoners

from _helpers_eval import FakeReasoner, register_fakes, write_toy_dataset

register_fakes()

ANSWERED: list[str] = []
LOCK = threading.Lock()
#: queries begun once ``HOLD["after"]`` were answered wait for ``HOLD["release"]``; ``HOLD["held"]`` counts them
HOLD: dict[str, Any] = {}


class Counting(FakeReasoner):
    name = "m-counting"

    def ground(self, query: str, transcript: Any) -> Any:
        with LOCK:
            held = HOLD["after"] is not None and len(ANSWERED) >= HOLD["after"]
            if held:
                HOLD["held"] += 1
                HOLD["held_changed"].set()
        if held:
            assert HOLD["release"].wait(10)
        result = super().ground(query, transcript)
        with LOCK:
            ANSWERED.append(query)
        return result


reasoners.register("m-counting", Counting)


@pytest.fixture(autouse=True)
def fresh():
    ANSWERED.clear()
    HOLD.update(after=None, held=0, held_changed=threading.Event(), release=threading.Event())
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    yield
    HOLD["release"].set()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # run_eval put Python's own back


def config(tmp_path, n_videos: int = 4, per_video: int = 3) -> RunConfig:
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=n_videos, per_video=per_video)
    return RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="m-counting",
                     concurrency=2)


def every_answer_written_once(cfg: RunConfig, out, exc: RunInterrupted, total: int = 12) -> None:
    lines = read_jsonl(out / "results.jsonl")
    assert len(lines) == len({r["qid"] for r in lines}) == len(ANSWERED) == exc.saved
    answered = len(ANSWERED)
    again = run_eval(cfg, out)  # the resume asks only the others: none paid twice
    assert (again.already_done, again.ran) == (answered, total - answered)
    assert len(ANSWERED) == total


def test_a_ctrl_c_inside_the_sinks_size_loses_nothing(tmp_path, monkeypatch, capsys):
    """HEAD: the KeyboardInterrupt came before the record was noted as being written: it and every record the
    executor held were dropped (11 lines written for 12 answers)."""
    real = runs.ResultSink.size
    calls = [0]

    def size(self):
        calls[0] += 1
        if calls[0] == 7:  # the 4th record's
            signal.raise_signal(signal.SIGINT)
        return real(self)

    monkeypatch.setattr(runs.ResultSink, "size", size)
    cfg, out = config(tmp_path), tmp_path / "run"
    with pytest.raises(RunInterrupted) as info:
        run_eval(cfg, out)
    assert not info.value.abandoned
    # the first Ctrl-C says at once what happens (descriptions mode: nothing was said before)
    assert "vidground: stopping: no query is begun" in capsys.readouterr().err
    monkeypatch.setattr(runs.ResultSink, "size", real)
    every_answer_written_once(cfg, out, info.value)


def test_a_ctrl_c_inside_the_queues_get_after_the_record_was_taken_loses_nothing(tmp_path, monkeypatch):
    """HEAD: the record taken off the executor's queue was dropped with the KeyboardInterrupt."""

    class Q(queue.SimpleQueue):  # the executor's record queue (executors._RecordQueue)
        gets = 0

        def get(self, block=True, timeout=None):
            item = super().get(block, timeout)
            Q.gets += 1
            if Q.gets == 6:
                signal.raise_signal(signal.SIGINT)  # the handler runs here, the record taken and not yet returned
            return item

    monkeypatch.setattr(executors, "_RecordQueue", Q)
    cfg, out = config(tmp_path), tmp_path / "run"
    with pytest.raises(RunInterrupted) as info:
        run_eval(cfg, out)
    monkeypatch.setattr(executors, "_RecordQueue", queue.SimpleQueue)
    every_answer_written_once(cfg, out, info.value)


def test_a_ctrl_c_at_any_record_loses_nothing(tmp_path):
    """A SIGINT while the n-th result is handed to the caller, for each n: every answer is written, once (a guard:
    f747215 handled this point already, through the record being written)."""
    for n in range(1, 9):
        ANSWERED.clear()
        cfg, out = config(tmp_path / str(n)), tmp_path / str(n) / "run"
        seen = [0]

        def on_result(record: dict[str, Any]) -> None:
            seen[0] += 1
            if seen[0] == n:
                signal.raise_signal(signal.SIGINT)

        with pytest.raises(RunInterrupted) as info:
            run_eval(cfg, out, on_result=on_result)
        every_answer_written_once(cfg, out, info.value)


def test_a_second_ctrl_c_stops_at_once_without_waiting_for_the_calls_under_way(tmp_path, monkeypatch):
    """HEAD: the run raised, its workers (non-daemon) went on in a closed session, and the interpreter waited for
    them at exit. Now the run stops while two queries are still under way, says that it did not wait for them, the
    workers are daemon threads, and the session is closed once, by the last of them to end, after their calls."""
    closes, in_call_at_close = [], []
    real_session_for = executors.session_for

    def session_for(config):
        session = real_session_for(config)
        real_close = session.close

        def close():
            with LOCK:
                closes.append(1)
                in_call_at_close.append(HOLD["held"] - (len(ANSWERED) - 1))
            real_close()

        session.close = close
        return session

    monkeypatch.setattr(executors, "session_for", session_for)
    HOLD["after"] = 1  # every query after the first waits: two under way, one per worker

    def on_result(record: dict[str, Any]) -> None:
        while HOLD["held"] < 2:
            HOLD["held_changed"].clear()
            assert HOLD["held_changed"].wait(10)
        signal.raise_signal(signal.SIGINT)  # the first: nothing more is begun
        signal.raise_signal(signal.SIGINT)  # the second: stop now

    cfg, out = config(tmp_path), tmp_path / "run"
    with pytest.raises(RunInterrupted, match="stopped at once: the queries under way were not waited for") as info:
        run_eval(cfg, out, on_result=on_result)
    workers = [t for t in threading.enumerate() if t.name.startswith("vidground-video")]
    assert len(workers) == 2 and all(t.daemon for t in workers)  # the process may exit while they are in a call
    assert info.value.abandoned and info.value.saved == 1 == len(ANSWERED) and closes == []
    HOLD["release"].set()
    for t in workers:
        t.join(10)
    assert closes == [1] and in_call_at_close == [0]  # closed once, after the calls under way ended
    assert len(ANSWERED) == 3 and len(read_jsonl(out / "results.jsonl")) == 1  # the 2 under way: lost, not written
    HOLD["after"] = None
    again = run_eval(cfg, out)
    assert (again.already_done, again.ran) == (1, 11)


def test_a_run_off_the_main_thread_or_under_a_programs_own_handler_keeps_its_ctrl_c(tmp_path):
    """run_eval takes SIGINT only in place of Python's own handler, in the main thread; a program's handler is
    still the one run, and left in place."""
    calls = []

    def mine(signum, frame):
        calls.append(signum)

    previous = signal.signal(signal.SIGINT, mine)
    try:
        def on_result(record: dict[str, Any]) -> None:
            if not calls:
                signal.raise_signal(signal.SIGINT)

        summary = run_eval(config(tmp_path), tmp_path / "run", on_result=on_result)
        assert calls == [signal.SIGINT] and summary.ran == 12 and signal.getsignal(signal.SIGINT) is mine
    finally:
        signal.signal(signal.SIGINT, previous)
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(s=run_eval(config(tmp_path / "t"), tmp_path / "t" / "r")))
    thread.start()
    thread.join(60)
    assert result["s"].ran == 12 and signal.getsignal(signal.SIGINT) is signal.default_int_handler


class _Ref:
    def __init__(self, value: Any):
        self.value = value


class _FakeRay:
    """Enough of ray for RayExecutor.run, in this process: a task runs when it is submitted."""

    def remote(self, **_: Any):
        return lambda fn: types.SimpleNamespace(
            remote=lambda *a: _Ref(fn(*[x.value if isinstance(x, _Ref) else x for x in a])))

    def put(self, x: Any) -> _Ref:
        return _Ref(x)

    def wait(self, refs, num_returns=1, timeout=None):
        return list(refs[:num_returns]), list(refs[num_returns:])

    def get(self, ref: _Ref) -> Any:
        return ref.value

    def cancel(self, ref: _Ref) -> None:
        pass


def test_ray_a_ctrl_c_just_after_a_videos_records_were_taken_yields_them_once(tmp_path, monkeypatch):
    """HEAD: a KeyboardInterrupt between ``ray.get(ended[0])`` and ``ended.pop(0)`` took that video again: its
    records were written twice (8 lines for 6 queries)."""

    class Deque(collections.deque):
        extends = 0

        def extend(self, items):
            super().extend(items)
            Deque.extends += 1
            if Deque.extends == 2:  # as the 2nd video's records are taken
                raise KeyboardInterrupt

    ex = executors.RayExecutor.__new__(executors.RayExecutor)
    ex.ray, ex.num_cpus = _FakeRay(), 1.0
    monkeypatch.setattr(executors, "collections", types.SimpleNamespace(deque=Deque))
    cfg, out = config(tmp_path, n_videos=3, per_video=2), tmp_path / "run"
    with pytest.raises(RunInterrupted) as info:
        run_eval(cfg, out, executor=ex)
    lines = read_jsonl(out / "results.jsonl")
    assert len(lines) == len({r["qid"] for r in lines}) == info.value.saved == 6
    assert sorted(r["video"] for r in read_jsonl(out / "videos.jsonl")) == ["vid0", "vid1", "vid2"]


def test_the_command_line_says_a_second_ctrl_c_lost_the_queries_under_way(tmp_path, monkeypatch, capsys):
    from pipelines import eval_cli
    from pipelines.cli import main

    def interrupted(args):
        raise RunInterrupted(tmp_path / "run", saved=1, done=1, total=12, abandoned=True)

    monkeypatch.setattr(eval_cli, "cmd_eval", interrupted)
    assert main(["eval", "qvhighlights", "--descriptions", str(tmp_path), "--out", str(tmp_path / "run")]) == 130
    assert ("(1 result(s) saved by this run, 1 of 12 queries done; stopped at once: the queries under way were lost, "
            "the resumed run asks them again)") in capsys.readouterr().err


def test_with_query_concurrency_each_result_is_emitted_once_it_and_those_before_it_ended(tmp_path):
    """The query threads are daemon threads now; a video's results still come out one by one, in query order, as
    they end (a query still under way holds back only those after it): the last query here ends only once the
    first result was emitted."""
    from pipelines.executors import process_video, session_for
    from pipelines.runs import VideoTask, select_queries

    cfg = config(tmp_path, n_videos=1, per_video=3)
    cfg.query_concurrency = 3
    task = VideoTask("vid0", str(tmp_path / "data" / "descriptions" / "vid0.jsonl"), list(select_queries(cfg)))
    first_out = threading.Event()

    class LastWaitsForTheFirstResult(Counting):
        name = "m-last-waits"

        def ground(self, query: str, transcript: Any) -> Any:
            if query == task.queries[-1].query:
                assert first_out.wait(10)
            return super().ground(query, transcript)

    reasoners.register("m-last-waits", LastWaitsForTheFirstResult)
    cfg.reasoner = "m-last-waits"
    emitted: list[tuple[str, dict[str, Any]]] = []

    def emit(item: tuple[str, dict[str, Any]]) -> None:
        emitted.append(item)
        if item[0] == "result":
            first_out.set()

    session = session_for(cfg)
    try:
        process_video(task, cfg, emit, session)
    finally:
        session.close()
    results = [r for kind, r in emitted if kind == "result"]
    assert [r["qid"] for r in results] == ["vid0-0", "vid0-1", "vid0-2"]
    assert [r["status"] for r in results] == ["ok"] * 3
