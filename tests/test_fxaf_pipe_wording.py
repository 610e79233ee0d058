"""RV-R: the pipe warning told the caller to close the write end "before the call" even where another thread of the
process is the writer (still writing, as documented): it now says so only if no thread still writes to it."""

from __future__ import annotations

import logging
import os
import threading

import pytest

from pipelines.session import Session
from test_fxab_own_pipe import LINES, _CloseOnWarning
from vidground import files


@pytest.mark.skipif(not os.path.isdir(f"/proc/{os.getpid()}/fd"), reason="pipes are spooled where /proc names them")
def test_the_pipe_warning_allows_for_a_writing_thread(monkeypatch):
    monkeypatch.setattr(files, "PIPE_QUIET", 0.05, raising=False)
    r, w = os.pipe()
    os.write(w, LINES.encode())
    handler = _CloseOnWarning(w)  # the writing thread, closing once it is done
    logging.getLogger("vidground").addHandler(handler)
    guard = threading.Timer(20, lambda: handler.said or os.close(w))
    guard.start()
    try:
        with Session() as s:
            s.load(f"/dev/fd/{r}")
    finally:
        guard.cancel()
        logging.getLogger("vidground").removeHandler(handler)
        os.close(r)
    assert len(handler.said) == 1
    assert handler.said[0].endswith("if no thread of this process still writes to it, close it before the call")
