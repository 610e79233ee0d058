"""RV-Q's command-line findings: an alias of a local reasoner is not said to be billed; an error line's control
characters are escaped (a file named with an ESC sequence recoloured the terminal)."""

from __future__ import annotations

import argparse

import pytest

from pipelines import cli


@pytest.mark.parametrize("reasoner, remote", [("offline", False), ("similarity", False), ("embedding", False),
                                              ("vtggpt", False), ("openai:gpt-4o", True), ("my-plugin", True)])
def test_an_alias_of_a_local_reasoner_is_not_remote(reasoner, remote):
    assert cli._remote_reasoner(argparse.Namespace(reasoner=reasoner, reasoner_opt=[])) is remote


def test_an_error_lines_control_characters_are_escaped(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["ground", "--descriptions", "nofile\x1b[31m.jsonl", "q"]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "nofile\\x1b[31m.jsonl" in err
