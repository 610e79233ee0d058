"""The real-caption benchmark runs end to end on a tiny data folder in the shared layout, and its
figures can fail: a reasoner that answers the wrong clips scores low, failures are counted, and the
prior-span baseline is fitted on the dev half alone."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import real_captions as bench  # noqa: E402

EVENTS = ["A dog is running on the beach", "A man is cooking pasta in a kitchen", "A woman is playing the guitar",
          "Children are swimming in a pool", "A car is driving through the snow", "A chef is slicing onions"]
FILLER = "A wide shot of a city street with buildings"


def _data(root: Path) -> Path:
    qv = root / "qvhighlights"
    caps = qv / "captions-minigptv2-val-dev"
    caps.mkdir(parents=True)
    queries, reph, ref = [], [], []
    for k, event in enumerate(EVENTS):
        vid = f"vid{k}_0.0_30.0"
        start = 2 * (k + 2)  # the event's clips: [start, start + 6)
        lines = [{"moment": i, "description": event if start <= 2 * i < start + 6 else FILLER} for i in range(15)]
        (caps / f"{vid}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        queries.append({"qid": 100 + k, "query": event.lower(), "duration": 30, "vid": vid,
                        "relevant_windows": [[start, start + 6]]})
        reph.append({"qid": 100 + k, "vid": vid, "query": event.lower(), "rephrased_query": [event + " now"]})
        ref.append({"qid": 100 + k, "vid": vid, "pred_relevant_windows": [[0, 30, 1.0]]})
    queries.append({"qid": 999, "query": "no captions for me", "duration": 30, "vid": "uncaptioned",
                    "relevant_windows": [[0, 2]]})
    (qv / "highlight_val_release.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (qv / "rephrased_queries_val_dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reph))
    (qv / "reference-predictions").mkdir()
    (qv / "reference-predictions" / "vtggpt_infer_val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ref))
    return root


def test_the_benchmark_runs_every_reasoner_with_and_without_rephrasings(tmp_path, capsys):
    root = _data(tmp_path / "data")
    out = tmp_path / "rows.json"
    assert bench.main(["--data-root", str(root), "--reasoners", "embedding", "vtggpt", "naive", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    halves = {bench.half_of(f"vid{k}_0.0_30.0", 0) for k in range(len(EVENTS))}
    assert {r["half"] for r in rows} == halves
    methods = {(r["method"], r["rephrasings"]) for r in rows}
    assert {("embedding", "no"), ("embedding", "yes"), ("vtggpt", "no"), ("vtggpt", "yes"), ("naive", "no")} <= methods
    assert ("naive", "yes") not in methods  # naive takes no rephrasings
    for r in rows:
        assert set(bench.COLUMNS) <= r.keys() and r["failures"] == 0
        if r["method"] in ("embedding", "vtggpt"):
            assert r["R1@0.5"] == 100.0 and r["mAP@0.5"] == 100.0 and r["qps"] > 0, r
        if r["method"].startswith("VTG-GPT published"):
            assert r["R1@0.5"] == 0.0  # the whole video is never a 6-s window: figures can fail
    assert sum(r["n"] for r in rows if r["method"] == "embedding" and r["rephrasings"] == "no") == len(EVENTS)
    printed = capsys.readouterr()
    assert "| set | half | method |" in printed.out and "1 queries without captions here" in printed.err


def test_the_prior_span_is_fitted_on_the_dev_half_only(tmp_path, monkeypatch):
    root = _data(tmp_path / "data")
    cs = bench.load_qvhighlights(root)
    seen = []
    real = bench.mean_prior
    monkeypatch.setattr(bench, "mean_prior", lambda qs: seen.append([q.qid for q in qs]) or real(qs))
    bench.run_set(cs, ["naive"], halves=["report"], seed=0, rephrasings="off")
    dev = {q.qid for q in cs.queries if bench.half_of(q.video, 0) == "dev"}
    assert seen and set(seen[0]) == dev


def test_a_missing_data_folder_is_one_error_line(tmp_path, capsys):
    assert bench.main(["--data-root", str(tmp_path / "nowhere")]) == 1
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("seed", [0, 1])
def test_halves_split_by_video_and_are_stable(seed):
    vids = [f"v{i}" for i in range(200)]
    halves = [bench.half_of(v, seed) for v in vids]
    assert halves == [bench.half_of(v, seed) for v in vids]
    assert 60 < halves.count("dev") < 140


def test_rows_of_one_reasoner_with_other_options_run_side_by_side(tmp_path, capsys):
    root = _data(tmp_path / "data")
    out = tmp_path / "rows.json"
    assert bench.main(["--data-root", str(root), "--reasoners", "embedding", "embedding@spans=segments,top_k=3",
                       "--rephrasings", "off", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    methods = {r["method"] for r in rows}
    assert {"embedding", "embedding@spans=segments,top_k=3"} <= methods
    assert bench.parse_row("embedding@spans=segments,top_k=3") == ("embedding", {"spans": "segments", "top_k": 3})


@pytest.mark.parametrize("row", ["embedding@spans=blobs", "embedding@no_such_option=1", "embedding@=3"])
def test_a_bad_row_fails_before_the_data_is_read(tmp_path, capsys, row):
    assert bench.main(["--data-root", str(tmp_path / "nothing-here"), "--reasoners", row]) == 1
    assert "error:" in capsys.readouterr().err


def test_a_model_path_with_an_at_sign_is_not_read_as_options():
    assert bench.parse_row("embedding:/models/me@work/minilm") == ("embedding:/models/me@work/minilm", {})
    assert bench.parse_row("embedding:/models/me@work/minilm@top_k=2") == ("embedding:/models/me@work/minilm", {"top_k": 2})


def test_a_video_subset_is_seeded_nested_and_the_same_for_every_row(tmp_path):
    vids = {f"v{i}" for i in range(50)}
    assert bench.subset(vids, 0, 0) == vids
    assert bench.subset(vids, 5, 0) < bench.subset(vids, 6, 0)  # a longer run extends a shorter one
    assert bench.subset(vids, 5, 0) == bench.subset(set(sorted(vids, reverse=True)), 5, 0)
    assert bench.subset(vids, 5, 0) != bench.subset(vids, 5, 1)
    root = _data(tmp_path / "data")
    out = tmp_path / "rows.json"
    assert bench.main(["--data-root", str(root), "--reasoners", "embedding", "naive", "--rephrasings", "off",
                       "--videos", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert rows and all(r["n"] == 1 for r in rows)  # one video of each half, one query on it, in every row


def test_warming_encodes_only_the_scored_videos_captions_and_query_forms(tmp_path):
    root = _data(tmp_path / "data")
    cs = bench.load_qvhighlights(root)

    class Recorder:
        level = None  # whole lines
        encoder = SimpleNamespace(cache_size=0)
        texts: list[str] = []

        def warm(self, texts):
            self.texts = list(texts)

    r = Recorder()
    bench._warm(r, cs, [q for q in cs.queries if q.video == "vid2_0.0_30.0"])
    assert set(r.texts) == {EVENTS[2], FILLER, EVENTS[2].lower(), EVENTS[2] + " now"}
    assert r.encoder.cache_size >= len(r.texts)


def test_a_negative_video_count_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--data-root", str(tmp_path), "--videos", "-1"])
    assert "--videos" in capsys.readouterr().err
