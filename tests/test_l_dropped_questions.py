"""`eval nextgqa` says how many questions its loader skipped and why (a warning, provenance.json), naming the
first few; a custom 4-row val.csv said only '2 queries selected'."""

from __future__ import annotations

import json
import logging

from pipelines.cli import main
from pipelines.datasets import load_dataset
from temporal_reasoner import reasoners

from test_qa import WordReasoner
from test_qa_eval import write_nextgqa

OPTIONS = {"a0": "cry", "a1": "laugh", "a2": "run", "a3": "sit", "a4": "jump"}
ROWS = [
    {"video_id": "100", "qid": "1", "question": "what does the girl do", "answer": "laugh", **OPTIONS},
    {"video_id": "100", "qid": "2", "question": "what does the girl do next", "answer": "run", **OPTIONS},
    {"video_id": "100", "qid": "3", "question": "why", "answer": "laugh", "a0": "", "a1": ""},
    {"video_id": "100", "qid": "4", "question": "how", "answer": "dance", **OPTIONS},
]
SPANS = {"100": {"duration": 12, "fps": 30, "location": {q: [[2.0, 6.0]] for q in ("1", "2", "3", "4")}}}


def test_the_loader_names_why_each_question_was_skipped(tmp_path):
    write_nextgqa(tmp_path, ROWS, SPANS)
    ds = load_dataset("nextgqa", root=tmp_path)
    assert [q.qid for q in ds] == ["100_1", "100_2"]
    assert ds.dropped == ["val.csv:4: question 100_3 has no options",
                          "val.csv:5: question 100_4 has an answer ('dance') that is not one of its options"]


def _eval(tmp_path, caplog, *extra: str):
    """``eval nextgqa`` on ROWS (2 of its 4 questions skipped on load), with the warnings it logged."""
    reasoners.register("words-dropped", WordReasoner)
    write_nextgqa(tmp_path / "data", ROWS, SPANS)
    desc = tmp_path / "descriptions"
    desc.mkdir()
    (desc / "100.jsonl").write_text("".join(json.dumps({"t": i, "text": "a girl laughs"}) + "\n" for i in range(12)))
    with caplog.at_level(logging.WARNING, logger="vidground"):
        assert main(["eval", "nextgqa", "--data-root", str(tmp_path / "data"), "--descriptions", str(desc),
                     "--reasoner", "words-dropped", "--out", str(tmp_path / "run"), "--quiet", "--no-report",
                     *extra]) == 0
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_eval_nextgqa_warns_and_records_the_skipped_questions(tmp_path, capsys, caplog):
    warned = _eval(tmp_path, caplog)
    out = tmp_path / "run"
    printed = capsys.readouterr().out
    assert "2 queries selected (2 skipped on load: see the warning)" in printed
    assert any(m.startswith("2 nextgqa/val annotation(s) skipped on load, not selected or scored: val.csv:4: "
                            "question 100_3 has no options; val.csv:5: question 100_4 has an answer ('dance')")
               for m in warned), warned
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["dropped_annotations"] == {
        "count": 2, "first": ["val.csv:4: question 100_3 has no options",
                              "val.csv:5: question 100_4 has an answer ('dance') that is not one of its options"]}


def test_with_a_limit_the_skipped_count_says_it_is_the_whole_files(tmp_path, capsys, caplog):
    """`--limit 1` printed '1 queries selected (2 skipped on load ...)': the 2 are the whole file's annotations,
    never queries to choose among, the 1 is of the file's 2 queries; each count now says what it is of."""
    warned = _eval(tmp_path, caplog, "--limit", "1")
    printed = capsys.readouterr().out
    assert "1 queries selected of the file's 2 (its 2 other annotation(s) skipped on load: see the warning)" in printed
    assert any(m.startswith("2 nextgqa/val annotation(s) skipped on load, not selected or scored (of the whole "
                            "file; --limit/--subset then chose 1 of its 2 queries): val.csv:4: ") for m in warned), warned
    ds = load_dataset("nextgqa", root=tmp_path / "data")
    assert ds.loaded is None and ds.subset(limit=1).loaded == 2 and ds.subset(limit=1).subset(limit=1).loaded == 2
