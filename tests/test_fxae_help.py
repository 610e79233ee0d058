"""U17's first-time-user findings on the command line's own words (FX-AE): every option of every subcommand has a
help string (the README says ``vidground COMMAND --help`` explains every option: ``report --bootstrap``, ``compare
--json`` and ``compare --top`` had none, or no default), the generic ``jsonl`` dataset's keys are in
``--dataset-file``'s help (they were only in a docstring), and the missing-data-folder error names every dataset's
folder (nextgqa/ was left out)."""

from __future__ import annotations

import argparse

import pytest

from pipelines.cli import build_parser
from vidground.errors import ConfigurationError


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("vidground's parser has no subcommands")


def test_every_option_of_every_subcommand_has_help() -> None:
    commands = _subcommands(build_parser())
    assert {"ground", "describe", "eval", "score", "report", "compare"} <= set(commands)
    missing = [f"{name} {action.option_strings[0]}"
               for name, sub in commands.items() for action in sub._actions
               if action.option_strings and action.help != argparse.SUPPRESS and not (action.help or "").strip()]
    assert missing == []


@pytest.mark.parametrize("command, flag", [("report", "--bootstrap"), ("score", "--bootstrap"),
                                           ("compare", "--top")])
def test_a_count_option_states_its_default(command: str, flag: str) -> None:
    sub = _subcommands(build_parser())[command]
    action = next(a for a in sub._actions if flag in a.option_strings)
    assert f"default {action.default}" in action.help


def test_dataset_file_help_names_the_jsonl_keys(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    start = text.index("--dataset-file FILE", text.index("options:"))
    said = text[start:text.index("--clip-gt", start)]
    for key in ('"video"', '"query"', '"windows"', '"timestamp"', '"qid"', '"duration"'):
        assert key in said, key


def test_missing_data_folder_names_every_dataset_folder(tmp_path) -> None:
    from pipelines.datasets import data_root

    with pytest.raises(ConfigurationError) as err:
        data_root(tmp_path / "nowhere")
    for folder in ("charades-sta/", "activitynet-captions/", "qvhighlights/", "nextgqa/"):
        assert folder in str(err.value), folder
