"""Loaders on the shared annotation files, subsets, data-folder lookup and video lookup."""

from __future__ import annotations

import json
import re

import pytest

from vidground.errors import ConfigurationError, InputError
from pipelines.datasets import (
    Query, data_root, find_videos, load_dataset, read_subset_file, select_subset,
)
from pipelines.metrics import baseline_predictions, compute_metrics

try:
    ROOT = data_root()
except ConfigurationError:  # pragma: no cover - the shared data folder is part of the checkout's setup
    ROOT = None
needs_data = pytest.mark.skipif(ROOT is None, reason="shared annotation folder not found")


@pytest.fixture(scope="module")
def charades_test():
    return load_dataset("charades-sta", "test")


@needs_data
def test_charades_sta_test_counts_and_keys(charades_test):
    ds = charades_test
    assert (ds.name, ds.split, len(ds), len(ds.videos)) == ("charades-sta", "test", 3720, 1334)
    first = ds.queries[0]
    assert (first.qid, first.video, first.query, first.windows) == ("0", "3MSZA", "person turn a light on.", ((24.3, 30.4),))
    assert ds.queries[-1].qid == "3719"
    assert len(ds.by_key()) == 3720  # (video, sentence) is a unique key
    assert all(q.duration for q in ds)
    assert max(q.duration for q in ds) == 72.04
    assert sum(q.windows[0][1] > q.duration for q in ds) == 562  # moments past the video's end
    assert ds.match("3MSZA", "  Person turn a LIGHT on. ") is first


@needs_data
def test_charades_whole_video_baseline_matches_readme(charades_test):
    m = compute_metrics(baseline_predictions(charades_test.queries, "whole"), charades_test.queries,
                        bootstrap=0, baselines=False)
    assert 26.5 < m["mIoU"] < 27.5 and 33.5 < m["R1@0.3"] < 35.0


@needs_data
def test_charades_train_drops_reversed_annotations():
    ds = load_dataset("charades-sta", "train")
    assert len(ds) + len(ds.dropped) == 12408 and len(ds.dropped) == 4
    assert "ends before it starts" in ds.dropped[0]
    assert ds.by_qid()["8252"].video  # ids stay line indices after a drop (line 8252 was id 8251)
    assert "8251" not in ds.by_qid()


@needs_data
def test_activitynet_and_qvhighlights():
    anet = load_dataset("activitynet-captions")
    assert (anet.split, len(anet), len(anet.videos)) == ("val_2", 17031, 4885)
    assert anet.queries[0].qid == "v_uqiMw7tQ1Cc#0" and anet.queries[0].duration == 55.15
    qvh = load_dataset("qvhighlights")
    assert len(qvh) == 1550 and sum(len(q.windows) > 1 for q in qvh) == 530
    assert qvh.queries[0].qid == "2579" and qvh.queries[0].windows == ((82.0, 150.0),)


def test_unknown_names_list_choices(tmp_path):
    with pytest.raises(ConfigurationError, match="charades-sta, activitynet-captions, qvhighlights, nextgqa, jsonl"):
        load_dataset("kinetics")
    with pytest.raises(ConfigurationError, match="choose one of test, train"):
        load_dataset("charades-sta", "val", root=tmp_path)
    with pytest.raises(ConfigurationError, match="path="):
        load_dataset("jsonl")


def test_data_root_argument_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDGROUND_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert data_root(tmp_path / "..") == tmp_path / ".."
    monkeypatch.setenv("VIDGROUND_DATA", str(tmp_path / "nope"))
    with pytest.raises(ConfigurationError, match="VIDGROUND_DATA"):
        data_root()


def test_charades_layout_under_custom_root(tmp_path):
    folder = tmp_path / "charades-sta"
    folder.mkdir()
    (folder / "charades_sta_test.txt").write_text("AAA 1.0 4.5##a person opens a door.\nBBB 0 2##b\n")
    (folder / "charades_test_durations.csv").write_text("id,length\nAAA,10.0\n")
    ds = load_dataset("charades-sta", root=tmp_path)
    assert [(q.qid, q.video, q.duration, q.windows) for q in ds] == [
        ("0", "AAA", 10.0, ((1.0, 4.5),)), ("1", "BBB", None, ((0.0, 2.0),))]
    (folder / "charades_sta_test.txt").write_text("AAA 1.0##no end\n")
    with pytest.raises(InputError, match=r"charades_sta_test.txt:1: expected"):
        load_dataset("charades-sta", root=tmp_path)


def test_generic_jsonl(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text(json.dumps({"video": "a", "query": "x", "windows": [[1, 2], [3, 4]], "duration": 9, "note": 1}) + "\n"
                 + json.dumps({"qid": "k", "vid": "b", "query": "y", "timestamp": [0, 1]}) + "\n")
    ds = load_dataset("jsonl", path=p)
    assert [q.qid for q in ds] == ["0", "k"]
    assert ds.queries[0].windows == ((1.0, 2.0), (3.0, 4.0)) and ds.queries[0].extra == {"note": 1}
    p.write_text('{"video": "a", "query": "x"}\n')
    with pytest.raises(InputError, match=r"q.jsonl:1: .*windows"):
        load_dataset("jsonl", path=p)
    p.write_text('{"video": "a", "query": "x", "windows": [[1, "b"]]}\n')
    with pytest.raises(InputError, match=r"q.jsonl:1: .*two numbers"):
        load_dataset("jsonl", path=p)


def _queries(n):
    return [Query(str(i), f"v{i % 7}", f"q{i}", 10.0, [(0, 1)]) for i in range(n)]


def test_subsets_are_reproducible_nested_and_keep_order():
    qs = _queries(500)
    a, b = select_subset(qs, 128, seed=0), select_subset(list(reversed(qs)), 128, seed=0)
    assert len(a) == 128 and {x.qid for x in a} == {x.qid for x in b}
    assert [int(x.qid) for x in a] == sorted(int(x.qid) for x in a)
    assert {x.qid for x in select_subset(qs, 64, seed=0)} <= {x.qid for x in a}
    assert {x.qid for x in select_subset(qs, 128, seed=1)} != {x.qid for x in a}
    assert len(select_subset(qs, 10_000)) == 500
    with pytest.raises(ConfigurationError, match="positive integer"):
        select_subset(qs, 0)


def test_subset_file(tmp_path):
    from pipelines.datasets import Dataset
    ds = Dataset("x", "test", _queries(10))
    f = tmp_path / "subset.txt"
    f.write_text("# my picks\n3\n1\n{\"qid\": 7}\n")
    assert read_subset_file(f) == ["3", "1", "7"]
    assert [q.qid for q in ds.subset(qids=read_subset_file(f))] == ["1", "3", "7"]
    with pytest.raises(InputError, match="not in x/test"):
        ds.subset(qids=["99"])
    with pytest.raises(InputError, match="not found"):
        read_subset_file(tmp_path / "none.txt")


def test_find_videos(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("AAA.mp4", "sub/BBB.WEBM", "uqiMw7tQ1Cc.mkv", "CCC.txt"):
        (tmp_path / name).write_bytes(b"x")
    found, missing = find_videos(["AAA", "BBB", "v_uqiMw7tQ1Cc", "CCC", "AAA"], tmp_path)
    assert {k: v.name for k, v in found.items()} == {"AAA": "AAA.mp4", "BBB": "BBB.WEBM", "v_uqiMw7tQ1Cc": "uqiMw7tQ1Cc.mkv"}
    assert missing == ["CCC"]
    with pytest.raises(InputError, match="videos folder not found"):
        find_videos(["AAA"], tmp_path / "nope")


def test_generic_jsonl_refuses_what_would_score_wrongly(tmp_path):
    p = tmp_path / "q.jsonl"
    line = {"video": "a", "query": "x", "windows": [[1, 2]]}
    p.write_text(json.dumps({**line, "qid": "k"}) + "\n" + json.dumps({**line, "qid": "k", "query": "y"}) + "\n")
    with pytest.raises(InputError, match=r"query id 'k' is used by more than one query \(.*q.jsonl\)"):
        load_dataset("jsonl", path=p)  # results are kept by qid: the second would overwrite the first
    for bad in ("abc", -5, 0, True, [9]):
        p.write_text(json.dumps(line) + "\n" + json.dumps({**line, "duration": bad}) + "\n")
        with pytest.raises(InputError, match=rf"q.jsonl:2: 'duration' must be a positive number of seconds, got {re.escape(repr(bad))}"):
            load_dataset("jsonl", path=p)
    p.write_text(json.dumps({**line, "duration": None}) + "\n")
    assert load_dataset("jsonl", path=p).queries[0].duration is None


def test_a_queries_file_for_a_bundled_dataset_is_refused_not_ignored(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text(json.dumps({"video": "a", "query": "x", "windows": [[1, 2]]}) + "\n")
    with pytest.raises(ConfigurationError, match=r"--dataset-file .*q.jsonl is for the 'jsonl' dataset; qvhighlights"):
        load_dataset("qvhighlights", path=p)
    with pytest.raises(ConfigurationError, match="--dataset-file FILE"):
        load_dataset("jsonl")


def test_a_file_given_as_the_videos_folder_says_so(tmp_path):
    video = tmp_path / "demo.mp4"
    video.write_bytes(b"\0")
    with pytest.raises(InputError, match="demo.mp4: is not a folder: give the folder holding the videos"):
        find_videos(["demo"], video)
    with pytest.raises(InputError, match="videos folder not found"):
        find_videos(["demo"], tmp_path / "nope")
