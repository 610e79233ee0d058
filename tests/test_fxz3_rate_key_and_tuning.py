"""FX-Z3 items 1-3: a describer that compares frames (``cv``) keyed the default rate (``fps`` null) and ``--fps 1``
apart, so the second run described every frame again and export-tuning-data wrote each record twice; a descriptions
file named ``NAME.descriptions.jsonl`` was not matched to ``NAME.mp4``, and its relative ``video`` field was looked
for from the current folder only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from _helpers_eval import FakeDescriber
from frame_describer.synthetic import render_numbered_video
from pipelines import session as session_module
from pipelines.session import Session
from pipelines.tuning import export_tuning_data


class _Comparing(FakeDescriber):
    """The fake describer, marked as one whose text depends on the frame before (as ``cv``)."""

    uses_previous_frame = True


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """3 s at 10 fps: 3 frames at the default rate."""
    return render_numbered_video(tmp_path_factory.mktemp("fxz3") / "numbered.mp4", n_frames=30, fps=10)


def _describe(cache: Path, video: Path, sampling: dict | None) -> tuple[_Comparing, list[str]]:
    describer = _Comparing()
    with Session(describer=describer, cache=cache, sampling=sampling) as s:
        texts = [d.text for d in s.describe(video).descriptions]
    return describer, texts


@pytest.mark.parametrize("first, second", [(None, {"fps": 1.0}), ({"fps": 1.0}, None)])
def test_the_default_rate_and_fps_1_describe_each_frame_once(tmp_path, video, first, second):
    """`ground v.mp4 x` then `ground v.mp4 x --fps 1` (or an eval's fps 1.0, then the default) sent all 36 again."""
    cache = tmp_path / "c.sqlite"
    one, texts = _describe(cache, video, first)
    two, again = _describe(cache, video, second)
    assert (one.calls, two.calls) == (3, 0) and again == texts


def test_a_cache_keyed_with_a_null_rate_is_still_read_and_exported_once(tmp_path, video, monkeypatch):
    """An older vidground stored the default rate as fps null: its frames are found at the default and at --fps 1,
    and the frames kept under both keys are one training record each (it wrote 72 records for 36 frames)."""
    cache = tmp_path / "c.sqlite"
    with monkeypatch.context() as m:  # the old key: the sampling as given, fps None
        m.setattr(session_module, "_sampled", lambda s: s.model_dump(include={"fps", "num_frames", "max_frames"}),
                  raising=False)
        old, texts = _describe(cache, video, None)
    assert old.calls == 3
    at_1, again = _describe(cache, video, {"fps": 1.0})
    default, also = _describe(cache, video, None)
    assert (at_1.calls, default.calls) == (0, 0) and again == also == texts
    r = export_tuning_data(tmp_path / "out", videos=[video, video.parent], cache=cache)
    recs = [json.loads(line) for line in Path(r.path).read_text().splitlines()]
    assert r.records == len(recs) == 3 and sorted(x["t"] for x in recs) == [0.0, 1.0, 2.0]


def _lines(video_field: str | None) -> str:
    head = {"describer": "openai:gpt-4o"} | ({"video": video_field} if video_field else {})
    return "".join(json.dumps(head | {"t": t, "text": f"A man at {t}."}) + "\n" for t in (0.0, 2.0))


def test_a_descriptions_file_is_matched_by_its_name_less_descriptions(tmp_path, video):
    """`--descriptions tour/demo.descriptions.jsonl --videos vids/demo.mp4` said 'no video for these descriptions'."""
    f = tmp_path / "tour" / "numbered.descriptions.jsonl"
    f.parent.mkdir()
    f.write_text(_lines(None))
    r = export_tuning_data(tmp_path / "out", videos=[video], descriptions=[f])
    assert r.records == 2 and {json.loads(x)["video"] for x in Path(r.path).read_text().splitlines()} == {str(video)}


@pytest.mark.parametrize("field", ["clip.mp4", "tour/clip.mp4"])
def test_a_relative_video_field_is_found_beside_the_file_first(tmp_path, video, monkeypatch, field):
    """The field is relative to where `describe` ran (often the file's folder): from another folder it was not found,
    or another file of that name in the current folder was taken."""
    tour = tmp_path / "tour"
    tour.mkdir()
    beside = shutil.copy(video, tour / "clip.mp4")
    f = tour / "numbered-desc.jsonl"
    f.write_text(_lines(field))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()  # (a tour/clip.mp4 here is the field's own file, from the current folder: FX-AB takes it)
    (elsewhere / "clip.mp4").write_bytes(b"not this one")
    monkeypatch.chdir(elsewhere)
    r = export_tuning_data(tmp_path / "out", descriptions=[f])
    assert r.records == 2 and {json.loads(x)["video"] for x in Path(r.path).read_text().splitlines()} == {str(beside)}
