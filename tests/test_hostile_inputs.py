"""Hostile inputs to the Python API and the CLI end in a typed one-line error (or a valid result), never
an untyped exception that the CLI would call an internal error."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys

import pytest

from pipelines import ConfigurationError, InputError, ground

TWO = [{"t": 0, "text": "a person sits"}, {"t": 1, "text": "a person stands"}]


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(descriptions=TWO, duration="40"), InputError, "number of seconds, got str"),
    (dict(descriptions=TWO, duration=True), InputError, "number of seconds, got bool"),
    (dict(descriptions=TWO, duration=float("inf")), InputError, "finite positive"),
    (dict(descriptions=TWO, duration=-3), InputError, "finite positive"),
    (dict(descriptions=TWO, top_k=1.5), ConfigurationError, "whole number"),
    (dict(descriptions=TWO, top_k=0), ConfigurationError, "whole number"),
    (dict(descriptions=b"/tmp/d.jsonl"), InputError, "str or Path, got bytes"),
    (dict(video=b"/tmp/v.mp4"), InputError, "str or Path, got bytes"),
    (dict(descriptions=[{"t": float("nan"), "text": "a"}]), InputError, "descriptions[0].t"),
    (dict(descriptions=[{"t": float("inf"), "text": "a"}]), InputError, "descriptions[0].t"),
    (dict(descriptions=[{"t": 0, "text": "a"}, 5]), InputError, "descriptions[1]"),
    (dict(descriptions=[{"t": -1, "text": "a"}]), InputError, "descriptions[0].t"),
    (dict(descriptions=[]), InputError, "no descriptions"),
    (dict(descriptions=[{"t": 0, "text": "a"}, {"t": 1e300, "text": "b"}]), InputError, "descriptions[1].t"),
    (dict(descriptions=[{"t": 1.7e9, "text": "a"}]), InputError, "not milliseconds or Unix time"),
    (dict(descriptions=TWO, duration=1e12), InputError, "duration 1e+12 s is past any video's length"),
    (dict(descriptions=[{"t": 0, "text": "a", "step": 1e9}]), InputError, "'step' metadata (1e+09 s)"),
    (dict(descriptions=TWO, query="a\udcff b"), InputError, "not valid text"),
    (dict(descriptions=TWO, query="   "), InputError, "empty"),
    (dict(descriptions=TWO, query=b"abc"), InputError, "must be text"),
])
def test_bad_python_arguments_are_typed_one_line_errors(kwargs, error, words):
    kwargs = {"query": "a person stands", "reasoner": "naive", **kwargs}
    with pytest.raises(error) as err:
        ground(**kwargs)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_query_of_bytes_that_are_not_utf8_on_the_command_line(tmp_path):
    desc = tmp_path / "d.jsonl"
    desc.write_text('{"t": 0, "text": "a person sits"}\n{"t": 1, "text": "a person stands"}\n')
    out = subprocess.run([sys.executable.encode(), b"-m", b"pipelines.cli", b"ground", b"--descriptions",
                          os.fsencode(desc), b"caf\xe9 person", b"--reasoner", b"naive"],
                         capture_output=True, timeout=300)
    err = out.stderr.decode("utf-8", "replace")
    assert out.returncode == 1 and "internal error" not in err and "not valid text" in err


ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m\r\n\u202eevil"


def test_control_characters_are_escaped_in_what_the_tables_print(capsys):
    """A query, a caption or an answer with terminal escape sequences is printed as visible escapes: it
    cannot retitle, clear or recolour the user's terminal, nor break the table's lines."""
    from pipelines.cli import format_answer_table, format_result_table
    from pipelines.demo import format_demo
    from vidground.types import Answer

    res = ground(descriptions=TWO, query=f"a person {ESCAPES} stands", reasoner="naive")
    res = res.model_copy(update={"warnings": [f"model said {ESCAPES}"], "video": f"v{ESCAPES}.mp4"})
    ans = Answer(question=f"why {ESCAPES}?", answer=f"because {ESCAPES}", choices=["a", f"b{ESCAPES}"], choice=1,
                 choice_scores=[0.1, 0.9], duration=2)
    demo = {"video": "v.mp4", "duration": 2, "frames": 2, "describer": "cv", "seconds": {"describe": 1},
            "reasoner": "embedding", "found": 0, "events": [
                {"query": f"q{ESCAPES}", "truth": [0, 1], "prediction": None, "iou": 0.0}]}
    for text in (format_result_table(res), format_answer_table(ans), format_demo(demo)):
        assert not any(ord(c) < 0x20 and c != "\n" or 0x7F <= ord(c) < 0xA0 or c == "\u202e" for c in text)
        assert "\\x1b[31mred\\x1b[0m\\x0d\\x0a\\u202eevil" in text
    plain = res.model_copy(update={"query": "q", "warnings": ["w"], "video": "v"})
    assert format_result_table(res).count("\n") == format_result_table(plain).count("\n")  # no line broken


def test_the_demo_table_shows_whole_queries():
    from pipelines.demo import format_demo

    long = "the person walks into the room from the left and then sits down on the chair"
    demo = {"video": "v.mp4", "duration": 2, "frames": 2, "describer": "cv", "seconds": {"describe": 1},
            "reasoner": "embedding", "found": 1, "events": [
                {"query": long, "truth": [0, 1], "prediction": [0, 1], "iou": 1.0},
                {"query": "short", "truth": [0, 1], "prediction": None, "iou": 0.0}]}
    rows = format_demo(demo).splitlines()
    assert any(row.startswith(long + " ") for row in rows)
    assert rows[2].startswith("query ") and len(rows[2]) == len(rows[3]) == len(rows[4])  # one column width


@pytest.mark.parametrize("argv, missing", [
    (["ground"], "VIDEO QUERY"), (["ground", "--descriptions", "d.jsonl"], "required: QUERY"),
    (["ask"], "VIDEO QUESTION"), (["ask", "--descriptions", "d.jsonl"], "required: QUESTION"),
])
def test_a_missing_positional_is_named_as_the_command_line_needs_it(argv, missing, capsys):
    from pipelines.cli import main

    with pytest.raises(SystemExit) as end:
        main(argv)
    assert end.value.code == 2 and missing in capsys.readouterr().err


@pytest.mark.parametrize("special", ["/dev/null", "fifo"])
def test_a_special_file_as_a_cache_is_refused_and_nothing_is_created_beside_it(special, tmp_path, demo_video):
    """SQLite on /dev/null made a world-writable /dev/null-journal; a FIFO would block."""
    from frame_describer.cache import DescriptionCache
    from temporal_reasoner.embedding_store import EmbeddingStore

    if special == "fifo":
        special = str(tmp_path / "cache.fifo")
        os.mkfifo(special)
    folder = os.path.dirname(special)
    before = set(os.listdir(folder))
    with pytest.raises(ConfigurationError, match=r"(character device|FIFO), not a file"):
        DescriptionCache(special)
    store = EmbeddingStore(special)  # the embedding cache is an accelerator: it warns and goes on without
    assert store.lookup("model-tag", ["a sentence"]) == {}  # a miss, not an error
    assert store.broken and "not a file" in store.broken
    assert set(os.listdir(folder)) == before  # no -journal, -wal or -shm beside it
    out = subprocess.run([sys.executable, "-m", "pipelines.cli", "describe", str(demo_video[0]), "--cache", special],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "not a file" in out.stderr and "internal error" not in out.stderr
    assert set(os.listdir(folder)) == before


def test_a_run_started_from_python_writes_no_key_and_its_files_get_one_mode(tmp_path):
    """A key given as a backend option from Python (not the command line) reached config.json, and run
    files mixed mkstemp's 0600 with 0644: no file of the run folder holds the key (nor a URL carrying
    it), and every file gets the umask's mode."""
    from _helpers_eval import FakeDescriber, FakeReasoner, render_toy_videos, write_toy_dataset
    from frame_describer import describers
    from pipelines.runs import RunConfig, run_eval
    from temporal_reasoner import reasoners

    secret = "sk-hostile-0123456789abcdefKLMN"

    class KeyedDescriber(FakeDescriber):
        def __init__(self, arg=None, *, api_key=None, base_url=None):
            super().__init__(arg)
            self.api_key, self.base_url = api_key, base_url

        def settings(self):
            return {**super().settings(), "api_key": self.api_key, "base_url": self.base_url}

    describers.register("keyed-hostile", KeyedDescriber)
    reasoners.register("fake-reasoner", FakeReasoner)
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=2, duration=3.0)
    videos = render_toy_videos(tmp_path / "videos", ["vid0"])
    cache = tmp_path / "cache.sqlite"
    config = RunConfig(dataset="jsonl", dataset_path=str(ds), videos=str(videos), describer="keyed-hostile",
                       reasoner="fake-reasoner", cache=str(cache),
                       describer_options={"api_key": secret, "base_url": f"https://me:{secret}@example.org/v1"})
    old = os.umask(0o022)
    try:
        run_eval(config, tmp_path / "run")
    finally:
        os.umask(old)
    written = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert {"config.json", "provenance.json", "results.jsonl"} <= {p.name for p in written}
    for p in written:
        assert secret.encode() not in p.read_bytes(), p
    assert {oct(os.stat(p).st_mode & 0o777) for p in written} == {"0o644"}


def test_bad_bytes_past_the_first_line_are_named_by_line(tmp_path):
    """A UnicodeDecodeError had no line number; the first line being fine must not hide the bad one."""
    from frame_describer.descriptions_io import read_descriptions

    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"t": 0, "text": "a"}\n{"t": 1, "text": "caf\xe9"}\n')
    with pytest.raises(InputError, match=r"d\.jsonl:2: not UTF-8"):
        read_descriptions(path)


@pytest.mark.parametrize("content, words", [
    (b'{"qid": "vid0-0", "pred_relevant_windows": [[0, 2]]}\nnot json\n', "p.jsonl:2: not valid JSON"),
    (b'{"qid": "vid0-0", "pred_relevant_windows": [[0, 2]], "x": "caf\xe9"}\n', "p.jsonl:1: not UTF-8"),
], ids=["not-json", "latin-1"])
def test_a_damaged_predictions_file_is_named_by_line(tmp_path, content, words):
    from _helpers_eval import cli, write_toy_dataset

    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=1)
    pred = tmp_path / "p.jsonl"
    pred.write_bytes(content)
    with pytest.raises(InputError) as err:
        cli("score", "--dataset", "jsonl", "--dataset-file", ds, pred)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_fifo_among_an_evals_descriptions_is_not_opened(tmp_path):
    """Opening a FIFO waits for a writer forever: the video it stands for counts as missing instead."""
    from _helpers_eval import FakeReasoner, write_toy_dataset
    from pipelines.runs import RunConfig, run_eval
    from temporal_reasoner import reasoners

    reasoners.register("fake-reasoner", FakeReasoner)
    ds, desc = write_toy_dataset(tmp_path / "data", n_videos=2, per_video=1)
    (desc / "vid1.jsonl").unlink()
    os.mkfifo(desc / "vid1.jsonl")
    config = RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner="fake-reasoner",
                       allow_missing=True)
    run_eval(config, tmp_path / "run")
    results = (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["qid"] for line in results] == ["vid0-0"]


def test_report_on_a_fifo_is_not_a_run_folder(tmp_path):
    from _helpers_eval import cli

    fifo = tmp_path / "run.fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a run folder"):
        cli("report", fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.parametrize("kind", ["fifo", "unreadable"])
@pytest.mark.parametrize("where", ["queries", "descriptions", "subset", "predictions", "dataset-file"])
def test_special_or_unreadable_input_files_are_one_line_errors_without_blocking(kind, where, tmp_path, capsys):
    """A FIFO given as --queries blocked forever; an unreadable file was an 'internal error: PermissionError';
    a FIFO given to score was 'file not found'."""
    from pipelines.cli import main

    good_desc = tmp_path / "d.jsonl"
    good_desc.write_text("".join(json.dumps(d) + "\n" for d in TWO))
    dataset = tmp_path / "ds.jsonl"
    dataset.write_text(json.dumps({"qid": "q", "video": "d", "query": "a person stands", "duration": 2,
                                   "windows": [[1, 2]]}) + "\n")
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"qid": "q", "pred_relevant_windows": [[1, 2, 1]]}) + "\n")
    bad = tmp_path / "bad"
    if kind == "fifo":
        os.mkfifo(bad)
    else:
        bad.write_text("a person\n")
        bad.chmod(0)
    argv = {
        "queries": ["ground", "--descriptions", str(good_desc), "--queries", str(bad), "--reasoner", "naive"],
        "descriptions": ["ground", "--descriptions", str(bad), "a person", "--reasoner", "naive"],
        "subset": ["eval", "jsonl", "--dataset-file", str(dataset), "--descriptions", str(tmp_path), "--subset",
                   str(bad), "--reasoner", "naive", "--out", str(tmp_path / "run")],
        "predictions": ["score", str(bad), "--dataset", "jsonl", "--dataset-file", str(dataset)],
        "dataset-file": ["score", str(preds), "--dataset", "jsonl", "--dataset-file", str(bad)],
    }[where]
    if kind == "unreadable" and os.geteuid() == 0:  # root reads any file: run it without that capability
        if not shutil.which("capsh"):
            pytest.skip("running as root without capsh to drop the file-permission capabilities")
        done = subprocess.run(["capsh", "--drop=cap_dac_override,cap_dac_read_search", "--", "-c",
                               shlex.join([sys.executable, "-m", "pipelines.cli", *argv])],
                              capture_output=True, text=True, timeout=300)
        code, err = done.returncode, "\n".join(x for x in done.stderr.splitlines() if "loading the" not in x) + "\n"
    else:
        code, err = main(argv), capsys.readouterr().err
    assert code == 1 and "internal error" not in err and err.count("\n") == 1, err
    assert ("is a FIFO, not a regular" if kind == "fifo" else "Permission denied") in err


@pytest.mark.parametrize("content", ["file", "fifo"])
def test_eval_out_that_is_not_a_folder_is_a_configuration_error(content, tmp_path, capsys):
    from pipelines.cli import main

    (tmp_path / "descs").mkdir()
    (tmp_path / "descs" / "d.jsonl").write_text("".join(json.dumps(d) + "\n" for d in TWO))
    dataset = tmp_path / "ds.jsonl"
    dataset.write_text(json.dumps({"qid": "q", "video": "d", "query": "a person stands", "duration": 2,
                                   "windows": [[1, 2]]}) + "\n")
    out = tmp_path / "out"
    out.write_text("not a folder") if content == "file" else os.mkfifo(out)
    argv = ["eval", "jsonl", "--dataset-file", str(dataset), "--descriptions", str(tmp_path / "descs"),
            "--reasoner", "naive", "--out", str(out / "sub" if content == "file" else out)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "internal error" not in err and "give a folder for the run" in err
    assert stat.S_ISFIFO(os.stat(out).st_mode) if content == "fifo" else out.read_text() == "not a folder"


def test_describe_to_a_link_to_stdout_in_a_pipe_and_to_dash(tmp_path, demo_video):
    """A link to /proc/self/fd/1 resolved to 'pipe:[N]', which cannot be opened: nothing was written."""
    link = tmp_path / "out"
    link.symlink_to("/proc/self/fd/1")
    for target in (str(link), "-"):
        out = subprocess.run([sys.executable, "-m", "pipelines.cli", "describe", str(demo_video[0]), "--fps", "0.5",
                              "-o", target], capture_output=True, text=True, timeout=300)
        lines = [json.loads(x) for x in out.stdout.splitlines()]
        assert out.returncode == 0 and len(lines) > 10 and lines[0]["t"] == pytest.approx(0, abs=0.1), out.stderr
        assert target == "-" or f"wrote {len(lines)} descriptions" in out.stderr
    assert link.is_symlink() and not (tmp_path / "-").exists() and not os.path.exists("-")


def test_a_key_in_the_base_url_is_kept_out_of_settings_and_the_cache(tmp_path):
    """`--base-url http://host/v1?api_key=KEY` put the key into the description cache's settings table."""
    from frame_describer.cache import DescriptionCache, settings_key
    from frame_describer.openai_describer import OpenAIDescriber

    key = "sk-in-the-url-0123456789"
    describer = OpenAIDescriber("gpt-4o-mini", base_url=f"http://127.0.0.1:9/v1?api_key={key}&api-version=2024",
                                api_key="sk-other")
    assert key not in json.dumps(describer.settings()) and "api_key=REDACTED&api-version=2024" in describer.base_url
    from vidground.types import FrameDescription

    cache = DescriptionCache(tmp_path / "c.sqlite")
    assert cache.store("fp", settings_key(describer), [FrameDescription(t=0, text="a frame")],
                       settings=describer.settings()) == 1  # what CachedDescriber stores
    cache.close()
    assert key.encode() not in (tmp_path / "c.sqlite").read_bytes()
