"""Evaluation runs: the sink, resume after kill -9, retry-failed, cache accounting, the eval CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vidground.errors import ConfigurationError, InputError
from pipelines.runs import ResultSink, RunConfig, latest_results, read_jsonl, run_eval

from _helpers_eval import cli, register_fakes, render_toy_videos, write_toy_dataset

register_fakes()
HERE = Path(__file__).resolve().parent


@pytest.fixture()
def toy(tmp_path):
    return write_toy_dataset(tmp_path / "data")


def cfg(ds, desc, **kw):
    return RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="fake-reasoner", **kw)


def test_sink_appends_whole_lines_and_repairs_a_torn_tail(tmp_path):
    path = tmp_path / "r.jsonl"
    with ResultSink(path) as sink:
        sink.append({"qid": "a", "status": "ok"})
    with path.open("a") as fh:
        fh.write('{"qid": "b", "sta')  # what a kill in mid-write would leave
    assert [r["qid"] for r in read_jsonl(path)] == ["a"]
    with ResultSink(path) as sink:
        sink.append({"qid": "c", "status": "ok"})
    assert path.read_text().count("\n") == 2 and [r["qid"] for r in read_jsonl(path)] == ["a", "c"]
    path.write_text('{"qid": "a"}\nnot json\n{"qid": "b"}\n')
    with pytest.raises(InputError, match=":2: corrupt"):
        read_jsonl(path)


def test_a_resume_moves_corrupt_result_lines_aside_and_runs_their_queries_again(toy, tmp_path, caplog):
    """A damaged line in the middle of results.jsonl stopped every resume with no way to skip or repair it."""
    ds, desc = toy
    out = tmp_path / "run"
    run_eval(cfg(ds, desc, limit=5, seed=3), out)
    results = out / "results.jsonl"
    lines = results.read_text().splitlines()
    damaged = [lines[0], '{"qid": "x", "sta\u0000tus', lines[2], "[1, 2]", '{"no": "qid"}', *lines[3:], lines[1][:10]]
    results.write_text("\n".join(damaged))  # three bad lines inside, a torn last line, query 2 lost with them
    with pytest.raises(InputError, match=r":2: corrupt result line; run the same eval command again"):
        latest_results(results)  # a report names the line and the repair
    again = run_eval(cfg(ds, desc, limit=5, seed=3), out)
    assert (again.already_done, again.ran, again.failed) == (4, 1, 0) and again.metrics.n == 5
    assert (out / "results.jsonl.corrupt").read_text().splitlines() == damaged[1:2] + damaged[3:5]
    assert len(latest_results(results)) == 5 and "moved 3 corrupt line(s) (line 2, 4, 5)" in caplog.text
    assert run_eval(cfg(ds, desc, limit=5, seed=3), out).already_done == 5  # repaired for good


def test_descriptions_run_scores_and_resumes(toy, tmp_path):
    ds, desc = toy
    out = tmp_path / "run"
    s1 = run_eval(cfg(ds, desc, limit=5, seed=3), out)
    assert (s1.selected, s1.already_done, s1.ran, s1.failed) == (5, 0, 5, 0)
    assert s1.metrics.n == 5 and s1.metrics["R1@0.5"] == 100.0 and "whole video" in s1.metrics.baselines
    s2 = run_eval(cfg(ds, desc, limit=5, seed=3), out)
    assert (s2.already_done, s2.ran) == (5, 0)
    s3 = run_eval(cfg(ds, desc, limit=8, seed=3), out)  # a larger subset with the same seed adds 3
    assert (s3.already_done, s3.ran) == (5, 3)
    assert len(read_jsonl(out / "results.jsonl")) == 8
    with pytest.raises(ConfigurationError, match="reasoner"):
        run_eval(cfg(ds, desc, limit=5).__class__(**{**cfg(ds, desc).__dict__, "reasoner": "embedding"}), out)


def test_failures_are_recorded_and_retried(toy, tmp_path):
    ds, desc = toy
    lines = ds.read_text().splitlines()
    first = json.loads(lines[0])
    first["query"] += " FAIL"
    ds.write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n")
    out = tmp_path / "run"
    s = run_eval(cfg(ds, desc), out)
    assert s.failed == 1 and s.metrics.failures == {"error": 1} and s.metrics.n == 12
    rec = latest_results(out / "results.jsonl")[first["qid"]]
    assert rec["status"] == "failed" and rec["error"]["type"] == "ProviderError" and rec["error"]["retryable"]
    assert run_eval(cfg(ds, desc), out).ran == 0  # failures are not re-run by default
    first["query"] = first["query"].replace(" FAIL", "")
    ds.write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n")
    s = run_eval(cfg(ds, desc), out, retry_failed=True)
    assert s.ran == 1 and s.failed == 0 and s.metrics.failures == {}
    assert latest_results(out / "results.jsonl")[first["qid"]]["status"] == "ok"


def test_missing_descriptions_are_listed_not_fatal(toy, tmp_path):
    ds, desc = toy
    (desc / "vid2.jsonl").unlink()
    s = run_eval(cfg(ds, desc), tmp_path / "run")
    assert s.missing_videos == ["vid2"] and s.ran == 9 and s.metrics.n == 9


def test_bad_configuration_is_a_typed_error(toy, tmp_path):
    ds, desc = toy
    with pytest.raises(ConfigurationError, match="exactly one of --videos"):
        run_eval(RunConfig(dataset="jsonl", dataset_path=str(ds)), tmp_path / "run")
    with pytest.raises(InputError, match="descriptions folder not found"):
        run_eval(cfg(ds, tmp_path / "nope"), tmp_path / "run")
    with pytest.raises(InputError, match=r"toy.jsonl: is not a folder: give the folder holding the descriptions"):
        run_eval(cfg(ds, ds), tmp_path / "run")  # a file where the folder goes


def test_video_run_describes_each_frame_once_across_runs(tmp_path):
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=3, duration=3.0)
    videos = render_toy_videos(tmp_path / "videos", ["vid0", "vid1"])
    cache = tmp_path / "cache.sqlite"
    base = dict(dataset="jsonl", dataset_path=str(ds), videos=str(videos), describer="fake",
                reasoner="fake-reasoner", cache=str(cache))
    s1 = run_eval(RunConfig(**base), tmp_path / "a")
    assert s1.ran == 6 and s1.failed == 0
    assert (s1.describe_calls, s1.describe_saved) == (6, 0)  # 3 s at 1 fps, 2 videos: once across 6 queries
    s2 = run_eval(RunConfig(**base), tmp_path / "b")
    assert (s2.describe_calls, s2.describe_saved) == (0, 6)
    assert sorted(r["intervals"][0] for r in read_jsonl(tmp_path / "a" / "results.jsonl")) == \
        sorted(r["intervals"][0] for r in read_jsonl(tmp_path / "b" / "results.jsonl"))
    s3 = run_eval(RunConfig(**{**base, "fps": 2.0}), tmp_path / "c")  # denser: only the new half seconds are described
    assert (s3.describe_calls, s3.describe_saved) == (6, 6)
    s4 = run_eval(RunConfig(**{**base, "max_side": 32}), tmp_path / "d")  # other image settings: another key
    assert (s4.describe_calls, s4.describe_saved) == (6, 0)


@pytest.mark.slow
def test_kill_9_then_resume_loses_and_duplicates_nothing(tmp_path):
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=4, per_video=5)
    out = tmp_path / "run"
    code = ("import sys; from _helpers_eval import register_fakes, cli; register_fakes(); "
            "sys.exit(cli(*sys.argv[1:]))")
    argv = [sys.executable, "-c", code, "eval", "jsonl", "--dataset-file", ds, "--descriptions", desc,
            "--reasoner", "fake-reasoner", "--concurrency", "2", "--out", out, "--no-report", "--quiet"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    # the first run answers 6 queries, then holds the rest: killed in the middle however slow the machine
    proc = subprocess.Popen([str(a) for a in argv], env={**env, "VIDGROUND_TEST_HOLD_AFTER": "6"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    results = out / "results.jsonl"
    while not results.exists() or results.read_text().count("\n") < 6:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    before = read_jsonl(results)
    assert len(before) == 6, "the run was killed in the middle"
    done = subprocess.run([str(a) for a in argv], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{len(before)} already done" in done.stdout
    after = read_jsonl(results)
    qids = [r["qid"] for r in after]
    assert len(qids) == 20 and len(set(qids)) == 20
    assert after[:len(before)] == before  # what was written before the kill is kept as is


@pytest.mark.slow
def test_eval_cli_end_to_end(toy, tmp_path, capsys):
    ds, desc = toy
    out = tmp_path / "run"
    assert cli("eval", "jsonl", "--dataset-file", ds, "--descriptions", desc, "--reasoner", "fake-reasoner",
               "--limit", "6", "--out", out, "--quiet") == 0
    text = capsys.readouterr().out
    assert "6 queries selected, 0 already done, 6 run now (0 failed)" in text
    assert "| **this run** |" in text and "| whole video |" in text
    assert (out / "report.md").exists() and (out / "index.html").exists() and (out / "metrics.json").exists()
    with pytest.raises(ConfigurationError, match="unknown dataset 'nope'; choose one of"):
        cli("eval", "nope", "--descriptions", desc, "--out", out)
    with pytest.raises(ConfigurationError, match="--describer has no effect"):
        cli("eval", "jsonl", "--dataset-file", ds, "--descriptions", desc, "--describer", "cv", "--out", out)


def test_descriptions_folder_accepts_the_describe_command_naming(tmp_path):
    from pipelines.runs import find_descriptions

    (tmp_path / "AB12C.descriptions.jsonl").write_text('{"t": 0, "text": "a"}\n')
    (tmp_path / "XY34Z.jsonl").write_text('{"t": 0, "text": "b"}\n')
    found, missing = find_descriptions(["AB12C", "XY34Z", "NOPE1"], tmp_path)
    assert {k: p.name for k, p in found.items()} == {"AB12C": "AB12C.descriptions.jsonl", "XY34Z": "XY34Z.jsonl"}
    assert missing == ["NOPE1"]


def test_eval_takes_backend_options_and_they_must_match_to_resume(toy, tmp_path, capsys):
    ds, desc = toy
    out = tmp_path / "run"
    assert cli("eval", "jsonl", "--dataset-file", ds, "--descriptions", desc, "--limit", "2", "--out", out, "--quiet",
               "--no-report", "--reasoner-opt", "spans=peaks", "--reasoner-opt", "top_k=2") == 0
    config = json.loads((out / "config.json").read_text())
    assert config["reasoner_options"] == {"spans": "peaks", "top_k": 2}
    results = latest_results(out / "results.jsonl")
    assert len(results) == 2 and all(r["status"] == "ok" and len(r["intervals"]) <= 2 for r in results.values())
    with pytest.raises(ConfigurationError, match="reasoner_options"):
        cli("eval", "jsonl", "--dataset-file", ds, "--descriptions", desc, "--limit", "2", "--out", out, "--quiet",
            "--no-report", "--reasoner-opt", "spans=segments")
    with pytest.raises(ConfigurationError, match="unknown option|spans"):
        cli("eval", "jsonl", "--dataset-file", ds, "--descriptions", desc, "--limit", "2", "--out", tmp_path / "r2",
            "--quiet", "--no-report", "--reasoner-opt", "spans=blobs")


# ------------------------------------------------------------------ inputs that select nothing, baselines

def _charades(tmp_path):
    """A tiny Charades-STA layout (train videos T*, test videos V*) and a descriptions writer."""
    from _helpers_eval import write_tiny_charades

    root = write_tiny_charades(tmp_path / "data", [("T1", 0, 10, 40), ("T2", 10, 20, 40), ("T3", 20, 40, 40)],
                               [(f"V{i}", 2 * i, 2 * i + 4, 20) for i in range(4)])

    def describe(folder, ids, name=lambda v: v):
        folder.mkdir(parents=True, exist_ok=True)
        for v in ids:
            (folder / f"{name(v)}.jsonl").write_text("".join(
                json.dumps({"t": float(t), "text": f"query {t // 2}"}) + "\n" for t in range(20)))
        return folder
    return root, describe


def test_descriptions_of_another_split_are_a_loud_error_naming_it(tmp_path, capsys):
    from vidground.errors import EvaluationError

    root, describe = _charades(tmp_path)
    desc = describe(tmp_path / "train-desc", ["T1", "T2", "T3"])
    out = tmp_path / "run"
    config = RunConfig(dataset="charades-sta", data_root=str(root), descriptions=str(desc), reasoner="fake-reasoner")
    with pytest.raises(EvaluationError, match=r"4 of the 4 selected charades-sta/test videos have no descriptions "
                                              r"file in .*: 3 of the folder's files are charades-sta/train videos: "
                                              r"pass --split train") as err:
        run_eval(config, out)
    assert err.value.counts == {"missing": 4, "found": 0} and not out.exists()  # no empty run left behind
    assert cli("eval", "charades-sta", "--data-root", root, "--descriptions", desc, "--split", "train",
               "--reasoner", "fake-reasoner", "--out", out, "--quiet", "--no-report") == 0
    from pipelines.cli import main

    capsys.readouterr()
    assert main(["eval", "charades-sta", "--data-root", str(root), "--descriptions", str(desc),
                 "--reasoner", "fake-reasoner", "--out", str(tmp_path / "r2"), "--quiet"]) == 1
    err_text = capsys.readouterr().err
    assert "pass --split train" in err_text and err_text.count("\n") == 1


def test_missing_inputs_name_the_likely_cause(tmp_path):
    from vidground.errors import EvaluationError

    root, describe = _charades(tmp_path)
    config = lambda folder, **kw: RunConfig(dataset="charades-sta", data_root=str(root),  # noqa: E731
                                            descriptions=str(folder), reasoner="fake-reasoner", **kw)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvaluationError, match="holds no descriptions files"):
        run_eval(config(tmp_path / "empty"), tmp_path / "r0")
    lower = describe(tmp_path / "lower", ["V0", "V1", "V2", "V3"], name=str.lower)
    with pytest.raises(EvaluationError, match="named unlike the dataset's ids \\(file 'v0' for video 'V0'\\)"):
        run_eval(config(lower), tmp_path / "r1")
    suffixed = describe(tmp_path / "suffixed", ["V0", "V1", "V2", "V3"], name=lambda v: f"charades_{v}_captions")
    with pytest.raises(EvaluationError, match="file 'charades_V0_captions' for video 'V0'"):
        run_eval(config(suffixed), tmp_path / "r2")
    # most (3 of 4) missing: an error that offers --allow-missing; half or fewer missing: a run
    one = describe(tmp_path / "one", ["V0"])
    with pytest.raises(EvaluationError, match="3 of the 4 selected .* pass --allow-missing to run on the 1 found"):
        run_eval(config(one), tmp_path / "r3")
    s = run_eval(config(one, allow_missing=True), tmp_path / "r3")
    assert s.ran == 1 and s.missing_videos == ["V1", "V2", "V3"]
    s = run_eval(config(describe(tmp_path / "two", ["V0", "V1"])), tmp_path / "r4")
    assert s.ran == 2


def test_run_baselines_use_the_train_prior_and_the_durations_the_run_learned(tmp_path, toy):
    root, describe = _charades(tmp_path)
    desc = describe(tmp_path / "test-desc", ["V0", "V1", "V2", "V3"])
    priors = set()
    for limit in (None, 2, 3):
        s = run_eval(RunConfig(dataset="charades-sta", data_root=str(root), descriptions=str(desc),
                               reasoner="fake-reasoner", limit=limit), tmp_path / f"run{limit}")
        priors.add(s.metrics.prior)
        assert "learned on charades-sta/train" in s.metrics.baseline_notes["prior span"]
        saved = json.loads((tmp_path / f"run{limit}" / "config.json").read_text())["baseline_prior"]
        assert (saved["start"], saved["end"]) == s.metrics.prior
    assert len(priors) == 1 and priors.pop() == pytest.approx((0.25, 7 / 12))
    # a jsonl dataset without durations: the baselines use the descriptions' durations, not 0.00
    ds, descriptions = toy
    ds.write_text("".join(json.dumps({k: v for k, v in json.loads(line).items() if k != "duration"}) + "\n"
                          for line in ds.read_text().splitlines()))
    s = run_eval(cfg(ds, descriptions), tmp_path / "jsonl")
    assert s.metrics.baselines["whole video"]["mIoU"] == 20.0  # 2-s windows in 10-s videos
    assert s.metrics.baseline_notes["whole video"] == "[0, duration] for every query"
    assert "fixed: the middle half of the video" in s.metrics.baseline_notes["prior span"]


@pytest.mark.slow
def test_eval_prints_the_failures_line_and_strict_fails_the_run(toy, tmp_path, capsys):
    from vidground.errors import EvaluationError

    ds, desc = toy
    lines = ds.read_text().splitlines()
    first = json.loads(lines[0])
    first["query"] += " FAIL"
    ds.write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n")
    argv = ["eval", "jsonl", "--dataset-file", ds, "--descriptions", desc, "--reasoner", "fake-reasoner", "--quiet"]
    assert cli(*argv, "--out", tmp_path / "a") == 0
    out = capsys.readouterr().out
    assert "prediction problems: 1 of 12: 1 scored as IoU 0 (error 1)" in out
    assert "query vid0-0 (vid0: 'the person open door FAIL'): error: failed: ProviderError: fake outage" in out
    assert "fix (error): see each error (report.md lists them); rerun with --retry-failed" in out
    md = (tmp_path / "a" / "report.md").read_text()
    assert "## Prediction problems" in md and "error: failed: ProviderError: fake outage" in md
    assert "Baselines: whole video: [0, duration] for every query; prior span: [0.25, 0.75]" in md
    with pytest.raises(EvaluationError, match=r"--strict: 1 queries or videos with problems \(error 1\)"):
        cli(*argv, "--out", tmp_path / "b", "--strict")
    assert (tmp_path / "b" / "report.md").exists()  # the run and its report are written before the error
    ds.write_text("\n".join(lines) + "\n")
    assert cli(*argv, "--out", tmp_path / "c", "--strict") == 0
    assert "prediction problems: none" in capsys.readouterr().out


@pytest.mark.parametrize("name, text, what", [
    ("config.json", "garbage\n", "not valid JSON"),
    ("config.json", "[1]\n", "a JSON list, not an object"),
    ("provenance.json", "{\"torn", "not valid JSON"),
    ("missing.json", "{\"missing_videos\": 3}\n", "'missing_videos' is not a list"),
])
def test_a_damaged_run_file_is_an_input_error_naming_it(toy, tmp_path, name, text, what):
    from pipelines.report import compare_runs, write_report

    ds, desc = toy
    out, other = tmp_path / "run", tmp_path / "other"
    run_eval(cfg(ds, desc, limit=3), out)
    run_eval(cfg(ds, desc, limit=3), other)
    (out / name).write_text(text)
    results = (out / "results.jsonl").read_bytes()
    for action in (lambda: write_report(out), lambda: compare_runs(other, out)):
        with pytest.raises(InputError, match=what) as info:
            action()
        assert str(out / name) in str(info.value)
    if name == "missing.json":  # the eval writes it afresh: running it again is the repair
        assert run_eval(cfg(ds, desc, limit=3), out).already_done == 3 and write_report(out)
    else:
        with pytest.raises(InputError, match=what):
            run_eval(cfg(ds, desc, limit=3), out)
    assert (out / "results.jsonl").read_bytes() == results  # nothing computed is lost


def test_eval_samples_by_count_with_num_frames(tmp_path, capsys):
    """``eval --num-frames N`` was always refused: --fps defaulted to 1 and the two cannot be combined."""
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=3, duration=3.0)
    videos = render_toy_videos(tmp_path / "videos", ["vid0", "vid1"])
    common = ["eval", "jsonl", "--dataset-file", ds, "--videos", videos, "--describer", "fake",
              "--reasoner", "fake-reasoner", "--no-cache", "--quiet", "--no-report"]
    assert cli(*common, "--num-frames", "5", "--out", tmp_path / "count") == 0
    config = json.loads((tmp_path / "count" / "config.json").read_text())
    assert (config["fps"], config["num_frames"]) == (None, 5)
    assert "10 made" in capsys.readouterr().out  # 5 frames of each of the 2 videos, each described once
    assert cli(*common, "--out", tmp_path / "rate") == 0  # without either, 1 frame a second as before
    assert json.loads((tmp_path / "rate" / "config.json").read_text())["fps"] == 1.0
    with pytest.raises(ConfigurationError, match="give either fps"):
        cli(*common, "--fps", "2", "--num-frames", "5", "--out", tmp_path / "both")


def test_events_options_on_a_grounding_eval_are_refused_not_ignored(toy, tmp_path):
    ds, desc = toy
    common = ["eval", "jsonl", "--dataset-file", ds, "--descriptions", desc, "--reasoner", "fake-reasoner", "--quiet"]
    with pytest.raises(ConfigurationError, match=r"^--events-opt: only for activitynet-events \(dense events\), not jsonl$"):
        cli(*common, "--events-opt", "window_seconds=3", "--out", tmp_path / "a")
    with pytest.raises(ConfigurationError, match=r"^--references, --events-opt: only for activitynet-events"):
        cli(*common, "--references", ds, "--events-opt", "nested=true", "--out", tmp_path / "a")
    assert not (tmp_path / "a").exists()  # refused before the run folder is made


def test_frame_sampling_options_on_a_descriptions_eval_are_refused_not_recorded(toy, tmp_path):
    ds, desc = toy
    for extra, flags in (({"fps": 2.0}, "--fps"), ({"fps": None, "num_frames": 8, "max_side": 256}, "--num-frames, --max-side"),
                         ({"max_frames": 4}, "--max-frames")):
        with pytest.raises(ConfigurationError, match=rf"^{flags}: frame sampling has no effect with --descriptions"):
            run_eval(cfg(ds, desc, **extra), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert run_eval(cfg(ds, desc, limit=2), tmp_path / "run").ran == 2  # the defaults are not flagged
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    (tmp_path / "run" / "config.json").write_text(json.dumps({**config, "fps": 2.0}))  # as an earlier version let it be
    assert run_eval(cfg(ds, desc, limit=3), tmp_path / "run").ran == 1  # resumed: stage 2 never used the sampling


def test_ctrl_c_stops_the_video_workers_of_an_eval_too(tmp_path, capsys):
    """Ctrl-C reaches the main thread only: the video workers went on decoding and describing (and paying) to
    the end of their videos, 60 of 60 frames here; the frame streams now stop at their next frame."""
    import signal
    import threading

    from frame_describer import describers, sampling
    from _helpers_eval import FakeDescriber

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # what the command line replaces
    lock, seen, heard = threading.Lock(), [], getattr(sampling, "INTERRUPTED", threading.Event())

    class CtrlCAtTheThirdFrame(FakeDescriber):
        def describe(self, frames, *, query=None):
            waited = False
            for d in super().describe(frames, query=query):
                with lock:
                    seen.append(d.t)
                    n = len(seen)
                if n == 3:  # the user's Ctrl-C, which the terminal's SIGINT delivers to the main thread
                    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
                if n >= 3 and not waited:  # each worker, once: until the command line has heard it (at most 5 s)
                    heard.wait(5)
                    waited = True
                yield d

    describers.register("ctrl-c-at-third", CtrlCAtTheThirdFrame)
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=3, duration=3.0)
    videos = render_toy_videos(tmp_path / "videos", ["vid0", "vid1"], n_frames=30, fps=10.0)
    argv = ["eval", "jsonl", "--dataset-file", str(ds), "--videos", str(videos), "--describer", "ctrl-c-at-third",
            "--reasoner", "fake-reasoner", "--fps", "10", "--no-cache", "--quiet", "--out", str(tmp_path / "run")]
    from pipelines.cli import main

    assert main(argv) == 130 and "interrupted; every finished item is kept in" in capsys.readouterr().err
    assert 3 <= len(seen) <= 4  # the third frame, and the one the other worker held then (60 before)
    assert not sampling.INTERRUPTED.is_set()  # cleared when the command ends: the next one starts clean
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

def test_a_second_ctrl_c_does_not_let_a_waiting_worker_go_on(tmp_path, capsys):
    """The first Ctrl-C lets the frames being described finish (a slow API request): a user who sees nothing
    happen presses it again, which ends the command while a worker still waits for its describe call. The
    command's end cleared the stop, and that worker then described (and paid for) the rest of its video: 31 of 30
    frames of two videos here. A stream opened before a Ctrl-C now stays stopped; the next command's streams run."""
    import threading

    from frame_describer import describers, sampling
    from _helpers_eval import FakeDescriber

    lock, seen = threading.Lock(), []
    returned, done = threading.Event(), threading.Event()

    class SlowWhileInterrupted(FakeDescriber):
        def describe(self, frames, *, query=None):
            try:
                for d in super().describe(frames, query=query):
                    with lock:
                        seen.append(d.t)
                        n = len(seen)
                    if n == 3:  # Ctrl-C, then, while this frame's request is still out, Ctrl-C again
                        main_thread = threading.main_thread().ident
                        signal.pthread_kill(main_thread, signal.SIGINT)
                        sampling.INTERRUPTED.wait(5)
                        signal.pthread_kill(main_thread, signal.SIGINT)
                        returned.wait(5)  # the request comes back after the command has ended
                    yield d
            finally:
                if len(seen) >= 3:
                    done.set()

    describers.register("slow-while-interrupted", SlowWhileInterrupted)
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=3, duration=3.0)
    videos = render_toy_videos(tmp_path / "videos", ["vid0"], n_frames=30, fps=10.0)
    argv = ["eval", "jsonl", "--dataset-file", str(ds), "--videos", str(videos), "--describer",
            "slow-while-interrupted", "--reasoner", "fake-reasoner", "--fps", "10", "--no-cache", "--quiet",
            "--out", str(tmp_path / "run")]
    from pipelines.cli import main

    code = main(argv)
    returned.set()
    assert done.wait(10), "the worker's describe call did not end"
    assert 3 <= len(seen) <= 4  # the frame whose request was out, and at most the next one (30 before)
    assert code == 130 and capsys.readouterr().err.count("vidground: stopping") == 1
    assert not sampling.INTERRUPTED.is_set()
    with sampling.sample_frames(videos / "vid0.mp4", fps=10) as frames:  # a later command's streams run
        assert len(list(frames)) == 30


def test_run_config_samples_by_count_when_asked_from_python():
    """RunConfig's fps defaulted to 1.0, so RunConfig(num_frames=8) was always refused ('give either fps or
    num_frames, not both'), as eval --num-frames was before its --fps defaulted to none. Neither given: 1 fps."""
    assert RunConfig(dataset="jsonl", videos="v", num_frames=8).sampling.num_frames == 8
    assert RunConfig(dataset="jsonl", videos="v", num_frames=8).fps is None
    assert RunConfig(dataset="jsonl", videos="v").fps == RunConfig(dataset="jsonl", videos="v", fps=None).fps == 1.0
    with pytest.raises(ConfigurationError, match="--fps.*--num-frames"):
        RunConfig(dataset="jsonl", videos="v", fps=2.0, num_frames=8).sampling


def test_a_run_begun_with_an_ignored_dataset_file_resumes(tmp_path):
    """Before 801ed5f, --dataset-file with a bundled dataset was ignored but recorded in config.json; it is now
    refused, and resuming such a run without it failed on 'dataset_path: ... -> None' though the run had used the
    bundled data all along."""
    from pipelines.runs import _check_resume

    out = tmp_path / "run"
    out.mkdir()
    old = RunConfig(dataset="charades-sta", descriptions="d", dataset_path=str(tmp_path / "toy.jsonl"))
    (out / "config.json").write_text(json.dumps(old.to_json()))
    _check_resume(out, RunConfig(dataset="charades-sta", descriptions="d"))
    with pytest.raises(ConfigurationError, match="dataset_path"):  # a jsonl run's file is its dataset: it must match
        (out / "config.json").write_text(json.dumps(RunConfig(dataset="jsonl", descriptions="d",
                                                              dataset_path="a.jsonl").to_json()))
        _check_resume(out, RunConfig(dataset="jsonl", descriptions="d", dataset_path="b.jsonl"))


def test_ctrl_c_the_kernel_hands_a_worker_thread_still_stops_the_eval(tmp_path, capsys):
    """The kernel may deliver SIGINT to any thread of the process; Python runs the handler in the main thread,
    which, blocked in an untimed wait for the workers' results, ran it only when a video ended: the workers
    described on, 30 of 30 frames here. The main thread now wakes every quarter second."""
    import threading

    from frame_describer import describers, sampling
    from _helpers_eval import FakeDescriber

    lock, seen = threading.Lock(), []

    class CtrlCInThisThread(FakeDescriber):
        def describe(self, frames, *, query=None):
            for d in super().describe(frames, query=query):
                with lock:
                    seen.append(d.t)
                    n = len(seen)
                if n == 3:
                    signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # to this worker, not the main thread
                    sampling.INTERRUPTED.wait(5)
                yield d

    describers.register("ctrl-c-in-worker", CtrlCInThisThread)
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=3, duration=3.0)
    videos = render_toy_videos(tmp_path / "videos", ["vid0"], n_frames=30, fps=10.0)
    argv = ["eval", "jsonl", "--dataset-file", str(ds), "--videos", str(videos), "--describer", "ctrl-c-in-worker",
            "--reasoner", "fake-reasoner", "--fps", "10", "--no-cache", "--quiet", "--out", str(tmp_path / "run")]
    from pipelines.cli import main

    code = main(argv)
    assert 3 <= len(seen) <= 4, len(seen)
    assert code == 130 and "interrupted" in capsys.readouterr().err


def test_a_run_file_that_is_a_folder_is_an_input_error_naming_it(tmp_path):
    """read_run_json caught broken JSON but not a folder in the file's place: IsADirectoryError, an internal error."""
    from pipelines.runs import read_run_json

    (tmp_path / "config.json").mkdir()
    with pytest.raises(InputError, match="run file cannot be read") as info:
        read_run_json(tmp_path / "config.json")
    assert str(tmp_path / "config.json") in str(info.value)
