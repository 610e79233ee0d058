"""Metric values on hand-computed cases, including the conventions the data README names."""

from __future__ import annotations

import math

import pytest

from frame_describer.errors import ConfigurationError
from pipelines.datasets import Query
from pipelines.metrics import (
    baseline_predictions, compute_metrics, convention_text, iou, mean_prior, prediction_spans,
)
from temporal_reasoner.types import GroundingResult, Interval


def q(qid, s, e, duration=30.0, windows=None):
    return Query(str(qid), f"v{qid}", f"query {qid}", duration, windows or [(s, e)])


def test_iou_hand_values():
    assert iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert iou((0, 10), (0, 10)) == 1.0
    assert iou((0, 5), (5, 10)) == 0.0
    assert iou((0, 10), (2, 4)) == pytest.approx(0.2)


def test_float_tie_counts_as_hit():
    # exact arithmetic gives 0.5; floating point gives 0.49999999999999994
    raw = iou((0.1, 0.4), (0.0, 0.3))
    assert raw < 0.5 and math.isclose(raw, 0.5)
    m = compute_metrics({"0": [[0.1, 0.4]]}, [q(0, 0.0, 0.3)], bootstrap=0, baselines=False)
    assert m["R1@0.5"] == 100.0 and m["R1@0.7"] == 0.0 and m["mIoU"] == 50.0


def test_r1_and_miou_hand_computed():
    queries = [q(0, 0, 10), q(1, 0, 10), q(2, 0, 10), q(3, 0, 10)]
    preds = {"0": [[0, 10, 0.9]],        # IoU 1
             "1": [[0, 6]],              # IoU 0.6
             "2": [[5, 15]],             # IoU 1/3
             "3": [[20, 25]]}            # IoU 0
    m = compute_metrics(preds, queries, bootstrap=0, baselines=False)
    assert m["R1@0.3"] == 75.0 and m["R1@0.5"] == 50.0 and m["R1@0.7"] == 25.0
    assert m["mIoU"] == pytest.approx(round(100 * (1 + 0.6 + 1 / 3) / 4, 2))
    assert "R5@0.5" not in m.values  # no query returned several intervals
    assert m.n == 4 and m.failures == {} and m.n_failures == 0


def test_failures_score_zero_and_stay_in_denominator():
    queries = [q(i, 0, 10) for i in range(6)]
    preds = {"0": [[0, 10]], "1": [[8, 3]], "2": "not json", "3": [],
             "4": {"error": "ProviderError: 500", "intervals": []}}  # "5" is missing
    m = compute_metrics(preds, queries, bootstrap=0, baselines=False)
    assert m.n == 6 and m["R1@0.5"] == pytest.approx(round(100 / 6, 2))
    assert m.failures == {"missing": 1, "error": 1, "empty": 1, "unparseable": 1, "reversed": 1}
    assert m.n_failures == 5
    kinds = {s.qid: s.failure for s in m.per_query}
    assert kinds == {"0": None, "1": "reversed", "2": "unparseable", "3": "empty", "4": "error", "5": "missing"}


def test_zero_length_and_nan_predictions_are_failures():
    assert prediction_spans([[5, 5]])[1] == "reversed"
    assert prediction_spans([[float("nan"), 5]])[1] == "unparseable"
    assert prediction_spans([["a", 5]])[1] == "unparseable"
    assert prediction_spans([[True, 5]])[1] == "unparseable"
    assert prediction_spans({"pred_relevant_windows": [[1, 2, 0.5]]}) == ([(1.0, 2.0)], None)


def test_r5_uses_best_of_top_five():
    queries = [q(0, 10, 20), q(1, 10, 20)]
    preds = {"0": [[0, 5], [30, 40], [10, 20]],                      # top-1 misses, 3rd hits
             "1": [[0, 1], [0, 2], [0, 3], [0, 4], [0, 5], [10, 20]]}  # hit only at rank 6
    m = compute_metrics(preds, queries, bootstrap=0, baselines=False)
    assert m["R1@0.5"] == 0.0 and m["R5@0.5"] == 50.0 and m["R5@0.7"] == 50.0


def test_reversed_top1_with_good_later_interval():
    m = compute_metrics({"0": [[9, 1], [10, 20]]}, [q(0, 10, 20)], bootstrap=0, baselines=False)
    assert m["R1@0.3"] == 0.0 and m["R5@0.7"] == 100.0 and m.failures == {"reversed": 1}


def test_several_gt_windows_take_the_best():
    query = q(0, 0, 0, windows=[(0, 4), (10, 20)])
    m = compute_metrics({"0": [[10, 18]]}, [query], bootstrap=0, baselines=False)
    assert m["mIoU"] == 80.0 and m["R1@0.7"] == 100.0


def test_clip_gt_option_changes_overlong_gt():
    query = q(0, 20, 32, duration=30.0)  # GT ends 2 s after the video
    pred = {"0": [[20, 30]]}
    plain = compute_metrics(pred, [query], bootstrap=0, baselines=False)
    clipped = compute_metrics(pred, [query], bootstrap=0, baselines=False, clip_gt=True)
    assert plain["mIoU"] == pytest.approx(100 * 10 / 12, abs=0.01)
    assert clipped["mIoU"] == 100.0
    assert "not clipped" in plain.convention and "clipped to the video duration" in clipped.convention


def test_accepts_grounding_results_and_intervals():
    res = GroundingResult(query="x", duration=30, intervals=[Interval(start=10, end=20, score=1.0)])
    m = compute_metrics({"0": res, "1": [Interval(start=0, end=5)]}, [q(0, 10, 20), q(1, 0, 10)],
                        bootstrap=0, baselines=False)
    assert m["R1@0.5"] == 100.0 and m["mIoU"] == 75.0


def test_bootstrap_ci_is_deterministic_and_brackets_the_value():
    queries = [q(i, 0, 10) for i in range(50)]
    preds = {str(i): [[0, 10]] if i % 2 else [[20, 30]] for i in range(50)}
    a = compute_metrics(preds, queries, bootstrap=500, seed=1, baselines=False)
    b = compute_metrics(preds, queries, bootstrap=500, seed=1, baselines=False)
    assert a.ci == b.ci
    lo, hi = a.ci["R1@0.5"]
    assert lo < a["R1@0.5"] == 50.0 < hi and hi - lo < 40
    const = compute_metrics({str(i): [[0, 10]] for i in range(50)}, queries, bootstrap=200, baselines=False)
    assert const.ci["mIoU"] == (100.0, 100.0)


def test_baselines_whole_video_and_prior():
    queries = [q(0, 0, 15, duration=30), q(1, 15, 30, duration=30)]
    assert mean_prior(queries) == (0.25, 0.75)
    whole = baseline_predictions(queries, "whole")
    assert whole == {"0": [[0.0, 30.0]], "1": [[0.0, 30.0]]}
    m = compute_metrics({}, queries, bootstrap=0)
    assert m["mIoU"] == 0.0 and m.failures == {"missing": 2}
    assert m.baselines["whole video"]["mIoU"] == 50.0
    assert m.baselines["prior span"]["mIoU"] == pytest.approx(100 / 3, abs=0.01)  # [7.5, 22.5] vs halves
    with pytest.raises(ConfigurationError, match="whole"):
        baseline_predictions(queries, "middle")


def test_bad_arguments_raise_typed_errors():
    with pytest.raises(ConfigurationError, match="no queries"):
        compute_metrics({}, [])
    with pytest.raises(ConfigurationError, match="thresholds"):
        compute_metrics({}, [q(0, 0, 1)], thresholds=(0, 0.5))


def test_summary_is_json_ready():
    import json
    m = compute_metrics({"0": [[0, 10]]}, [q(0, 0, 10)], bootstrap=50)
    s = m.summary()
    json.dumps(s)
    assert "per_query" not in s and s["n_failures"] == 0 and s["convention"] == convention_text()
