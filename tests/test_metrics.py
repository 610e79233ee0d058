"""Metric values on hand-computed cases, including the conventions the data README names."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vidground.errors import ConfigurationError
from pipelines.datasets import Query, data_root, load_dataset
from pipelines.baselines import FIXED_PRIOR, dataset_prior
from pipelines.metrics import (
    MAP_THRESHOLDS, average_precision, baseline_predictions, baselines_text, compute_metrics, convention_text, iou,
    match_predictions, mean_prior, prediction_spans, ranked_spans, read_predictions,
)
from vidground.types import GroundingResult, Interval


def q(qid, s, e, duration=30.0, windows=None):
    return Query(str(qid), f"v{qid}", f"query {qid}", duration, windows or [(s, e)])


def test_iou_hand_values():
    assert iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert iou((0, 10), (0, 10)) == 1.0
    assert iou((0, 5), (5, 10)) == 0.0
    assert iou((0, 10), (2, 4)) == pytest.approx(0.2)


def test_a_float_tie_under_the_threshold_is_a_miss_as_the_official_scripts_count_it():
    # exact arithmetic gives 0.5; floating point gives 0.49999999999999994, which moment_detr's compute_mr_r1
    # (np.mean(iou >= 0.5)) and NExT-GQA's eval_ground.py (>= 0.5) count as a miss: so does the score here, so that
    # a figure compares with theirs (a 1e-9 tolerance counted it a hit before)
    raw = iou((0.1, 0.4), (0.0, 0.3))
    assert raw < 0.5 and math.isclose(raw, 0.5)
    official = float(np.mean(np.array([raw]) >= 0.5) * 100)  # moment_detr's line, on the same IoU
    m = compute_metrics({"0": [[0.1, 0.4]]}, [q(0, 0.0, 0.3)], bootstrap=0, baselines=False)
    assert m["R1@0.5"] == official == 0.0 and m["R1@0.3"] == 100.0 and m["mIoU"] == 50.0
    # an exact 0.5 (binary fractions) is a hit, as there
    m = compute_metrics({"0": [[0.0, 0.5]]}, [q(0, 0.0, 0.25)], bootstrap=0, baselines=False)
    assert m["R1@0.5"] == 100.0
    assert "tolerance" not in m.convention and "compared exactly" in m.convention


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
    m = compute_metrics({}, queries, bootstrap=0, prior=(0.25, 0.75))
    assert m["mIoU"] == 0.0 and m.failures == {"missing": 2}
    assert m.baselines["whole video"]["mIoU"] == 50.0
    assert m.baselines["prior span"]["mIoU"] == pytest.approx(100 / 3, abs=0.01)  # [7.5, 22.5] vs halves
    assert m.baseline_notes["prior span"].endswith("given by the caller")
    with pytest.raises(ConfigurationError, match="whole"):
        baseline_predictions(queries, "middle")


def test_a_prior_span_must_be_ordered_fractions_of_the_duration():
    from pipelines.baselines import SpanPrior, as_prior

    queries = [q(0, 0, 15, duration=30)]
    assert as_prior((0.1, 0.9)).as_tuple() == (0.1, 0.9) and as_prior((0, 1)).as_tuple() == (0.0, 1.0)
    assert as_prior(None) is FIXED_PRIOR
    for bad, match in (((0.75, 0.25), "swapped"), ((0.5, 0.5), "start < end"), ((-0.1, 0.5), "0 <= start"),
                       ((0.2, 1.5), "<= 1"), ((float("nan"), 0.5), "0 <= start"), ((0.1,), "pair"),
                       ((0.1, 0.2, 0.3), "pair"), ("ab", "pair"), (0.5, "pair")):
        with pytest.raises(ConfigurationError, match=match):
            as_prior(bad)
    with pytest.raises(ConfigurationError, match="swapped"):
        compute_metrics({}, queries, bootstrap=0, prior=(0.75, 0.25))  # before: a prior span silently scoring 0
    with pytest.raises(ConfigurationError, match="swapped"):
        baseline_predictions(queries, "prior", prior=[0.9, 0.1])
    with pytest.raises(ConfigurationError, match="swapped"):
        as_prior(SpanPrior.model_construct(start=0.8, end=0.2, source="made by hand"))


def test_the_default_prior_is_fixed_never_fitted_on_the_scored_queries():
    # every GT is the first tenth: a prior fitted on these queries would score 100
    queries = [q(i, 0, 3, duration=30) for i in range(3)]
    m = compute_metrics({}, queries, bootstrap=0)
    assert m.prior == FIXED_PRIOR.as_tuple() == (0.25, 0.75)
    assert m.baselines["prior span"]["R1@0.3"] == 0.0
    assert "fixed: the middle half of the video" in m.baseline_notes["prior span"]
    assert "prior span: [0.25, 0.75] x duration" in baselines_text(m)


def test_the_train_prior_does_not_change_when_the_evaluated_subset_changes(tmp_path):
    from _helpers_eval import write_tiny_charades

    train = [("T1", 0, 10, 40), ("T2", 10, 20, 40), ("T3", 20, 40, 40)]  # fractions (0, .25), (.25, .5), (.5, 1)
    test = [(f"V{i}", 0, 5, 20) for i in range(6)] + [(f"W{i}", 15, 20, 20) for i in range(6)]
    root = write_tiny_charades(tmp_path, train, test)
    prior = dataset_prior("charades-sta", "test", str(root))
    assert prior.as_tuple() == pytest.approx((0.25, 7 / 12))
    assert prior.source == "learned on charades-sta/train: mean normalised GT span of 3 queries"
    ds = load_dataset("charades-sta", "test", root)
    seen = set()
    for subset in (ds.queries, ds.queries[:6], ds.queries[6:], ds.subset(limit=4, seed=1).queries):
        m = compute_metrics({}, subset, bootstrap=0, prior=dataset_prior("charades-sta", "test", str(root)))
        seen.add(m.prior)
        assert mean_prior(subset) != m.prior  # what the old baseline fitted on the scored queries
    assert seen == {prior.as_tuple()}
    # the train split evaluated on itself says its prior is not held out
    assert "not held out" in dataset_prior("charades-sta", "train", str(root)).source
    # datasets without a train split here get the documented fixed prior
    assert dataset_prior("qvhighlights", "val", str(root)).as_tuple() == FIXED_PRIOR.as_tuple()
    assert "qvhighlights has no train split" in dataset_prior("qvhighlights", "val", str(root)).source


def test_baselines_use_the_durations_the_run_knows():
    queries = [q(0, 0, 15, duration=None), q(1, 15, 30, duration=None), q(2, 0, 30, duration=None)]
    unknown = compute_metrics({}, queries, bootstrap=0)
    assert unknown.baselines == {} and "not scored: no video duration is known" in unknown.baseline_notes["whole video"]
    m = compute_metrics({}, queries, bootstrap=0, durations={"v0": 30.0, "v1": 30.0})
    assert m.baselines["whole video"]["mIoU"] == 50.0  # scored on the two queries with a known duration
    assert "on the 2 of 3 queries whose video duration is known" in m.baseline_notes["prior span"]


def test_problem_rows_say_what_is_wrong():
    queries = [q(i, 0, 10) for i in range(7)]
    preds = {"0": {"video": "v0", "query": "x", "intervals": [22.8, 28.9]},
             "1": {"video": "v1", "query": "x", "timestamp": [1, 2]},
             "2": {"intervals": [[8, 3]]},
             "3": {"intervals": [[5, 5]]},
             "4": {"intervals": [[0, 5000]]},          # milliseconds? out of range, scored as given
             "5": {"error": {"type": "ProviderError", "message": "503"}}}  # "6" is missing
    m = compute_metrics(preds, queries, bootstrap=0, baselines=False)
    assert m.failures == {"missing": 1, "error": 1, "unparseable": 2, "reversed": 2}
    assert m.warnings == {"out of range": 1} and m.problems["out of range"] == 1 and m.n_failures == 6
    by = {s.qid: s for s in m.per_query}
    assert by["0"].detail == "'intervals' is a flat list [22.8, 28.9]; write a list of intervals: [[22.8, 28.9]]"
    assert by["1"].detail == "no 'intervals' (or 'pred_relevant_windows') key; its keys: 'video', 'query', 'timestamp'"
    assert by["2"].detail == "interval [8, 3] ends before it starts" and by["3"].detail.endswith("has zero length")
    assert by["4"].warning == "out of range" and by["4"].failure is None and by["4"].iou == pytest.approx(10 / 5000)
    assert by["4"].detail == "interval [0, 5000] lies outside the video [0, 30] s"
    assert by["5"].detail == "failed: ProviderError: 503" and by["6"].detail == "no prediction for this query"
    # a little past the end is not out of range (annotations overshoot by up to 1.5 s); the duration
    # the run knows stands in for a query without one
    assert compute_metrics({"0": [[0, 31]]}, [q(0, 0, 10)], bootstrap=0, baselines=False).warnings == {}
    late = compute_metrics({"0": [[0, 90]]}, [q(0, 0, 10, duration=None)], bootstrap=0, baselines=False,
                           durations={"v0": 30.0})
    assert late.warnings == {"out of range": 1}


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


# ------------------------------------------------------------------------------------------- mAP

def _map(preds, queries, **kw):
    return compute_metrics(preds, queries, bootstrap=0, baselines=False, mean_ap=True, **kw)


def test_map_two_gt_windows_hand_computed():
    query = q(0, 0, 0, windows=[(0, 10), (20, 30)])
    assert _map({"0": [[0, 10, 0.9], [20, 30, 0.8]]}, [query])["mAP"] == 100.0
    assert _map({"0": [[0, 10, 1.0]]}, [query])["mAP"] == 50.0  # one of two windows found: recall 1/2
    # hit, miss, hit: precision 1 at recall 1/2, 2/3 at recall 1 -> AP (1 + 2/3) / 2
    m = _map({"0": [[20, 30, 0.9], [50, 60, 0.8], [0, 10, 0.7]]}, [query])
    assert m["mAP@0.5"] == m["mAP@0.75"] == m["mAP"] == 83.33
    assert m["R1@0.5"] == 100.0


def test_map_iou_and_thresholds_round_as_moment_detr_while_r1_keeps_the_hull_union():
    # moment_detr's mAP takes IoUs from compute_temporal_iou_batch_cross (union = the two lengths less the
    # intersection) against np.linspace(0.5, 0.95, 10); its R1 (compute_mr_r1) from compute_temporal_iou_batch_paired
    # (union = the hull, as iou() here). Equal in exact arithmetic; in floating point they differ on a threshold.
    assert MAP_THRESHOLDS == tuple(np.linspace(0.5, 0.95, 10)) and MAP_THRESHOLDS[8] == 0.8999999999999999
    i75 = MAP_THRESHOLDS.index(0.75)
    # (0.06, 0.36) vs (0.05, 0.45): the hull gives 0.7499999999999999, moment_detr's mAP 0.75, a hit at 0.75
    assert iou((0.06, 0.36), (0.05, 0.45)) < 0.75
    assert average_precision([[(0.06, 0.36)]], [[(0.05, 0.45)]])[0, i75] == 1.0
    # (0.16, 0.56) vs (0.31, 0.51): the hull gives 0.5 (an R1 hit), moment_detr's mAP 0.49999999999999994 (a miss)
    assert average_precision([[(0.16, 0.56)]], [[(0.31, 0.51)]])[0, 0] == 0.0
    m = compute_metrics({"0": [[0.16, 0.56]]}, [q(0, 0.31, 0.51)], bootstrap=0, baselines=False)
    assert m["R1@0.5"] == 100.0
    # (0.61, 1.01) vs (0.61, 0.97): IoU 0.8999999999999999 reaches linspace's 0.9, not a literal 0.9
    assert average_precision([[(0.61, 1.01)]], [[(0.61, 0.97)]])[0, 8] == 1.0


def test_map_duplicates_match_a_window_once():
    query = q(0, 0, 0, windows=[(0, 10), (20, 30)])
    # the second [0, 10] finds its window taken: a false positive, as in the test above
    assert _map({"0": [[0, 10, 0.9], [0, 10, 0.8], [20, 30, 0.7]]}, [query])["mAP"] == 83.33
    # an interval whose best window is taken falls back on the next one when that is above m:
    # [0, 9] has IoU 0.9 with the taken [0, 10] and 8/9 = 0.889 with [0, 8]
    m = _map({"0": [[0, 10, 0.9], [0, 9, 0.8]]}, [q(0, 0, 0, windows=[(0, 10), (0, 8)])])
    assert m["mAP@0.5"] == m["mAP@0.75"] == 100.0
    assert m["mAP"] == 90.0  # AP 1 at m <= 0.85, 1/2 at 0.9 and 0.95
    ap = average_precision([[(0.0, 10.0), (0.0, 9.0)]], [[(0.0, 10.0), (0.0, 8.0)]])
    assert ap.shape == (1, 10) and ap[0].tolist() == [1.0] * 8 + [0.5, 0.5]


def test_map_ranks_by_score_stably_else_in_given_order():
    query = [q(0, 0, 10)]
    assert _map({"0": [[50, 60, 0.1], [0, 10, 0.9]]}, query)["mAP"] == 100.0  # unsorted: the hit ranks first
    assert _map({"0": [[50, 60], [0, 10]]}, query)["mAP"] == 50.0             # no scores: the given order
    assert _map({"0": [[50, 60, 0.5], [0, 10, 0.5]]}, query)["mAP"] == 50.0   # a tie keeps the given order
    assert _map({"0": [[50, 60, 0.9], [0, 10]]}, query)["mAP"] == 50.0       # one score missing: given order
    assert ranked_spans([[1, 2, 0.1], {"start": 3, "end": 4, "score": 0.7}, Interval(start=5, end=6, score=0.4)]) \
        == [(3.0, 4.0), (5.0, 6.0), (1.0, 2.0)]
    res = GroundingResult(query="x", duration=60, intervals=[Interval(start=50, end=60, score=0.2),
                                                             Interval(start=0, end=10, score=0.8)])
    assert _map({"0": res}, query)["mAP"] == 100.0


def test_map_failures_score_zero_and_stay_in_denominator():
    queries = [q(i, 0, 10) for i in range(5)]
    preds = {"0": [[0, 10, 1.0]], "1": [], "2": {"error": "ProviderError: 500"}, "3": "not json"}  # "4" missing
    m = _map(preds, queries)
    assert m["mAP"] == m["mAP@0.5"] == 20.0 and m.n == 5
    # a reversed or unparseable interval keeps its rank as a false positive
    assert _map({"0": [[5, 1, 0.9], [0, 10, 0.8]]}, [queries[0]])["mAP"] == 50.0
    assert ranked_spans([["a", 1, 0.9], [0, 10, 0.8]]) == [None, (0.0, 10.0)]
    assert ranked_spans(None) == [] and ranked_spans([]) == []


def test_map_keeps_the_first_ten_before_ranking():
    misses = [[50 + i, 51 + i, 0.5] for i in range(10)]
    query = [q(0, 0, 10)]
    # as moment_detr: the 11th interval is dropped before sorting, whatever its score
    assert _map({"0": misses + [[0, 10, 0.99]]}, query)["mAP"] == 0.0
    assert _map({"0": misses[:9] + [[0, 10, 0.99]]}, query)["mAP"] == 100.0
    assert len(ranked_spans(misses + misses)) == 10


def test_map_appears_when_it_differs_from_r1():
    single = compute_metrics({"0": [[0, 10, 0.9]]}, [q(0, 0, 10)], bootstrap=0)
    assert "mAP" not in single.values and "mAP" not in single.convention  # one interval, one window: mAP = R1
    several = compute_metrics({"0": [[0, 10, 0.9], [20, 30, 0.1]]}, [q(0, 0, 10)], bootstrap=0)
    assert several["mAP@0.5"] == several["mAP@0.75"] == several["mAP"] == 100.0
    assert "mAP" in several.convention and "mAP" in several.baselines["whole video"]
    windows = compute_metrics({"0": [[0, 10]]}, [q(0, 0, 0, windows=[(0, 10), (20, 30)])], bootstrap=0)
    assert windows["mAP"] == 50.0 and windows["R1@0.5"] == 100.0
    forced = _map({"0": [[0, 6]], "1": [[0, 10]]}, [q(0, 0, 10), q(1, 0, 10)])
    assert forced["mAP@0.5"] == forced["R1@0.5"] == 100.0 and forced["mAP@0.75"] == 50.0


def test_map_bootstrap_ci():
    queries = [q(i, 0, 10) for i in range(40)]
    preds = {str(i): [[0, 10, 0.9], [20, 30, 0.1]] if i % 2 else [[20, 30, 0.9], [0, 10, 0.1]] for i in range(40)}
    m = compute_metrics(preds, queries, bootstrap=300, baselines=False)
    assert m["mAP"] == 75.0  # AP 1 and 1/2 alternate
    lo, hi = m.ci["mAP"]
    assert lo < 75.0 < hi and set(m.ci) >= {"mAP@0.5", "mAP@0.75", "mAP"}


# published QVHighlights val figures (moment_detr's standalone_eval), from the committed metrics files
PUBLISHED = {
    "vtggpt_infer_val": ("vtggpt_infer_val_metrics.json",
                         {"R1@0.5": 59.03, "R1@0.7": 38.90, "mAP@0.5": 56.11, "mAP@0.75": 35.44, "mAP": 35.57}),
    "momentdetr_sample_val_preds": ("momentdetr_sample_val_preds_metrics_raw.json",
                                    {"R1@0.5": 53.94, "R1@0.7": 34.84, "mAP@0.5": 54.96, "mAP@0.75": 31.01, "mAP": 32.2}),
}


def reference_predictions(name):
    """The reference prediction file ``name`` and the dataset, or a skip naming the missing folder."""
    try:
        root = data_root()
    except ConfigurationError as exc:
        pytest.skip(f"shared annotation folder not found (../shared/data or $VIDGROUND_DATA): {exc}")
    path = root / "qvhighlights" / "reference-predictions" / f"{name}.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path, load_dataset("qvhighlights", root=root)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_reproduces_published_qvhighlights_figures(name):
    path, ds = reference_predictions(name)
    match = match_predictions(read_predictions(path), ds.queries)
    assert len(match.predictions) == len(ds) == 1550 and not match.unmatched and match.duplicates == 0
    m = compute_metrics(match.predictions, ds.queries, bootstrap=0, baselines=False)
    metrics_file, published = PUBLISHED[name]
    assert {k: m[k] for k in published} == published
    # every IoU threshold of the committed file, not only the headline ones
    committed = json.loads((path.parent / metrics_file).read_text())["full"]["MR-mAP"]
    ap = average_precision([ranked_spans(match.predictions[x.qid]) for x in ds.queries],
                           [x.windows for x in ds.queries])
    assert {f"{t:g}": round(100 * float(v), 2) for t, v in zip(MAP_THRESHOLDS, ap.mean(axis=0))} \
        == {k: v for k, v in committed.items() if k != "average"}


def test_predictions_written_differently_still_score_and_another_datasets_do_not():
    """A qid match whose record names another video or query text was refused as 'foreign' (another dataset's
    numbered qids). One's own predictions with the video as a path, or the query without its final period, were
    refused with it; a whole file disagreeing (another dataset) still is, and a few disagreeing rows are scored
    and counted as loose."""
    queries = [Query(qid=str(i), video=f"vid{i % 3}", query=f"the person opens door {i}.", windows=((1.0, 2.0),),
                     duration=10.0) for i in range(6)]
    own = [{"qid": q.qid, "video": q.video, "query": q.query, "pred_relevant_windows": [[1.0, 2.0, 0.9]]}
           for q in queries]
    as_paths = [{**r, "video": f"/data/videos/{r['video']}.mp4"} for r in own]
    no_video = [{k: v for k, v in {**r, "query": r["query"].rstrip(".")}.items() if k != "video"} for r in own]
    for records in (as_paths, no_video):
        match = match_predictions(records, queries)
        assert len(match.predictions) == 6 and match.foreign == match.loose == 0 and not match.unmatched
    other = [{**r, "vid": f"other{r['qid']}", "query": "a dog runs"} for r in own]
    for r in other:
        r.pop("video")
    match = match_predictions(other, queries)
    assert not match.predictions and match.foreign == 6 and "another dataset" in match.nothing_matched("d/s")
    qvh = [Query(qid="7", video="NUsG9BgSes0_210.0_360.0", query="a man talks", windows=((1.0, 2.0),), duration=150.0)]
    match = match_predictions([{"qid": 7, "vid": "/videos/NUsG9BgSes0_210.0_360.0.mp4", "query": "a man talks",
                                "pred_relevant_windows": [[1, 2, 1]]}], qvh)  # an id with dots, as a path
    assert list(match.predictions) == ["7"] and match.loose == 0
    assert match_predictions([{"qid": 7, "vid": "NUsG9BgSes0_210.0_360.5", "query": "a man talks"}], qvh).foreign == 1
    # another dataset's rows before one's own: the own rows are scored, the others unmatched, whatever the order
    match = match_predictions(other + own, queries)
    assert {q: r["video"] for q, r in match.predictions.items()} == {q.qid: q.video for q in queries}
    assert match.loose == 0 and match.duplicates + len(match.unmatched) == 6  # never scored in their place
    mixed = own[:5] + other[5:]  # one row edited: scored by its qid, and said
    match = match_predictions(mixed, queries)
    assert len(match.predictions) == 6 and match.loose == 1 and match.foreign == 0
    assert "1 of 6 predictions matched a query of d/s by qid but name another video" in match.partly_matched("d/s")
