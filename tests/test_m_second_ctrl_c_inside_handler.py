"""A second Ctrl-C that arrives while the first one's handler is still running the command line's handler is not
swallowed (review of 66436e4: it was caught by the first's ``except KeyboardInterrupt`` and the run then waited
for the calls under way, though it said it had stopped at once)."""

from __future__ import annotations

import signal

import pytest

from pipelines.runs import _CtrlC


class StopTakingExecutor:
    def run(self, tasks, config, stop=None):  # pragma: no cover - only its signature is read
        return iter(())


def test_a_second_ctrl_c_inside_the_first_handlers_call_raises():
    ctrl, calls = {}, []

    def cli_handler(signum, frame):  # the command line's handler, during whose first call the second SIGINT comes
        calls.append(signum)
        if len(calls) == 1:
            ctrl["it"]._handle(signum, frame)
        raise KeyboardInterrupt

    cli_handler.raises_keyboard_interrupt = True
    before = signal.signal(signal.SIGINT, cli_handler)
    try:
        ctrl["it"] = c = _CtrlC(StopTakingExecutor())
        assert c.installed
        with pytest.raises(KeyboardInterrupt):
            c._handle(signal.SIGINT, None)
        assert c.count == 2 and c.event.is_set()
    finally:
        c.restore()
        signal.signal(signal.SIGINT, before)


def test_the_first_ctrl_c_alone_still_raises_nothing():
    def cli_handler(signum, frame):
        raise KeyboardInterrupt

    cli_handler.raises_keyboard_interrupt = True
    before = signal.signal(signal.SIGINT, cli_handler)
    try:
        c = _CtrlC(StopTakingExecutor())
        c._handle(signal.SIGINT, None)
        assert c.count == 1 and c.event.is_set()
    finally:
        c.restore()
        signal.signal(signal.SIGINT, before)
