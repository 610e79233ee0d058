"""Outputs are written whole or not at all, through links and special files, never replacing them."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from frame_describer.descriptions_io import read_descriptions, write_descriptions
from pipelines.cli import main
from vidground.errors import InputError
from vidground.files import output_file
from vidground.types import FrameDescription

ITEMS = [FrameDescription(t=float(t), text=f"frame {t}") for t in range(3)]


def test_a_link_stays_a_link_and_its_target_gets_the_content(tmp_path):
    target = tmp_path / "real.jsonl"
    target.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    assert write_descriptions(link, ITEMS) == 3
    assert link.is_symlink() and [d.text for d in read_descriptions(target)] == ["frame 0", "frame 1", "frame 2"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_fifo_is_written_through_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_descriptions(fifo, ITEMS)
    reader.join(timeout=60)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert got and got[0].count(b"\n") == 3


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_device_is_a_typed_error_and_stays_a_device(capsys):
    with pytest.raises(InputError, match="/dev/full"):
        write_descriptions("/dev/full", ITEMS * 5000)
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_folder_is_refused_and_a_failed_write_leaves_the_old_file(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        write_descriptions(tmp_path, ITEMS)
    out = tmp_path / "d.jsonl"
    out.write_text("kept\n")
    out.chmod(0o640)

    def broken():
        yield ITEMS[0]
        raise RuntimeError("the describer failed half way")

    with pytest.raises(RuntimeError):
        write_descriptions(out, broken())
    assert out.read_text() == "kept\n"
    write_descriptions(out, ITEMS)
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # an existing file keeps its permissions
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_new_file_gets_the_umasks_permissions_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        with output_file(tmp_path / "new.txt") as fh:
            fh.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o644


def test_cli_describe_to_a_link_keeps_the_link(tmp_path, demo_video):
    video, _ = demo_video
    target = tmp_path / "out.jsonl"
    target.write_text("")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    assert main(["describe", str(video), "--num-frames", "3", "-o", str(link)]) == 0
    assert link.is_symlink() and len(read_descriptions(target)) == 3


@pytest.mark.parametrize("kind", ["fifo", "device", "loop", "folder", "missing"])
def test_a_descriptions_path_that_is_not_a_regular_file_is_refused_without_blocking(tmp_path, kind):
    path = tmp_path / "d.jsonl"
    if kind == "fifo":
        os.mkfifo(path)  # opening it would wait for a writer forever
    elif kind == "device":
        path = Path("/dev/zero")  # one endless line
    elif kind == "loop":
        path.symlink_to(tmp_path / "other")
        (tmp_path / "other").symlink_to(path)
    elif kind == "folder":
        path.mkdir()
    with pytest.raises(InputError) as err:
        read_descriptions(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    if kind in ("fifo", "device"):
        assert "regular" in str(err.value)


@pytest.mark.slow
def test_debug_logs_carry_no_key(tmp_path, demo_video):
    """--debug turns on httpx's and openai's own logging (headers, URLs): the key given with --api-key,
    one in the environment, one echoed back in a response header or put in the base URL, never reach
    the log, and a key with a line break cannot forge a log line."""
    import subprocess
    import sys

    from _helpers_openai_server import FakeOpenAIServer, Reply

    key, env_key = "sk-test-SECRET1234567890abcdef", "sk-env-OTHERSECRET0987654321"
    video, _ = demo_video

    def reply(req):
        r = Reply.chat("a person stands")
        r.headers["X-Echo-Key"] = req.headers.get("authorization", "")
        return r

    with FakeOpenAIServer(reply) as server:
        out = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "--debug", "describe", str(video), "--num-frames", "2",
             "--describer", "openai:gpt-4o-mini", "--base-url", f"{server.base_url}?api_key={key}",
             "--api-key", key, "-o", str(tmp_path / "d.jsonl")],
            capture_output=True, text=True, timeout=300,
            env={**os.environ, "OPENAI_API_KEY": env_key, "PYTHONPATH": str(Path(__file__).parent)})
    log = out.stdout + out.stderr
    assert "DEBUG" in log and "127.0.0.1" in log  # the debug log is there...
    assert key not in log and env_key not in log and "SECRET" not in log  # ...without the keys


def test_a_writer_killed_before_its_rename_leaves_no_temporary_file_after_the_next_write(tmp_path):
    """SIGKILL between writing and renaming left a stray .NAME.XXXX.tmp forever; the next writer of the same
    file removes those of dead processes and leaves a live writer's alone."""
    import subprocess
    import sys

    out = tmp_path / "d.jsonl"
    killed = subprocess.Popen([sys.executable, "-c", (
        "import os, signal, sys\n"
        "from vidground.files import output_file\n"
        "with output_file(sys.argv[1]) as fh:\n"
        "    fh.write('half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"), str(out)])
    assert killed.wait(timeout=300) == -9
    stray = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(stray) == 1 and not out.exists()  # what the kill left: a temporary, never a half file
    host = stray[0].split(".")[3]
    live = tmp_path / f".d.jsonl.{host}.{os.getpid()}.abcd.tmp"  # a writer in this (live) process
    live.write_text("in progress")
    other = tmp_path / ".other.jsonl.1.abcd.tmp"  # another file's temporary is not ours to judge
    other.write_text("x")
    elsewhere = tmp_path / f".d.jsonl.another-host.{killed.pid}.abcd.tmp"  # its pid cannot be checked here
    elsewhere.write_text("in progress on another machine sharing the disk")
    write_descriptions(out, ITEMS)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, live.name, elsewhere.name, "d.jsonl"])
    assert [d.text for d in read_descriptions(out)] == ["frame 0", "frame 1", "frame 2"]
