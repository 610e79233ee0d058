"""`vidground score --dataset nextgqa FILE` reads NExT-GQA's own results files (doc-doc/NExT-GQA): one JSON object
keyed by ``VIDEO_QID``, each value the top-1 span ``[s, e]`` (``test_ground.json``, what the official
``code/TempGQA/eval_ground.py`` scores) or ``{"location": ..., "prediction": i, "answer": ...}`` (its SeViLA tools'
combined file, ``location`` being frame times whose first and last bound the span). Before (G1) such a file was an
InputError ('each line needs ...', or 'not valid JSON' at line 2 when written with an indent). A key that matches no
annotated question is listed and fails --strict. Built from the shared NExT-GQA val annotations of one video."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from pipelines.datasets import data_root, load_dataset
from pipelines.metrics import read_predictions
from vidground.errors import ConfigurationError, InputError

try:
    SHARED = data_root() / "nextgqa"
except ConfigurationError:  # pragma: no cover - the shared data folder is part of the checkout's setup
    SHARED = Path("/nonexistent")
VIDEO = "10001787725"  # 4 questions in val: 1, 3, 5, 7 (34 s)

pytestmark = pytest.mark.skipif(not (SHARED / "val.csv").is_file(), reason="shared NExT-GQA annotations not found")


@pytest.fixture()
def root(tmp_path) -> Path:
    """A data folder holding the shared val annotations of VIDEO alone."""
    folder = tmp_path / "data" / "nextgqa"
    folder.mkdir(parents=True)
    with (SHARED / "val.csv").open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = [r for r in reader if r["video_id"] == VIDEO]
        fields = reader.fieldnames
    with (folder / "val.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    spans = json.loads((SHARED / "gsub_val.json").read_text(encoding="utf-8"))
    (folder / "gsub_val.json").write_text(json.dumps({VIDEO: spans[VIDEO]}), encoding="utf-8")
    return tmp_path / "data"


def score(root: Path, path: Path, *extra: str) -> int:
    """``vidground score``'s exit status (1 for a problem under --strict)."""
    from pipelines.cli import main

    return main(["score", "--dataset", "nextgqa", "--data-root", str(root), "--bootstrap", "0", str(path), *extra])


def _metrics(capsys, root: Path, path: Path) -> dict:
    assert score(root, path, "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_the_official_ground_file_is_scored_and_an_unknown_key_is_listed(root, tmp_path, capsys):
    ds = load_dataset("nextgqa", root=root)
    assert sorted(q.qid for q in ds) == [f"{VIDEO}_{k}" for k in ("1", "3", "5", "7")]
    ground = {f"{VIDEO}_1": [1.2, 5.8],  # the GT window: IoU 1, IoP 1
              f"{VIDEO}_7": [16.0, 19.6],  # the second of its 4 windows: IoU 1
              f"{VIDEO}_5": [1.0, 3.3],  # half of [1.0, 5.6]: IoU 0.5, IoP 1
              f"{VIDEO}_3": [0.0, 12.1],  # ends where its first window starts: IoU 0, IoP 0
              f"{VIDEO}_99": [1.0, 2.0]}  # no such question
    path = tmp_path / "val_ground.json"
    path.write_text(json.dumps(ground))
    out = _metrics(capsys, root, path)
    assert (out["scored"], out["predicted"], [r["qid"] for r in out["unmatched"]]) == (4, 4, [f"{VIDEO}_99"])
    values = out["metrics"]["values"]
    assert (values["mIoU"], values["IoU@0.5"], values["IoU@0.3"], values["mIoP"], values["IoP@0.5"]) == \
        (62.5, 75.0, 75.0, 75.0, 75.0)
    assert "Acc@QA" not in values  # grounding only: the file gives no answers
    assert score(root, path) == 0
    printed = capsys.readouterr()
    assert f"1 prediction(s) match no query:\n  key '{VIDEO}_99': no annotated question has it" in printed.out
    assert "1 of 5 predictions match no query of nextgqa/val" in printed.err
    assert score(root, path, "--strict") == 1
    assert "--strict: 1 prediction rows with problems (unmatched 1)" in capsys.readouterr().err


def test_the_combined_file_of_location_prediction_and_answer_written_with_an_indent(root, tmp_path, capsys):
    by_qid = load_dataset("nextgqa", root=root).by_qid()
    right = {k: q.answer for k, q in by_qid.items()}
    wrong = {k: (q.answer + 1) % len(q.choices) for k, q in by_qid.items()}
    combined = {
        # SeViLA's frame times: the span is the first to the last, [1.2, 5.8] (IoP 1); right
        f"{VIDEO}_1": {"location": [1.2, 3.0, 5.8], "prediction": right[f"{VIDEO}_1"], "answer": right[f"{VIDEO}_1"]},
        # a list of spans, best first: IoP 1, but the wrong option ("answer" is the ground truth there)
        f"{VIDEO}_7": {"location": [[16.0, 19.6], [0.0, 1.0]], "prediction": wrong[f"{VIDEO}_7"],
                       "answer": right[f"{VIDEO}_7"]},
        f"{VIDEO}_5": {"location": [8.4, 11.2], "prediction": right[f"{VIDEO}_5"]},  # IoP 1, right
        # the option's text as the answer: right, though grounded outside every window (IoP 0)
        f"{VIDEO}_3": {"location": [[0.0, 12.1]], "answer": by_qid[f"{VIDEO}_3"].choices[right[f"{VIDEO}_3"]]},
    }
    path = tmp_path / "test_ground.json"
    path.write_text(json.dumps(combined, indent=2))
    out = _metrics(capsys, root, path)
    assert (out["scored"], out["unmatched"], out["problems"]) == (4, [], [])
    values = out["metrics"]["values"]
    assert (values["Acc@QA"], values["Acc@GQA"], values["mIoP"], values["mIoU"]) == (75.0, 50.0, 75.0, 75.0)
    assert score(root, path, "--strict") == 0


def test_a_repeated_key_is_a_duplicate_not_silently_overwritten(root, tmp_path, capsys):
    path = tmp_path / "ground.json"
    path.write_text(f'{{"{VIDEO}_1": [1.2, 5.8], "{VIDEO}_1": [30, 34]}}')  # json.load keeps the last only
    records = read_predictions(path)
    assert [(r["qid"], r["intervals"]) for r in records] == [(f"{VIDEO}_1", [[1.2, 5.8]]), (f"{VIDEO}_1", [[30, 34]])]
    out = _metrics(capsys, root, path)
    # the first counts, as in JSONL (IoU 1; the last would be 0), over the 4 questions (3 unpredicted: IoU 0)
    assert (out["duplicates"], out["metrics"]["values"]["mIoU"]) == (1, 25.0)
    assert score(root, path, "--strict") == 1


def test_what_is_not_a_keyed_results_file(tmp_path):
    empty = tmp_path / "empty.json"
    empty.write_text("{}\n")
    with pytest.raises(InputError, match="no predictions in the file"):
        read_predictions(empty)
    record = tmp_path / "one.jsonl"  # a one-line JSONL file of a record stays a record
    record.write_text(json.dumps({"qid": f"{VIDEO}_1", "intervals": [[1, 2]]}) + "\n")
    assert [(r["qid"], r["_line"]) for r in read_predictions(record)] == [(f"{VIDEO}_1", 1)]
    neither = tmp_path / "neither.json"  # no span and no object among the values: JSONL's error, as before
    neither.write_text('{"a": 1}\n')
    with pytest.raises(InputError, match=r"each line needs"):
        read_predictions(neither)


def test_spans_given_as_fractions_of_the_video_are_warned(root, tmp_path, capsys):
    """NExT-GQA's Gaussian-mask results (*_gs.json) are fractions, which the official script multiplies by the
    duration (gs=True); scored as seconds they would look like a weak model."""
    path = tmp_path / "val_ground_gs.json"
    path.write_text(json.dumps({f"{VIDEO}_{k}": [0.03, 0.17] for k in ("1", "3", "5", "7")}))
    assert score(root, path) == 0
    assert "warning: all 4 top-1 spans end by 1.0 s: fractions of each video" in capsys.readouterr().err
    assert "fractions of each video" in _metrics(capsys, root, path)["warnings"][0]
    path.write_text(json.dumps({f"{VIDEO}_{k}": [1.2, 5.8] for k in ("1", "3", "5", "7")}))
    assert score(root, path) == 0
    assert "fractions" not in capsys.readouterr().err
