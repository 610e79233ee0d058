"""Two evals of one process on one run folder, where flock never refuses within a process (NFS's emulation by POSIX
locks): the second is refused even when it comes while the first is between its check and its lock (RV-N: the
check of the process's held folders and the claim were two steps; both evals held the folder in 66 of 200 tries)."""

from __future__ import annotations

import threading

import pytest

from pipelines import runs


def test_a_second_eval_of_this_process_coming_mid_acquire_is_refused(tmp_path, monkeypatch):
    first, second = runs.RunFolderLock(tmp_path), runs.RunFolderLock(tmp_path)
    outcome: list[str] = []

    def other_eval() -> None:
        try:
            second.acquire(["eval"])
            outcome.append("held")
        except runs.RunFolderBusyError:
            outcome.append("refused")

    def flock(fd: int, op: int) -> None:  # NFS: never conflicts within the process
        if not outcome and threading.current_thread() is threading.main_thread():
            t = threading.Thread(target=other_eval)
            t.start()  # the other eval acquires while this one is inside its flock
            t.join(30)

    monkeypatch.setattr(runs.fcntl, "flock", flock)
    try:
        first.acquire(["eval"])
        assert first.held
        assert outcome == ["refused"] and not second.held
    finally:
        first.release()
        second.release()
    assert str(tmp_path.resolve()) not in runs._HELD  # released: the folder can be taken again
    again = runs.RunFolderLock(tmp_path)
    again.acquire(["eval"])
    assert again.held
    again.release()


def test_an_interrupted_acquire_leaves_nothing_held_nor_open(tmp_path, monkeypatch):
    """A Ctrl-C in the retries' pause (a reader holding the folder for a moment): the claim is given back and the
    lock file's descriptor closed (it leaked)."""
    import errno
    import os

    opened: list[int] = []
    real_open = os.open

    def tracking_open(path, *args, **kwargs):
        fd = real_open(path, *args, **kwargs)
        opened.append(fd)
        return fd

    def busy(fd: int, op: int) -> None:
        raise OSError(errno.EWOULDBLOCK, "busy")

    def ctrl_c(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(runs.os, "open", tracking_open)
    monkeypatch.setattr(runs.fcntl, "flock", busy)
    monkeypatch.setattr(runs.time, "sleep", ctrl_c)
    lock = runs.RunFolderLock(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        lock.acquire(["eval"])
    assert not lock.held and str(tmp_path.resolve()) not in runs._HELD
    assert len(opened) == 1
    with pytest.raises(OSError):  # closed
        os.fstat(opened[0])


def test_a_folder_held_under_a_relative_path_is_released_after_a_chdir(tmp_path, monkeypatch):
    """RV-Q: release() worked the key out again from the relative path: after a chdir it discarded another
    folder's key, and this process then refused its own next eval on the folder ("being written by pid <self>")."""
    (tmp_path / "a").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    lock = runs.RunFolderLock(runs.Path("a"))
    lock.acquire(["eval"])
    monkeypatch.chdir(tmp_path / "elsewhere")
    lock.release()
    monkeypatch.chdir(tmp_path)
    again = runs.RunFolderLock(runs.Path("a"))
    again.acquire(["eval"])
    assert again.held
    again.release()
