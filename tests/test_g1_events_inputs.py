"""`vidground eval activitynet-events --descriptions DIR`: a video ``v_X`` is found as ``v_X.jsonl`` or ``X.jsonl``;
both for one video are refused, naming both, as the grounding eval refuses two files for one video (7add5f7), where
``v_X.jsonl`` was taken silently."""

from __future__ import annotations

import json

import pytest

from pipelines.runs import find_descriptions
from test_events import _anet_args, _anet_fixture, no_caption_scorers  # noqa: F401
from vidground.errors import InputError


def test_both_v_x_and_x_for_one_video_are_refused_naming_both_before_anything_is_written(
        tmp_path, capsys, no_caption_scorers):  # noqa: F811
    from pipelines.cli import main

    root = _anet_fixture(tmp_path)  # descriptions: v_a.jsonl and b.jsonl
    (root / "descriptions" / "a.jsonl").write_text((root / "descriptions" / "v_a.jsonl").read_text())
    assert main(_anet_args(root)) == 1
    err = capsys.readouterr().err
    assert "1 video(s) have more than one descriptions file (v_a: a.jsonl, v_a.jsonl)" in err, err
    assert "which one is meant is not guessed" in err
    assert not (root / "run").exists()


def test_one_file_with_or_without_the_prefix_is_used(tmp_path, capsys, no_caption_scorers):  # noqa: F811
    from pipelines.cli import main

    root = _anet_fixture(tmp_path)  # v_a.jsonl (prefixed) and b.jsonl (bare) for v_a and v_b; v_c has none
    assert main(_anet_args(root)) == 0, capsys.readouterr().err
    rows = [json.loads(x) for x in (root / "run" / "events.jsonl").read_text().splitlines()]
    assert sorted(r["video"] for r in rows) == ["v_a", "v_b"]
    assert json.loads((root / "run" / "metrics.json").read_text())["missing_inputs"] == 1


def test_find_descriptions_takes_the_prefix_either_way_only_when_asked(tmp_path):
    for name in ("v_a.jsonl", "b.jsonl", "v_c.jsonl", "c.jsonl"):
        (tmp_path / name).write_text("{}\n")
    found, missing = find_descriptions(["v_a", "v_b", "d"], tmp_path, v_prefix=True)
    assert ({k: p.name for k, p in found.items()}, missing) == ({"v_a": "v_a.jsonl", "v_b": "b.jsonl"}, ["d"])
    found, missing = find_descriptions(["a"], tmp_path, v_prefix=True)  # the bare id finds the prefixed file too
    assert {k: p.name for k, p in found.items()} == {"a": "v_a.jsonl"}
    with pytest.raises(InputError, match=r"v_c: c\.jsonl, v_c\.jsonl"):
        find_descriptions(["v_c"], tmp_path, v_prefix=True)
    found, missing = find_descriptions(["v_b", "v_c"], tmp_path)  # the grounding eval's ids are matched as given
    assert ({k: p.name for k, p in found.items()}, missing) == ({"v_c": "v_c.jsonl"}, ["v_b"])
