"""FX-Y: `vidground eval` gave its run folder's lock back when the run ended and wrote its report after, unlocked: a
second `eval` on the folder begun in that gap ran and rewrote config.json, provenance.json and metrics.json while
the first one's report read and wrote them. The command now holds the folder once, for the run and its report."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from pathlib import Path

import pytest

import pipelines.report as report
import pipelines.runs as runs
from pipelines import cli as main_cli
from pipelines.runs import RunFolderBusyError, RunFolderLock, read_jsonl, run_eval
from vidground.errors import ConfigurationError

from test_events import no_caption_scorers  # noqa: F401  (a fixture)
from test_runs import HERE, cfg, toy  # noqa: F401  (toy: the toy dataset fixture; its module registers the fakes)


def _eval_argv(ds: Path, desc: Path, out: Path, *extra: str) -> list[str]:
    return ["eval", "jsonl", "--dataset-file", str(ds), "--descriptions", str(desc), "--reasoner", "fake-reasoner",
            "--out", str(out), "--quiet", *extra]


def _another_eval(argv: list[str]) -> subprocess.CompletedProcess:
    """The same `vidground eval` in another process (the fakes registered there too), run to its end."""
    code = ("import sys; from _helpers_eval import register_fakes; register_fakes(); "
            "from pipelines.cli import main; sys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("pages", [True, False], ids=["report", "no-report"])
def test_a_second_eval_started_while_the_first_writes_its_report_is_refused(toy, tmp_path, monkeypatch, pages):
    """Between run_eval and write_report (and remove_pages, --no-report) another `vidground eval` on the folder is
    refused with the busy error, naming this process; it writes nothing. HEAD: it ran (exit 0) and rewrote the
    folder's config.json and provenance.json under the first one's report."""
    ds, desc = toy
    out = tmp_path / "run"
    argv = _eval_argv(ds, desc, out, *([] if pages else ["--no-report"]))
    seen: dict[str, object] = {}
    real_write, real_remove = report.write_report, report.remove_pages

    def write_report(folder, **kw):
        seen["held at write_report"] = str(Path(folder).resolve()) in runs._HELD
        before = {name: (out / name).read_bytes() for name in ("config.json", "provenance.json", "results.jsonl")}
        seen["second"] = _another_eval(argv)
        seen["unchanged"] = before == {name: (out / name).read_bytes() for name in before}
        return real_write(folder, **kw)

    def remove_pages(folder):
        seen["held at remove_pages"] = str(Path(folder).resolve()) in runs._HELD
        return real_remove(folder)

    monkeypatch.setattr(report, "write_report", write_report)
    monkeypatch.setattr(report, "remove_pages", remove_pages)
    assert main_cli.main(argv) == 0
    second = seen["second"]
    assert second.returncode == 1, (second.returncode, second.stderr)
    assert second.stderr.startswith(f"vidground: error: {out} is being written by another eval (pid {os.getpid()} on ")
    assert f": vidground eval jsonl --dataset-file {ds} " in second.stderr  # the first command, as the lock says
    assert "wait for that one to end and run this command again to resume the run, or give another --out" in second.stderr
    assert seen["unchanged"] is True and seen["held at write_report"] is True
    assert seen.get("held at remove_pages") is (None if pages else True)  # --no-report removes an earlier run's pages
    # given back when the command ended: the same command again resumes the run, with nothing left to do
    qids = [r["qid"] for r in read_jsonl(out / "results.jsonl")]
    assert len(qids) == len(set(qids)) == len(read_jsonl(out / "queries.jsonl"))
    monkeypatch.setattr(report, "write_report", real_write)
    assert main_cli.main(argv) == 0 and str(out.resolve()) not in runs._HELD
    assert len(read_jsonl(out / "results.jsonl")) == len(qids)


def test_the_commands_hold_is_given_back_when_its_report_fails(toy, tmp_path, monkeypatch, capsys):
    """The report raising (here a full disk's InputError) still gives the folder back: the next eval resumes."""
    from vidground.errors import InputError

    ds, desc = toy
    out = tmp_path / "run"

    def full(folder, **kw):
        raise InputError("cannot write here (No space left on device)", path=Path(folder) / "metrics.json")

    monkeypatch.setattr(report, "write_report", full)
    assert main_cli.main(_eval_argv(ds, desc, out)) == 1
    assert "No space left on device" in capsys.readouterr().err and str(out.resolve()) not in runs._HELD
    lock = RunFolderLock(out)
    lock.acquire()  # not "being written by another eval"
    lock.release()


def test_run_eval_with_the_callers_lock_leaves_it_held(toy, tmp_path):
    """The Python API: ``lock=`` is taken by the run where it takes its own, and held until the caller's block ends;
    a lock of another folder is refused before anything is written there."""
    ds, desc = toy
    out = tmp_path / "run"
    with RunFolderLock(out) as lock:
        summary = run_eval(cfg(ds, desc, limit=3), out, lock=lock)
        assert summary.ran == 3 and lock.held
        with pytest.raises(RunFolderBusyError):
            run_eval(cfg(ds, desc, limit=3), out)
    assert not lock.held and run_eval(cfg(ds, desc, limit=3), out).already_done == 3
    with RunFolderLock(tmp_path / "elsewhere") as other:
        with pytest.raises(ConfigurationError, match="lock= holds .*elsewhere, not the run folder"):
            run_eval(cfg(ds, desc, limit=3), tmp_path / "third", lock=other)
    assert not (tmp_path / "third").exists()


def test_an_events_eval_writes_its_metrics_under_its_hold(tmp_path, monkeypatch, capsys, no_caption_scorers):
    """`eval activitynet-events` has no report pages: its metrics.json is written inside run_events_eval, under the
    run's lock (so it had no such gap; kept so). Checked where it is written."""
    from test_events import _anet_args, _anet_fixture

    root = _anet_fixture(tmp_path)
    held: list[bool] = []
    real = pathlib.Path.write_text

    def write_text(self, *a, **kw):
        if self.name == "metrics.json":
            held.append(str(self.parent.resolve()) in runs._HELD)
        return real(self, *a, **kw)

    monkeypatch.setattr(pathlib.Path, "write_text", write_text)
    assert main_cli.main(_anet_args(root)) == 0, capsys.readouterr().err
    assert held == [True] and json.loads((root / "run" / "metrics.json").read_text())["videos"] >= 1


# ------------------------------------------------------------------ what a run made from Python records as its command

@pytest.mark.parametrize("started, argv, recorded", [
    (["/usr/bin/python3.11", "exp.py", "--seed", "3"], ["exp.py", "--seed", "3"], "python3.11 exp.py --seed 3"),
    (["python", "-m", "ipykernel_launcher", "-f", "k.json"], ["/lib/ipykernel_launcher.py", "-f", "k.json"],
     "python -m ipykernel_launcher -f k.json"),
    # the program's text may hold a key: left out; a key given as an argument is redacted as ever
    (["python", "-c", "run(api_key='sk-proj-0123456789abcdefghijABCDEF')", "--api-key", "sk-proj-0123456789abcdefghij"],
     ["-c", "--api-key", "sk-proj-0123456789abcdefghij"], "python -c CODE --api-key '<redacted>'"),
    # -c among other options (RV-O: python -Bc CODE recorded the program's text, a GitHub token in it kept)
    (["python", "-Bc", "tok='ghp_abcdefghijklmnopqrstuvwxyz0123456789'", "x"], ["-c", "x"], "python -Bc CODE x"),
    (["python", "-W", "ignore", "-c", "tok='ghp_abcdefghijklmnopqrstuvwxyz0123456789'"], ["-c"],
     "python -W ignore -c CODE"),
    (["python", "-cimport os; tok='ghp_abcdefghijklmnopqrstuvwxyz0123456789'", "y"], ["-c", "y"], "python -c CODE y"),
])
def test_a_run_made_from_python_records_what_ran_not_a_vidground_command(toy, tmp_path, monkeypatch, started, argv,
                                                                          recorded):
    """run_eval from a program (argv not given) recorded ``vidground`` followed by the program's own arguments
    (``vidground --seed 3``, ``vidground -f k.json`` from a notebook), in provenance.json and in the lock file that
    a second eval's busy error quotes: a command that never ran. It records the interpreter's command line."""
    ds, desc = toy
    out = tmp_path / "run"
    monkeypatch.setattr(sys, "orig_argv", started)
    monkeypatch.setattr(sys, "argv", argv)
    run_eval(cfg(ds, desc, limit=2), out)
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["command"] == recorded and provenance["invocations"][-1]["command"] == recorded
    assert json.loads((out / runs.LOCK_NAME).read_text())["command"] == recorded
    written = (out / "provenance.json").read_text() + (out / runs.LOCK_NAME).read_text()
    assert "sk-proj" not in written and "ghp_" not in written


def test_the_console_script_and_a_given_argv_still_record_a_vidground_command(monkeypatch):
    from pipelines.provenance import command_line

    monkeypatch.setattr(sys, "orig_argv", ["/usr/bin/python3", "/venv/bin/vidground", "eval", "jsonl"])
    monkeypatch.setattr(sys, "argv", ["/venv/bin/vidground", "eval", "jsonl"])
    assert command_line() == "vidground eval jsonl"
    monkeypatch.setattr(sys, "argv", ["exp.py", "x"])
    assert command_line(["eval", "nextgqa", "--api-key", "k"]) == "vidground eval nextgqa --api-key '<redacted>'"
