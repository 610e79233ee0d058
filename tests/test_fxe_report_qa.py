"""A grounded-QA run's report (NExT-GQA): what its plots and metrics.json record, and the order and content of its
per-question list. A user test found the R1 curve empty and filed under the wrong name, and the questions sorted by
IoU with "hit when IoU >= 0.5" and no answers shown."""

from __future__ import annotations

import json
import re

from pipelines.datasets import Query
from pipelines.report import QA_SUMMARY_PLOTS, SUMMARY_PLOTS, write_report

CHOICES = ("runs away", "opens the box", "sits down", "waves", "laughs")
GT = [(4.0, 8.0)]


def _qa_run(out):
    """A NExT-GQA run folder made by hand: one failed question, two wrong answers and two right ones, their
    top-1 spans chosen so that the IoU order and the Acc@GQA order differ."""
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"dataset": "nextgqa", "split": "val", "mode": "descriptions",
                                                 "descriptions": "captions", "reasoner": "embedding"}))
    queries = [Query(f"v1_{i}", "v1", f"why does the boy do thing {i}", 20.0, GT, choices=CHOICES, answer=1)
               for i in range(1, 6)]
    (out / "queries.jsonl").write_text("".join(json.dumps(q.to_json()) + "\n" for q in queries))

    def ok(qid, choice, span):
        return {"qid": qid, "video": "v1", "status": "ok", "choice": choice, "answer": CHOICES[choice],
                "intervals": [[*span, 1.0]], "duration": 20.0}

    results = [{"qid": "v1_1", "video": "v1", "status": "error", "error": {"type": "ProviderError", "message": "boom"}},
               ok("v1_2", 3, (4.0, 8.0)),    # wrong answer, IoP 1, IoU 1
               ok("v1_3", 0, (0.0, 20.0)),   # wrong answer, IoP 0.2, IoU 0.2
               ok("v1_4", 1, (4.0, 6.0)),    # right, IoP 1, IoU 0.5: what Acc@GQA counts
               ok("v1_5", 1, (10.0, 12.0))]  # right, IoP 0, IoU 0
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
    return out


def test_a_qa_report_records_and_plots_iou_and_iop_curves_not_an_empty_r1_curve(tmp_path):
    """Before: metrics.json["r1_curve"] was {"this run": {}, "random choice, whole video": {QA metrics}}, r1_curve.png
    an empty plot captioned "R1@m for m in 0.1..0.9" in report.md and index.html."""
    out = _qa_run(tmp_path / "run")
    (out / "plots" / "summary").mkdir(parents=True)
    (out / "plots" / "summary" / "r1_curve.png").write_bytes(b"an older report's")
    summary = write_report(out, bootstrap=0)
    values = summary["metrics"]["values"]
    assert summary["r1_curve"] is None and summary["r1_by_gt_length"] is None  # R1@m is not a NExT-GQA metric
    curves = summary["iou_iop_curve"]
    assert list(curves) == ["this run", "whole video"]
    run = curves["this run"]
    # IoU of the 5 questions: 0 (failed), 1, 0.2, 0.5, 0; IoP: 0, 1, 0.2, 1, 0
    assert [run[f"IoU@{m}"] for m in ("0.1", "0.3", "0.5", "0.9")] == [60.0, 40.0, 40.0, 20.0]
    assert [run[f"IoP@{m}"] for m in ("0.1", "0.3", "0.5", "0.9")] == [60.0, 40.0, 40.0, 40.0]
    for k in ("IoU@0.3", "IoU@0.5", "IoP@0.3", "IoP@0.5"):  # the curve agrees with the metrics table
        assert run[k] == values[k]
        assert curves["whole video"][k] == summary["metrics"]["baselines"]["random choice, whole video"][k]
    assert curves["whole video"]["IoU@0.2"] == 100.0 and curves["whole video"]["IoP@0.3"] == 0.0  # 4 s of 20
    buckets = summary["iou_iop_by_gt_length"]
    assert sum(b["n"] for b in buckets) == 5 and {"IoU@0.5", "IoP@0.5"} <= set(buckets[-1]) and "R1" not in buckets[-1]
    assert json.loads((out / "metrics.json").read_text())["iou_iop_curve"] == curves
    assert sorted(p.name for p in (out / "plots" / "summary").iterdir()) == sorted(QA_SUMMARY_PLOTS)  # stale one gone
    md, page = (out / "report.md").read_text(), (out / "index.html").read_text()
    for name, caption in QA_SUMMARY_PLOTS.items():
        assert f"![{caption}](plots/summary/{name})" in md and f"alt='{caption}'" in page
    assert "R1@" not in md and "R1@" not in page
    assert "IoU@0.5 " in page and "IoP@0.5 " in page  # the GT length line names what it measures


def test_a_qa_report_lists_questions_by_what_acc_at_gqa_measures_with_their_answers(tmp_path):
    """Failed first, then the wrong answers, then the right ones, each by IoP from the lowest; each question shows
    the chosen option, the right answer, IoP and IoU and whether Acc@GQA counts it (before: by IoU, "hit when IoU >=
    0.5", no answers)."""
    out = _qa_run(tmp_path / "run")
    write_report(out, bootstrap=0)
    page = (out / "index.html").read_text()
    order = re.findall(r"<div class='q[^']*' id='q-([^']+)'>", page)
    assert order == ["v1_1", "v1_3", "v1_2", "v1_5", "v1_4"]  # by IoU it was v1_1, v1_5, v1_3, v1_4, v1_2
    rows = {qid: re.sub("<[^>]+>", "", body) for qid, body in
            re.findall(r"<div class='q[^']*' id='q-([^']+)'>(.*?)(?:<br><svg|</div>)", page)}
    assert "chosen: 3. waves · right answer: 1. opens the box" in rows["v1_2"]
    assert rows["v1_2"].endswith("IoP 1.000 · IoU 1.000 · wrong answer")
    assert rows["v1_5"].endswith("IoP 0.000 · IoU 0.000 · right answer, IoP &lt; 0.5")
    assert rows["v1_4"].endswith("IoP 1.000 · IoU 0.500 · hit: right answer, IoP &gt;= 0.5")
    assert "chosen: none · right answer: 1. opens the box" in rows["v1_1"] and "failed: ProviderError: boom" in rows["v1_1"]
    assert "then the wrong answers, then the right ones, each by the top-1 span's IoP" in page
    assert "hit when IoU" not in page
    assert re.search(r"<div class='q' id='q-v1_4'>", page) and re.search(r"<div class='q miss' id='q-v1_5'>", page)


def test_eval_no_report_removes_a_qa_runs_plots_and_any_older_grounding_plot(tmp_path):
    from pipelines.report import remove_pages

    out = _qa_run(tmp_path / "run")
    write_report(out, bootstrap=0)
    (out / "plots" / "summary" / "r1_curve.png").write_bytes(b"x")  # a grounding run's name, left by an older report
    removed = {p.name for p in remove_pages(out)}
    assert removed == {"report.md", "index.html", *QA_SUMMARY_PLOTS, "r1_curve.png"}
    assert not (out / "plots").exists() and "r1_curve.png" in SUMMARY_PLOTS
