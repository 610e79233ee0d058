"""FX-T (user test U10): a run folder two evals share, a last line without its newline, a disk that refuses a
write, a folder that cannot be written."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from vidground.errors import ConfigurationError, InputError
from pipelines import cli as main_cli
from pipelines.report import write_report
from pipelines.runs import LOCK_NAME, ResultSink, RunFolderBusyError, RunFolderLock, load_run, read_jsonl, run_eval

from test_events import no_caption_scorers  # noqa: F401  (a fixture)
from test_runs import HERE, cfg, toy  # noqa: F401  (toy: the toy dataset fixture; its module registers the fakes)


def _qids(out: Path) -> list[str]:
    return [r["qid"] for r in read_jsonl(out / "results.jsonl")]


# ------------------------------------------------------------------------------ 1. one eval per run folder

def test_a_second_eval_on_a_folder_being_written_fails_at_once_naming_the_other(toy, tmp_path):
    """U10: run B started while run A wrote the same --out ran every query again and rewrote A's config.json and
    queries.jsonl (A's table covered B's predictions). B is now refused before it writes anything."""
    ds, desc = toy
    out = tmp_path / "run"
    caught: list[BaseException] = []

    def second() -> None:
        try:
            run_eval(cfg(ds, desc, limit=3, seed=1), out)
        except BaseException as exc:  # noqa: BLE001  (handed to the test's thread)
            caught.append(exc)

    def on_result(record):  # run A is under way: a run B in another thread, on the same folder
        if not caught and len(_qids(out)) == 1:
            b = threading.Thread(target=second)
            b.start()
            b.join()

    a = run_eval(cfg(ds, desc, limit=6, seed=0), out, on_result=on_result)
    assert len(caught) == 1 and isinstance(caught[0], RunFolderBusyError), caught
    err = caught[0]
    assert isinstance(err, ConfigurationError) and err.path == str(out)
    assert err.holder["pid"] == os.getpid() and err.holder["host"] == socket.gethostname() and err.holder["started"]
    assert str(err).startswith(f"{out} is being written by another eval (pid {os.getpid()} on ")
    assert "wait for that one to end and run this command again to resume the run, or give another --out" in str(err)
    # A's run and folder are A's alone: 6 queries, each once, its config (B's limit 3 wrote nothing)
    assert (a.selected, a.already_done, a.ran) == (6, 0, 6) and a.metrics.n == 6
    assert sorted(_qids(out)) == sorted(set(_qids(out))) and len(_qids(out)) == 6
    assert json.loads((out / "config.json").read_text())["limit"] == 6
    assert len(read_jsonl(out / "queries.jsonl")) == 6
    # given back when A ended: A's command again resumes the run, with nothing left to do
    again = run_eval(cfg(ds, desc, limit=6, seed=0), out)
    assert (again.already_done, again.ran) == (6, 0)


def test_the_lock_is_given_back_when_the_eval_fails(toy, tmp_path):
    ds, desc = toy
    out = tmp_path / "run"

    def boom(record):
        raise RuntimeError("a caller's bug")

    with pytest.raises(RuntimeError, match="a caller's bug"):
        run_eval(cfg(ds, desc, limit=4), out, on_result=boom)
    again = run_eval(cfg(ds, desc, limit=4), out)  # not "being written by another eval"
    assert again.already_done + again.ran == 4 and (out / LOCK_NAME).is_file()


def _held_eval(tmp_path: Path, ds: Path, desc: Path, out: Path, answered: int) -> subprocess.Popen:
    """An `eval` process that answers ``answered`` queries into ``out`` and then waits until it is killed."""
    code = ("import sys; from _helpers_eval import register_fakes, cli; register_fakes(); "
            "sys.exit(cli(*sys.argv[1:]))")
    argv = [sys.executable, "-c", code, "eval", "jsonl", "--dataset-file", ds, "--descriptions", desc,
            "--reasoner", "fake-reasoner", "--out", out, "--no-report", "--quiet"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "VIDGROUND_TEST_HOLD_AFTER": str(answered)}
    proc = subprocess.Popen([str(a) for a in argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    results = out / "results.jsonl"
    while not results.exists() or results.read_text().count("\n") < answered:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    return proc


def test_another_process_is_refused_until_the_eval_holding_the_folder_dies(toy, tmp_path, caplog):
    """Two processes, as U10 ran them: the second is refused naming the first's pid; a report of the folder says it
    is read while being written; once the first is killed (a crash: the lock goes with the process) the second
    resumes it, paying for no query twice."""
    ds, desc = toy
    out = tmp_path / "run"
    proc = _held_eval(tmp_path, ds, desc, out, answered=3)
    try:
        with pytest.raises(RunFolderBusyError, match=rf"pid {proc.pid} on .*: python[\d.]* -c CODE eval jsonl") as info:
            run_eval(cfg(ds, desc), out)
        assert info.value.holder["pid"] == proc.pid
        assert len(_qids(out)) == 3  # nothing written by the refused one
        caplog.clear()
        _, queries, results = load_run(out)  # report / score / compare read it, and say it is under way
        assert f"an eval is writing this run now (pid {proc.pid} on " in caplog.text
        assert f"read as it stands, 3 of its {len(queries)} queries recorded so far" in caplog.text
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    resumed = run_eval(cfg(ds, desc), out)
    assert (resumed.already_done, resumed.ran) == (3, 9)
    assert len(_qids(out)) == 12 == len(set(_qids(out)))
    caplog.clear()
    load_run(out)
    assert "writing this run now" not in caplog.text  # nobody is


# ------------------------------------------------------------------- 2. a last line without its newline

def test_a_whole_last_line_without_its_newline_is_kept_and_counted_once(toy, tmp_path, caplog):
    """U10: "36 already done, 0 run now", then one prediction missing and the file 36 -> 35 lines: the line was
    counted as done, then cut by the sink. It is kept (its newline added) and scored."""
    ds, desc = toy
    out = tmp_path / "run"
    run_eval(cfg(ds, desc, limit=5, seed=3), out)
    results = out / "results.jsonl"
    results.write_bytes(results.read_bytes().rstrip(b"\n"))
    caplog.clear()
    again = run_eval(cfg(ds, desc, limit=5, seed=3), out)
    assert (again.already_done, again.ran) == (5, 0) and again.metrics.n == 5 and not again.metrics.problems
    assert results.read_text().count("\n") == 5 and len(read_jsonl(results)) == 5
    assert "torn" not in caplog.text


def test_a_torn_last_line_is_cut_with_a_warning_and_its_query_runs_again(toy, tmp_path, caplog):
    ds, desc = toy
    out = tmp_path / "run"
    run_eval(cfg(ds, desc, limit=5, seed=3), out)
    results = out / "results.jsonl"
    data = results.read_bytes()
    results.write_bytes(data[:-20])  # a kill in the middle of the last record
    torn = len(data[:-20]) - (data[:-20].rfind(b"\n") + 1)
    caplog.clear()
    again = run_eval(cfg(ds, desc, limit=5, seed=3), out)
    assert (again.already_done, again.ran) == (4, 1) and again.metrics.n == 5
    assert (f"results.jsonl: cut a torn last line ({torn} bytes) left by an interrupted run; its query runs again"
            in caplog.text)
    assert len(_qids(out)) == 5 == len(set(_qids(out)))


def test_the_sink_keeps_a_whole_last_record_and_cuts_a_torn_one(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"qid": "a"}\n{"qid": "b"}')
    with ResultSink(path) as sink:
        sink.append({"qid": "c"})
    assert path.read_text() == '{"qid": "a"}\n{"qid": "b"}\n{"qid":"c"}\n'
    path.write_text('{"qid": "a"}\n[1, 2]')  # JSON, but not a record: never a whole one
    with ResultSink(path):
        pass
    assert path.read_text() == '{"qid": "a"}\n'


# ------------------------------------------------------------------------- 3. a disk that refuses a write

def _refusing_write(monkeypatch, name: str, *, after: int, err: int = errno.EFBIG):
    """os.write to the file ``name``: whole for ``after`` records, then half of the next one (a file-size limit
    reached), then ``err``."""
    real = os.write
    calls = {"n": 0}

    def write(fd, data):
        if not os.readlink(f"/proc/self/fd/{fd}").endswith(name):
            return real(fd, data)
        calls["n"] += 1
        if calls["n"] <= after:
            return real(fd, data)
        if calls["n"] == after + 1:
            return real(fd, bytes(data[:len(data) // 2]))
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(os, "write", write)


def test_a_full_disk_cuts_the_partial_record_and_is_a_typed_error_saying_how_to_resume(toy, tmp_path, monkeypatch):
    """U10 (ulimit -f 50): "internal error: OSError: [Errno 27] File too large" and a 486-byte fragment left as the
    last line."""
    ds, desc = toy
    out = tmp_path / "run"
    _refusing_write(monkeypatch, "results.jsonl", after=2)
    with pytest.raises(InputError) as info:
        run_eval(cfg(ds, desc, limit=6, seed=1), out)
    message = str(info.value)
    assert message.startswith(f"{out / 'results.jsonl'}: cannot write (File too large); kept the 2 whole line(s) "
                              "written before (the record being written was cut off, and runs again)"), message
    assert "then run the same command again to resume" in message
    data = (out / "results.jsonl").read_bytes()
    assert data.endswith(b"\n") and data.count(b"\n") == 2 and len(read_jsonl(out / "results.jsonl")) == 2
    monkeypatch.undo()
    resumed = run_eval(cfg(ds, desc, limit=6, seed=1), out)
    assert (resumed.already_done, resumed.ran) == (2, 4) and resumed.metrics.n == 6


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EDQUOT, errno.EIO])
def test_each_disk_refusal_is_the_same_typed_error(tmp_path, monkeypatch, err):
    path = tmp_path / "r.jsonl"
    with ResultSink(path) as sink:
        sink.append({"qid": "a"})
        _refusing_write(monkeypatch, "r.jsonl", after=0, err=err)
        with pytest.raises(InputError, match=rf"cannot write \({os.strerror(err)}\); kept the 1 whole line"):
            sink.append({"qid": "b", "text": "x" * 100})
    assert path.read_text() == '{"qid":"a"}\n'


def test_a_short_write_is_continued_not_left_torn(tmp_path, monkeypatch):
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, bytes(data[:7])))  # 7 bytes at a time
    path = tmp_path / "r.jsonl"
    with ResultSink(path) as sink:
        sink.append({"qid": "a", "text": "a longer record than one write"})
        sink.append({"qid": "b"})
    monkeypatch.undo()
    assert [r["qid"] for r in read_jsonl(path)] == ["a", "b"] and path.read_text().count("\n") == 2


# -------------------------------------------------------------------- 4. a folder that cannot be written

def _read_only(monkeypatch, folder: Path):
    """Writing in ``folder`` (a new file, a new folder) fails as on a read-only mount (the tests run as root, for
    whom chmod does not)."""
    real_open, real_mkdir, real_mkstemp = os.open, Path.mkdir, tempfile.mkstemp
    rofs = OSError(errno.EROFS, os.strerror(errno.EROFS))

    def inside(p) -> bool:
        return Path(os.path.abspath(p)).is_relative_to(folder)

    def open_(path, flags, *a, **kw):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
            raise rofs
        return real_open(path, flags, *a, **kw)

    def mkdir(self, *a, **kw):
        if inside(self) and not self.is_dir():
            raise rofs
        return real_mkdir(self, *a, **kw)

    def mkstemp(*a, dir=None, **kw):
        if dir is not None and inside(dir):
            raise rofs
        return real_mkstemp(*a, dir=dir, **kw)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(Path, "mkdir", mkdir)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def test_report_of_a_read_only_run_is_a_typed_one_line_error(toy, tmp_path, monkeypatch, capsys):
    """U10: `vidground report RUN` -> "internal error: OSError: [Errno 30] Read-only file system: .../metrics.json"."""
    ds, desc = toy
    out = tmp_path / "run"
    run_eval(cfg(ds, desc, limit=3), out)
    _read_only(monkeypatch, out)
    with pytest.raises(InputError, match=r"metrics.json: cannot write here \(Read-only file system\)"):
        write_report(out)
    assert main_cli.main(["report", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"vidground: error: {out / 'metrics.json'}: cannot write here (Read-only file system)"), err
    assert "internal error" not in err


def test_eval_into_a_read_only_place_is_a_typed_one_line_error(toy, tmp_path, monkeypatch, capsys):
    """U10: `eval --out /ro/new` -> an internal error from out.mkdir."""
    ds, desc = toy
    ro = tmp_path / "ro"
    ro.mkdir()
    _read_only(monkeypatch, ro)
    with pytest.raises(ConfigurationError, match=r"--out .*new: cannot make the run folder \(Read-only file system\)"):
        run_eval(cfg(ds, desc, limit=3), ro / "new")
    argv = ["eval", "jsonl", "--dataset-file", str(ds), "--descriptions", str(desc), "--reasoner", "fake-reasoner",
            "--out", str(ro / "new"), "--quiet"]
    assert main_cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("vidground: error: --out ") and "cannot make the run folder (Read-only file system)" in err


def test_resuming_a_run_on_a_read_only_mount_is_a_typed_error(toy, tmp_path, monkeypatch):
    ds, desc = toy
    out = tmp_path / "run"
    run_eval(cfg(ds, desc, limit=3), out)
    before = (out / "results.jsonl").read_bytes()
    _read_only(monkeypatch, out)
    with pytest.raises(ConfigurationError, match=r"cannot write in the run folder \(Read-only file system\)"):
        run_eval(cfg(ds, desc, limit=3), out)
    assert (out / "results.jsonl").read_bytes() == before


def test_an_events_eval_on_a_folder_being_written_is_refused_too(tmp_path, capsys, no_caption_scorers):
    """`eval activitynet-events` writes a run folder too (events.jsonl, config.json): a second one on it meanwhile
    ran its videos again and appended them twice."""
    from test_events import _anet_args, _anet_fixture

    root = _anet_fixture(tmp_path)
    other = RunFolderLock(root / "run")  # another eval's hold on the folder, before the folder is even made
    (root / "run").mkdir()
    other.acquire(["eval", "activitynet-events", "--out", "run"])
    try:
        assert main_cli.main(_anet_args(root)) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"vidground: error: {root / 'run'} is being written by another eval (pid {os.getpid()}")
        assert "vidground eval activitynet-events --out run" in err and not (root / "run" / "events.jsonl").exists()
    finally:
        other.release()
    assert main_cli.main(_anet_args(root)) == 0
    rows = read_jsonl(root / "run" / "events.jsonl")
    other.acquire()  # a resume of that run: refused before it reads or rewrites anything
    try:
        assert main_cli.main(_anet_args(root)) == 1 and "is being written by another eval" in capsys.readouterr().err
    finally:
        other.release()
    assert read_jsonl(root / "run" / "events.jsonl") == rows


def test_a_readers_moment_on_the_lock_does_not_refuse_a_resume(tmp_path, monkeypatch):
    """RV-L: report/score/compare (run_in_progress) hold a shared lock for a moment; an eval trying its exclusive
    lock at that instant was refused, naming the finished run's pid. A busy lock is now tried again (here: busy
    twice, then free) before the folder is another eval's; a lock busy every time is still refused."""
    import fcntl
    import pipelines.runs as runs
    real, tries = fcntl.flock, []

    def flock(fd, op):
        if op & fcntl.LOCK_EX:
            tries.append(op)
            if len(tries) <= 2:
                raise OSError(errno.EWOULDBLOCK, "busy")
        return real(fd, op)

    monkeypatch.setattr(runs.fcntl, "flock", flock)
    monkeypatch.setattr(runs.time, "sleep", lambda s: None)  # no waiting in the test: the tries are counted
    out = tmp_path / "run"
    out.mkdir()
    lock = RunFolderLock(out)
    lock.acquire()
    assert lock.held and len(tries) == 3
    lock.release()

    def always_busy(fd, op):
        if op & fcntl.LOCK_EX:
            tries.append(op)
            raise OSError(errno.EWOULDBLOCK, "busy")
        return real(fd, op)

    monkeypatch.setattr(runs.fcntl, "flock", always_busy)
    tries.clear()
    with pytest.raises(RunFolderBusyError):
        RunFolderLock(out).acquire()
    assert len(tries) == RunFolderLock.TRIES


def test_a_second_eval_of_this_process_is_refused_where_flock_does_not_see_it(tmp_path, monkeypatch):
    """RV-L: on NFS flock is emulated by POSIX locks, which never conflict within one process: two evals in two
    threads of one process both ran there. The process's own record of the folders it holds refuses the second."""
    import pipelines.runs as runs
    monkeypatch.setattr(runs.fcntl, "flock", lambda fd, op: None)  # a lock that every caller gets, as on NFS
    out = tmp_path / "run"
    out.mkdir()
    first = RunFolderLock(out)
    first.acquire()
    try:
        with pytest.raises(RunFolderBusyError) as caught:
            RunFolderLock(out).acquire()
        assert caught.value.holder["pid"] == os.getpid()
    finally:
        first.release()
    again = RunFolderLock(out)
    again.acquire()  # given back: the folder is free again
    assert again.held
    again.release()
