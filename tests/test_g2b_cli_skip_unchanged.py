"""``--skip-unchanged`` on describe, ask and events (pipelines/cli.py), as ground has it.

The README recommends it for static footage, and describe is the cheap way to get a descriptions file, yet only
ground took it: ``vidground describe VIDEO --skip-unchanged 2`` was a usage error (exit 2). The fixture is 20 s at
5 fps sampled at 1 fps: grey, white, grey, so skip-unchanged 3 sends 3 of the 20 frames to the describer.
"""

from __future__ import annotations

import contextlib
import io
import json
import re

import pytest

from _helpers_eval import register_fakes
from pipelines.cli import build_parser, main

from test_search_session import static_video  # noqa: F401 (a fixture)

register_fakes()


def run_json(argv: list[str]) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return json.loads(out.getvalue())


@pytest.mark.parametrize("command", [["ask", "what colour is the room?", "--choice", "white", "--choice", "grey"],
                                     ["events"]])
def test_ask_and_events_send_only_the_frames_that_changed(static_video, command):  # noqa: F811
    name, *rest = command
    argv = [name, str(static_video), *rest, "--describer", "fake", "--no-cache", "--json"]
    plain, skipping = run_json(argv), run_json([*argv, "--skip-unchanged", "3"])
    assert plain["usage"]["describe"]["requests"] == 20
    assert skipping["usage"]["describe"]["requests"] == 3
    assert skipping["settings"]["skip_unchanged"] == {"threshold": 3.0, "sent": 3, "cached": 0,
                                                                  "reused": 17}


def test_describe_writes_every_frame_and_says_what_it_sent(static_video, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "d.jsonl"
    assert main(["describe", str(static_video), "--describer", "fake", "--no-cache", "--skip-unchanged", "3",
                 "-o", str(out)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 20 and sum("reused_from" in x for x in lines) == 17
    assert re.search(r"wrote 20 descriptions to .*; skip-unchanged: 3 sent, 17 reused\)", capsys.readouterr().err)


def test_the_option_is_ground_s_and_refused_where_it_cannot_apply(static_video, tmp_path, capsys):  # noqa: F811
    parser = build_parser()
    subs = next(a for a in parser._actions if a.dest == "command").choices

    def help_of(command: str) -> str:
        return next(a.help for a in subs[command]._actions if "--skip-unchanged" in a.option_strings)

    assert help_of("ask") == help_of("events") == help_of("ground")  # "(a video, not --descriptions)"
    assert help_of("describe") == help_of("ground").removesuffix(" (a video, not --descriptions)")
    descriptions = tmp_path / "d.jsonl"
    descriptions.write_text('{"t": 0.5, "text": "a grey room"}\n{"t": 1.5, "text": "a white room"}\n')
    assert main(["events", "--descriptions", str(descriptions), "--skip-unchanged", "2"]) == 1
    assert "--skip-unchanged choose which frames of a video are described" in capsys.readouterr().err
    assert main(["describe", str(static_video), "--describer", "fake", "--no-cache", "--skip-unchanged", "-1"]) == 1
    assert "skip_unchanged must be a grey-level difference >= 0" in capsys.readouterr().err
