"""RV-R: an eval over subtitle files printed the timed-captions warning once a file (783 lines for a full run); it
now warns once and counts the others, each file's note kept in its results' warnings. ``ground`` still warns."""

from __future__ import annotations

import json
import logging

from frame_describer.caption_formats import read_captions
from pipelines.runs import RunConfig, run_eval

from _helpers_eval import register_fakes, write_toy_dataset

register_fakes()

_TALK = ("1\n00:00:00,000 --> 00:00:01,500\nperson open door\n\n2\n00:00:01,500 --> 00:00:04,000\nperson drink coffee\n"
         "\n3\n00:00:04,300 --> 00:00:09,000\nperson read book\n")


def _timed(caplog) -> list[str]:
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    return [m for m in said if "timed captions" in m or "read as a caption at its cue's centre" in m]


def test_an_eval_warns_once_of_files_read_as_timed_captions(tmp_path, caplog):
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=3)
    for vid in ("vid0", "vid1", "vid2"):
        (desc / f"{vid}.jsonl").unlink()
        (desc / f"{vid}.srt").write_text(_TALK)
    config = RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="fake-reasoner")
    with caplog.at_level(logging.WARNING):
        assert run_eval(config, tmp_path / "run").failed == 0
    said = _timed(caplog)
    assert len(said) == 2 and said[-1] == "... and 2 more subtitle files read as timed captions, warned of in " \
                                          "their results' warnings only", said
    results = [json.loads(x) for x in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    for vid in ("vid0", "vid1", "vid2"):  # each file's own note is in its results
        assert any(f"{vid}.srt: its 3 cues" in w for r in results if r["video"] == vid for w in r.get("warnings", []))
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # outside an eval: one warning a file read
        for _ in range(2):
            read_captions(desc / "vid0.srt", "srt")
    assert len(_timed(caplog)) == 2
