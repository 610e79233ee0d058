"""The ``ranked`` span mode: proposals at several levels of the curve, ranked by fitted weights."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from vidground.errors import ConfigurationError
from temporal_reasoner import Interval, get_reasoner, ranker
from temporal_reasoner.embedding import EmbeddingReasoner
from temporal_reasoner.spans import gaussian_smooth
from _helpers_text import transcript


def _noisy_event(n=75, lo=30, hi=42, seed=0, noise=0.05):
    rng = np.random.default_rng(seed)
    curve = 0.2 + noise * rng.standard_normal(n)
    curve[lo:hi] += 0.25
    return np.arange(n, dtype=float) * 2 + 1.0, gaussian_smooth(curve, 1.0)  # 2-s clips, sampled at their centres


def test_every_proposal_runs_from_a_rise_to_a_fall_through_its_level():
    times, curve = _noisy_event()
    s, e, feats, edges = ranker.scored_proposals(times, curve, 150.0)
    base, top = ranker.curve_scale(curve)
    z = (curve - base) / (top - base)
    levels = feats[:, ranker.FEATURES.index("level")]
    assert feats.shape == (len(s), len(ranker.FEATURES)) and np.isfinite(feats).all()
    for a, b, lv in zip(s, e, levels):
        assert z[a] > lv and z[b] > lv
        assert a == 0 or z[a - 1] <= lv
        assert b == len(z) - 1 or z[b + 1] <= lv
    assert len(set(zip(s, e))) == len(s)  # each segment once, at the lowest level that cuts it


def test_a_clear_event_on_a_noisy_background_ranks_first():
    hits = 0
    for seed in range(20):
        times, curve = _noisy_event(seed=seed)
        best = ranker.rank_segments(times, curve, 150.0)[0]
        hits += Interval(start=best.start, end=best.end).iou(Interval(start=60, end=84)) >= 0.5
    assert hits >= 18


def test_ranked_answers_are_ordered_by_score_and_thinned():
    times, curve = _noisy_event(seed=3)
    spans = ranker.rank_segments(times, curve, 150.0, top_k=10, nms_iou=0.5)
    scores = [sp.mass for sp in spans]
    assert scores == sorted(scores, reverse=True) and 1 <= len(spans) <= 10
    for i, a in enumerate(spans):
        assert 0 <= a.start < a.end <= 150.0
        for b in spans[:i]:
            assert Interval(start=a.start, end=a.end).iou(Interval(start=b.start, end=b.end)) < 0.5


def test_a_long_busy_curve_keeps_the_proposals_bounded():
    rng = np.random.default_rng(1)
    n = 7200  # two hours at 1 fps, noise everywhere: thousands of runs above every level
    times, curve = np.arange(n, dtype=float), rng.random(n)
    s, e, _, _ = ranker.scored_proposals(times, curve, float(n))
    assert len(s) <= len(ranker.LEVELS) * ranker.MAX_RUNS * (ranker.MAX_RUNS + 1) // 2


def test_the_weights_match_the_features():
    assert ranker.WEIGHTS.shape == (len(ranker.FEATURES),) and np.isfinite(ranker.WEIGHTS).all()


def test_the_ranked_mode_finds_the_known_span_and_records_its_weights():
    r = get_reasoner("embedding", spans="ranked")
    tr = transcript(*[(2, "A wide shot of a city street with buildings.")] * 10,
                    (2, "A dog is running on the beach."), (2, "A dog runs along the sea shore."),
                    (2, "A dog is running on the sand."), *[(2, "A wide shot of a city street with buildings.")] * 10)
    res = r.ground("a dog running on the beach", tr)
    assert res.best.iou(Interval(start=20, end=26)) >= 0.5
    settings = res.settings
    assert settings["spans"] == "ranked" and settings["ranker"] == ranker.WEIGHTS_ID and settings["feedback"] == 0.0
    assert "rel_level" not in settings


@pytest.mark.parametrize("bad", [{"rel_level": 0.4}, {"base_percentile": 30}, {"smooth": 1.0}, {"top_percentile": 40.0}])
def test_options_the_ranked_mode_would_ignore_are_refused(bad):
    with pytest.raises(ConfigurationError, match="ranked|top_percentile"):
        EmbeddingReasoner(encoder=object(), spans="ranked", **bad)


def test_the_fit_script_runs_on_a_dev_half_and_prints_weights_for_every_feature(tmp_path, capsys):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import fit_ranker
    from test_real_captions_benchmark import _data

    root = _data(tmp_path / "data")
    assert fit_ranker.main(["--data-root", str(root), "--json", str(tmp_path / "fit.json")]) == 0
    out = capsys.readouterr().out
    assert "5-fold CV on dev (folds by video)" in out
    assert all(f"# {name}" in out for name in ranker.FEATURES)


def test_the_fit_script_writes_every_figure_the_page_shows(tmp_path, capsys):
    # docs/benchmarks.md's "Segment ranker" table was hand-written: both its figures now come from the run
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import fit_ranker
    from test_real_captions_benchmark import _data

    root = _data(tmp_path / "data")
    assert fit_ranker.main(["--data-root", str(root), "--json", str(tmp_path / "fit.json")]) == 0
    out = capsys.readouterr().out
    data = json.loads((tmp_path / "fit.json").read_text())
    all_levels, single = data["rows"]
    assert f"best proposal R1@0.5 {all_levels['good_answer_pct']:.2f}" in out.splitlines()[0]
    assert single["proposals"].startswith("the best single level (")
    assert single["good_answer_pct"] == max(data["by_level"].values())
    assert len(data["by_level"]) == len(ranker.LEVELS)
    # the proposals of all levels include those of each level alone, so no level alone finds more
    assert single["good_answer_pct"] <= all_levels["good_answer_pct"]
    assert data["command"].startswith("python benchmarks/")
    assert set(data["weights"]) == set(ranker.FEATURES) and data["queries"] > 0


def test_proposals_cut_at_one_level_are_those_that_level_finds():
    times = np.arange(40, dtype=float)
    curve = np.concatenate([np.linspace(0, 1, 20), np.linspace(1, 0, 20)])
    s, e, f, _ = ranker.scored_proposals(times, curve, 40.0, levels=(0.8,))
    z_above = np.flatnonzero((curve - np.percentile(curve, 50)) / (np.percentile(curve, 95) - np.percentile(curve, 50)) > 0.8)
    assert list(zip(s, e)) == [(z_above[0], z_above[-1])]
    assert set(f[:, ranker.FEATURES.index("level")]) == {0.8}


def test_the_fit_scripts_cross_validation_never_trains_on_a_held_out_video(monkeypatch):
    # queries on one video share its captions: a fold that trained on one of them would score itself
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import fit_ranker

    videos = [f"v{i // 3}" for i in range(30)]  # three queries per video
    rng = np.random.default_rng(0)
    data = [(rng.standard_normal((4, 2)), rng.random(4)) for _ in videos]
    ids = {id(d[0]): v for d, v in zip(data, videos)}
    trained_on: list[set[str]] = []
    real_fit = fit_ranker.fit

    def spy(train, mu, sd, **kw):
        trained_on.append({ids[id(f)] for f, _ in train})
        return real_fit(train, mu, sd, **kw)

    monkeypatch.setattr(fit_ranker, "fit", spy)
    r1 = fit_ranker.cross_validate(data, videos, folds=4, tau=0.2, l2=0.01)
    folds = {v: fit_ranker.fold_of(v, 4) for v in videos}
    assert len(trained_on) == len(set(folds.values())) > 1
    held_out = [{v for v, f in folds.items() if f == k} for k in sorted(set(folds.values()))]
    assert all(not (train & test) and train | test == set(videos) for train, test in zip(trained_on, held_out))
    assert r1.shape == (3,) and 0 <= r1[2] <= 100


def test_a_flat_curve_but_for_one_spike_is_scaled_by_the_spike():
    curve = np.full(60, 0.3)
    curve[20] = 0.9
    times = np.arange(60, dtype=float)
    spans = ranker.rank_segments(times, curve, 60.0)
    assert spans[0].start == 19.5 and spans[0].end == 20.5
    _, _, feats, _ = ranker.scored_proposals(times, curve, 60.0)
    assert np.abs(feats).max() < 100  # in units of the spike's height, not of a 1e-6 floor


def test_ranked_alternatives_keep_the_segments_answer_and_an_ordered_list():
    """segments mode, alternatives="ranked" (default): the first answer is the maximum-area segment
    (top-1 figures unchanged), the rest are the ranker's proposals, scores never increase."""
    r = get_reasoner("embedding")
    area = get_reasoner("embedding", alternatives="area", encoder=r.encoder)
    tr = transcript(*[(2, "A wide shot of a city street with buildings.")] * 8,
                    (2, "A dog is running on the beach."), (2, "A dog runs along the sea shore."),
                    *[(2, "A wide shot of a city street with buildings.")] * 8,
                    (2, "A dog is playing on the sand."), *[(2, "A wide shot of a city street with buildings.")] * 6)
    ranked, plain = r.ground("a dog on the beach", tr), area.ground("a dog on the beach", tr)
    assert (ranked.best.start, ranked.best.end) == (plain.best.start, plain.best.end)
    scores = [iv.score for iv in ranked.intervals]
    assert scores == sorted(scores, reverse=True) and len(ranked.intervals) >= 2
    assert r.settings()["alternatives"] == "ranked" and area.settings()["alternatives"] == "area"
    with pytest.raises(ConfigurationError):
        EmbeddingReasoner(encoder=object(), alternatives="best")
    with pytest.raises(ConfigurationError, match="segments"):
        EmbeddingReasoner(encoder=object(), spans="peaks", alternatives="ranked")


def test_the_segments_mode_hands_the_ranker_its_scale_only_where_the_rule_is_the_same(monkeypatch):
    """The default reasoner's floor and height are the ranker's own (median, 95th percentile, TOP_RANK-th
    sample): the ranker takes them instead of computing them again; another percentile makes it compute its own."""
    times, curve = _noisy_event(n=300, lo=100, hi=130)
    want = {}
    for top_percentile in (95.0, 90.0):
        r = EmbeddingReasoner(encoder=object(), top_percentile=top_percentile)
        want[top_percentile] = r._segments(times, curve, 600.0)
    calls = []
    scale = ranker.curve_scale
    monkeypatch.setattr(ranker, "curve_scale", lambda *a, **k: calls.append(1) or scale(*a, **k))
    for top_percentile, expected in want.items():
        calls.clear()
        got = EmbeddingReasoner(encoder=object(), top_percentile=top_percentile)._segments(times, curve, 600.0)
        assert got == expected
        assert len(calls) == (1 if top_percentile == 95.0 else 2)  # its own; the ranker's only where the rule differs
    s = ranker.rank_segments(times, curve, 600.0, scale=scale(curve))
    assert s == ranker.rank_segments(times, curve, 600.0)


def test_the_scale_rule_is_set_in_one_place_and_the_segments_mode_follows_it(monkeypatch):
    """The ranker's floor and height percentiles and rank live in ranker.BASE_PERCENTILE, TOP_PERCENTILE and
    TOP_RANK alone: curve_scale and the proposals default to them, and the segments mode hands the ranker its
    scale only while its own settings equal them (a change of the ranker's floor makes it compute its own)."""
    import inspect

    for f in (ranker.curve_scale, ranker.scored_proposals, ranker.rank_segments):
        assert inspect.signature(f).parameters["top_percentile"].default == ranker.TOP_PERCENTILE
    assert ranker.same_scale(ranker.BASE_PERCENTILE, ranker.TOP_PERCENTILE, ranker.TOP_RANK)
    times, curve = _noisy_event(n=300, lo=100, hi=130)
    r = EmbeddingReasoner(encoder=object())
    assert ranker.same_scale(r.base_percentile, r.top_percentile, r.TOP_RANK)
    monkeypatch.setattr(ranker, "BASE_PERCENTILE", 40.0)
    assert not ranker.same_scale(r.base_percentile, r.top_percentile, r.TOP_RANK)
    handed = []
    real = ranker.rank_segments
    monkeypatch.setattr(ranker, "rank_segments", lambda *a, **k: handed.append(k.get("scale")) or real(*a, **k))
    r._segments(times, curve, 600.0)
    assert handed == [None]  # the reasoner's median is not the ranker's floor now: the ranker computes its own
