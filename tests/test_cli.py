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
from vidground.errors import ConfigurationError, InputError
from pipelines.cli import main
from pipelines.datasets import data_root

DESCS = [FrameDescription(t=float(t), text="A person is standing in the kitchen." if 3 <= t <= 5 else "An empty room.")
         for t in range(8)]


@pytest.fixture()
def desc_file(tmp_path):
    path = tmp_path / "k.descriptions.jsonl"
    write_descriptions(path, DESCS)
    return path


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_ground_video_json(demo_video, capsys):
    video, events = demo_video
    assert main(["ground", str(video), events[1].query, "--json", "--fps", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["video"] == str(video) and data["intervals"]


def test_describe_to_stdout(demo_video, capsys):
    assert main(["describe", str(demo_video[0]), "--num-frames", "4"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 4


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_verbose_prints_to_stderr_in_a_real_process(desc_file):
    out = subprocess.run([sys.executable, "-m", "pipelines.cli", "--verbose", "ground", "--descriptions",
                          str(desc_file), "a person"], capture_output=True, text=True, check=True)
    assert "INFO vidground: grounded 'a person' with embedding" in out.stderr


@pytest.mark.parametrize("name, published", [
    ("vtggpt_infer_val", {"R1@0.5": "59.03", "R1@0.7": "38.90", "mAP@0.5": "56.11", "mAP@0.75": "35.44", "mAP": "35.57"}),
    ("momentdetr_sample_val_preds",
     {"R1@0.5": "53.94", "R1@0.7": "34.84", "mAP@0.5": "54.96", "mAP@0.75": "31.01", "mAP": "32.20"}),
])
@pytest.mark.slow
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


def _one_line_error(argv, tmp_path, monkeypatch, capsys) -> str:
    """Run the CLI beside a two-line descriptions file d.jsonl; it must fail with exit 1 and one line on stderr."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.jsonl").write_text('{"t": 0, "text": "a person"}\n{"t": 1, "text": "a room"}\n')
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("argv, hint", [
    (["score", "p.jsonl", "--dataset", "charades_sta"], "unknown dataset 'charades_sta' (did you mean 'charades-sta'?)"),
    (["eval", "QVHighlights", "--descriptions", ".", "--out", "o"], "(did you mean 'qvhighlights'?)"),
    (["ground", "--reasoner", "openai/gpt-4o", "--descriptions", "d.jsonl", "q"],
     "unknown reasoner backend 'openai/gpt-4o' (did you mean 'openai:gpt-4o'?); choose one of:"),
    (["ground", "--reasoner", "embeding", "--descriptions", "d.jsonl", "q"], "(did you mean 'embedding'?)"),
])
def test_did_you_mean_for_datasets_and_backend_specs(argv, hint, tmp_path, monkeypatch, capsys):
    err = _one_line_error(argv, tmp_path, monkeypatch, capsys)
    assert hint in err, err


def test_backend_spec_suggestions_keep_the_model_name_as_typed():
    from frame_describer import describers

    with pytest.raises(ConfigurationError, match=r"did you mean 'hf:Qwen/Qwen2.5-VL-3B-Instruct'\?"):
        describers.check("hf/Qwen/Qwen2.5-VL-3B-Instruct")
    assert describers.suggest("opnai:gpt-4o-mini") == "openai:gpt-4o-mini"
    assert describers.suggest("zzzz") is None


# --- several queries per call (issue #17) -------------------------------------------------------

def _count_calls(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.slow
def test_several_queries_of_a_video_describe_it_once_and_build_the_reasoner_once(demo_video, monkeypatch, capsys):
    import frame_describer.sampling
    import temporal_reasoner

    video, events = demo_video
    described = _count_calls(monkeypatch, frame_describer.sampling, "sample_frames")  # a describe decodes
    built = _count_calls(monkeypatch, temporal_reasoner.reasoners, "create")
    assert main(["ground", str(video), "-q", events[0].query, "-q", events[1].query, "--json", "--fps", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["query"] for r in data] == [events[0].query, events[1].query]
    assert len(described) == 1 and len(built) == 1
    assert all(r["video"] == str(video) and r["describer"] == "cv" and r["intervals"] for r in data)
    assert "describe" in data[0]["timings"] and "describe" not in data[1]["timings"]  # done once, reported once
    for row, ev in zip(data, events):
        best = row["intervals"][0]
        inter = max(0.0, min(best["end"], ev.end) - max(best["start"], ev.start))
        assert inter / (max(best["end"], ev.end) - min(best["start"], ev.start)) >= 0.5, (row["query"], best)


def test_queries_file_and_q_on_descriptions_print_a_table_per_query(desc_file, tmp_path, capsys):
    qfile = tmp_path / "queries.txt"
    qfile.write_text("# kitchen\n\n  a person stands in the kitchen  \n#an empty room\nan empty room\n", encoding="utf-8")
    assert main(["ground", "--descriptions", str(desc_file), "-q", "a person", "--queries", str(qfile)]) == 0
    out = capsys.readouterr().out
    headings = [line for line in out.splitlines() if line.startswith("== ")]
    assert headings == ["== query 1 of 3: a person", "== query 2 of 3: a person stands in the kitchen",
                        "== query 3 of 3: an empty room"]
    blocks = out.split("\n== ")
    assert "query:     a person stands in the kitchen" in blocks[1] and "query:     an empty room" in blocks[2]
    # the positional form prints one result, not a list; -q prints a list even for one query
    assert main(["ground", "--descriptions", str(desc_file), "a person", "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), dict)
    assert main(["ground", "--descriptions", str(desc_file), "-q", "a person", "--json"]) == 0
    assert [r["query"] for r in json.loads(capsys.readouterr().out)] == ["a person"]


def test_queries_from_stdin(desc_file, monkeypatch, capsys):
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a person\nan empty room\n")))
    assert main(["ground", "--descriptions", str(desc_file), "--queries", "-", "--json"]) == 0
    assert [r["query"] for r in json.loads(capsys.readouterr().out)] == ["a person", "an empty room"]


@pytest.mark.parametrize("content, needle", [
    (None, "queries.txt: queries file not found"),
    (b"", "queries.txt: the queries file holds no query"),
    (b"# only a comment\n\n   \n", "queries.txt: the queries file holds no query"),
    (b"a person\n\xff\xfe caf\xe9\n", "queries.txt:2: the queries file is not UTF-8 text (byte 0xff at offset 9)"),
    ("folder", "queries.txt: is a folder, not a queries file"),
], ids=["missing", "empty", "comments-only", "not-utf8", "folder"])
def test_a_bad_queries_file_is_a_one_line_error(content, needle, desc_file, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    if content == "folder":
        (tmp_path / "queries.txt").mkdir()
    elif content is not None:
        (tmp_path / "queries.txt").write_bytes(content)
    assert main(["ground", "--descriptions", str(desc_file), "--queries", "queries.txt"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vidground: error: ") and needle in err and err.count("\n") == 1, err


@pytest.mark.parametrize("argv, needle", [
    (["ground", "--descriptions", "d.jsonl", "-q", "a person", "-q", "  "], "query is empty"),
])
def test_several_queries_usage_errors(argv, needle, tmp_path, monkeypatch, capsys):
    err = _one_line_error(argv, tmp_path, monkeypatch, capsys)
    assert needle in err, err
    with pytest.raises(SystemExit) as e:  # no query at all is still argparse's usage error
        main(["ground", "--descriptions", "d.jsonl"])
    assert e.value.code == 2


# --- a note while a model loads (issue #17) -----------------------------------------------------

@pytest.mark.slow
def test_a_slow_model_load_gets_one_note_on_stderr_and_json_stays_clean(desc_file, tmp_path, monkeypatch, capsys,
                                                                        caplog):
    from temporal_reasoner import embedding

    monkeypatch.setenv("VIDGROUND_EMBEDDING_CACHE", "off")  # no stored vectors: the model must load
    monkeypatch.setattr("vidground.models._MODELS", {})  # nothing loaded in this process yet
    model = tmp_path / "minilm"
    model.symlink_to(embedding._default_model_path(), target_is_directory=True)
    argv = ["ground", "--descriptions", str(desc_file), "a person", "--json", "--reasoner", f"embedding:{model}"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["query"] == "a person"
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"vidground: loading the sentence-transformers model {model} on ") and err.endswith(" …\n")
    assert main(argv) == 0  # loaded: no note
    assert capsys.readouterr().err == ""
    monkeypatch.setattr("vidground.models._MODELS", {})
    with caplog.at_level(logging.INFO):  # --verbose: the INFO record says it, no second note
        assert main(argv + ["--verbose"]) == 0
    assert "vidground: loading" not in capsys.readouterr().err
    assert [r.levelno for r in caplog.records if r.name == "temporal_reasoner.embedding"
            and r.getMessage().startswith("loading the sentence-transformers model")] == [logging.INFO]


# --- connection errors (issue #17) --------------------------------------------------------------

def test_refused_connection_names_the_url_attempts_and_time_and_verbose_shows_retries(demo_video, caplog, capsys):
    import socket

    with socket.socket() as s:  # a local port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = ["ground", str(demo_video[0]), "a person", "--describer", "openai:x", "--base-url",
            f"http://127.0.0.1:{port}/v1", "--num-frames", "1", "--describer-opt", "max_retries=2",
            "--describer-opt", "retry_base_delay=0.001", "--describer-opt", "concurrency=1"]
    with caplog.at_level(logging.INFO):
        assert main(argv + ["--verbose"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vidground: error: openai:x: connection failed (") and err.count("\n") == 1, err
    assert f" at http://127.0.0.1:{port}/v1/chat/completions: gave up after 3 attempts in " in err
    retries = [r.getMessage() for r in caplog.records if r.name == "vidground.chat"]
    assert [m.split("; ")[1].split(" in ")[0] for m in retries] == ["retry 1 of 2", "retry 2 of 2"], retries
    caplog.clear()
    assert main(argv) == 1  # without --verbose: the error alone
    assert [r for r in caplog.records if r.name == "vidground.chat"] == []


def test_an_interrupted_describe_says_what_it_kept_and_the_rerun_takes_it_from_the_cache(tmp_path, capsys, monkeypatch):
    from frame_describer import describers
    from _helpers_eval import FakeDescriber, render_toy_videos

    monkeypatch.delenv("VIDGROUND_CACHE", raising=False)

    class Interrupted(FakeDescriber):
        """Ctrl-C after ``stop_after`` frames (the fake describer's text, so a rerun may use what it cached)."""
        stop_after: int | None = 4

        def describe(self, frames, *, query=None):
            for n, d in enumerate(super().describe(frames, query=query)):
                if n == Interrupted.stop_after:
                    raise KeyboardInterrupt
                yield d

    describers.register("interrupted", Interrupted)
    video = render_toy_videos(tmp_path / "videos", ["v"], n_frames=30, fps=10.0) / "v.mp4"
    cache, out = tmp_path / "d.sqlite", tmp_path / "v.jsonl"
    argv = ["describe", str(video), "--describer", "interrupted", "--fps", "4", "-o", str(out), "--cache", str(cache)]
    assert main(argv) == 130 and not out.exists()
    assert f"interrupted; the frames described so far are kept in the description cache {cache}" in capsys.readouterr().err
    Interrupted.stop_after = None
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "wrote 12 descriptions" in err and "4 from the description cache; 8 requests" in err  # 4 paid once
    Interrupted.stop_after = 4
    assert main(argv[:-2]) == 130  # a plug-in describer is not cached by default: nothing kept, and it says so
    assert ("describer 'interrupted' is not one of vidground's own, so nothing described was kept: --cache FILE"
            in capsys.readouterr().err)
    assert main(argv[:-2] + ["--no-cache"]) == 130
    assert "(--no-cache: nothing described was kept" in capsys.readouterr().err


def test_an_interrupted_eval_points_at_its_results(monkeypatch, tmp_path, capsys):
    from pipelines import eval_cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(eval_cli, "cmd_eval", interrupted)
    assert main(["eval", "qvhighlights", "--descriptions", str(tmp_path), "--out", str(tmp_path / "run")]) == 130
    assert f"every finished item is kept in {tmp_path / 'run' / 'results.jsonl'}: the same command resumes" in \
        capsys.readouterr().err


def test_every_describer_backend_is_in_the_help(capsys):
    for command in ("ground", "describe", "eval"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for spec in ("cv (", "openai:MODEL", "hf:MODEL", "replay:CAPTIONS_FILE"):  # replay was in no --help
            assert spec in text, (command, spec)


@pytest.mark.parametrize("command", [["ground"], ["events"], ["ask"]])
def test_stage_1_options_with_descriptions_are_refused_not_ignored(desc_file, command, tmp_path):
    question = [] if command == ["events"] else ["what happens"]
    with pytest.raises(ConfigurationError, match=r"^--describer, --fps, --max-side, --cache: stage 1 options have no "
                                                 r"effect with --descriptions"):
        main([*command, "--descriptions", str(desc_file), *question, "--describer", "cv", "--fps", "2",
              "--max-side", "128", "--cache", str(tmp_path / "c.sqlite"), "--debug"])
    assert not (tmp_path / "c.sqlite").exists()


def test_demo_keep_that_cannot_be_a_folder_is_a_one_line_error(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ConfigurationError, match=r"^--keep .*afile: is a file; give a folder"):
        main(["demo", "--keep", str(afile), "--debug"])
    with pytest.raises(ConfigurationError, match=r"^--keep .*afile/sub: cannot make the folder \(Not a directory\)$"):
        main(["demo", "--keep", str(afile / "sub"), "--debug"])
    assert afile.read_text() == "x"


def test_an_empty_query_among_several_is_named_by_its_place(desc_file):
    with pytest.raises(InputError, match=r"^-q number 2 of 3: the query is empty$"):
        main(["ground", "--descriptions", str(desc_file), "-q", "a door", "-q", "   ", "-q", "a cat", "--debug"])


def test_a_duration_given_with_a_video_is_refused_not_put_in_place_of_the_videos(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\0")  # refused before the video is opened
    for command in (["ground", str(video), "a door"], ["events", str(video)], ["ask", str(video), "why"]):
        with pytest.raises(ConfigurationError, match="^--duration applies to --descriptions"):
            main([*command, "--duration", "100", "--debug"])


@pytest.mark.parametrize("argv, needle", [
    (["ground", "only-a-query"], "give VIDEO and QUERY"),
    (["ground", "--descriptions", "x.jsonl", "v.mp4", "q"], "only the QUERY"),
    (["ask", "only-a-question"], "give VIDEO and QUESTION"),
    (["events", "v.mp4", "extra"], "give one VIDEO"),
    (["events", "--descriptions", "d.jsonl", "v.mp4"], "give no video"),
    (["ground", "v.mp4", "a query", "-q", "another"], "give the VIDEO alone"),
    (["ground", "-q", "a query"], "give the VIDEO alone"),
    (["ground", "--descriptions", "d.jsonl", "a query", "-q", "another"], "give no VIDEO or QUERY argument"),
])
def test_a_wrong_count_of_arguments_is_a_usage_error(argv, needle, capsys, tmp_path, monkeypatch):
    """README: 'a malformed command line, such as a missing argument, prints the usage and exits 2'; a VIDEO without
    its QUERY (or one argument too many) was a one-line error with exit 1 (helper U's audit)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: vidground") and ": error: " in err and needle in err, err
