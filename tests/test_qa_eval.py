"""NExT-GQA evaluation: the loader, each grounded-QA metric on a hand-computed example, and a whole
`vidground eval nextgqa` run (resume, report) with an offline fake answerer."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from pipelines.datasets import Query, load_dataset
from pipelines.metrics import compute_qa_metrics, iop, predicted_choice
from vidground.errors import ConfigurationError

from test_qa import WordReasoner

# --- metrics ----------------------------------------------------------------------------------

CH = ("share it", "unwrap it", "throw it")


def _q(qid, windows, answer, duration):
    return Query(qid, f"v{qid}", "why?", duration, windows, choices=CH, answer=answer)


QUERIES = [
    _q("A", [(10, 20)], 1, 40),            # IoU 4/10, IoP 4/4, right: a grounded right answer
    _q("B", [(0, 10), (30, 40)], 0, 40),   # IoU 5/25, IoP 5/20, right but not grounded (IoP < 0.5)
    _q("C", [(0, 8)], 2, 8),               # IoU 4/8 (exactly 0.5), IoP 1, wrong
    _q("D", [(2, 6)], 0, 10),              # failed prediction: 0 and wrong
    _q("E", [(0, 4), (5, 100)], 1, 100),   # best IoU 1/10 on window 1, best IoP 5/7 on window 2: taken apart
]
PREDICTIONS = {
    "A": {"choice": 1, "intervals": [[12, 16, 0.9]]},
    "B": {"choice": 0, "intervals": [[5, 25, 0.9]]},
    "C": {"choice": 0, "intervals": [[0, 4, 0.9]]},
    "D": {"error": "the model failed"},
    "E": {"answer": "Unwrap  It", "intervals": [[3, 10]]},  # no index: the text names the option
}


def test_iop_is_overlap_over_the_predicted_span():
    assert iop((12, 16), (10, 20)) == 1.0
    assert iop((5, 25), (0, 10)) == pytest.approx(0.25)
    assert iop((5, 25), (30, 40)) == 0.0
    assert iop((3, 3), (0, 10)) == 0.0


def test_each_qa_metric_on_a_hand_computed_example():
    m = compute_qa_metrics(PREDICTIONS, QUERIES, bootstrap=0)
    assert m.values == {
        "Acc@QA": 60.0,                                # A, B, E right
        "Acc@GQA": 40.0,                               # A (IoP 1) and E (IoP 5/7); B's IoP is 0.25
        "mIoP": round(100 * (1 + 0.25 + 1 + 0 + 5 / 7) / 5, 2),   # 59.29
        "IoP@0.3": 60.0, "IoP@0.5": 60.0,              # A, C, E
        "mIoU": 24.0,                                  # (0.4 + 0.2 + 0.5 + 0 + 0.1) / 5
        "IoU@0.3": 40.0,                               # A, C
        "IoU@0.5": 20.0,                               # C, at exactly 0.5
    }
    assert m.failures == {"error": 1} and m.n == 5
    by = {s.qid: s for s in m.per_query}
    assert by["E"].iou == pytest.approx(0.1) and by["E"].iop == pytest.approx(5 / 7) and by["E"].correct
    # random choice with the whole video: expected values, 1/3 per question
    assert m.baselines["random choice, whole video"] == {
        "Acc@QA": 33.33, "Acc@GQA": 13.33,            # C (1.0) and E (0.95) have IoP >= 0.5 with the whole video
        "mIoP": 57.0, "IoP@0.3": 60.0, "IoP@0.5": 40.0,  # (0.25 + 0.25 + 1 + 0.4 + 0.95) / 5; D's 0.4 >= 0.3
        "mIoU": 57.0, "IoU@0.3": 60.0, "IoU@0.5": 40.0}


def test_qa_metrics_bootstrap_and_errors():
    m = compute_qa_metrics(PREDICTIONS, QUERIES, bootstrap=200)
    lo, hi = m.ci["Acc@QA"]
    assert lo <= 60.0 <= hi
    with pytest.raises(ConfigurationError, match="no choices"):
        compute_qa_metrics({}, [Query("x", "v", "q", 10, [(0, 1)])])
    assert predicted_choice(QUERIES[0], {"choice": 7}) is None and predicted_choice(QUERIES[0], None) is None


# --- the dataset ------------------------------------------------------------------------------

def write_nextgqa(root: Path, rows: list[dict], spans: dict) -> None:
    folder = root / "nextgqa"
    folder.mkdir(parents=True)
    fields = ["video_id", "frame_count", "width", "height", "question", "answer", "qid", "type",
              "a0", "a1", "a2", "a3", "a4"]
    with (folder / "val.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({"frame_count": 100, "width": 640, "height": 480, "type": "CW", **r})
    (folder / "gsub_val.json").write_text(json.dumps(spans), encoding="utf-8")


ROWS = [
    {"video_id": "100", "qid": "1", "question": "why did the boy pick up the present", "answer": "unwrap it",
     "a0": "share with the girl", "a1": "unwrap it", "a2": "throw it away", "a3": "eat it", "a4": "share with the girl"},
    {"video_id": "100", "qid": "2", "question": "what does the girl do at the end", "answer": "laugh",
     "a0": "cry", "a1": "laugh", "a2": "run", "a3": "sit", "a4": "jump"},
    {"video_id": "200", "qid": "5", "question": "how does the man cross", "answer": "swims",
     "a0": "swims", "a1": "walks", "a2": "flies", "a3": "drives", "a4": "rides"},
]
SPANS = {"100": {"duration": 12, "fps": 30, "location": {"1": [[2.0, 6.0]], "2": [[8.0, 12.0], [5.0, 5.0]]}},
         "200": {"duration": 20, "fps": 30, "location": {}}}


def test_nextgqa_loader(tmp_path):
    write_nextgqa(tmp_path, ROWS, SPANS)
    ds = load_dataset("nextgqa", root=tmp_path)
    assert [q.qid for q in ds] == ["100_1", "100_2"] and ds.split == "val"
    q1, q2 = ds.queries
    # the options keep the file's indices, a0 == a4 included; the reasoner is offered the text once
    assert q1.choices == ("share with the girl", "unwrap it", "throw it away", "eat it", "share with the girl")
    assert q1.answer == 1 and q1.offered == ("share with the girl", "unwrap it", "throw it away", "eat it")
    assert q1.duration == 12 and q1.windows == ((2.0, 6.0),) and q1.is_question
    assert q2.windows == ((8.0, 12.0),)  # a zero-length span is left out
    assert len(ds.dropped) == 1 and "200_5 has no span" in ds.dropped[0]
    assert Query.from_json(q1.to_json()) == q1
    with pytest.raises(ConfigurationError, match="unknown split 'train'"):
        load_dataset("nextgqa", "train", root=tmp_path)


# --- a whole run ------------------------------------------------------------------------------

def test_eval_nextgqa_end_to_end_resumes_and_reports(tmp_path, capsys):
    from pipelines.cli import main
    from temporal_reasoner import reasoners

    reasoners.register("words-eval", WordReasoner)
    write_nextgqa(tmp_path / "data", ROWS, SPANS)
    desc = tmp_path / "descriptions"
    desc.mkdir()
    texts = ["a boy sits on a sofa"] * 2 + ["the boy tears the paper to unwrap it"] * 4 + ["a girl laughs"] * 6
    (desc / "100.jsonl").write_text("".join(json.dumps({"t": i, "text": t}) + "\n" for i, t in enumerate(texts)),
                                    encoding="utf-8")
    out = tmp_path / "run"
    args = ["eval", "nextgqa", "--data-root", str(tmp_path / "data"), "--descriptions", str(desc),
            "--reasoner", "words-eval", "--out", str(out), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "| | Acc@QA | Acc@GQA | mIoP | IoP@0.3 | IoP@0.5 | mIoU | IoU@0.3 | IoU@0.5 |" in printed
    assert "random choice, whole video" in printed
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["qid"] for r in results} == {"100_1", "100_2"} and all(r["status"] == "ok" for r in results)
    first = next(r for r in results if r["qid"] == "100_1")
    # offered 4 options (a0 == a4 once), recorded in the file's 5 indices: a4 scores as a0
    assert first["answer"] == "unwrap it" and first["choice"] == 1 and len(first["choice_scores"]) == 5
    assert first["choice_scores"][0] == first["choice_scores"][4]
    assert first["reasoner"].endswith("+evidence-baseline")
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert set(metrics["values"]) == {"Acc@QA", "Acc@GQA", "mIoP", "IoP@0.3", "IoP@0.5", "mIoU", "IoU@0.3", "IoU@0.5"}
    assert main(args) == 0  # resumed: nothing left to run
    assert "2 already done, 0 run now" in capsys.readouterr().out
    # any system's rows are scored on the same metrics, and two QA runs compare on them
    assert main(["score", "--dataset", "nextgqa", "--data-root", str(tmp_path / "data"), str(out / "results.jsonl"),
                 "--bootstrap", "0"]) == 0
    scored = capsys.readouterr().out
    assert "2 of 2 nextgqa/val queries predicted" in scored and "| | Acc@QA | Acc@GQA | mIoP |" in scored
    assert main(["compare", str(out), str(out)]) == 0
    assert "Acc@GQA" in capsys.readouterr().out


def test_a_right_answer_with_a_failed_span_still_counts_for_acc_at_qa_and_shared_texts_match_by_qid():
    """Review findings: Acc@QA does not look at spans (the official eval_next.py); two questions of one
    video with the same words (NExT-GQA has two such pairs) are told apart by qid, not by their text."""
    from pipelines.datasets import Query
    from pipelines.metrics import compute_qa_metrics, match_predictions

    q = Query(qid="v_0", video="v", query="why", windows=[(1.0, 3.0)], duration=10.0, choices=("a", "b"), answer=0)
    m = compute_qa_metrics({"v_0": {"choice": 0, "intervals": []}}, [q], bootstrap=0, baselines=False)
    assert m.values["Acc@QA"] == 100.0 and m.values["Acc@GQA"] == 0.0
    twin = Query(qid="v_1", video="v", query="why", windows=[(5.0, 6.0)], duration=10.0, choices=("c", "d"), answer=1)
    match = match_predictions([{"qid": "v_1", "video": "v", "query": "why", "choice": 1},
                               {"qid": "v_0", "video": "v", "query": "why", "choice": 0}], [q, twin])
    assert match.predictions["v_0"]["choice"] == 0 and match.predictions["v_1"]["choice"] == 1 and not match.duplicates


def test_the_progress_bar_of_a_qa_eval_shows_the_answers_accuracy():
    """A NExT-GQA eval's bar showed only R1@0.5, a grounding figure, for a task judged by its answers."""
    from pipelines.datasets import Query
    from pipelines.executors import RunProgress

    q = Query(qid="1", video="v", query="why?", windows=((0.0, 2.0),), duration=10.0, choices=("a", "b"), answer=1)
    ground_only = Query(qid="2", video="v", query="a person", windows=((0.0, 2.0),), duration=10.0)
    bar = RunProgress(3)
    bar.update({"status": "ok", "choice": 1, "intervals": [[0, 2, 1]]}, q)
    bar.update({"status": "ok", "choice": 0, "intervals": [[5, 6, 1]]}, q)
    assert (bar.asked, bar.right) == (2, 1) and bar.bar.postfix.startswith("Acc@QA=50.0 R1@0.5=50.0")
    bar.update({"status": "failed", "error": {"message": "boom"}}, q)
    assert (bar.asked, bar.right, bar.failed) == (3, 1, 1)
    bar.close()
    plain = RunProgress(1)
    plain.update({"status": "ok", "intervals": [[0, 2, 1]]}, ground_only)
    assert plain.asked == 0 and plain.bar.postfix.startswith("R1@0.5=100.0")
    plain.close()
