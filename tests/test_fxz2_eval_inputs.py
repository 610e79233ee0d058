"""An eval over a researcher's own captions (FX-Z2): files swapped by name, --clip-seconds over a folder of mixed
formats, subtitles found by their id, NExT-GQA subset ids written without their video."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipelines.datasets import Dataset, Query
from pipelines.runs import RunConfig, find_descriptions, run_eval
from vidground.errors import ConfigurationError, InputError

from _helpers_eval import register_fakes, write_toy_dataset

register_fakes()


def _lines(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_an_eval_refuses_caption_files_swapped_by_name_and_writes_nothing(tmp_path):
    ds, desc = write_toy_dataset(tmp_path / "data")
    shutil.move(desc / "vid0.jsonl", tmp_path / "x")
    shutil.move(desc / "vid1.jsonl", desc / "vid0.jsonl")
    shutil.move(tmp_path / "x", desc / "vid1.jsonl")
    config = RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="fake-reasoner")
    out = tmp_path / "run"
    with pytest.raises(ConfigurationError, match=r"2 descriptions file\(s\) are of another video .*vid0\.jsonl names "
                                                 r"video 'vid1'; .*vid1\.jsonl names video 'vid0'"):
        run_eval(config, out)
    assert not out.exists()
    for f in desc.glob("*.jsonl"):  # files that name no video are any video's, as before
        _lines(f, [{k: v for k, v in json.loads(x).items() if k != "video"} for x in f.read_text().splitlines()])
    assert run_eval(config, out).failed == 0


def test_subtitles_are_found_by_their_id(tmp_path):
    (tmp_path / "vid0.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:02.000\nA man walks in.\n")
    (tmp_path / "vid1.srt").write_text("1\n00:00:00,000 --> 00:00:02,000\nHe sits.\n")
    assert find_descriptions(["vid0", "vid1"], tmp_path)[0] == {"vid0": tmp_path / "vid0.vtt",
                                                               "vid1": tmp_path / "vid1.srt"}


# ------------------------------------------------------------------------------- 6. subset ids

def test_bare_nextgqa_question_numbers_are_told_how_ids_are_written():
    qs = [Query(f"10597533885_{k}", "10597533885", "why", 30.0, [(0.0, 2.0)]) for k in range(3)]
    ds = Dataset("nextgqa", "val", qs, [], [])
    with pytest.raises(InputError, match=r"are not in nextgqa/val, e\.g\. 1, 7; this dataset's ids are written "
                                         r"VIDEO_QID \(e\.g\. 10597533885_1 for question 1 of video 10597533885\)"):
        ds.subset(qids=["1", "7"])


# ------------------------------------------------------------------------------- 7. --clip-seconds, mixed formats

def test_clip_seconds_over_a_folder_of_mixed_formats_is_refused_before_the_run(tmp_path):
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=2)
    _lines(desc / "vid0.jsonl", [{"moment": k, "description": f"person clip {k}"} for k in range(5)])
    config = RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="fake-reasoner",
                       clip_seconds=2.0)
    out = tmp_path / "run"
    with pytest.raises(ConfigurationError, match=r"--clip-seconds 2 applies to vtggpt or seconds-json captions, of one "
                                                 r"format in a run; the selected videos' files are 1 vidground \(e\.g\. "
                                                 r"vid1\.jsonl\), 1 vtggpt \(e\.g\. vid0\.jsonl\)"):
        run_eval(config, out)
    assert not out.exists()
    _lines(desc / "vid1.jsonl", [{"moment": k, "description": f"person clip {k}"} for k in range(5)])
    assert run_eval(config, out).failed == 0
