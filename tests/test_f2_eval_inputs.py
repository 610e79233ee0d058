"""Eval inputs and resumes (F2): one file per video, changed inputs noticed on resume, clip-length mismatches,
all-failed runs grouped by their error's pattern."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vidground.errors import InputError
from pipelines.datasets import find_videos
from pipelines.runs import RunConfig, find_descriptions, run_eval

from _helpers_eval import register_fakes, write_toy_dataset

register_fakes()


@pytest.fixture()
def toy(tmp_path):
    return write_toy_dataset(tmp_path / "data")


def cfg(ds, desc, **kw):
    return RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="fake-reasoner", **kw)


# ------------------------------------------------------------------------------- one file per video

def test_an_exact_name_beside_a_cap_file_is_refused_naming_both(tmp_path):
    (tmp_path / "10030609934_cap.json").write_text("{}")
    (tmp_path / "10030609934.csv").write_text("t,text\n0,x\n")
    (tmp_path / "222.jsonl").write_text("{}")
    with pytest.raises(InputError, match=r"1 video\(s\) have more than one descriptions file \(10030609934: "
                                         r"10030609934\.csv, 10030609934_cap\.json\)"):
        find_descriptions(["10030609934", "222"], tmp_path)
    # a clash among videos not selected stops nothing
    found, missing = find_descriptions(["222", "333"], tmp_path)
    assert {k: p.name for k, p in found.items()} == {"222": "222.jsonl"} and missing == ["333"]


def test_a_stale_copy_in_a_subfolder_is_refused_not_taken(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "abc.jsonl").write_text("{}")
    (tmp_path / "a" / "abc.jsonl").write_text("{}")  # sorted first: it was the one used
    with pytest.raises(InputError, match=r"abc: a/abc\.jsonl, abc\.jsonl"):
        find_descriptions(["abc"], tmp_path)


def test_two_video_files_for_one_id_are_refused(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("AAA.mp4", "sub/AAA.mkv", "v_BBB.mp4", "BBB.webm", "CCC.mp4"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(InputError, match=r"2 video\(s\) have more than one video file \(AAA: AAA\.mp4, "
                                         r"sub/AAA\.mkv; BBB: BBB\.webm, v_BBB\.mp4\)"):
        find_videos(["AAA", "BBB", "CCC"], tmp_path)
    assert find_videos(["CCC"], tmp_path)[0] == {"CCC": tmp_path / "CCC.mp4"}


def test_eval_with_two_files_for_one_video_writes_no_run(toy, tmp_path):
    ds, desc = toy
    shutil.copy(desc / "vid0.jsonl", desc / "vid0.csv")
    out = tmp_path / "run"
    with pytest.raises(InputError, match="vid0: vid0.csv, vid0.jsonl"):
        run_eval(cfg(ds, desc), out)
    assert not out.exists()
