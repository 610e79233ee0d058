"""RV-P on 1996935: a pipe given as an input is read to its end, which never comes while the calling process holds
its write end (``r, w = os.pipe(); Session().load(f"/dev/fd/{r}")``): the call hung without a word. Now, once the pipe
has been quiet for a while, a warning names the write end this process holds."""

from __future__ import annotations

import json
import logging
import os
import threading

import pytest

from pipelines.session import Session
from vidground import files

LINES = "".join(json.dumps({"t": float(t), "text": f"frame {t}"}) + "\n" for t in range(3))


class _CloseOnWarning(logging.Handler):
    """Closes the write end when the warning comes (as the caller told to would); counts the warnings."""

    def __init__(self, w: int):
        super().__init__(logging.WARNING)
        self.w, self.said = w, []

    def emit(self, record: logging.LogRecord) -> None:
        self.said.append(record.getMessage())
        os.close(self.w)


@pytest.mark.skipif(not os.path.isdir(f"/proc/{os.getpid()}/fd"), reason="pipes are spooled where /proc names them")
def test_a_pipe_whose_write_end_this_process_holds_is_named_while_waited_for(monkeypatch):
    monkeypatch.setattr(files, "PIPE_QUIET", 0.05, raising=False)
    r, w = os.pipe()
    os.write(w, LINES.encode())
    handler = _CloseOnWarning(w)
    logging.getLogger("vidground").addHandler(handler)
    guard = threading.Timer(20, lambda: handler.said or os.close(w))  # the code before: no warning, so no hang here
    guard.start()
    try:
        with Session() as s:
            loaded = s.load(f"/dev/fd/{r}")
    finally:
        guard.cancel()
        logging.getLogger("vidground").removeHandler(handler)
        os.close(r)
    assert [d.text for d in loaded.descriptions] == ["frame 0", "frame 1", "frame 2"]
    assert len(handler.said) == 1 and f"holds its write end (file descriptor {w})" in handler.said[0]


@pytest.mark.skipif(not os.path.isdir(f"/proc/{os.getpid()}/fd"), reason="pipes are spooled where /proc names them")
def test_a_closed_write_end_is_read_without_a_word(monkeypatch, caplog):
    monkeypatch.setattr(files, "PIPE_QUIET", 0.05, raising=False)
    r, w = os.pipe()
    os.write(w, LINES.encode())
    os.close(w)
    try:
        with caplog.at_level(logging.WARNING), Session() as s:
            loaded = s.load(f"/dev/fd/{r}")
    finally:
        os.close(r)
    assert len(loaded.descriptions) == 3 and "write end" not in caplog.text
