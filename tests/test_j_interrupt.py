"""A Ctrl-C during an eval keeps every result finished by then (pipelines/executors.py, pipelines/runs.py).

The thread executor's workers put each finished record on a queue that the run reads and writes. A Ctrl-C reached
the run's thread only: the records waiting in the queue, and those the workers went on finishing while the run
waited for them to end (every query of the videos under way), were dropped, and the resumed run asked those queries
again (an LLM reasoner's calls paid twice). Now no worker begins another video or query, and everything finished
is written before the run stops, saying how many; the resumed run asks only the queries never answered.

No test reads a wall clock: the Ctrl-C is a KeyboardInterrupt raised at a counted point (the n-th result written,
the n-th record taken from the queue, a query's grounding), except the command-line one, a SIGINT the fake
reasoner sends at its n-th answer, as the other Ctrl-C tests of tests/test_runs.py do.
"""

from __future__ import annotations

import collections
import json
import queue
import signal
import threading
from typing import Any

import pytest

from pipelines import executors
from pipelines.executors import LocalExecutor, process_video, session_for
from pipelines.runs import RunConfig, RunInterrupted, VideoTask, read_jsonl, run_eval
from temporal_reasoner import reasoners

from _helpers_eval import FakeReasoner, register_fakes, write_toy_dataset

register_fakes()

#: the queries each counting reasoner answered (the query text: the toy's qids share texts across videos, so the
#: transcript's first words tell the video too)
ANSWERED: collections.Counter[tuple[str, str]] = collections.Counter()
LOCK = threading.Lock()
#: set once the reasoners answered that many queries in all
REACHED: dict[int, threading.Event] = {}
#: ``after``: a query begun once that many were answered waits, until the executor's ``stop`` is set (a Ctrl-C):
#: the queries under way at the Ctrl-C, whatever the machine's speed
HOLD: dict[str, Any] = {"after": None, "stop": []}


class Counting(FakeReasoner):
    """The fake reasoner, counting each query it answers (by video and query) and signalling counts reached."""

    name = "counting-reasoner"

    def ground(self, query: str, transcript: Any) -> Any:
        with LOCK:
            held = HOLD["after"] is not None and sum(ANSWERED.values()) >= HOLD["after"]
        if held and HOLD["stop"]:  # under way when the Ctrl-C comes; answered after it (at most 10 s: a stuck test
            assert HOLD["stop"][0].wait(10)  # fails, not hangs)
        result = super().ground(query, transcript)
        count(query, transcript.entries[0].text)
        return result


reasoners.register("counting-reasoner", Counting)


@pytest.fixture(autouse=True)
def fresh_counts(monkeypatch):
    ANSWERED.clear()
    REACHED.clear()
    HOLD.update(after=None, stop=[])
    real = executors.process_video

    def spied(task, config, emit, session=None, stop=None):  # the executor's stop event, for HOLD
        if stop is not None and not HOLD["stop"]:
            HOLD["stop"].append(stop)
        return real(task, config, emit, session, **({} if stop is None else {"stop": stop}))

    monkeypatch.setattr(executors, "process_video", spied)


def config(tmp_path, **kw: Any) -> RunConfig:
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=4, per_video=3)
    return RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="counting-reasoner",
                     concurrency=2, **kw)


def reached(n: int) -> threading.Event:
    """Set once the reasoners answered ``n`` queries in all (at once when they already have)."""
    with LOCK:
        event = REACHED.setdefault(n, threading.Event())
        if sum(ANSWERED.values()) >= n:
            event.set()
    return event


def count(query: str, video: str = "") -> None:
    with LOCK:
        ANSWERED[(video, query)] += 1
        n = sum(ANSWERED.values())
        for k, event in REACHED.items():
            if n >= k:
                event.set()


def run_interrupted(tmp_path, config_options: dict[str, Any] | None = None, **options: Any) -> tuple[Any, Any, int, Any]:
    """A run that a Ctrl-C stops: ``(config, folder, queries answered, the interrupt)``, once every query answered
    was found written, once."""
    cfg = config(tmp_path, **(config_options or {}))
    out = tmp_path / "run"
    with pytest.raises(RunInterrupted) as info:
        run_eval(cfg, out, **options)
    lines = read_jsonl(out / "results.jsonl")
    answered = sum(ANSWERED.values())
    assert len(lines) == len({r["qid"] for r in lines}) == answered == info.value.saved
    assert (info.value.done, info.value.total) == (answered, 12)
    return cfg, out, answered, info.value


def resume_asks_nothing_twice(cfg: RunConfig, out, saved: int) -> None:
    """The resumed run answers the queries the interrupted one did not write, each once: in all, every query was
    answered exactly once (none finished and dropped, then asked again)."""
    again = run_eval(cfg, out)
    assert again.already_done == saved and again.ran == 12 - saved and again.failed == 0
    assert sorted(r["qid"] for r in read_jsonl(out / "results.jsonl")) == sorted(
        f"vid{v}-{k}" for v in range(4) for k in range(3))
    assert sum(ANSWERED.values()) == 12 and set(ANSWERED.values()) == {1}


@pytest.mark.parametrize("query_concurrency", [1, 2])
def test_a_ctrl_c_while_a_result_is_written_keeps_every_result_finished(tmp_path, query_concurrency):
    """Ctrl-C while the run wrote its 2nd result, the other worker having answered more by then: 2 results were
    kept and the others answered were dropped (the resumed run asked them again); now all of them are written."""
    written = []
    HOLD["after"] = 4

    def on_result(record: dict[str, Any]) -> None:
        written.append(record["qid"])
        if len(written) == 2:
            assert reached(4).wait(10)  # two more answered, waiting in the executor's queue or on their way
            raise KeyboardInterrupt

    cfg, out, answered, _ = run_interrupted(tmp_path, {"query_concurrency": query_concurrency}, on_result=on_result)
    assert 4 <= answered < 12  # no video or query was begun after the Ctrl-C: the rest is the resumed run's
    resume_asks_nothing_twice(cfg, out, answered)


@pytest.mark.parametrize("written", [False, True])
def test_a_ctrl_c_inside_the_write_of_a_result_writes_it_once(tmp_path, monkeypatch, written):
    """The Ctrl-C comes inside the 3rd result's append, before its line is written or after (before the run counted
    it): the line is written once either way, and the result counted once."""
    from pipelines import runs

    real = runs.ResultSink.append
    calls = []

    def append(self, record):
        if self.path.name != "results.jsonl":
            return real(self, record)
        calls.append(record["qid"])
        if len(calls) == 3:
            assert reached(4).wait(10)
            if written:
                real(self, record)
            raise KeyboardInterrupt
        return real(self, record)

    monkeypatch.setattr(runs.ResultSink, "append", append)
    HOLD["after"] = 4
    cfg, out, answered, _ = run_interrupted(tmp_path)
    assert answered >= 4 and calls.count(calls[2]) == (1 if written else 2)  # again only when its line was not
    monkeypatch.setattr(runs.ResultSink, "append", real)
    resume_asks_nothing_twice(cfg, out, answered)


class InterruptingQueue(queue.SimpleQueue):
    """The executor's queue: the run's thread gets a KeyboardInterrupt (a Ctrl-C) as it waits for its 3rd record,
    once the workers have answered 5 queries."""

    raised = False  # once: the resumed run's queue does not

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.taken = 0

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if self.taken == 2 and not InterruptingQueue.raised:
            InterruptingQueue.raised = True
            assert reached(5).wait(10)
            raise KeyboardInterrupt
        item = super().get(block, timeout)
        self.taken += 1
        return item


def test_a_ctrl_c_while_the_run_waits_for_a_record_keeps_every_result_finished(tmp_path, monkeypatch):
    monkeypatch.setattr(executors, "_RecordQueue", InterruptingQueue)
    HOLD["after"] = 5
    cfg, out, answered, _ = run_interrupted(tmp_path)
    assert 5 <= answered < 12
    resume_asks_nothing_twice(cfg, out, answered)


def test_the_executor_yields_what_finishes_after_a_ctrl_c_then_raises_it(tmp_path):
    """The executor alone: a KeyboardInterrupt thrown into its stream (the caller's Ctrl-C) stops the workers
    beginning anything, and the records finished are yielded before it is raised again."""
    cfg = config(tmp_path)
    from pipelines.runs import select_queries

    ds = select_queries(cfg)
    tasks = [VideoTask(v, str(tmp_path / "data" / "descriptions" / f"{v}.jsonl"), [q for q in ds if q.video == v])
             for v in ds.videos]
    HOLD["after"] = 3
    stream = LocalExecutor(2).run(tasks, cfg)
    first = next(stream)
    assert first[0] in ("video", "result")
    assert reached(3).wait(10)
    rest = []
    with pytest.raises(KeyboardInterrupt):
        item = stream.throw(KeyboardInterrupt())
        while True:
            rest.append(item)
            item = next(stream)
    results = [r for kind, r in [first, *rest] if kind == "result"]
    assert len(results) == sum(ANSWERED.values()) >= 3 and sum(ANSWERED.values()) < 12


def test_a_query_stopped_by_a_ctrl_c_no_longer_drops_the_results_of_the_queries_after_it(tmp_path):
    """With query_concurrency, a query whose frame stream a Ctrl-C stopped (KeyboardInterrupt in the worker) made
    the queries after it that finished lose their results (pool.map raised first)."""

    class StoppedFirst(FakeReasoner):
        name = "stopped-first"

        def ground(self, query: str, transcript: Any) -> Any:
            if query == "the person open door":
                assert reached(2).wait(10)  # the two other queries answered
                raise KeyboardInterrupt("frame stream stopped")
            result = super().ground(query, transcript)
            count(query)
            return result

    reasoners.register("stopped-first", StoppedFirst)
    cfg = config(tmp_path, query_concurrency=3)
    cfg.reasoner = "stopped-first"
    from pipelines.runs import select_queries

    ds = select_queries(cfg)
    task = VideoTask("vid0", str(tmp_path / "data" / "descriptions" / "vid0.jsonl"),
                     [q for q in ds if q.video == "vid0"])
    assert task.queries[0].query == "the person open door"
    emitted: list[tuple[str, dict[str, Any]]] = []
    session = session_for(cfg)
    try:
        with pytest.raises(KeyboardInterrupt, match="frame stream stopped"):
            process_video(task, cfg, emitted.append, session)
    finally:
        session.close()
    assert [r["qid"] for kind, r in emitted if kind == "result"] == ["vid0-1", "vid0-2"]


def test_a_stopped_worker_begins_no_video_nor_query(tmp_path):
    cfg = config(tmp_path)
    from pipelines.runs import select_queries

    ds = select_queries(cfg)
    task = VideoTask("vid0", str(tmp_path / "data" / "descriptions" / "vid0.jsonl"),
                     [q for q in ds if q.video == "vid0"])
    stop = threading.Event()
    emitted: list[Any] = []
    session = session_for(cfg)
    try:
        stop.set()
        process_video(task, cfg, emitted.append, session, stop)
        assert emitted == [] and not ANSWERED  # not even the video's record
        stop.clear()

        def emit(item: Any) -> None:  # the Ctrl-C comes as the first query's result is emitted
            emitted.append(item)
            if item[0] == "result":
                stop.set()

        process_video(task, cfg, emit, session, stop)
    finally:
        session.close()
    assert [kind for kind, _ in emitted] == ["video", "result"] and sum(ANSWERED.values()) == 1


def test_the_command_line_says_how_many_results_the_interrupted_run_saved(tmp_path, capsys):
    """A real SIGINT to the main thread (the reasoner sends it at its 3rd answer, as the terminal does at Ctrl-C)."""
    from pipelines.cli import main

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    class CtrlCAtTheThird(Counting):
        name = "ctrl-c-at-third"

        def ground(self, query: str, transcript: Any) -> Any:
            result = super().ground(query, transcript)
            with LOCK:
                n = sum(ANSWERED.values())
            if n == 3:
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            return result

    reasoners.register("ctrl-c-at-third", CtrlCAtTheThird)
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=4, per_video=3)
    out = tmp_path / "run"
    argv = ["eval", "jsonl", "--dataset-file", str(ds), "--descriptions", str(desc), "--reasoner", "ctrl-c-at-third",
            "--concurrency", "2", "--quiet", "--out", str(out)]
    assert main(argv) == 130
    err = capsys.readouterr().err
    saved = len(read_jsonl(out / "results.jsonl"))
    assert saved == sum(ANSWERED.values()) >= 3
    assert f"({saved} result(s) saved by this run, {saved} of 12 queries done)" in err
    assert "every finished item is kept in" in err
    assert json.loads((out / "config.json").read_text())["reasoner"] == "ctrl-c-at-third"


def test_frames_described_before_a_ctrl_c_are_cached_and_not_paid_again(tmp_path, capsys):
    """Verification (it held before too): the describer's results are not lost with the queue. Each description
    is stored in the cache as the describer yields it, in the worker, and a Ctrl-C stops the worker's frame stream
    only after the frames being described: every frame described before the interrupt is in the cache, and the
    resumed run pays for none of them again."""
    from frame_describer import describers
    from frame_describer.cache import DescriptionCache
    from pipelines.cli import main

    from _helpers_eval import FakeDescriber, render_toy_videos

    lock, seen = threading.Lock(), []

    class CtrlCAtTheFifth(FakeDescriber):
        name = "fake"  # the same settings key as the plain fake, which the resumed run uses

        def describe(self, frames, *, query=None):
            for d in super().describe(frames, query=query):
                with lock:
                    seen.append(d.t)
                    n = len(seen)
                if n == 5:
                    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
                yield d

    describers.register("ctrl-c-at-fifth", CtrlCAtTheFifth)
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=2, duration=3.0)
    videos = render_toy_videos(tmp_path / "videos", ["vid0", "vid1"], n_frames=30, fps=10.0)
    cache = tmp_path / "c.sqlite"
    argv = ["eval", "jsonl", "--dataset-file", str(ds), "--videos", str(videos), "--reasoner", "fake-reasoner",
            "--fps", "10", "--cache", str(cache), "--quiet", "--no-report", "--out", str(tmp_path / "run")]
    assert main([*argv, "--describer", "ctrl-c-at-fifth"]) == 130
    described = len(seen)
    assert 5 <= described < 60 and DescriptionCache(cache).count() == described
    capsys.readouterr()
    describers.register("ctrl-c-at-fifth", FakeDescriber)  # the same command again, no Ctrl-C this time
    assert main([*argv, "--describer", "ctrl-c-at-fifth"]) == 0
    out = capsys.readouterr().out
    assert f"describer calls: {60 - described} made, {described} saved by the cache" in out
