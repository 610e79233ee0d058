"""Defects fresh-eyes user tests of the command line found (FX-Z1): outputs written over the command's own inputs,
an interpreter aborted after a second Ctrl-C, options given before the command, an unwritable stdout, control
characters in a path said raw, a local reasoner's interruption said to be billed, and --top-k against the reasoner's
own top_k."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from frame_describer.descriptions_io import write_descriptions
from pipelines import cli
from pipelines.cli import main
from temporal_reasoner import reasoners
from temporal_reasoner.base import BaseReasoner
from vidground.errors import ConfigurationError
from vidground.types import FrameDescription

ROOT = Path(__file__).resolve().parents[1]

DESCS = [FrameDescription(t=float(t), text=text) for t, text in enumerate(
    ["an empty kitchen", "a person opens the fridge", "a person pours milk", "a cat walks in", "the cat sleeps"])]


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    from frame_describer.synthetic import render_numbered_video

    return render_numbered_video(tmp_path_factory.mktemp("fxz1") / "v.mp4", n_frames=20, fps=10)


@pytest.fixture
def desc_file(tmp_path) -> Path:
    path = tmp_path / "k.descriptions.jsonl"
    write_descriptions(path, DESCS)
    return path


# --- 1: an output written over an input --------------------------------------------------------------------------

def _copy(video: Path, dest: Path) -> Path:
    dest.write_bytes(video.read_bytes())
    return dest


@pytest.mark.parametrize("how", ["same", "link as input", "link as output", "hard link"])
def test_describe_refuses_an_output_that_is_its_own_video(how, video, tmp_path, capsys):
    real = _copy(video, tmp_path / "real.mp4")
    other = tmp_path / "other.mp4"
    if how == "same":
        given, out = real, real
    elif how == "link as input":
        other.symlink_to(real)
        given, out = other, real
    elif how == "link as output":
        other.symlink_to(real)
        given, out = real, other
    else:
        os.link(real, other)
        given, out = real, other
    assert main(["describe", str(given), "-o", str(out), "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"vidground: error: -o {out} is the video {given}, which would be overwritten by its own "
                          "output; choose another -o") and err.count("\n") == 1, err
    assert real.read_bytes() == video.read_bytes()  # it was JSONL, exit 0


def test_describe_refuses_an_output_that_is_its_cache_or_its_replayed_captions(video, desc_file, tmp_path):
    cache = tmp_path / "c.sqlite"  # not made yet: the command would make it, then write JSONL over it
    with pytest.raises(ConfigurationError, match=r"^-o .*c\.sqlite is the description cache "):
        main(["describe", str(video), "--cache", str(cache), "-o", str(cache), "--debug"])
    assert not cache.exists()
    before = desc_file.read_bytes()
    with pytest.raises(ConfigurationError, match=r"is the replayed captions file .*k\.descriptions\.jsonl"):
        main(["describe", str(video), "--describer", f"replay:{desc_file}", "--no-cache", "-o", str(desc_file),
              "--debug"])
    assert desc_file.read_bytes() == before


def test_export_tuning_data_refuses_to_write_over_a_descriptions_file_it_reads(video, tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    theirs = folder / "train.jsonl"  # a teacher's descriptions, by name the file the export writes
    theirs.write_text("".join(json.dumps({"video": str(video), "t": float(t), "describer": "openai:gpt-4o",
                                          "text": "a person opens the fridge door slowly"}) + "\n" for t in range(2)))
    before = theirs.read_bytes()
    for given in (folder, theirs):  # it was replaced by the tuning set, exit 0
        with pytest.raises(ConfigurationError, match=r"^--out .*train\.jsonl is the descriptions file "):
            main(["export-tuning-data", "--videos", str(video), "--descriptions", str(given), "--out", str(folder),
                  "--debug"])
    assert theirs.read_bytes() == before


def test_import_captions_refuses_a_hard_link_to_its_input(desc_file, tmp_path):
    other = tmp_path / "other.jsonl"
    os.link(desc_file, other)
    before = desc_file.read_bytes()
    with pytest.raises(ConfigurationError, match="would be overwritten by its own conversion"):
        main(["import-captions", str(desc_file), "-o", str(other), "--debug"])
    assert desc_file.read_bytes() == before


# --- 2: a second Ctrl-C while threads are inside torch ------------------------------------------------------------

_TORCH_THREADS = textwrap.dedent("""
    import atexit, sys, threading
    import torch
    import pipelines.cli

    def command(argv):  # an eval stopped at once: its workers still inside torch
        a = torch.randn(600, 600)
        started = threading.Barrier(3)
        def work():
            started.wait()
            while True:
                a @ a
        for _ in range(2):
            threading.Thread(target=work, daemon=True).start()
        started.wait()
        print("kept on stdout")  # buffered: flushed before the process ends
        return int(argv[0]) if argv else 130

    pipelines.cli.main = command
    mark = sys.argv[1]
    atexit.register(lambda: open(mark, "w").write("atexit ran"))
    import vidground_cli
    sys.argv[1:] = sys.argv[2:]
    if sys.argv[1:] == ["in-process"]:
        print("returned", vidground_cli.main(["130"]))
    else:
        sys.exit(vidground_cli.main())
""")


def test_an_interrupted_console_command_with_threads_in_torch_exits_130_not_aborted(tmp_path):
    pytest.importorskip("torch")
    mark = tmp_path / "atexit"
    p = subprocess.run([sys.executable, "-c", _TORCH_THREADS, str(mark)], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 130, (p.returncode, p.stderr[-2000:])  # 134: 'terminate called without an active exception'
    assert p.stdout == "kept on stdout\n" and "terminate called" not in p.stderr
    assert mark.read_text() == "atexit ran"


def test_the_python_api_returns_the_status_and_keeps_the_process(monkeypatch):
    """Called with argv (a program, a test), vidground_cli.main returns the status: only the console script ends the
    process at once."""
    import threading

    import vidground_cli

    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, daemon=True)
    worker.start()
    exits = []
    monkeypatch.setattr(vidground_cli.os, "_exit", exits.append)
    monkeypatch.setattr(cli, "main", lambda argv: 130)
    try:
        assert vidground_cli.main(["ground"]) == 130
    finally:
        stop.set()
    assert exits == []


# --- 3: an option given before the command ---------------------------------------------------------------------

@pytest.mark.parametrize("option", ["--json", "--no-cache"])
def test_a_commands_own_option_before_it_is_said_to_go_after_it(option, capsys):
    with pytest.raises(SystemExit) as e:
        main([option, "ground", "v.mp4", "a door"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"{option} is an option of vidground ground: put it after the command (vidground ground {option} ...)" in err
    assert "not of vidground ground" not in err


# --- 4: stdout closed or full ----------------------------------------------------------------------------------

def test_a_closed_stdout_is_an_error_not_a_result_dropped(desc_file, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdout", None)
    assert main(["ground", "--descriptions", str(desc_file), "a cat", "--reasoner", "naive"]) == 1
    assert capsys.readouterr().err == "vidground: error: cannot write the output: stdout is closed\n"


class _Full:
    """A stdout on a full disk."""

    def write(self, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def flush(self):
        pass


@pytest.mark.parametrize("debug", [[], ["--debug"]])
def test_a_full_stdout_is_an_error_not_an_internal_error(debug, desc_file, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdout", _Full())
    assert main(["ground", "--descriptions", str(desc_file), "a cat", "--reasoner", "naive", *debug]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == f"vidground: error: cannot write the output: {os.strerror(errno.ENOSPC)}", err
    assert "internal error" not in err and "Traceback" not in err
    assert isinstance(sys.stdout, _Full)  # put back


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_a_command_to_dev_full_says_the_output_cannot_be_written(desc_file, tmp_path):
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "pipelines.cli", "ground", "--descriptions", str(desc_file), "a cat",
                            "--reasoner", "naive"], cwd=ROOT, stdout=full, stderr=subprocess.PIPE, text=True,
                           timeout=300)
    assert p.returncode == 1, p.stderr
    assert p.stderr.splitlines()[-1] == f"vidground: error: cannot write the output: {os.strerror(errno.ENOSPC)}"
    assert "internal error" not in p.stderr and "Exception ignored" not in p.stderr


# --- 5: a path with control characters ----------------------------------------------------------------------------

def test_describe_escapes_control_characters_of_the_output_path(video, tmp_path, capsys):
    out = tmp_path / "a\x1b[31mb\nc.jsonl"
    assert main(["describe", str(video), "-o", str(out), "--no-cache"]) == 0
    err = capsys.readouterr().err
    assert f"wrote 2 descriptions to {tmp_path}/a\\x1b[31mb\\x0ac.jsonl (" in err and "\x1b" not in err, err
    assert out.exists()


# --- 6: a local reasoner's interruption -----------------------------------------------------------------------

class _Plugin(BaseReasoner):
    """A plug-in reasoner: it may call a remote model, for all the command line knows."""

    name = "fxz1-plugin"

    def __init__(self, arg: str | None = None, **_: object):
        pass

    def ground(self, query, transcript):  # pragma: no cover - replaced by each test
        raise AssertionError


reasoners.register("fxz1-plugin", _Plugin)


@pytest.mark.parametrize("reasoner, billed", [("naive", False), ("embedding", False), ("vtggpt", False),
                                              ("fxz1-plugin", True)])
def test_an_interrupted_reasoner_is_said_billable_only_when_it_may_be_remote(reasoner, billed, desc_file, capsys,
                                                                            monkeypatch):
    cls = reasoners.target(reasoner)
    monkeypatch.setattr(cls, "ground", lambda self, query, transcript: signal.raise_signal(signal.SIGINT))
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's own here: the command installs no handler")
    assert main(["ground", "--descriptions", str(desc_file), "a cat", "--reasoner", reasoner]) == 130
    err = capsys.readouterr().err
    assert "while the reasoner was answering" in err, err
    assert ("billed" in err or "bill it" in err) == billed, err


# --- 7: --top-k against --reasoner-opt top_k ------------------------------------------------------------------

def test_top_k_given_twice_is_refused(desc_file):
    with pytest.raises(ConfigurationError, match=r"^--top-k 5 and --reasoner-opt top_k=2 both say how many"):
        main(["ground", "--descriptions", str(desc_file), "a cat", "--reasoner-opt", "top_k=2",
              "--top-k", "5", "--debug"])
