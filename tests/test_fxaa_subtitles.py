"""Real subtitle files (RV-O's held-out set, written small here): a speech transcript's cues (Whisper's of varying
length, YouTube's roll-up cues, an editor's gaps and overlaps, a zero-length cue) are read as timed captions at their
cues' centres, not refused; yt-dlp's one-space text lines, cues without a blank line after the header or a NOTE, CR-only
line endings, text with '<' and '>', ASS override tags; lines naming one video by two paths."""

from __future__ import annotations

import json
import logging

import pytest

from frame_describer.descriptions_io import read_descriptions
from vidground.errors import InputError


def _read(tmp_path, name, text, **kw):
    path = tmp_path / name
    path.write_bytes(text.encode()) if isinstance(text, str) else path.write_bytes(text)
    return [(round(d.t, 3), d.text) for d in read_descriptions(path, **kw)]


def _srt(*cues: tuple[str, str, str]) -> str:
    return "".join(f"{k}\n{a} --> {b}\n{text}\n\n" for k, (a, b, text) in enumerate(cues, 1))


WHISPER = _srt(("00:00:00,000", "00:00:03,240", "Hello and welcome to the show."),
               ("00:00:03,240", "00:00:07,880", "Today we cook pasta."),
               ("00:00:09,100", "00:00:11,000", "First, boil water."))


def test_a_whisper_srt_is_read_as_timed_captions_with_one_warning(tmp_path, caplog):
    notes: list[str] = []
    with caplog.at_level(logging.WARNING):
        got = _read(tmp_path, "talk.srt", WHISPER, notes=notes)
    assert got == [(1.62, "Hello and welcome to the show."), (5.56, "Today we cook pasta."),
                   (10.05, "First, boil water.")]
    said = [r.getMessage() for r in caplog.records if "not equal contiguous clips" in r.getMessage()]
    assert len(said) == 1 and "read as a caption at its cue's centre" in said[0] and "not as a clip" in said[0]
    assert notes == said  # what a result's warnings can carry
    ds = read_descriptions(tmp_path / "talk.srt")
    assert ds[0].model_extra.get("duration") == 11.0 and "step" not in ds[0].model_extra


@pytest.mark.parametrize("cues, expected", [
    # an editor's 40-ms gaps, an ffmpeg 1-frame gap
    ([("00:00:00,000", "00:00:01,960", "A"), ("00:00:02,000", "00:00:03,960", "B")], [(0.98, "A"), (2.98, "B")]),
    # overlapping cues
    ([("00:00:00,000", "00:00:02,500", "A"), ("00:00:02,000", "00:00:04,500", "B")], [(1.25, "A"), (3.25, "B")]),
    # a zero-length cue: at its time
    ([("00:00:00,000", "00:00:02,000", "A"), ("00:00:02,000", "00:00:02,000", "B"),
      ("00:00:02,000", "00:00:04,000", "C")], [(1.0, "A"), (2.0, "B"), (3.0, "C")]),
    # a last cue longer, a first one shorter than the others
    ([("00:00:00,000", "00:00:02,000", "A"), ("00:00:02,000", "00:00:04,000", "B"),
      ("00:00:04,000", "00:00:09,000", "C")], [(1.0, "A"), (3.0, "B"), (6.5, "C")]),
    ([("00:00:00,000", "00:00:01,000", "A"), ("00:00:01,000", "00:00:03,000", "B"),
      ("00:00:03,000", "00:00:05,000", "C")], [(0.5, "A"), (2.0, "B"), (4.0, "C")]),
    # two cues of one centre: one caption, both texts (a duplicate text once)
    ([("00:00:00,000", "00:00:04,000", "A"), ("00:00:01,000", "00:00:03,000", "B"),
      ("00:00:01,500", "00:00:02,500", "A"), ("00:00:05,000", "00:00:06,000", "C")], [(2.0, "A B"), (5.5, "C")]),
])
def test_cues_that_are_not_equal_contiguous_clips_are_read_at_their_centres(tmp_path, cues, expected):
    assert _read(tmp_path, "x.srt", _srt(*cues)) == expected


def test_equal_contiguous_clips_are_still_clips_with_a_shorter_last(tmp_path):
    text = _srt(("00:00:00,000", "00:00:02,000", "A"), ("00:00:02,000", "00:00:04,000", "B"),
                ("00:00:04,000", "00:00:05,000", "C"))
    assert _read(tmp_path, "x.srt", text) == [(1.0, "A"), (3.0, "B"), (5.0, "C")]
    assert read_descriptions(tmp_path / "x.srt")[0].model_extra["step"] == 2.0


YOUTUBE = ("WEBVTT\nKind: captions\nLanguage: en\n\n"
           "00:00:00.000 --> 00:00:02.030 align:start position:0%\n \n"
           "hello<00:00:00.480><c> everyone</c><00:00:00.960><c> welcome</c>\n\n"
           "00:00:02.030 --> 00:00:02.040 align:start position:0%\nhello everyone welcome\n \n\n"
           "00:00:02.040 --> 00:00:04.550 align:start position:0%\nhello everyone welcome\n"
           "to<00:00:02.520><c> the</c><00:00:03.000><c> channel</c>\n\n")


def test_youtube_auto_captions_one_space_lines_and_roll_up_cues(tmp_path):
    # each spoken line once (FX-AF item 6): a cue keeps the lines it adds; the 10-ms cue adds none
    assert _read(tmp_path, "yt.vtt", YOUTUBE) == [(1.015, "hello everyone welcome"), (3.295, "to the channel")]


@pytest.mark.parametrize("text", [
    "WEBVTT\n00:00:00.000 --> 00:00:02.000\nA\n\n00:00:02.000 --> 00:00:04.000\nB\n",  # no blank after the header
    "WEBVTT\n\nNOTE\n00:00:00.000 --> 00:00:02.000\nA\n\n00:00:02.000 --> 00:00:04.000\nB\n",  # nor after NOTE
])
def test_a_cue_right_after_the_header_or_a_note_is_read(tmp_path, text):
    assert _read(tmp_path, "x.vtt", text) == [(1.0, "A"), (3.0, "B")]


def test_mac_cr_line_endings_and_a_line_of_spaces_between_srt_cues(tmp_path):
    cr = "1\r00:00:00,000 --> 00:00:02,000\rA\r\r2\r00:00:02,000 --> 00:00:04,000\rB\r"
    assert _read(tmp_path, "mac.srt", cr.encode()) == [(1.0, "A"), (3.0, "B")]
    spaced = "1\n00:00:00,000 --> 00:00:02,000\nA\n \n2\n00:00:02,000 --> 00:00:04,000\nB\n"
    assert _read(tmp_path, "sp.srt", spaced) == [(1.0, "A"), (3.0, "B")]


def test_only_tags_are_stripped_and_ass_override_tags_too(tmp_path):
    text = _srt(("00:00:00,000", "00:00:02,000", "x < 5 and y > 3"),
                ("00:00:02,000", "00:00:04,000", '{\\an8}<font color="#ffffff">A</font> <i>B</i> &lt;c&gt;'))
    assert _read(tmp_path, "x.srt", text) == [(1.0, "x < 5 and y > 3"), (3.0, "A B <c>")]


def test_an_empty_cue_is_a_moment_of_no_text_and_a_file_of_them_is_refused(tmp_path):
    text = "1\n00:00:00,000 --> 00:00:02,000\n\n2\n00:00:02,000 --> 00:00:04,000\nB\n"
    assert _read(tmp_path, "x.srt", text) == [(1.0, ""), (3.0, "B")]
    with pytest.raises(InputError, match="every cue's text is empty"):
        _read(tmp_path, "y.srt", "1\n00:00:00,000 --> 00:00:02,000\n \n")


def test_clip_problems_that_remain_say_how_to_import_and_a_zero_length_clip_is_named_so(tmp_path):
    with pytest.raises(InputError, match=r":3: clip starts at 3 s .* a gap .*CSV t,text.*SRT or WebVTT"):
        _read(tmp_path, "g.csv", "start,end,text\n0,2,a\n3,5,b\n")
    with pytest.raises(InputError, match=r":3: clip \[2, 2\) has no length \(it ends where it starts\)"):
        _read(tmp_path, "z.csv", "start,end,text\n0,2,a\n2,2,b\n")
    with pytest.raises(InputError, match=r"cue 00:00:02\.000 --> 00:00:01\.000 ends before it starts"):
        _read(tmp_path, "r.srt", _srt(("00:00:02,000", "00:00:01,000", "A")))


def test_clips_from_after_0_are_noted_for_a_result(tmp_path):
    notes: list[str] = []
    _read(tmp_path, "late.csv", "start,end,text\n10,12,a\n12,14,b\n", notes=notes)
    assert len(notes) == 1 and "the first clip starts at 10 s" in notes[0]


def test_one_video_named_by_two_paths_is_one_video(tmp_path):
    rows = [{"t": 0.0, "text": "a", "video": "demo.mp4"}, {"t": 1.0, "text": "b", "video": "/tmp/x/demo.mp4"}]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [d.text for d in read_descriptions(tmp_path / "d.jsonl")] == ["a", "b"]
    rows[1]["video"] = "other.mp4"
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match="names video 'other.mp4', but line 1 names 'demo.mp4'"):
        read_descriptions(tmp_path / "d.jsonl")


def test_import_captions_help_names_srt_and_webvtt(capsys):
    from pipelines.cli import main

    with pytest.raises(SystemExit):
        main(["import-captions", "--help"])
    assert "SRT or WebVTT" in " ".join(capsys.readouterr().out.split())
