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

from pipelines import executors
from pipelines.runs import read_jsonl, run_eval

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
