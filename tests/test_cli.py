"""The vidground command line: every command on a rendered video and on a descriptions file."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys

import pytest

from frame_describer import FrameDescription, write_descriptions
from frame_describer.errors import ConfigurationError, InputError
from pipelines.cli import main
from pipelines.datasets import data_root

DESCS = [FrameDescription(t=float(t), text="A person is standing in the kitchen." if 3 <= t <= 5 else "An empty room.")
         for t in range(8)]


@pytest.fixture()
def desc_file(tmp_path):
    path = tmp_path / "k.descriptions.jsonl"
    write_descriptions(path, DESCS)
    return path


def test_ground_descriptions_table(desc_file, capsys):
    assert main(["ground", "--descriptions", str(desc_file), "a person stands in the kitchen"]) == 0
    out = capsys.readouterr().out
    assert "(inferred)" in out and "reasoner=embedding" in out
    first = [line for line in out.splitlines() if line.strip().startswith("1 ")][0].split()
    start, end = float(first[1]), float(first[2])
    # the person is described in the frames at 3, 4 and 5 s; the embedding reasoner reads a frame as
    # the instant it was sampled and puts edges halfway between frames: 2.5-5.5 s
    inter = max(0.0, min(end, 5.5) - max(start, 2.5))
    assert inter / (max(end, 5.5) - min(start, 2.5)) >= 0.8, (start, end)


def test_ground_descriptions_json(desc_file, capsys):
    assert main(["ground", "--descriptions", str(desc_file), "--duration", "8", "a person stands in the kitchen", "--json",
                 "--top-k", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["query"] == "a person stands in the kitchen" and data["duration"] == 8.0
    assert data["duration_inferred"] is False and len(data["intervals"]) == 1
    assert set(data["intervals"][0]) == {"start", "end", "score"}


def test_describe_then_ground_on_video(demo_video, tmp_path, capsys):
    video, events = demo_video
    out = tmp_path / "demo.descriptions.jsonl"
    assert main(["describe", str(video), "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all({"t", "text", "video", "duration", "step", "describer"} <= set(r) for r in rows)
    ev = events[0]
    assert main(["ground", "--descriptions", str(out), ev.query, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["describer"] == "cv" and data["duration_inferred"] is False
    best = data["intervals"][0]
    inter = max(0.0, min(best["end"], ev.end) - max(best["start"], ev.start))
    assert inter / (max(best["end"], ev.end) - min(best["start"], ev.start)) >= 0.5


def test_ground_video_json(demo_video, capsys):
    video, events = demo_video
    assert main(["ground", str(video), events[1].query, "--json", "--fps", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["video"] == str(video) and data["intervals"]


def test_describe_to_stdout(demo_video, capsys):
    assert main(["describe", str(demo_video[0]), "--num-frames", "4"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 4


def test_demo_json(capsys):
    assert main(["demo", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["found"] == len(report["events"]) >= 4
    for row in report["events"]:
        assert row["iou"] >= 0.5, row


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["ground", "missing.mp4", "a query"], "missing.mp4: no such file"),
        (["ground", "--descriptions", "missing.jsonl", "a query"], "missing.jsonl: descriptions file not found"),
        (["ground", "only-a-query"], "give VIDEO and QUERY"),
        (["ground", "--descriptions", "x.jsonl", "v.mp4", "q"], "only the QUERY"),
        (["ground", "--reasoner", "nope", "--descriptions", "x.jsonl", "q"], "unknown reasoner backend"),
    ],
)
def test_errors_are_one_line_with_nonzero_exit(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_empty_query_and_bad_file(desc_file, tmp_path, capsys):
    assert main(["ground", "--descriptions", str(desc_file), "   "]) == 1
    assert "query is empty" in capsys.readouterr().err
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    assert main(["ground", str(bad), "a person"]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err


def test_describe_writes_nothing_on_failure(tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    out = tmp_path / "out.jsonl"
    assert main(["describe", str(bad), "-o", str(out)]) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["ground"])
    assert e.value.code == 2


def test_console_script_help():
    exe = shutil.which("vidground") or pytest.skip("the vidground console script is not installed")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, env={**os.environ}, check=True).stdout
    for cmd in ("ground", "describe", "demo"):
        assert cmd in out
    out = subprocess.run([exe, "ground", "--help"], capture_output=True, text=True, check=True).stdout
    assert "--descriptions" in out and "--describer" in out and "--reasoner" in out


def test_backend_options_reach_the_backend(desc_file, capsys):
    assert main(["ground", "--descriptions", str(desc_file), "a person stands in the kitchen", "--json",
                 "--reasoner-opt", "top_k=1", "--reasoner-opt", "smooth_samples=0"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["intervals"]) == 1
    assert main(["ground", "--descriptions", str(desc_file), "q", "--reasoner-opt", "no_such_option=1"]) == 1
    err = capsys.readouterr().err
    assert "has no option no_such_option; its options:" in err and "top_k" in err
    with pytest.raises(SystemExit):
        main(["ground", "--descriptions", str(desc_file), "q", "--reasoner-opt", "novalue"])


def test_verbose_logs_the_stages(desc_file, caplog):
    def grounded():
        return [r for r in caplog.records if r.name == "vidground" and "grounded 'a person'" in r.getMessage()]

    with caplog.at_level(logging.INFO):
        assert main(["--verbose", "ground", "--descriptions", str(desc_file), "a person"]) == 0
        assert len(grounded()) == 1 and grounded()[0].levelno == logging.INFO
        caplog.clear()
        assert main(["ground", "--descriptions", str(desc_file), "a person"]) == 0  # without --verbose: quiet
        assert grounded() == []


def test_verbose_prints_to_stderr_in_a_real_process(desc_file):
    out = subprocess.run([sys.executable, "-m", "pipelines.cli", "--verbose", "ground", "--descriptions",
                          str(desc_file), "a person"], capture_output=True, text=True, check=True)
    assert "INFO vidground: grounded 'a person' with embedding" in out.stderr


@pytest.mark.parametrize("name, published", [
    ("vtggpt_infer_val", {"R1@0.5": "59.03", "R1@0.7": "38.90", "mAP@0.5": "56.11", "mAP@0.75": "35.44", "mAP": "35.57"}),
    ("momentdetr_sample_val_preds",
     {"R1@0.5": "53.94", "R1@0.7": "34.84", "mAP@0.5": "54.96", "mAP@0.75": "31.01", "mAP": "32.20"}),
])
def test_score_prints_the_published_qvhighlights_figures(name, published, capsys):
    try:
        path = data_root() / "qvhighlights" / "reference-predictions" / f"{name}.jsonl"
    except ConfigurationError as exc:
        pytest.skip(f"shared annotation folder not found (../shared/data or $VIDGROUND_DATA): {exc}")
    if not path.is_file():
        pytest.skip(f"{path} not found")
    assert main(["score", str(path), "--dataset", "qvhighlights", "--all-queries", "--bootstrap", "0"]) == 0
    out = capsys.readouterr().out
    assert "1550 of 1550 qvhighlights/val queries predicted; scored on 1550" in out
    assert "duplicate" not in out and "match no query" not in out and "mAP averages IoU 0.5:0.05:0.95" in out
    header, _, row = [line for line in out.splitlines() if line.startswith("|")][:3]
    cells = dict(zip([c.strip() for c in header.split("|")[2:-1]], [c.strip() for c in row.split("|")[2:-1]]))
    assert {k: cells[k] for k in published} == published


def test_global_options_are_accepted_after_the_command(desc_file, caplog, capsys):
    def grounded():
        return [r for r in caplog.records if r.name == "vidground" and "grounded 'a person'" in r.getMessage()]

    with caplog.at_level(logging.INFO):
        assert main(["ground", "--descriptions", str(desc_file), "a person", "--verbose"]) == 0
        assert len(grounded()) == 1
        caplog.clear()
        assert main(["ground", "-v", "--descriptions", str(desc_file), "a person"]) == 0
        assert len(grounded()) == 1
    # --debug after the command shows the traceback (the error propagates) instead of one line
    with pytest.raises(InputError, match="descriptions file not found"):
        main(["ground", "--descriptions", "missing.jsonl", "q", "--debug"])
    # given before the command, a command's own copy of the option does not reset it
    with pytest.raises(InputError):
        main(["--debug", "ground", "--descriptions", "missing.jsonl", "q"])


@pytest.mark.parametrize("argv, hint", [
    (["score", "p.jsonl", "--dataset", "charades_sta"], "unknown dataset 'charades_sta' (did you mean 'charades-sta'?)"),
    (["eval", "QVHighlights", "--descriptions", ".", "--out", "o"], "(did you mean 'qvhighlights'?)"),
    (["ground", "--reasoner", "openai/gpt-4o", "--descriptions", "d.jsonl", "q"],
     "unknown reasoner backend 'openai/gpt-4o' (did you mean 'openai:gpt-4o'?); choose one of:"),
    (["ground", "--reasoner", "embeding", "--descriptions", "d.jsonl", "q"], "(did you mean 'embedding'?)"),
])
def test_did_you_mean_for_datasets_and_backend_specs(argv, hint, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.jsonl").write_text('{"t": 0, "text": "a person"}\n{"t": 1, "text": "a room"}\n')
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert hint in err and err.count("\n") == 1, err


def test_backend_spec_suggestions_keep_the_model_name_as_typed():
    from frame_describer import describers

    with pytest.raises(ConfigurationError, match=r"did you mean 'hf:Qwen/Qwen2.5-VL-3B-Instruct'\?"):
        describers.check("hf/Qwen/Qwen2.5-VL-3B-Instruct")
    assert describers.suggest("opnai:gpt-4o-mini") == "openai:gpt-4o-mini"
    assert describers.suggest("zzzz") is None
