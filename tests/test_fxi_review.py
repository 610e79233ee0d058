"""Defects a reviewer found in the morning's fixes (FX-I): import-captions -o FILE names the destination's video;
ask refuses a question too long for the context as ground does."""

from __future__ import annotations

import json

import pytest

from frame_describer.synthetic import render_numbered_video
from pipelines import load_descriptions
from pipelines.cli import main


def test_import_to_a_file_names_the_destinations_video_so_replay_takes_it(tmp_path, capsys):
    """`import-captions my_captions.csv -o kitchen.jsonl` wrote video "my_captions" on every line, so
    `ground kitchen.mp4 Q --describer replay:kitchen.jsonl` was refused as captions of another video. The file
    named by -o is that video's; a folder import still names each file, and its field, by the input's id."""
    source = tmp_path / "my_captions.csv"
    source.write_text("t,text\n" + "".join(f"{t},caption {t}\n" for t in range(4)))
    kitchen = render_numbered_video(tmp_path / "kitchen.mp4", n_frames=40, fps=10)
    for name in ("kitchen.jsonl", "kitchen.descriptions.jsonl"):
        out = tmp_path / name
        assert main(["import-captions", str(source), "-o", str(out)]) == 0
        assert {json.loads(line)["video"] for line in out.read_text().splitlines()} == {"kitchen"}
        assert load_descriptions(out).video == "kitchen"
        capsys.readouterr()
        assert main(["ground", str(kitchen), "caption 2", "--describer", f"replay:{out}", "--json"]) == 0, \
            capsys.readouterr().err
        assert json.loads(capsys.readouterr().out)["intervals"]
    folder = tmp_path / "out"
    assert main(["import-captions", str(source), "-o", str(folder)]) == 0
    assert {json.loads(line)["video"] for line in (folder / "my_captions.jsonl").read_text().splitlines()} == \
        {"my_captions"}
