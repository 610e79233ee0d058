"""U10 (FX-U): long video ids and file names, transcript names one per video, SIGTERM, encoding messages.

- a legal 240-character video id aborted the whole eval ("transcripts/xxx....jsonl: cannot write here (File name too
  long)"): the temporary name output_file writes through was the name plus host, pid and suffix, over 255 bytes; a
  transcript that cannot be written now costs the report its transcript, not the run;
- ``my video`` and ``my_video`` had one transcripts/my_video.jsonl: the report showed one video's transcript as the
  other's; an old run folder's names are still read;
- SIGTERM (Slurm, Kubernetes, ``timeout``) killed a command silently (exit 143, no output, the finished queries'
  JSON lost); it now stops as a first Ctrl-C does, said by name, exit 143. The signal is sent by the fake reasoner at
  a counted answer, no clock read;
- a Latin-1 or UTF-16 captions file was called binary; a relative $XDG_CACHE_HOME was taken relative to the cwd.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from frame_describer.caption_formats import read_captions
from frame_describer.descriptions_io import read_descriptions
from pipelines.report import write_report
from pipelines.runs import (RunConfig, _safe, read_jsonl, read_transcript, run_eval, transcript_name,
                            transcript_path)
from temporal_reasoner import reasoners
from vidground import files
from vidground.errors import InputError
from vidground.files import output_file, user_cache_dir

from _helpers_eval import FakeReasoner, register_fakes

register_fakes()

LONG_ID = "v" * 240  # legal: 246 bytes with .jsonl


def _dataset(folder: Path, videos: list[str], per_video: int = 2) -> tuple[Path, Path]:
    """A JSONL dataset of ``videos`` (ids as given) and a descriptions folder whose texts name each video."""
    desc = folder / "descriptions"
    desc.mkdir(parents=True)
    lines = []
    for i, vid in enumerate(videos):
        rows = [{"t": float(t), "text": f"clip {i} person {'open door' if t < 5 else 'drink coffee'}", "video": vid}
                for t in range(10)]
        (desc / f"{vid}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        lines += [{"qid": f"q{i}-{k}", "video": vid, "query": "the person drink coffee", "duration": 10.0,
                   "windows": [[5.0, 10.0]]} for k in range(per_video)]
    ds = folder / "ds.jsonl"
    ds.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return ds, desc


def _config(tmp_path: Path, videos: list[str], reasoner: str = "fake-reasoner", **kw: Any) -> RunConfig:
    ds, desc = _dataset(tmp_path / "data", videos)
    return RunConfig(dataset="jsonl", dataset_path=str(ds), descriptions=str(desc), reasoner=reasoner, **kw)


# ---------------------------------------------------------------------------------------------- long names


def test_output_file_writes_a_legal_250_byte_name_even_on_a_host_with_a_long_name(tmp_path, monkeypatch):
    monkeypatch.setattr(files.socket, "gethostname", lambda: "node-" + "x" * 80 + ".cluster.example.org")
    target = tmp_path / ("d" * 244 + ".jsonl")  # 250 bytes: the file system takes it
    with output_file(target) as fh:
        fh.write("ok\n")
    assert target.read_text() == "ok\n"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary left beside it


def test_a_long_names_temporaries_of_a_killed_writer_are_still_swept(tmp_path, monkeypatch):
    target = tmp_path / ("d" * 244 + ".jsonl")
    stale = tmp_path / f"{files._temporary_prefix(target)}999999999.abcdefgh.tmp"  # no such process
    stale.write_text("half")
    assert len(stale.name.encode()) <= 255
    with output_file(target) as fh:
        fh.write("ok\n")
    assert not stale.exists()


def test_bounded_name_keeps_a_short_name_and_cuts_a_long_one_with_a_hash():
    assert files.bounded_name("short", 20) == "short"
    a, b = files.bounded_name("é" * 100 + "a", 50), files.bounded_name("é" * 100 + "b", 50)
    assert a != b and len(a.encode()) <= 50 and len(b.encode()) <= 50
    a.encode("utf-8")  # cut at a character's boundary


def test_an_eval_of_a_240_character_video_id_runs_to_the_end_and_writes_its_transcript(tmp_path):
    out = tmp_path / "run"
    summary = run_eval(_config(tmp_path, [LONG_ID, "short"]), out)
    results = read_jsonl(out / "results.jsonl")
    assert len(results) == 4 and all(r["status"] == "ok" for r in results)
    assert summary.ran == 4
    name = transcript_name(LONG_ID)
    assert len(name.encode()) <= 160 and (out / "transcripts" / name).is_file()
    assert read_transcript(out, LONG_ID)[0]["video"] == LONG_ID


def test_a_transcript_that_cannot_be_written_is_a_warning_and_the_run_goes_on(tmp_path, monkeypatch, caplog):
    import pipelines.runs as runs

    def refuse(path, descriptions, **metadata):
        if metadata["video"] == "a":
            raise InputError("cannot write here (File name too long)", path=path)
        return files_written.append(path)

    files_written: list[Path] = []
    real = runs.write_descriptions
    monkeypatch.setattr(runs, "write_descriptions", lambda p, d, **m: (refuse(p, d, **m), real(p, d, **m))[1])
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="vidground"):
        run_eval(_config(tmp_path, ["a", "b"]), out)
    assert sorted(r["qid"] for r in read_jsonl(out / "results.jsonl")) == ["q0-0", "q0-1", "q1-0", "q1-1"]
    videos = {v["video"]: v for v in read_jsonl(out / "videos.jsonl")}
    assert "File name too long" in videos["a"]["transcript_error"] and "transcript_error" not in videos["b"]
    assert "video a: its transcript was not written" in caplog.text
    assert read_transcript(out, "a") is None and read_transcript(out, "b") is not None


# ------------------------------------------------------------------------------------------ one name a video


def test_transcript_names_are_one_per_video_id():
    ids = ["my video", "my_video", "my/video", "my~video", "..", ".", "", LONG_ID, LONG_ID + "x", "vid0"]
    names = [transcript_name(v) for v in ids]
    assert len(set(names)) == len(ids)
    assert transcript_name("vid0") == "vid0.jsonl"  # a safe id keeps its name (descriptions folders reuse it)
    assert all("/" not in n and len(n.encode()) <= 160 and n not in (".jsonl", "..jsonl") for n in names)


def test_the_report_shows_each_video_its_own_transcript(tmp_path):
    out = tmp_path / "run"
    run_eval(_config(tmp_path, ["my video", "my_video"]), out)
    assert transcript_path(out, "my video") != transcript_path(out, "my_video")
    assert read_transcript(out, "my video")[0]["text"].startswith("clip 0 ")
    assert read_transcript(out, "my_video")[0]["text"].startswith("clip 1 ")
    write_report(out)
    page = (out / "index.html").read_text()
    for video, clip in (("my video", "clip 0"), ("my_video", "clip 1")):
        anchor = "v-" + transcript_name(video).removesuffix(".jsonl")
        section = page.split(f"<details id='{anchor}'>", 1)[1].split("</details>", 1)[0]
        assert f"<summary>{video} transcript</summary>" in section and clip in section
        assert f"href='#{anchor}'" in page


def test_an_old_run_folders_transcript_is_still_read_when_it_names_the_video(tmp_path):
    (tmp_path / "transcripts").mkdir()
    old = tmp_path / "transcripts" / f"{_safe('my video')}.jsonl"  # my_video.jsonl, as runs wrote it before
    old.write_text(json.dumps({"t": 0.0, "text": "from my video", "video": "my video"}) + "\n")
    assert read_transcript(tmp_path, "my video")[0]["text"] == "from my video"
    assert read_transcript(tmp_path, "my_video") is None  # another video's, not this one's
    old.write_text(json.dumps({"t": 0.0, "text": "no video named"}) + "\n")  # the oldest lines name none
    assert read_transcript(tmp_path, "my video")[0]["text"] == "no video named"


# ---------------------------------------------------------------------------------------------------- SIGTERM

SENT = {"at": 0, "answered": 0}
LOCK = threading.Lock()


class TermAt(FakeReasoner):
    """Sends SIGTERM to the main thread at its ``SENT['at']``-th answer (a counted point, not a time)."""

    name = "fxu-term-at"

    def ground(self, query: str, transcript: Any) -> Any:
        result = super().ground(query, transcript)
        with LOCK:
            SENT["answered"] += 1
            n = SENT["answered"]
        if n == SENT["at"]:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)
        return result


reasoners.register("fxu-term-at", TermAt)


@pytest.fixture
def term_at():
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

    def arm(n: int) -> None:
        SENT.update(at=n, answered=0)

    yield arm
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back


def test_sigterm_during_a_multi_query_ground_prints_the_finished_json_and_exits_143(tmp_path, capsys, term_at):
    from pipelines.cli import main

    _, desc = _dataset(tmp_path, ["v"])
    term_at(2)
    queries = tmp_path / "q.txt"
    queries.write_text("".join(f"the person drink coffee {i}\n" for i in range(5)))
    rc = main(["ground", "--descriptions", str(desc / "v.jsonl"), "--reasoner", "fxu-term-at", "--queries",
               str(queries), "--json"])
    out, err = capsys.readouterr()
    assert rc == 143
    assert len(json.loads(out)) == 1  # the one finished before the signal, as after a Ctrl-C
    assert "vidground: interrupted (SIGTERM)" in err


def test_sigterm_during_an_eval_stops_it_as_a_first_ctrl_c_keeping_the_queries_under_way(tmp_path, capsys, term_at):
    from pipelines.cli import main

    ds, desc = _dataset(tmp_path / "data", ["a", "b", "c"], per_video=3)
    term_at(2)
    out = tmp_path / "run"
    rc = main(["eval", "jsonl", "--dataset-file", str(ds), "--descriptions", str(desc), "--reasoner", "fxu-term-at",
               "--concurrency", "1", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 143
    saved = len(read_jsonl(out / "results.jsonl"))
    assert saved == SENT["answered"] >= 2  # the answer under way at the signal is written, not lost
    assert "vidground: stopping (SIGTERM): no query is begun" in err
    assert "a second SIGTERM or Ctrl-C stops at once" in err
    assert f"vidground: interrupted (SIGTERM); every finished item is kept in" in err
    assert f"({saved} result(s) saved by this run, {saved} of 9 queries done)" in err


def test_the_lines_a_ctrl_c_says_name_sigterm_when_it_is_the_signal():
    from vidground.interrupts import exit_status, naming

    line = "vidground: stopping: no query is begun (a second Ctrl-C stops at once)"
    assert naming(line, signal.SIGINT) == line and exit_status(signal.SIGINT) == 130
    assert naming(line, signal.SIGTERM) == ("vidground: stopping (SIGTERM): no query is begun (a second SIGTERM or "
                                            "Ctrl-C stops at once)")
    assert naming("vidground: stopping (nothing is being described)", signal.SIGTERM) == \
        "vidground: stopping (SIGTERM; nothing is being described)"
    assert exit_status(signal.SIGTERM) == 143


def test_run_eval_from_python_takes_sigterm_as_a_ctrl_c_and_says_which(tmp_path, term_at):
    from pipelines.runs import RunInterrupted

    term_at(1)
    with pytest.raises(RunInterrupted) as caught:
        run_eval(_config(tmp_path, ["a", "b"], reasoner="fxu-term-at", concurrency=1), tmp_path / "run")
    assert caught.value.signum == signal.SIGTERM and str(caught.value).startswith("interrupted (SIGTERM): ")
    assert caught.value.saved == len(read_jsonl(tmp_path / "run" / "results.jsonl")) >= 1


def test_a_programs_own_sigterm_handler_is_kept(tmp_path, term_at):
    seen: list[int] = []
    signal.signal(signal.SIGTERM, lambda n, f: seen.append(n))
    try:
        term_at(1)
        run_eval(_config(tmp_path, ["a"], reasoner="fxu-term-at", concurrency=1), tmp_path / "run")
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    assert seen == [signal.SIGTERM]
    assert len(read_jsonl(tmp_path / "run" / "results.jsonl")) == 2  # not stopped: the program's handler decided


# ---------------------------------------------------------------------------------------------- encodings


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_latin1_captions_file_is_named_as_such_with_how_to_resave_it(tmp_path, suffix):
    path = tmp_path / f"caps{suffix}"
    body = ('{"t": 0.0, "text": "un café"}\n' if suffix == ".jsonl" else 't,text\n0.0,"un café"\n')
    path.write_bytes(body.encode("latin-1"))
    with pytest.raises(InputError, match=r"byte 0xe9 .*looks like Latin-1 or Windows-1252 text: re-save it as UTF-8"):
        read_descriptions(path)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_a_utf16_captions_file_is_named_as_such_with_how_to_resave_it(tmp_path, encoding):
    path = tmp_path / "caps.jsonl"
    path.write_bytes('{"t": 0.0, "text": "un café"}\n'.encode(encoding))
    with pytest.raises(InputError, match=r"caps\.jsonl:1: UTF-16 text .*re-save it as UTF-8"):
        read_descriptions(path)


def test_a_seconds_json_file_in_utf16_or_latin1_is_named_too(tmp_path):
    path = tmp_path / "caps.json"
    path.write_bytes('{"0": "un café"}'.encode("utf-16"))
    with pytest.raises(InputError, match=r"UTF-16 text"):
        read_captions(path, "seconds-json")
    path.write_bytes('{"0": "un café"}'.encode("latin-1"))
    with pytest.raises(InputError, match=r"Latin-1"):
        read_captions(path, "seconds-json")


def test_a_binary_file_is_still_called_binary(tmp_path):
    path = tmp_path / "caps.jsonl"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    with pytest.raises(InputError, match=r"caps\.jsonl:1: not UTF-8 text \(a binary file\?\)"):
        read_descriptions(path)


def test_a_relative_xdg_cache_home_is_ignored_with_a_warning(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(files, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="vidground"):
        assert user_cache_dir("VIDGROUND_CACHE") == tmp_path / ".cache"
        assert user_cache_dir("VIDGROUND_CACHE") == tmp_path / ".cache"
    assert caplog.text.count("is a relative path, which the XDG specification says to ignore") == 1
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "abs"))
    assert user_cache_dir("VIDGROUND_CACHE") == tmp_path / "abs"
