"""RV-P on 3783f1b: export-tuning-data matched a descriptions file's ``video`` field by its stem among ``--videos``
before trying the field's own file, so ``a/clip.mp4``'s texts were paired with ``b/clip.mp4``'s frames; a file beside
the descriptions won over the field's path from the current folder; two ``--videos`` with one stem was last-wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frame_describer.synthetic import render_numbered_video
from pipelines.tuning import export_tuning_data
from vidground.errors import InputError


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> tuple[Path, Path]:
    """a/clip.mp4 (3 s) and b/clip.mp4 (6 s): one name, two videos."""
    root = tmp_path_factory.mktemp("fxab_clips")
    (root / "a").mkdir()
    (root / "b").mkdir()
    return (render_numbered_video(root / "a" / "clip.mp4", n_frames=30, fps=10),
            render_numbered_video(root / "b" / "clip.mp4", n_frames=60, fps=10))


def _file(path: Path, video: str | None, duration: float | None = None) -> Path:
    head = {"describer": "openai:gpt-4o"} | ({"video": video} if video else {}) | (
        {"duration": duration} if duration else {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(head | {"t": t, "text": f"A man at {t}."}) + "\n" for t in (0.0, 2.0)))
    return path


def _videos(r) -> set[str]:
    return {json.loads(x)["video"] for x in Path(r.path).read_text().splitlines()}


def test_the_field_s_own_file_wins_over_a_namesake_among_videos(tmp_path, clips):
    a, b = clips
    f = _file(tmp_path / "descA.jsonl", str(a.resolve()))
    r = export_tuning_data(tmp_path / "out", videos=[b], descriptions=[f])
    assert r.records == 2 and _videos(r) == {str(a.resolve())}


def test_the_field_from_the_current_folder_wins_over_a_namesake_beside_the_file(tmp_path, clips, monkeypatch):
    """The field `a/clip.mp4` as written from the folder describe ran in; the file lies in b/ beside b/clip.mp4."""
    a, b = clips
    f = _file(b.parent / "descA.jsonl", "a/clip.mp4")
    try:
        monkeypatch.chdir(a.parent.parent)
        r = export_tuning_data(tmp_path / "out", descriptions=[f])
    finally:
        f.unlink()
    assert r.records == 2 and {Path(v).resolve() for v in _videos(r)} == {a.resolve()}


def test_two_videos_of_one_stem_are_refused_not_last_wins(tmp_path, clips):
    a, b = clips
    f = _file(tmp_path / "clip.descriptions.jsonl", None)
    with pytest.raises(InputError, match=r"2 of the videos given are named 'clip'"):
        export_tuning_data(tmp_path / "out", videos=[a, b], descriptions=[f])
    r = export_tuning_data(tmp_path / "out", videos=[b, b.parent], descriptions=[f])  # one video, given twice
    assert r.records == 2 and _videos(r) == {str(b)}


def test_a_video_of_another_length_is_refused(tmp_path, clips):
    a, b = clips
    f = _file(tmp_path / "clip.descriptions.jsonl", "gone/clip.mp4", duration=3.0)
    with pytest.raises(InputError, match=r"of a 3 s video, and .*b/clip.mp4 is 6 s long"):
        export_tuning_data(tmp_path / "out", videos=[b], descriptions=[f])
    assert not (tmp_path / "out" / "train.jsonl").exists()
    r = export_tuning_data(tmp_path / "out", videos=[a], descriptions=[f])
    assert r.records == 2 and _videos(r) == {str(a)}
