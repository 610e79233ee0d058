"""`vidground eval activitynet-events` as a researcher meets it: a folder with inputs for none of the chosen
videos, and a Ctrl-C while the captions are scored."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from _helpers_openai_server import Reply, openai_server  # noqa: F401
from test_events import _anet_fixture, no_caption_scorers  # noqa: F401


def test_no_input_for_any_selected_video_does_not_suggest_allow_missing(tmp_path, capsys, no_caption_scorers):  # noqa: F811
    """`--limit 12 --allow-missing` on a folder holding other videos said 'use --allow-missing to run on the 0
    found', though it was given: --limit picks among every reference video before inputs are looked for."""
    from pipelines.cli import main

    root = _anet_fixture(tmp_path)
    many = {f"v_{i:03d}": {"duration": 10.0, "timestamps": [[0, 10]], "sentences": ["z"]} for i in range(50)}
    (root / "many.json").write_text(json.dumps(many))
    base = ["eval", "activitynet-events", "--data-root", str(root / "data"), "--descriptions", str(root / "descriptions"),
            "--references", str(root / "many.json"), "--out", str(root / "run"), "--allow-missing", "--quiet"]
    assert main([*base, "--limit", "5"]) == 1
    err = capsys.readouterr().err
    assert "none of the 5 selected videos has an input in" in err and "--limit 5 chose them among all 50" in err
    assert "use --allow-missing" not in err and err.count("\n") == 1
    assert main(base) == 1
    err = capsys.readouterr().err
    assert "none of the 50 selected videos has an input" in err and "e.g. v_000.jsonl" in err and "--limit" not in err


class InterruptedMeteor:
    """pycocoevalcap's Meteor as a Ctrl-C leaves it: compute_score takes its lock, and an interrupt inside
    leaves it held (the real __del__ then waits for it forever before ending its Java process)."""

    def __init__(self):
        self.meteor_p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], stdin=subprocess.PIPE)
        self.lock = threading.Lock()

    def compute_score(self, gts, res):
        self.lock.acquire()
        raise KeyboardInterrupt


def test_a_ctrl_c_while_captions_are_scored_leaves_no_lock_for_meteor_to_hang_on(monkeypatch):
    """Seen: Ctrl-C during eval activitynet-events' caption scoring printed 'interrupted' and then hung in
    Meteor.__del__ (py-spy: idle in meteor.py:78, lock.acquire) until killed."""
    pytest.importorskip("pycocoevalcap")
    from pipelines import event_metrics, events_eval

    meteor = InterruptedMeteor()
    monkeypatch.setattr(event_metrics, "caption_scorers", lambda: [(meteor, "METEOR")])

    class Words:  # the PTB tokenizer runs Java: not needed to reach the scorer
        def tokenize(self, captions):
            return {k: [c["caption"] for c in v] for k, v in captions.items()}

    monkeypatch.setattr("pycocoevalcap.tokenizer.ptbtokenizer.PTBTokenizer", Words)
    done = {"v_a": {"events": [{"start": 0.0, "end": 10.0, "caption": "cook", "score": 1.0}]}}
    refs = {"val_1.json": {"v_a": {"timestamps": [[0, 10]], "sentences": ["cook"]}}}
    with pytest.raises(KeyboardInterrupt):
        events_eval._captions(done, {"v_a": "v_a.jsonl"}, refs)
    assert meteor.lock.acquire(blocking=False)  # what __del__ acquires is free
    assert meteor.meteor_p.poll() is not None  # and the process it guarded has ended


def test_events_eval_reports_what_the_chat_reasoner_cost_failed_videos_included(tmp_path, capsys, no_caption_scorers,  # noqa: F811
                                                                                 openai_server):  # noqa: F811
    """The events eval printed and recorded no usage or cost at all, and a video whose replies never validated
    lost the requests paid for it (the error carried them; only its message was kept)."""
    from pipelines.cli import main
    from test_events import KITCHEN

    good = '{"events": [{"start": 0, "end": 10, "caption": "cook", "score": 1}, {"start": 10, "end": 20, "caption": "dig", "score": 1}]}'
    openai_server.responder = lambda req: Reply.chat(good if KITCHEN in req.json["messages"][-1]["content"] else "no",
                                                     prompt_tokens=100, completion_tokens=10)
    root = _anet_fixture(tmp_path)
    args = ["eval", "activitynet-events", "--descriptions", str(root / "descriptions"), "--data-root", str(root / "data"),
            "--references", str(root / "val_1.json"), "--reasoner", "openai:m", "--reasoner-opt",
            f"base_url={openai_server.base_url}", "--reasoner-opt", "max_attempts=2", "--out", str(root / "run"),
            "--allow-missing", "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    assert list(metrics["failed"]) == ["v_b"]
    loc = metrics["localisation"]  # the failed video scores 0 and stays in the averages (v_a's events are exact)
    assert loc["videos"] == 2.0 and loc["recall@0.5"] == 50.0 and loc["precision@0.5"] == 50.0
    assert metrics["usage"]["total"]["requests"] == 1 and metrics["usage"]["reason"]["prompt_tokens"] == 100
    assert metrics["failed_usage_this_run"]["requests"] == 2 and metrics["failed_usage_this_run"]["prompt_tokens"] == 200
    assert "usage: 1 requests, 100 prompt + 10 completion tokens" in out
    assert "paid for failed videos (this run): 2 requests, 200 prompt + 20 completion tokens" in out


def test_events_eval_takes_time_style_as_the_events_command_does(tmp_path, capsys, no_caption_scorers,  # noqa: F811
                                                                 openai_server):  # noqa: F811
    """`vidground events --time-style tokens` worked, and so did `eval activitynet-events --reasoner-opt
    time_style=tokens`, but `eval activitynet-events --time-style tokens` said 'not available yet'."""
    from pipelines.cli import main

    openai_server.responder = lambda req: Reply.chat('{"events": [{"start": "<0>", "end": "<150>", "caption": "a", '
                                                     '"score": 1}, {"start": "<150>", "end": "<300>", "caption": "b", '
                                                     '"score": 1}]}')
    root = _anet_fixture(tmp_path)
    args = ["eval", "activitynet-events", "--descriptions", str(root / "descriptions"), "--data-root", str(root / "data"),
            "--references", str(root / "val_1.json"), "--reasoner", "openai:m", "--reasoner-opt",
            f"base_url={openai_server.base_url}", "--time-style", "tokens", "--out", str(root / "run"),
            "--allow-missing", "--quiet"]
    assert main(args) == 0, capsys.readouterr().err
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    assert metrics["config"]["reasoner_options"]["time_style"] == "tokens:300" and not metrics["failed"]
    assert "relative time tokens" in openai_server.requests[0].json["messages"][-1]["content"]
    assert metrics["localisation"]["recall@0.9"] == 100.0  # <150> of 300 is the middle of both videos: exact
