"""vidground export-tuning-data: cached or filed descriptions -> a chat-format training set with frames."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from _helpers_eval import FakeDescriber
from frame_describer.cache import DescriptionCache
from frame_describer.synthetic import read_frame_number, render_numbered_video
from pipelines.session import Session
from pipelines.tuning import export_tuning_data, problem
from vidground.errors import ConfigurationError, InputError
from vidground.types import FrameDescription


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """3 s at 10 fps, every frame's number drawn into it."""
    return render_numbered_video(tmp_path_factory.mktemp("tuning") / "numbered.mp4", n_frames=30, fps=10)


@pytest.fixture
def cache(tmp_path, video) -> Path:
    path = tmp_path / "cache.sqlite"
    with Session(describer=FakeDescriber(), cache=path, sampling={"fps": 2}) as s:
        s.describe(video)
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_cached_descriptions_become_chat_records_with_the_right_frames(tmp_path, video, cache):
    r = export_tuning_data(tmp_path / "out", videos=[video], cache=cache)
    recs = _lines(tmp_path / "out" / "train.jsonl")
    assert r.records == len(recs) == 6 and r.videos == 1 and r.frames_written == 6 and r.describers == {"fake": 6}
    for rec in recs:
        user, assistant = rec["messages"]
        assert user["role"] == "user" and user["content"][0] == {"type": "image"}
        assert user["content"][1]["text"].startswith("Describe what is happening in this video frame")
        assert assistant["content"][0]["text"] == f"frame at {rec['t']:.1f} after " + (
            "None" if rec["t"] == 0 else f"{rec['t'] - 0.5:.1f}")
        assert rec["describer"] == "fake" and rec["video"] == str(video) and rec["prompt"].startswith("describe_agnostic.v")
        image = cv2.imread(str(tmp_path / "out" / rec["images"][0]))
        assert image is not None and read_frame_number(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)) == round(rec["t"] * 10)


def test_llava_format_and_frames_written_once(tmp_path, video, cache):
    export_tuning_data(tmp_path / "out", videos=[video], cache=cache)
    again = export_tuning_data(tmp_path / "out", videos=[video], cache=cache, format="llava")
    assert again.frames_written == 0 and again.frames_reused == 6
    rec = _lines(tmp_path / "out" / "train.jsonl")[0]
    assert rec["conversations"][0]["from"] == "human" and rec["conversations"][0]["value"].startswith("<image>\n")
    assert rec["conversations"][1]["from"] == "gpt" and rec["image"] == f"frames/{rec['id']}.jpg"
    # a second describer of the same frames: its records share the frame files
    with Session(describer=FakeDescriber(version="2"), cache=cache, sampling={"fps": 2}) as s:
        s.describe(video)
    both = export_tuning_data(tmp_path / "out", videos=[video], cache=cache)
    assert both.records == 12 and both.frames_written == 0 and len(list((tmp_path / "out" / "frames").iterdir())) == 6


def test_one_teacher_is_kept_and_a_missing_one_is_named(tmp_path, video, cache):
    assert export_tuning_data(tmp_path / "o", videos=[video], cache=cache, describer="fake").records == 6
    with pytest.raises(InputError, match=r"no descriptions to export by 'openai:gpt-4o'; descriptions found: fake \(6\)"):
        export_tuning_data(tmp_path / "o2", videos=[video], cache=cache, describer="openai:gpt-4o")
    assert not (tmp_path / "o2" / "train.jsonl").exists()


@pytest.mark.parametrize("text, extra, why", [
    ("", {}, "empty"), ("I'm sorry, I can't help with that.", {}, "refusal"), ("I cannot see the image.", {}, "refusal"),
    ("A man runs.", {"error": "timeout"}, "failed"), ("ok", {}, "too short"), ("A man opens a door.", {}, None),
])
def test_filter_for_empty_failed_and_refused_descriptions(text, extra, why):
    assert problem(FrameDescription(t=0, text=text, **extra), min_chars=3) == why


def test_descriptions_files_are_filtered_and_matched_to_their_video(tmp_path, video):
    lines = [{"t": 0.0, "text": "A man sits."}, {"t": 0.5, "text": ""}, {"t": 1.0, "text": "Sorry, I can't do that."},
             {"t": 1.5, "text": "A man stands.", "error": "provider said 500"}, {"t": 2.0, "text": "A man walks."}]
    f = tmp_path / "numbered.jsonl"  # matched by name to the video given
    f.write_text("".join(json.dumps({"describer": "openai:gpt-4o", **x}) + "\n" for x in lines))
    r = export_tuning_data(tmp_path / "out", videos=[video], descriptions=[f])
    assert r.records == 2 and r.left_out == {"empty": 1, "refusal": 1, "failed": 1}
    assert [x["t"] for x in _lines(Path(r.path))] == [0.0, 2.0]


def test_bad_inputs_are_typed_errors(tmp_path, video, cache):
    with pytest.raises(ConfigurationError, match="nothing to export"):
        export_tuning_data(tmp_path / "o")
    with pytest.raises(ConfigurationError, match="give the videos"):
        export_tuning_data(tmp_path / "o", cache=cache)
    with pytest.raises(ConfigurationError, match="unknown tuning-data format 'alpaca'"):
        export_tuning_data(tmp_path / "o", videos=[video], cache=cache, format="alpaca")
    with pytest.raises(InputError, match="no such video or folder"):
        export_tuning_data(tmp_path / "o", videos=[tmp_path / "gone.mp4"], cache=cache)
    empty = DescriptionCache(tmp_path / "empty.sqlite")
    with pytest.raises(InputError, match="no descriptions to export; descriptions found: none"):
        export_tuning_data(tmp_path / "o", videos=[video], cache=empty)
    orphan = tmp_path / "elsewhere.jsonl"
    orphan.write_text(json.dumps({"t": 0, "text": "A man sits.", "video": str(tmp_path / "moved.mp4")}) + "\n")
    with pytest.raises(InputError, match="no video for these descriptions"):
        export_tuning_data(tmp_path / "o", descriptions=[orphan])
    assert not (tmp_path / "o" / "train.jsonl").exists()


def test_a_failure_midway_leaves_the_previous_training_file(tmp_path, video, cache, monkeypatch):
    import pipelines.tuning as tuning

    out = tmp_path / "out"
    export_tuning_data(out, videos=[video], cache=cache, format="llava")
    before = (out / "train.jsonl").read_text()
    for p in (out / "frames").iterdir():
        p.unlink()
    calls = []

    def failing(path, image):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(path, image)

    real = tuning._write_jpeg
    monkeypatch.setattr(tuning, "_write_jpeg", failing)
    with pytest.raises(OSError, match="disk full"):
        export_tuning_data(out, videos=[video], cache=cache)
    assert (out / "train.jsonl").read_text() == before


def test_cli(tmp_path, video, cache, capsys):
    from pipelines.cli import main

    rc = main(["export-tuning-data", "--videos", str(video), "--cache", str(cache), "--out", str(tmp_path / "o"),
               "--format", "llava"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "wrote 6 records from 1 video(s)" in out.out and "describers: fake (6); left out: none" in out.out
    rc = main(["export-tuning-data", "--out", str(tmp_path / "o")])
    assert rc == 1 and "nothing to export" in capsys.readouterr().err


def test_another_max_side_writes_its_own_frames(tmp_path, video, cache):
    out = tmp_path / "out"
    export_tuning_data(out, videos=[video], cache=cache)
    small = export_tuning_data(out, videos=[video], cache=cache, max_side=32)
    assert small.frames_written == 6 and small.frames_reused == 0
    for rec in _lines(out / "train.jsonl"):
        image = cv2.imread(str(out / rec["images"][0]))
        assert max(image.shape[:2]) == 32 and "-s32-" in rec["images"][0]
    again = export_tuning_data(out, videos=[video], cache=cache, max_side=32)
    assert again.frames_written == 0 and again.frames_reused == 6
    assert len(list((out / "frames").iterdir())) == 12


def test_frames_get_the_umasks_mode_and_a_failed_write_leaves_no_temporary(tmp_path, video, cache, monkeypatch):
    import os

    import pipelines.tuning as tuning

    old = os.umask(0o022)
    try:
        export_tuning_data(tmp_path / "out", videos=[video], cache=cache)
    finally:
        os.umask(old)
    modes = {p.stat().st_mode & 0o777 for p in (tmp_path / "out" / "frames").iterdir()}
    assert modes == {0o644}

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(tuning.os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        export_tuning_data(tmp_path / "other", videos=[video], cache=cache)
    assert list((tmp_path / "other" / "frames").iterdir()) == []


def test_an_out_file_and_a_missing_cache_are_named(tmp_path, video, cache):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigurationError, match="is a file; give a folder"):
        export_tuning_data(tmp_path / "file", videos=[video], cache=cache)
    with pytest.raises(InputError, match="description cache not found") as err:
        export_tuning_data(tmp_path / "o", videos=[video], cache=tmp_path / "nocache.sqlite")
    assert "nocache.sqlite" in str(err.value)
    assert not (tmp_path / "nocache.sqlite").exists() and not (tmp_path / "o").exists()
