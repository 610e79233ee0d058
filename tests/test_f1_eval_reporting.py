"""What eval, score and the run's files say about themselves: the K intervals mAP ranks (eval keeps 10 by
default, as moment_detr's standalone_eval ranks, and says so when fewer), grounded-QA rows whose answer cannot be
read (a prediction problem, not a silent wrong answer), --no-report (metrics.json written, an earlier invocation's
pages removed) and a resume's describer calls (this invocation's, and separately the folder's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.cli import main
from pipelines.datasets import Query
from pipelines.metrics import (MAP_MAX_PREDICTIONS, NO_ANSWER, compute_metrics, compute_qa_metrics, predicted_choice,
                               read_choice)
from pipelines.runs import read_jsonl
from temporal_reasoner import reasoners
from temporal_reasoner.base import BaseReasoner
from vidground.errors import EvaluationError
from vidground.types import GroundingResult, Interval

from _helpers_eval import cli, register_fakes, render_toy_videos, write_toy_dataset
from test_qa_eval import ROWS, SPANS, write_nextgqa

register_fakes()


class _ManyReasoner(BaseReasoner):
    """Twelve intervals per query, best first, with scores: more than any K an eval keeps."""

    name = "many-reasoner"

    def __init__(self, arg: str | None = None, **_: Any):
        pass

    def settings(self) -> dict[str, Any]:
        return {"name": self.name}

    def ground(self, query: str, transcript: Any) -> GroundingResult:
        return GroundingResult(query=query, duration=transcript.duration, reasoner=self.name, intervals=[
            Interval(start=0.5 * i, end=0.5 * i + 2.0, score=1.0 - i / 20) for i in range(12)])


reasoners.register("many-reasoner", _ManyReasoner)


def _toy_eval(tmp_path: Path, *extra: str, out: str = "run") -> list[str]:
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=2)
    return ["eval", "jsonl", "--dataset-file", str(ds), "--descriptions", str(desc), "--reasoner", "many-reasoner",
            "--out", str(tmp_path / out), "--quiet", *extra]


# --- 1. the K intervals mAP ranks ---------------------------------------------------------------

def test_eval_keeps_as_many_intervals_as_map_ranks_by_default(tmp_path, capsys):
    """eval's default was 5: mAP ranked 5 of the 10 its convention line (and moment_detr) names."""
    assert cli(*_toy_eval(tmp_path, "--no-report")) == 0
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["top_k"] == MAP_MAX_PREDICTIONS == 10
    assert {len(r["intervals"]) for r in read_jsonl(tmp_path / "run" / "results.jsonl")} == {10}
    captured = capsys.readouterr()
    assert "warning: top_k" not in captured.err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]
    assert metrics["map_intervals"] == 10 and "Here no prediction had more than" not in metrics["convention"]


def test_a_top_k_below_ten_is_warned_about_and_stated_in_the_metrics(tmp_path, capsys):
    assert cli(*_toy_eval(tmp_path, "--top-k", "3", "--no-report")) == 0
    captured = capsys.readouterr()
    assert "warning: top_k 3 (--top-k): mAP, where reported, is computed on at most 3 intervals per query, fewer " \
           "than the 10 of the standard" in captured.err
    assert "R5 looks at 3" in captured.err
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["config"]["top_k"] == 3 and summary["metrics"]["map_intervals"] == 3
    assert "mAP ranked at most 3, not the standard 10" in summary["metrics"]["convention"]
    assert "mAP ranked at most 3, not the standard 10" in captured.out  # the convention line the eval prints


def test_a_resume_keeps_the_k_its_run_started_with(tmp_path, capsys):
    """A run folder started with K=5 (the old default) resumes without --top-k: its own K, said in the warning."""
    argv = _toy_eval(tmp_path, "--no-report", "--limit", "2")
    assert cli(*argv, "--top-k", "5") == 0
    capsys.readouterr()
    assert cli(*[a for a in argv if a != "2" and a != "--limit"]) == 0
    captured = capsys.readouterr()
    assert "warning: top_k 5 (the run in" in captured.err and "was started with it)" in captured.err
    assert "2 already done, 2 run now" in captured.out
    assert {len(r["intervals"]) for r in read_jsonl(tmp_path / "run" / "results.jsonl")} == {5}


def test_run_eval_from_python_resumes_a_folder_with_its_own_k(tmp_path):
    """run_eval(RunConfig(...)) without top_k on a folder started with K=5 (the default before 10) raised "holds a
    run with other settings (top_k: 5 -> 10)": only the CLI fell back to the folder's K. A new folder gets 10, a
    given K still must match."""
    from pipelines.runs import RunConfig, run_eval
    from vidground.errors import ConfigurationError

    ds, desc = write_toy_dataset(tmp_path / "data")
    config = lambda **kw: RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc),  # noqa: E731
                                    reasoner="fake-reasoner", **kw)
    assert run_eval(config(top_k=5, limit=2), tmp_path / "old").ran == 2
    again = run_eval(config(), tmp_path / "old")
    assert (again.already_done, again.ran) == (2, 10)
    assert json.loads((tmp_path / "old" / "config.json").read_text())["top_k"] == 5
    with pytest.raises(ConfigurationError, match=r"top_k: 5 -> 10"):
        run_eval(config(top_k=10), tmp_path / "old")
    fresh = config()
    run_eval(fresh, tmp_path / "new")
    assert json.loads((tmp_path / "new" / "config.json").read_text())["top_k"] == 10


def test_the_convention_says_how_many_intervals_map_ranked():
    q = Query("a", "v", "q", 40.0, [(0, 4), (10, 14)])
    five = {"a": {"intervals": [[i, i + 4, 1 - i / 100] for i in range(5)]}}
    m = compute_metrics(five, [q], bootstrap=0, baselines=False)
    assert m.map_intervals == 5 and "Here no prediction had more than 5 interval(s)" in m.convention
    twelve = {"a": {"intervals": [[i, i + 4, 1 - i / 100] for i in range(12)]}}
    m = compute_metrics(twelve, [q], bootstrap=0, baselines=False)
    assert m.map_intervals == 10 and "Here no prediction" not in m.convention


# --- 2. grounded-QA rows whose answer cannot be read ------------------------------------------------

CH = ("share it", "unwrap it", "throw it")
Q = Query("v_1", "v", "why?", 20.0, [(2, 6)], choices=CH, answer=1)


@pytest.mark.parametrize("row", [{"choice": 1}, {"pred_choice": 1}, {"prediction": 1, "answer": 2},
                                 {"answer": " Unwrap it"}, {"pred_answer": "unwrap it"}])
def test_the_accepted_answer_keys(row):
    """``prediction`` is NExT-GQA's own results key (its ``answer`` there is the ground truth, so an index key is
    read first); ``pred_choice`` / ``pred_answer`` are common aliases."""
    assert read_choice(Q, row) == (1, None) and predicted_choice(Q, row) == 1


@pytest.mark.parametrize("row, detail", [
    ({"choice": 7}, "'choice' is 7, not an option index 0-2"),
    ({"choice": -1}, "'choice' is -1, not an option index 0-2"),
    ({"choice": "2"}, "'choice' is '2', not an integer option index 0-2"),
    ({"choice": True}, "'choice' is True, not an integer option index"),
    ({}, "no chosen option (give the 0-based option index as 'choice' / 'pred_choice' / 'prediction'"),
    ({"answer": "eat it"}, "'answer' 'eat it' matches none of the 3 options"),
    ({"answer": 1}, "in NExT-GQA's results files 'answer' is the ground truth"),
])
def test_an_unreadable_answer_is_a_prediction_problem(row, detail):
    # another row answers: the file gives answers, so a row that gives none (or an unreadable one) is a problem
    answered = Query("v_2", "v", "why?", 20.0, [(2, 6)], choices=CH, answer=1)
    m = compute_qa_metrics({"v_1": {**row, "intervals": [[2, 6]]}, "v_2": {"choice": 1, "intervals": [[2, 6]]}},
                           [Q, answered], bootstrap=0)
    assert m.values["Acc@QA"] == 50.0 and m.answer_problems == {NO_ANSWER: 1} and m.problems == {NO_ANSWER: 1}
    assert detail in m.per_query[0].answer_problem
    assert m.failures == {} and m.values["mIoU"] == 100.0  # the span is still scored as given


@pytest.mark.parametrize("value, read", [(2.0, (2, None)), (0.0, (0, None)),
                                         (2.5, (None, "'prediction' is 2.5, not an integer option index 0-2")),
                                         (float("nan"), (None, "'prediction' is nan, not an integer option index"))])
def test_a_whole_number_float_is_an_option_index(value, read):
    """``"prediction": 2.0`` (a JSON writer's float) was 'not an integer option index'."""
    got = read_choice(Q, {"prediction": value})
    assert got[0] == read[0] and (got[1] or "").startswith(read[1] or "")


def test_a_grounding_only_file_scores_its_spans_and_says_answers_were_not_scored(tmp_path, capsys):
    """A NExT-GQA predictions file with no answers at all failed --strict with 'no answer 2' and Acc@QA 0."""
    argv = _nextgqa_rows(tmp_path, [{"qid": q, "intervals": [[2, 6]]} for q in ("100_1", "100_2")])
    assert main([*argv, "--strict"]) == 0
    out = capsys.readouterr().out
    assert "prediction problems: none (2 predictions parsed, each with end > start, within the video); no answers " \
           "in the file (no prediction gives 'choice' / 'pred_choice' / 'prediction' / 'answer' / 'pred_answer'): " \
           "Acc@QA and Acc@GQA not scored, the spans only" in out
    assert "| | mIoP | IoP@0.3 |" in out and "| **pred.jsonl** | 50.00 |" in out  # no Acc@ column
    assert main([*argv, "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert metrics["answer_problems"] == {} and "Acc@QA" not in metrics["values"] and metrics["unscored"]
    assert set(metrics["baselines"]) == {"whole video"} and "Acc@QA" not in metrics["baselines"]["whole video"]


def test_a_row_with_a_span_and_an_answer_problem_is_counted_once(tmp_path, capsys):
    """Rows {"intervals": [[5, 2]], "choice": 9} printed 'prediction problems: 4 of 2' (each row counted for its
    reversed span and again for its answer)."""
    argv = _nextgqa_rows(tmp_path, [{"qid": q, "intervals": [[5, 2]], "choice": 9} for q in ("100_1", "100_2")])
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "prediction problems: 2 of 2: 2 scored as IoU 0 (reversed 2); 2 counted as wrong answers (no answer 2)" \
           in out
    assert out.count(": no answer: 'choice' is 9") == 2 and out.count(": reversed: ") == 2  # each problem listed
    assert main([*argv, "--strict"]) == 1
    assert "--strict: 2 prediction rows with problems (reversed 2, no answer 2)" in capsys.readouterr().err


def test_a_missing_or_failed_prediction_is_not_also_an_answer_problem():
    m = compute_qa_metrics({"v_1": {"error": "boom"}}, [Q], bootstrap=0)
    assert m.failures == {"error": 1} and m.answer_problems == {}


def _nextgqa_rows(tmp_path: Path, rows: list[dict]) -> list[str]:
    write_nextgqa(tmp_path / "data", ROWS, SPANS)
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return ["score", "--dataset", "nextgqa", "--data-root", str(tmp_path / "data"), str(pred), "--bootstrap", "0"]


def test_score_lists_unreadable_answers_with_their_lines_and_strict_fails(tmp_path, capsys):
    """Each such row counted as a wrong answer with 'prediction problems: none' and exit 0 under --strict."""
    argv = _nextgqa_rows(tmp_path, [{"qid": "100_1", "pred_choice": 1, "intervals": [[2, 6]]},
                                    {"qid": "100_2", "choice": 9, "intervals": [[8, 12]]}])
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "prediction problems: 1 of 2: 1 counted as wrong answers (no answer 1)" in out
    assert "line 2 (100: 'what does the girl do at the end'): no answer: 'choice' is 9, not an option index 0-4" in out
    assert 'fix (no answer): give the chosen option as "choice": INDEX / "pred_choice": INDEX' in out
    assert main([*argv, "--strict"]) == 1
    assert "--strict: 1 prediction rows with problems (no answer 1)" in capsys.readouterr().err
    assert main([*argv, "--json"]) == 0
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert problems == [{"qid": "100_2", "line": 2, "kind": "no answer", "detail": "'choice' is 9, not an option "
                                                                                  "index 0-4"}]


def test_score_strict_accepts_the_aliases(tmp_path, capsys):
    argv = _nextgqa_rows(tmp_path, [{"qid": "100_1", "pred_choice": 1, "intervals": [[2, 6]]},
                                    {"qid": "100_2", "prediction": 1, "answer": 0, "intervals": [[8, 12]]}])
    assert main([*argv, "--strict"]) == 0
    out = capsys.readouterr().out
    assert "prediction problems: none" in out and "| **pred.jsonl** | 100.00 |" in out


def test_strict_raises_evaluation_error_for_unreadable_answers(tmp_path):
    argv = _nextgqa_rows(tmp_path, [{"qid": "100_1", "intervals": [[2, 6]]},
                                    {"qid": "100_2", "choice": 1, "intervals": [[8, 12]]}])
    with pytest.raises(EvaluationError, match="no answer 1"):
        cli(*argv, "--strict")


# --- 3. --no-report -------------------------------------------------------------------------------

def test_no_report_writes_metrics_json_and_removes_an_earlier_invocations_pages(tmp_path, capsys):
    argv = _toy_eval(tmp_path, "--limit", "2")
    assert cli(*argv) == 0  # a first, smaller invocation with its report
    run = tmp_path / "run"
    assert (run / "report.md").exists() and (run / "index.html").exists() and list((run / "plots").rglob("*.png"))
    assert json.loads((run / "metrics.json").read_text())["metrics"]["n"] == 2
    capsys.readouterr()
    assert cli(*[a for a in argv if a not in ("--limit", "2")], "--no-report") == 0
    out = capsys.readouterr().out
    assert json.loads((run / "metrics.json").read_text())["metrics"]["n"] == 4  # the whole run now, not the 2
    assert not (run / "report.md").exists() and not (run / "index.html").exists() and not (run / "plots").exists()
    assert "--no-report: no pages; removed the" in out and "an earlier invocation left" in out


def test_an_eval_removes_or_overwrites_only_its_own_pages(tmp_path, capsys):
    """A first ``eval --no-report`` into a folder holding report.md, index.html, plots/fig1.png and
    plots/summary/my_figure.png deleted all four; a report deleted any plots/*.png. A folder that is not a run and
    holds such names is now refused, untouched; in a run folder only vidground's own names go."""
    from vidground.errors import ConfigurationError

    mine = {"report.md": "my notes", "index.html": "<p>mine</p>", "plots/fig1.png": "png", "plots/summary/my_figure.png": "p"}
    folder = tmp_path / "run"
    for name, text in mine.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    argv = _toy_eval(tmp_path)
    with pytest.raises(ConfigurationError, match=r"is not a run folder \(no config.json\) but holds report.md, "
                                                 r"index.html, plots"):
        cli(*argv, "--no-report")
    assert {n: (folder / n).read_text() for n in mine} == mine and not (folder / "config.json").exists()
    (folder / "report.md").unlink(), (folder / "index.html").unlink()
    with pytest.raises(ConfigurationError, match="but holds plots"):  # the report would write beside them
        cli(*argv)
    mine = {n: t for n, t in mine.items() if n.startswith("plots/")}
    run = tmp_path / "run2"
    argv = _toy_eval(tmp_path, out="run2")
    assert cli(*argv) == 0
    for name, text in mine.items():
        (run / name).write_text(text)
    (run / "plots" / "vid0-0.png").write_text("a timeline PNG of an older report")
    assert cli("report", run, "--bootstrap", "0") == 0
    assert {n: (run / n).read_text() for n in mine} == mine and not (run / "plots" / "vid0-0.png").exists()
    (run / "plots" / "vid0-0.png").write_text("a timeline PNG of an older report")
    capsys.readouterr()
    assert cli(*argv, "--no-report") == 0
    assert "removed the 6 page and plot file(s)" in capsys.readouterr().out  # 2 pages, 3 summary plots, 1 timeline
    assert {n: (run / n).read_text() for n in mine} == mine
    assert not (run / "report.md").exists() and not (run / "index.html").exists()
    assert sorted(p.name for p in (run / "plots").rglob("*.png")) == ["fig1.png", "my_figure.png"]


def test_a_fresh_no_report_run_has_metrics_json(tmp_path, capsys):
    assert cli(*_toy_eval(tmp_path, "--no-report")) == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]["n"] == 4
    assert "removed" not in capsys.readouterr().out and not (tmp_path / "run" / "report.md").exists()


# --- 4. a resume's describer calls ------------------------------------------------------------------

def test_a_resume_says_its_own_describer_calls_and_the_folders_total_apart(tmp_path, capsys):
    """The line printed the folder's totals as if this invocation had made them (240 made where it made 120)."""
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=2, duration=3.0)
    videos = render_toy_videos(tmp_path / "videos", ["vid0", "vid1"], n_frames=30, fps=10.0)
    argv = ["eval", "jsonl", "--dataset-file", str(ds), "--videos", str(videos), "--describer", "fake",
            "--reasoner", "fake-reasoner", "--fps", "10", "--no-cache", "--quiet", "--no-report",
            "--out", str(tmp_path / "run")]
    assert main([*argv, "--subset", str(_ids(tmp_path, "vid0-0", "vid0-1"))]) == 0
    first = capsys.readouterr().out
    assert "describer calls: 30 made, 0 saved by the cache (this invocation); cost" in first
    assert "run folder total" not in first.split("; cost")[0]
    assert main(argv) == 0  # the rest: vid1 is described, vid0's queries are done
    second = capsys.readouterr().out
    assert "describer calls: 30 made, 0 saved by the cache (this invocation); run folder total, every " \
           "invocation: 60 made, 0 saved; cost $" in second and "(the run folder's total)" in second


def _ids(tmp_path: Path, *qids: str) -> Path:
    path = tmp_path / "ids.txt"
    path.write_text("".join(f"{q}\n" for q in qids))
    return path
