"""A researcher's own VLM captions (FX-Z2): files naming two videos, shorter last clips, clips of varying length,
clips from 10 s, empty text and row order, SRT / WebVTT subtitles."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from frame_describer.caption_formats import detect_format
from frame_describer.descriptions_io import read_descriptions
from pipelines.cli import main
from pipelines.session import load_descriptions
from temporal_reasoner.transcript import Transcript
from vidground.errors import InputError


def _lines(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _spans(path: Path, **kw) -> list[tuple[float, float, str]]:
    d = load_descriptions(path, **kw)
    tr = Transcript.from_descriptions(d.descriptions, duration=d.duration, step=d.step)
    return [(e.start, e.end, e.text) for e in tr.entries]


# ------------------------------------------------------------------------------- 1. the video a file names

def test_a_file_whose_lines_name_two_videos_is_refused_naming_the_line(tmp_path):
    joined = _lines(tmp_path / "a.jsonl", [{"video": v, "t": t, "text": f"{v} {t}"}
                                           for v, ts in (("A", range(1, 10, 2)), ("B", range(11, 20, 2))) for t in ts])
    with pytest.raises(InputError, match=r"a\.jsonl:6: names video 'B', but line 1 names 'A'"):
        read_descriptions(joined)
    interleaved = _lines(tmp_path / "i.jsonl", [{"video": "AB"[t % 2], "t": t, "text": str(t)} for t in range(6)])
    with pytest.raises(InputError, match=r"i\.jsonl:2: names video 'B'"):
        load_descriptions(interleaved)
    vtg = _lines(tmp_path / "v.jsonl", [{"moment": 0, "description": "a", "video": "A"},
                                        {"moment": 1, "description": "b", "video": "B"}])
    with pytest.raises(InputError, match=r"v\.jsonl:2: names video 'B'"):
        read_descriptions(vtg)
    (tmp_path / "c.csv").write_text("t,text,video\n0,a,A\n1,b,B\n")
    with pytest.raises(InputError, match=r"c\.csv:3: names video 'B'"):
        read_descriptions(tmp_path / "c.csv")
    assert main(["import-captions", str(joined), "-o", str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out").exists()


def test_one_video_named_as_a_number_or_a_string_or_on_some_lines_only_is_read(tmp_path):
    f = _lines(tmp_path / "n.jsonl", [{"t": 0, "text": "a", "video": 10597533885}, {"t": 1, "text": "b"},
                                      {"t": 2, "text": "c", "video": "10597533885"}])
    assert [d.text for d in read_descriptions(f)] == ["a", "b", "c"]
    plain = _lines(tmp_path / "p.jsonl", [{"t": 0, "text": "a"}, {"t": 1, "text": "b"}])
    assert len(read_descriptions(plain)) == 2


# ------------------------------------------------------------------------------- 2-3. clips

def test_a_shorter_last_clip_is_read_and_its_span_is_the_clip(tmp_path):
    (tmp_path / "c.csv").write_text("start,end,text\n0,2,a\n2,4,b\n4,5,c\n")
    assert _spans(tmp_path / "c.csv") == [(0.0, 2.0, "a"), (2.0, 4.0, "b"), (4.0, 5.0, "c")]
    (tmp_path / "long.csv").write_text("start,end,text\n0,2,a\n2,4,b\n4,7,c\n")  # longer is not a cut end
    with pytest.raises(InputError, match=r"long\.csv:4: clip length 3 s differs from 2 s"):
        read_descriptions(tmp_path / "long.csv")


def test_clips_of_varying_length_are_refused_saying_how_to_import_them(tmp_path):
    (tmp_path / "shots.csv").write_text("start,end,text\n0,2,a\n2,7,b\n7,9,c\n")
    with pytest.raises(InputError, match=r"shots\.csv:3: clip length 5 s differs from 2 s .*per-shot captions.*"
                                         r"CSV t,text"):
        read_descriptions(tmp_path / "shots.csv")


def test_clips_starting_after_0_keep_their_times_and_the_stretch_back_to_0_is_warned(tmp_path, caplog):
    (tmp_path / "late.csv").write_text("start,end,text\n10,12,a\n12,14,b\n")
    with caplog.at_level(logging.WARNING):
        spans = _spans(tmp_path / "late.csv")
    assert spans[1] == (12.0, 14.0, "b") and spans[0][1:] == (12.0, "a")
    assert "late.csv: the first clip starts at 10 s" in caplog.text and "reaches back to 0" in caplog.text
    caplog.clear()
    (tmp_path / "zero.csv").write_text("start,end,text\n0,2,a\n2,4,b\n")
    with caplog.at_level(logging.WARNING):
        _spans(tmp_path / "zero.csv")
    assert "starts at" not in caplog.text


# ------------------------------------------------------------------------------- 4. empty text, row order

def test_an_empty_text_in_vidground_jsonl_is_a_frame_the_describer_said_nothing_of(tmp_path):
    """Kept as it was (tests/test_l_empty_transcript.py: one empty text among others is grounded around, a file of
    empty texts refused where it is used), with or without the describer's mark; other formats refuse an empty
    caption (their rows are captions, not replies)."""
    f = _lines(tmp_path / "e.jsonl", [{"t": 0, "text": "a"}, {"t": 1, "text": " "}])
    assert [d.text for d in read_descriptions(f)] == ["a", ""]
    described = _lines(tmp_path / "d.jsonl", [{"t": 0, "text": "a"}, {"t": 1, "text": "", "empty_reply": "content_filter"}])
    assert [d.text for d in read_descriptions(described)] == ["a", ""]


def test_rows_with_their_own_times_are_sorted_in_every_format(tmp_path):
    (tmp_path / "t.csv").write_text("t,text\n0,a\n2,b\n1,c\n")
    assert [(d.t, d.text) for d in read_descriptions(tmp_path / "t.csv")] == [(0, "a"), (1, "c"), (2, "b")]
    (tmp_path / "c.csv").write_text("start,end,text\n2,4,b\n0,2,a\n")
    assert _spans(tmp_path / "c.csv") == [(0.0, 2.0, "a"), (2.0, 4.0, "b")]
    (tmp_path / "dup.csv").write_text("t,text\n1,a\n0,b\n1,c\n")
    with pytest.raises(InputError, match=r"dup\.csv:4: duplicate time 1 s \(also on line 2\)"):
        read_descriptions(tmp_path / "dup.csv")


# ------------------------------------------------------------------------------- 5. SRT and WebVTT

SRT = ("1\n00:00:00,000 --> 00:00:02,000\nA man\nwalks in.\n\n2\n00:00:02,000 --> 00:00:04,000\n<i>He sits</i> &amp; "
       "eats.\n\n3\n00:00:04,000 --> 00:00:05,500\nHe leaves.\n")
VTT = ("WEBVTT - captions\n\nNOTE written by my VLM\n\n00:00.000 --> 00:02.000 align:start\nA man walks in.\n\n"
       "cue-2\n00:00:02.000 --> 00:00:04.000\n<v Narrator>He sits</v>\n\n")


def test_srt_and_webvtt_cues_are_clips(tmp_path):
    (tmp_path / "v.srt").write_text(SRT)
    assert _spans(tmp_path / "v.srt") == [(0.0, 2.0, "A man walks in."), (2.0, 4.0, "He sits & eats."),
                                          (4.0, 5.5, "He leaves.")]
    (tmp_path / "v.vtt").write_text(VTT)
    assert _spans(tmp_path / "v.vtt") == [(0.0, 2.0, "A man walks in."), (2.0, 4.0, "He sits")]
    (tmp_path / "srt.txt").write_text(SRT)  # known by their content too
    (tmp_path / "vtt.txt").write_text(VTT)
    assert (detect_format(tmp_path / "srt.txt"), detect_format(tmp_path / "vtt.txt")) == ("srt", "vtt")
    (tmp_path / "bad.srt").write_text("1\n00:00:00 --> 00:00:02\nx\n")
    with pytest.raises(InputError, match=r"bad\.srt:2: bad cue times '00:00:00 --> 00:00:02'"):
        read_descriptions(tmp_path / "bad.srt")


def test_import_captions_reads_subtitles(tmp_path):
    (tmp_path / "kitchen.srt").write_text(SRT)
    assert main(["import-captions", str(tmp_path / "kitchen.srt"), "-o", str(tmp_path / "out")]) == 0
    rows = [json.loads(x) for x in (tmp_path / "out" / "kitchen.jsonl").read_text().splitlines()]
    assert [(r["t"], r["text"], r["video"], r["step"]) for r in rows][0] == (1.0, "A man walks in.", "kitchen", 2.0)
