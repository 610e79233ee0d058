"""Evals over caption folders (RV-O): the events eval checks files swapped by name as the grounding eval does;
--clip-seconds over files that carry their own times says to drop it; an eval's transcripts/ name the describer."""

from __future__ import annotations

import json

import pytest

from pipelines.runs import RunConfig, run_eval
from test_events import _anet_args, _anet_fixture, no_caption_scorers  # noqa: F401
from vidground.errors import ConfigurationError

from _helpers_eval import register_fakes, write_toy_dataset

register_fakes()


def test_the_events_eval_refuses_files_swapped_by_name_before_it_starts(tmp_path, capsys,
                                                                        no_caption_scorers):  # noqa: F811
    from pipelines.cli import main

    root = _anet_fixture(tmp_path)  # v_a.jsonl and b.jsonl
    path = root / "descriptions" / "v_a.jsonl"
    rows = [{**json.loads(x), "video": "v_b"} for x in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(_anet_args(root)) == 1
    err = capsys.readouterr().err
    assert "1 descriptions file(s) are of another video" in err and "v_a.jsonl names video 'v_b'" in err, err
    assert not (root / "run").exists()


@pytest.mark.parametrize("kind", ["jsonl", "srt"])
def test_clip_seconds_over_files_that_carry_their_own_times_says_to_drop_it(tmp_path, kind):
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=2)
    if kind == "srt":
        for vid in ("vid0", "vid1"):
            (desc / f"{vid}.jsonl").unlink()
            (desc / f"{vid}.srt").write_text("1\n00:00:00,000 --> 00:00:02,000\nperson open door\n")
    config = RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="fake-reasoner",
                       clip_seconds=2.0)
    with pytest.raises(ConfigurationError, match=r"--clip-seconds 2 applies to vtggpt or seconds-json captions only; "
                                                 r"the selected videos' files are 2 (vidground|srt) .*which "
                                                 r"carry their own times: drop --clip-seconds"):
        run_eval(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_an_evals_transcripts_name_the_describer(tmp_path):
    """Each line stands alone: a blank text there reads back as a describer's empty reply, not a bare line."""
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=1)
    rows = [json.loads(x) for x in (desc / "vid0.jsonl").read_text().splitlines()]
    rows[3]["text"] = ""  # a frame its describer said nothing of
    (desc / "vid0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="fake-reasoner")
    assert run_eval(config, tmp_path / "run").failed == 0
    written = [json.loads(x) for x in (tmp_path / "run" / "transcripts" / "vid0.jsonl").read_text().splitlines()]
    assert {(r["video"], r["describer"]) for r in written} == {("vid0", "external")}
    assert written[3]["text"] == ""
