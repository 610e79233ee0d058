"""The stage-1 throughput benchmark runs end to end and its verdict can fail (timing itself is
checked in small by test_openai_describer's overlap test; here the harness is checked)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import stage1_throughput as bench  # noqa: E402


@pytest.mark.slow
def test_harness_runs_through_the_sdk():
    rows = bench.run(frames=12, concurrency=4, latency=0.03, video_seconds=3.0, trials=2)
    assert [r["trial"] for r in rows] == [1, 2]
    for r in rows:
        assert r["frames"] == r["described"] == 12 and 1 <= r["max_in_flight"] <= 4
        assert r["ideal_s"] >= max(r["decode_s"], 3 * 0.03) - 1e-9 and r["wall_s"] > 0


@pytest.mark.slow
def test_the_source_video_is_an_option(tmp_path):
    out = tmp_path / "r.json"
    code = bench.main(["--frames", "4", "--concurrency", "2", "--latency", "0.01", "--video-seconds", "2",
                       "--size", "320x180", "--source-fps", "10", "--trials", "1",
                       "--json", str(out)])
    data = json.loads(out.read_text())
    assert data["video"] == {"size": [320, 180], "fps": 10.0, "seconds": 2.0}
    assert [r["frames"] for r in data["results"]] == [4] and code in (0, 1)
    for bad in (["--size", "320"], ["--size", "321x180"], ["--source-fps", "0"]):
        with pytest.raises(SystemExit):
            bench.main(bad)


def test_verdict_fails_slow_or_incomplete_runs():
    row = {"mode": "sync", "ratio": 1.1, "described": 8, "frames": 8, "max_in_flight": 4}
    assert bench.verdict([row], 4)["sync"]["passed"]
    assert not bench.verdict([{**row, "ratio": 1.3}], 4)["sync"]["passed"]
    assert not bench.verdict([{**row, "described": 7}], 4)["sync"]["passed"]
    assert not bench.verdict([{**row, "max_in_flight": 5}], 4)["sync"]["passed"]
    three = [{**row, "ratio": r} for r in (1.0, 1.5, 1.1)]
    assert bench.verdict(three, 4)["sync"]["median_ratio"] == 1.1


@pytest.mark.slow
def test_diagnose_reports_every_figure():
    from frame_describer import images

    before = images._simplejpeg
    out = bench.diagnose(frames=8, video_seconds=2.0, repeats=1)
    encoders = ["pillow"] + (["simplejpeg"] if before is not None else [])
    for key in ["describe_frame_cpu_ms", "describe_cpu_ms_per_frame", "jpeg_request_cpu_ms",
                "decode_s_alone", "decode_cpu_cores", "decode_s_with_background_jpeg_process",
                "sync_ratio_at_L0.02[sleep_only]", "sync_ratio_at_L0.02[jpeg_then_sleep]", "sync_ratio_at_L0.02[real]"] \
            + [f"{m}[{e}]" for m in ("jpeg_cpu_ms", "jpeg_4k_ms", "jpeg_4k_longest_stall_ms") for e in encoders]:
        assert out[key] > 0, key
    assert images._simplejpeg is before  # the encoder in use was put back
    assert out["decode_slowdown"] == out["decode_s_with_background_jpeg_process"] / out["decode_s_alone"]
