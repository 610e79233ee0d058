"""VTG-GPT's span rule (the ``vtggpt`` baseline reasoner) and user-given query rephrasings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vidground.errors import ConfigurationError, InputError
from vidground.types import FrameDescription as FD
from temporal_reasoner import Transcript, get_reasoner
from temporal_reasoner.rephrasings import load_rephrasings, query_forms, read_rephrasings
from temporal_reasoner.spans import sample_edges
from temporal_reasoner.vtggpt import VTGGPTReasoner, nms
from _helpers_text import transcript


@pytest.fixture(scope="module")
def reasoner():
    r = get_reasoner("vtggpt")
    r.encoder
    return r


def test_proposals_follow_the_histogram_threshold_gap_merge_and_length_score():
    r = VTGGPTReasoner(encoder=object())  # proposals() is pure: no model needed
    scores = np.zeros(40)
    scores[[5, 6, 7, 8, 9, 10]] = [0.95, 0.92, 0.91, 0.93, 0.96, 1.0]  # one run of 6
    scores[[20, 27]] = [0.97, 0.94]  # 7 samples apart: not merged with each other (gap 6)
    props = r.proposals(scores)
    # 8 samples are >= 0.9 (the bin [0.9, 1.0] holds 8 >= top_k): the threshold is 0.9
    assert [(a, b) for a, b, _ in props] == [(5, 10), (20, 20), (27, 27)]
    share, mean = 6 / 8, scores[5:11].mean()
    assert props[0][2] == pytest.approx(0.5 * share + 0.5 * mean)
    r2 = VTGGPTReasoner(encoder=object(), gap=7)
    assert [(a, b) for a, b, _ in r2.proposals(scores)] == [(5, 10), (20, 27)]


def test_clip_captions_map_to_their_clips_and_the_answer_is_found(reasoner):
    # 2-second clips captioned at their centres, as the VTG-GPT import places them
    texts = ["A man is cooking in a kitchen."] * 10 + ["A dog is running on a beach."] * 5 + ["A man is cooking in a kitchen."] * 10
    tr = Transcript.from_descriptions([FD(t=2 * k + 1.0, text=t) for k, t in enumerate(texts)], duration=50.0, step=2.0)
    assert list(sample_edges(np.array([1.0, 3.0, 5.0]), 6.0)) == [0.0, 2.0, 4.0, 6.0]
    res = reasoner.ground("a dog runs on the beach", tr)
    assert (res.best.start, res.best.end) == (20.0, 30.0)
    assert res.reasoner == "vtggpt" and len(res.intervals) <= 10


def test_rephrasings_add_forms_and_their_spans(reasoner, tmp_path):
    tr = transcript((10, "The person is cooking."), (5, "A dog plays in the garden."), (5, "The person is cooking."))
    path = tmp_path / "reph.jsonl"
    path.write_text(json.dumps({"qid": 1, "query": "A Dog  plays", "rephrased_query": ["a puppy is playing", "dog playing"]}) + "\n")
    r = VTGGPTReasoner(encoder=reasoner.encoder, rephrasings=path)
    res = r.ground("a dog plays", tr)
    assert res.raw["forms"] == ["a dog plays", "a puppy is playing", "dog playing"]
    assert (res.best.start, res.best.end) == (9.5, 14.5)  # frames at 10..14 s: half-way to their neighbours
    assert r.settings()["rephrasings"] == 1
    assert reasoner.ground("a dog plays", tr).raw["forms"] == ["a dog plays"]


def test_a_flat_curve_answers_the_whole_video_with_a_warning(reasoner):
    res = reasoner.ground("a cat", transcript((6, "An empty room.")))
    assert [(i.start, i.end) for i in res.intervals] == [(0.0, 6.0)] and res.warnings


def test_nms_keeps_the_best_of_overlapping_spans():
    kept = nms([(0, 10, 0.5), (0, 10.2, 0.9), (20, 30, 0.7)], 0.95)
    assert kept == [(0, 10.2, 0.9), (20, 30, 0.7)]


@pytest.mark.parametrize("line, message", [
    ('{"query": "a"}', "rephrased_query"),
    ('{"query": "a", "rephrased_query": "not a list"}', "list of strings"),
    ('{"query": "a", "rephrased_query": [1]}', "not text"),
    ('[1, 2]', "rephrased_query"),
    ("{not json", "not valid JSON"),
])
def test_bad_rephrasings_files_name_the_file_and_line(tmp_path, line, message):
    path = tmp_path / "r.jsonl"
    path.write_text('{"query": "ok", "rephrased_query": ["fine"]}\n' + line + "\n")
    with pytest.raises(InputError) as err:
        read_rephrasings(path)
    assert message in str(err.value) and "r.jsonl:2" in str(err.value)


def test_rephrasings_from_a_mapping_and_bad_settings():
    reph = load_rephrasings({"A Dog": ["a puppy", "a puppy", " "]})
    assert query_forms("a dog", reph) == ["a dog", "a puppy"]
    assert query_forms("a cat", reph) == ["a cat"]
    with pytest.raises(ConfigurationError):
        load_rephrasings(["not", "a", "mapping"])
    with pytest.raises(InputError, match="rephrasings file not found"):
        load_rephrasings("/nonexistent/rephrasings.jsonl")
    with pytest.raises(InputError, match="is a folder, not a rephrasings file"):  # it said "not found"
        load_rephrasings(Path(__file__).parent)
    with pytest.raises(ConfigurationError):
        VTGGPTReasoner(encoder=object(), gap=-1)
    with pytest.raises(ConfigurationError):
        VTGGPTReasoner(encoder=object(), nms_iou=0)
