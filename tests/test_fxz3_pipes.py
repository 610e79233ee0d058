"""FX-Z3 item 4: an input given through a pipe (``<(...)``, ``/dev/stdin`` from a pipe) was refused as a FIFO, and
``-`` said 'not found' except as ``--queries -``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from frame_describer.descriptions_io import read_descriptions
from pipelines.datasets import read_subset_file
from pipelines.metrics import read_predictions
from vidground import files
from vidground.errors import InputError
from vidground.files import check_readable

DESCRIPTIONS = "".join(json.dumps({"t": t, "text": f"a person stands {t}"}) + "\n" for t in (0.0, 1.0, 2.0))


@pytest.fixture
def pipe():
    """``pipe(text)``: the /dev/fd path of a pipe's read end holding ``text``, its writer closed (as a finished
    ``<(...)``); every descriptor is closed after the test."""
    opened: list[int] = []

    def make(text: str) -> Path:
        r, w = os.pipe()
        opened.append(r)
        os.write(w, text.encode())
        os.close(w)
        return Path(f"/dev/fd/{r}")

    yield make
    for fd in opened:
        os.close(fd)


@pytest.mark.parametrize("read, text, expected", [
    (read_descriptions, DESCRIPTIONS, 3),  # read twice: its format, then its lines
    (read_predictions, json.dumps({"qid": "q", "pred_relevant_windows": [[1, 2, 1]]}) + "\n", 1),  # twice too
    (read_subset_file, "q1\nq2\n", 2),
])
def test_a_pipe_is_read_whole_however_often_its_reader_opens_it(pipe, read, text, expected):
    assert len(read(pipe(text))) == expected


def test_a_pipe_stands_as_a_regular_file_once_checked(pipe):
    path = pipe(DESCRIPTIONS)
    check_readable(path, "descriptions file")
    assert path.read_text() == path.read_text() == DESCRIPTIONS and path.stat().st_size == len(DESCRIPTIONS)


def test_an_endless_pipe_is_refused_past_the_limit(pipe, monkeypatch):
    monkeypatch.setattr(files, "MAX_PIPE_BYTES", 1000, raising=False)
    with pytest.raises(InputError, match=r"/dev/fd/\d+: more than .* read from the pipe given as the queries file"):
        check_readable(pipe("y\n" * 2000), "queries file")


def test_named_fifos_devices_and_dash_are_still_refused_with_what_to_do(tmp_path, monkeypatch):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it would wait for a writer that may never come
    with pytest.raises(InputError, match=r"is a FIFO, not a regular queries file; .*\(or give it through a pipe"):
        check_readable(fifo, "queries file")
    with pytest.raises(InputError, match="is a character device"):
        check_readable(Path("/dev/zero"), "descriptions file")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"-: descriptions file not found: '-' reads standard input only as "
                                         r"--queries -; give /dev/stdin"):
        check_readable(Path("-"), "descriptions file")


def test_the_command_line_reads_descriptions_and_queries_through_process_substitution(tmp_path):
    """`ground --descriptions <(cat d.jsonl) --queries /dev/stdin` from a pipe: both were 'is a FIFO'."""
    desc = tmp_path / "d.jsonl"
    desc.write_text(DESCRIPTIONS)
    script = (f'printf "a person stands\\n" | {sys.executable} -m pipelines.cli ground --descriptions <(cat "{desc}") '
              "--queries /dev/stdin --reasoner naive --json")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert "a person stands" in out.stdout and "FIFO" not in out.stderr
