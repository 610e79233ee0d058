"""Hostile inputs to the Python API and the CLI end in a typed one-line error (or a valid result), never
an untyped exception that the CLI would call an internal error."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipelines import ConfigurationError, InputError, ground

TWO = [{"t": 0, "text": "a person sits"}, {"t": 1, "text": "a person stands"}]


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(descriptions=TWO, duration="40"), InputError, "number of seconds, got str"),
    (dict(descriptions=TWO, duration=True), InputError, "number of seconds, got bool"),
    (dict(descriptions=TWO, duration=float("inf")), InputError, "finite positive"),
    (dict(descriptions=TWO, duration=-3), InputError, "finite positive"),
    (dict(descriptions=TWO, top_k=1.5), ConfigurationError, "whole number"),
    (dict(descriptions=TWO, top_k=0), ConfigurationError, "whole number"),
    (dict(descriptions=b"/tmp/d.jsonl"), InputError, "str or Path, got bytes"),
    (dict(video=b"/tmp/v.mp4"), InputError, "str or Path, got bytes"),
    (dict(descriptions=[{"t": float("nan"), "text": "a"}]), InputError, "descriptions[0].t"),
    (dict(descriptions=[{"t": float("inf"), "text": "a"}]), InputError, "descriptions[0].t"),
    (dict(descriptions=[{"t": 0, "text": "a"}, 5]), InputError, "descriptions[1]"),
    (dict(descriptions=[{"t": -1, "text": "a"}]), InputError, "descriptions[0].t"),
    (dict(descriptions=[]), InputError, "no descriptions"),
    (dict(descriptions=TWO, query="a\udcff b"), InputError, "not valid text"),
    (dict(descriptions=TWO, query="   "), InputError, "empty"),
    (dict(descriptions=TWO, query=b"abc"), InputError, "must be text"),
])
def test_bad_python_arguments_are_typed_one_line_errors(kwargs, error, words):
    kwargs = {"query": "a person stands", "reasoner": "naive", **kwargs}
    with pytest.raises(error) as err:
        ground(**kwargs)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_query_of_bytes_that_are_not_utf8_on_the_command_line(tmp_path):
    desc = tmp_path / "d.jsonl"
    desc.write_text('{"t": 0, "text": "a person sits"}\n{"t": 1, "text": "a person stands"}\n')
    out = subprocess.run([sys.executable.encode(), b"-m", b"pipelines.cli", b"ground", b"--descriptions",
                          os.fsencode(desc), b"caf\xe9 person", b"--reasoner", b"naive"],
                         capture_output=True, timeout=300)
    err = out.stderr.decode("utf-8", "replace")
    assert out.returncode == 1 and "internal error" not in err and "not valid text" in err
