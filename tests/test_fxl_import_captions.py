"""import-captions names the video of one input written to -o FILE only when it knows it (FX-L item 4): the id when
the input's and FILE's agree, --video's when given, else none, with a note. Fails on 71488fd (video "captions")."""

from __future__ import annotations

import json


def _videos(path) -> set:
    return {json.loads(line).get("video") for line in path.read_text().splitlines()}


def test_import_captions_names_the_video_only_when_it_knows_it(tmp_path, capsys):
    """c6de986 named the video by -o's file (kitchen.csv -o captions.jsonl: "captions", refused by a replay on
    kitchen.mp4); before, by the input's (my_captions.csv -o kitchen.jsonl: "my_captions", refused too). Now: the id
    when both agree, --video's when given, else none (a replay answers any video) and a note saying so."""
    from frame_describer.synthetic import render_numbered_video
    from pipelines.cli import main

    rows = "t,text\n" + "".join(f"{t},caption {t}\n" for t in range(4))
    (tmp_path / "kitchen.csv").write_text(rows)
    (tmp_path / "my_captions.csv").write_text(rows)
    kitchen = render_numbered_video(tmp_path / "kitchen.mp4", n_frames=40, fps=10)

    out = tmp_path / "captions.jsonl"
    assert main(["import-captions", str(tmp_path / "kitchen.csv"), "-o", str(out)]) == 0
    assert _videos(out) == {None}  # 71488fd: {"captions"}
    err = capsys.readouterr().err
    assert "these captions name no video" in err and "--video ID names one" in err
    assert main(["ground", str(kitchen), "caption 2", "--describer", f"replay:{out}", "--json"]) == 0, \
        capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["intervals"]

    same = tmp_path / "kitchen.descriptions.jsonl"
    assert main(["import-captions", str(tmp_path / "kitchen.csv"), "-o", str(same)]) == 0
    assert _videos(same) == {"kitchen"} and "name no video" not in capsys.readouterr().err

    named = tmp_path / "named.jsonl"
    assert main(["import-captions", str(tmp_path / "my_captions.csv"), "-o", str(named), "--video", "kitchen"]) == 0
    assert _videos(named) == {"kitchen"} and "name no video" not in capsys.readouterr().err
    assert main(["ground", str(kitchen), "caption 2", "--describer", f"replay:{named}", "--json"]) == 0
    capsys.readouterr()
    other = render_numbered_video(tmp_path / "hall.mp4", n_frames=40, fps=10)
    assert main(["ground", str(other), "caption 2", "--describer", f"replay:{named}", "--json"]) != 0
    assert "these captions are of video 'kitchen'" in capsys.readouterr().err

    own = tmp_path / "hall_cap.jsonl"  # vidground JSONL whose lines name their video: kept, unless --video says
    own.write_text("".join(json.dumps({"t": float(t), "text": f"caption {t}", "video": "hall"}) + "\n" for t in range(4)))
    assert main(["import-captions", str(own), "-o", str(tmp_path / "h.jsonl")]) == 0
    assert _videos(tmp_path / "h.jsonl") == {"hall"} and "name no video" not in capsys.readouterr().err
    assert main(["import-captions", str(own), "-o", str(tmp_path / "h.jsonl"), "--video", "kitchen"]) == 0
    assert _videos(tmp_path / "h.jsonl") == {"kitchen"}

    folder = tmp_path / "out"  # a folder: named by the input, or by --video
    assert main(["import-captions", str(tmp_path / "my_captions.csv"), "-o", str(folder)]) == 0
    assert _videos(folder / "my_captions.jsonl") == {"my_captions"}
    assert main(["import-captions", str(tmp_path / "my_captions.csv"), "-o", str(folder), "--video", "kitchen"]) == 0
    assert _videos(folder / "kitchen.jsonl") == {"kitchen"}
    capsys.readouterr()
    assert main(["import-captions", str(tmp_path / "kitchen.csv"), str(tmp_path / "my_captions.csv"), "-o",
                 str(folder), "--video", "kitchen"]) != 0
    assert "--video names the video of one input" in capsys.readouterr().err


def test_import_captions_refuses_a_video_id_that_is_a_path(tmp_path, capsys):
    """RV-G: --video ../escaped with a folder for -o wrote OUT/../escaped.jsonl, outside the folder; now a one-line
    error and nothing written."""
    from pipelines.cli import main

    (tmp_path / "kitchen.csv").write_text("t,text\n0,a\n1,b\n")
    out = tmp_path / "out"
    for bad in ("../escaped", "a/b", ".."):
        assert main(["import-captions", str(tmp_path / "kitchen.csv"), "-o", str(out), "--video", bad]) != 0
        assert "not a path" in capsys.readouterr().err
    assert not (tmp_path / "escaped.jsonl").exists() and not out.exists()
