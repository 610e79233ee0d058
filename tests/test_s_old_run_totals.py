"""A run folder written before videos.jsonl held usage (before 4ebf7c3), interrupted and resumed under that code,
counts each describe request once. The folders in tests/golden/old_runs were written by the code of 4ebf7c3^ (a
``git archive`` of it first on sys.path): run_eval on 2 toy videos of 3 frames (render_toy_videos, write_toy_dataset
with 5 and 3 queries a video), the fake describer at $0.001 a frame through a description cache, the fake reasoner
at $0.0005 a query (0.3 s a query for resumed_split), concurrency 1, an on_result raising KeyboardInterrupt at the
2nd result, then the same run again; paths were replaced by /data. The describer was called 6 times in each.

HEAD read one result's 'describe' usage per video record: a video described again on resume (from the cache) has two
records, and both took the first describe's 3 requests (19 requests for 16); a video described before the stop but
answered only on resume took its cached describe's 0 (9 for 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.runs import read_jsonl, run_totals

OLD = Path(__file__).resolve().parent / "golden" / "old_runs"


@pytest.mark.parametrize("name, requests, cost", [("resumed_split", 6 + 10, 0.006 + 0.005),
                                                  ("described_before_the_stop", 6 + 6, 0.006 + 0.003)])
def test_an_old_resumed_run_folder_counts_each_describe_request_once(name, requests, cost):
    videos = read_jsonl(OLD / name / "videos.jsonl")
    assert all("usage" not in v for v in videos) and len(videos) == 3  # the old format; one video described twice
    totals = run_totals(OLD / name)
    assert (totals["describe_calls"], totals["requests"], totals["unpriced_requests"]) == (6, requests, 0)
    assert totals["cost_usd"] == pytest.approx(cost)


def test_an_old_video_record_without_results_of_its_describe_counts_its_calls(tmp_path):
    """No result repeats that describe (its queries were all answered by a later describe): one request per frame
    described, priced as the record's cost says, or unpriced when it has none."""
    base = OLD / "described_before_the_stop"
    for priced in (True, False):
        run = tmp_path / str(priced)
        run.mkdir()
        (run / "videos.jsonl").write_text((base / "videos.jsonl").read_text())
        rows = [line for line in (base / "results.jsonl").read_text().splitlines()
                if '"vid0' not in line]  # vid0 described once, its results dropped: only its record says it
        if not priced:
            text = (run / "videos.jsonl").read_text().replace('"cost_usd":0.003', '"cost_usd":0.0')
            (run / "videos.jsonl").write_text(text)
        (run / "results.jsonl").write_text("\n".join(rows) + "\n")
        totals = run_totals(run)
        assert (totals["requests"], totals["unpriced_requests"]) == (3 + 3 + 3, 0 if priced else 3 + 3)
