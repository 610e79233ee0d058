"""RV-R on 722464c: export-tuning-data refused the right video for subtitles that end before it (an inferred
duration); a relative video field found only from the current folder beat an explicit --videos of its stem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.tuning import export_tuning_data
from vidground.errors import InputError

from test_fxab_tuning_video import _videos, clips  # noqa: F401  (clips: a/clip.mp4 and b/clip.mp4, a fixture)


def _file(path: Path, head: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    head = {"describer": "openai:gpt-4o"} | head
    path.write_text("".join(json.dumps(head | {"t": t, "text": f"A man at {t}."}) + "\n" for t in (0.0, 1.0)))
    return path


def test_an_inferred_duration_shorter_than_the_video_is_not_refused(tmp_path, clips):
    a, b = clips
    f = _file(tmp_path / "clip.jsonl", {"duration": 2.0, "duration_inferred": True})  # subtitles end at 2 s of 6
    r = export_tuning_data(tmp_path / "out", videos=[b], descriptions=[f])
    assert r.records == 2 and _videos(r) == {str(b)}
    f = _file(tmp_path / "clip.jsonl", {"duration": 6.0, "duration_inferred": True})  # cues up to 6 s: not the 3-s one
    with pytest.raises(InputError, match=r"of a 6 s video, and .*a/clip.mp4 is 3 s long"):
        export_tuning_data(tmp_path / "out2", videos=[a], descriptions=[f])
    f = _file(tmp_path / "clip.jsonl", {"duration": 2.0})  # a known duration still refuses a longer video
    with pytest.raises(InputError, match=r"of a 2 s video"):
        export_tuning_data(tmp_path / "out3", videos=[b], descriptions=[f])


def test_a_relative_field_found_from_the_current_folder_does_not_beat_videos_of_its_name(tmp_path, clips,
                                                                                            monkeypatch):
    a, b = clips
    f = _file(tmp_path / "descs" / "d.jsonl", {"video": "a/clip.mp4"})
    monkeypatch.chdir(a.parent.parent)
    with pytest.raises(InputError, match=r"names .*a/clip.mp4 \(from the current folder\), and --videos gives "
                                         r".*b/clip.mp4"):
        export_tuning_data(tmp_path / "out", videos=[b], descriptions=[f])
    r = export_tuning_data(tmp_path / "out", videos=[a], descriptions=[f])  # the same file: no doubt
    assert r.records == 2
    f = _file(tmp_path / "descs" / "d.jsonl", {"video": str(a)})  # an absolute field names its file
    assert _videos(export_tuning_data(tmp_path / "out2", videos=[b], descriptions=[f])) == {str(a)}
