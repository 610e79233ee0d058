"""A chat grounding reply's score outside [0, 1] is clamped with a warning, as an event's score is."""

from __future__ import annotations

from temporal_reasoner.parsing import parse_reply_detailed
from vidground.types import Interval


def test_a_score_above_one_is_clamped_with_a_warning():
    """SmolLM2 replied a score of 8.0 to a prompt asking for a confidence in [0, 1]; it was kept as 8.0."""
    r = parse_reply_detailed('{"intervals": [{"start": 2, "end": 4, "score": 8.0}]}', duration=10, step=1)
    assert r.intervals == [Interval(start=2, end=4, score=1.0)]
    assert r.warnings == ["intervals[0].score 8 clamped to [0, 1]"]


def test_clamped_scores_keep_the_models_order_and_a_negative_one_becomes_zero():
    text = '[[1, 2, 6], [5, 6, 8], [7, 8, -0.5], [3, 4, 0.4]]'
    r = parse_reply_detailed(text, duration=10, step=1)
    assert [(iv.start, iv.score) for iv in r.intervals] == [(5, 1.0), (1, 1.0), (3, 0.4), (7, 0.0)]
    assert r.warnings == ["intervals[0].score 6 clamped to [0, 1]", "intervals[1].score 8 clamped to [0, 1]",
                          "intervals[2].score -0.5 clamped to [0, 1]"]


def test_scores_in_range_are_left_alone():
    r = parse_reply_detailed('[[1, 2, 0.3], [5, 6, 1], [7, 8, 0]]', duration=10, step=1)
    assert [iv.score for iv in r.intervals] == [1.0, 0.3, 0.0] and r.warnings == []
