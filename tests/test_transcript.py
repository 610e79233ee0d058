"""Transcript building, merging and rendering (temporal_reasoner.transcript)."""

from __future__ import annotations

import pytest

from vidground.errors import InputError
from vidground.types import FrameDescription as FD
from temporal_reasoner import Transcript, format_time, infer_step


def descs(*texts: str, step: float = 1.0, t0: float = 0.0) -> list[FD]:
    return [FD(t=t0 + i * step, text=t) for i, t in enumerate(texts)]


def test_identical_consecutive_lines_merge_into_spans():
    tr = Transcript.from_descriptions(descs("a", "a", "b", "b", "b", "a"), duration=6.0)
    # frames at 0..5 s; each description holds up to halfway to the next frame
    assert [(e.start, e.end, e.text) for e in tr.entries] == [(0, 1.5, "a"), (1.5, 4.5, "b"), (4.5, 6, "a")]
    assert [e.times for e in tr.entries] == [(0, 1), (2, 3, 4), (5,)]
    assert len(tr) == 3 and not tr.duration_inferred


def test_merge_off_keeps_one_entry_per_frame():
    tr = Transcript.from_descriptions(descs("a", "a", "b"), duration=3.0, merge=False)
    assert [(e.start, e.end) for e in tr.entries] == [(0, 0.5), (0.5, 1.5), (1.5, 3)]


def test_duration_inferred_from_last_time_plus_step():
    tr = Transcript.from_descriptions(descs("a", "b", "c", step=2.0))
    assert tr.step == 2.0 and tr.duration == 6.0 and tr.duration_inferred
    assert tr.entries[-1].end == 6.0


def test_unsorted_input_is_sorted_and_step_is_the_median_gap():
    d = [FD(t=2.0, text="c"), FD(t=0.0, text="a"), FD(t=1.0, text="b"), FD(t=5.0, text="d")]
    tr = Transcript.from_descriptions(d)
    assert [e.text for e in tr.entries] == ["a", "b", "c", "d"]
    assert infer_step([0.0, 1.0, 2.0, 5.0]) == 1.0 and tr.duration == 6.0


def test_spans_are_the_parts_nearest_each_frame():
    d = [FD(t=1.0, text="a"), FD(t=2.0, text="b"), FD(t=6.0, text="c")]
    tr = Transcript.from_descriptions(d, duration=8.0, merge=False)
    assert [(e.start, e.end) for e in tr.entries] == [(0, 1.5), (1.5, 4.0), (4.0, 8.0)]
    assert all(a.end == b.start for a, b in zip(tr.entries, tr.entries[1:]))


def test_single_frame_transcript():
    tr = Transcript.from_descriptions(descs("only"), duration=4.0)
    assert [(e.start, e.end) for e in tr.entries] == [(0, 4)]
    assert Transcript.from_descriptions(descs("only")).duration == 1.0


def test_render_seconds_and_mmss():
    tr = Transcript.from_descriptions(descs("a", "a", "b", step=30.0), duration=95.5)
    assert tr.render() == "[0.0-45.0] a\n[45.0-95.5] b"
    assert tr.render("mmss") == "[00:00.0-00:45.0] a\n[00:45.0-01:35.5] b"
    assert format_time(61.25, "mmss") == "01:01.2" or format_time(61.25, "mmss") == "01:01.3"
    with pytest.raises(ValueError, match="seconds"):
        format_time(1.0, "hours")  # type: ignore[arg-type]


def test_bad_inputs_are_typed_errors():
    with pytest.raises(InputError, match="no frame descriptions"):
        Transcript.from_descriptions([])
    with pytest.raises(InputError, match="shorter than the last"):
        Transcript.from_descriptions(descs("a", "b", "c"), duration=1.0)


def test_interval_unpacks_as_start_end_score():
    from vidground.types import Interval

    iv = Interval(start=2.5, end=7.0, score=0.8)
    start, end, score = iv  # pydantic's own iteration would give ('start', 2.5), ('end', 7.0), ...
    assert (start, end, score) == (2.5, 7.0, 0.8)
    assert list(iv) == iv.as_list() == [2.5, 7.0, 0.8] and len(iv) == 3
    assert (iv[0], iv[1], iv[-1]) == (2.5, 7.0, 0.8) and iv[:2] == (2.5, 7.0)
    s, e, sc = Interval(start=0, end=1)
    assert (s, e, sc) == (0.0, 1.0, None)
    # serialisation and validation are unchanged
    assert iv.model_dump() == {"start": 2.5, "end": 7.0, "score": 0.8}
    assert Interval.model_validate(list(iv)) == iv


def test_interval_dict_gives_its_fields_as_for_any_pydantic_model():
    import json

    import numpy as np

    from vidground.types import GroundingResult, Interval

    iv, bare = Interval(start=2.5, end=7.0, score=0.8), Interval(start=0, end=1)
    assert dict(iv) == iv.model_dump() == {"start": 2.5, "end": 7.0, "score": 0.8}
    assert dict(bare) == {"start": 0.0, "end": 1.0, "score": None}
    assert iv.keys() == ("start", "end", "score") and (iv["start"], iv["end"], iv["score"]) == (2.5, 7.0, 0.8)
    assert Interval(**dict(iv)) == iv == Interval.model_validate(dict(iv))
    with pytest.raises(KeyError):
        iv["length"]
    s, e, score = iv  # unpacking is still the list form
    assert (s, e, score) == (2.5, 7.0, 0.8)
    assert np.asarray([iv, iv]).tolist() == [[2.5, 7.0, 0.8]] * 2 and np.asarray([iv, iv]).dtype == np.float64
    assert np.asarray([iv, bare]).shape == (2, 3)
    assert json.loads(json.dumps(dict(iv))) == iv.model_dump()
    result = GroundingResult(query="q", duration=9.0, intervals=[iv, bare])
    assert json.loads(result.model_dump_json())["intervals"] == [dict(iv), dict(bare)]
    assert GroundingResult.model_validate_json(result.model_dump_json()) == result
