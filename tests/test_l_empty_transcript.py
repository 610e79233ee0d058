"""Descriptions whose texts are all empty carry no information: ground refuses them as ask and events do, with
an InputError naming the file (it answered the whole video, exit 0, with a flat-curve warning)."""

from __future__ import annotations

import json

import pytest

from pipelines.api import answer, events, ground
from pipelines.cli import main
from pipelines.session import Session
from vidground.errors import InputError
from vidground.types import FrameDescription


@pytest.fixture()
def empty(tmp_path):
    path = tmp_path / "blank.jsonl"
    path.write_text("".join(json.dumps({"t": t, "text": text, "duration": 6}) + "\n"
                            for t, text in ((0, ""), (2, "  "), (4, "\n"))))
    return path


@pytest.mark.parametrize("argv", [["ground", "a dog runs"], ["ask", "what runs?"], ["events"]])
def test_every_command_refuses_all_empty_descriptions_naming_the_file(empty, capsys, argv):
    assert main([argv[0], "--descriptions", str(empty), *argv[1:]]) == 1
    err = capsys.readouterr().err
    assert f"error: {empty}: every description's text is empty" in err


def test_the_python_calls_raise_the_same_input_error(empty):
    for call in (lambda: ground(query="a dog", descriptions=empty), lambda: answer(question="why?", descriptions=empty),
                 lambda: events(descriptions=empty)):
        with pytest.raises(InputError, match="every description's text is empty") as info:
            call()
        assert info.value.path == str(empty)
    listed = [FrameDescription(t=float(t), text="") for t in range(3)]
    with Session() as session, pytest.raises(InputError, match="every description's text is empty"):
        session.ground(query="a dog", descriptions=listed)


def test_one_empty_text_among_others_is_still_grounded(tmp_path):
    path = tmp_path / "some.jsonl"
    path.write_text("".join(json.dumps({"t": t, "text": text, "duration": 6}) + "\n"
                            for t, text in ((0, ""), (2, "a dog runs on the grass"), (4, "a cat sleeps"))))
    result = ground(query="a dog runs", descriptions=path, reasoner="naive")
    assert result.intervals and result.duration == 6
