"""RV-R's subtitle findings on 1bb0713: an arrow in a cue's text, a typo among equal clips, two folders' videos of
one name, tags that are not tags, roll-up repeats, a CR-only file."""

from __future__ import annotations

import pytest

from frame_describer.caption_formats import read_captions
from vidground.errors import InputError


def _srt(cues: list[tuple[str, str, str]]) -> str:
    return "".join(f"{k + 1}\n{a} --> {b}\n{text}\n\n" for k, (a, b, text) in enumerate(cues))


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_an_arrow_in_a_cues_text_is_text(tmp_path, fmt):
    sep = "," if fmt == "srt" else "."
    head = "WEBVTT\n\n" if fmt == "vtt" else ""
    path = tmp_path / f"a.{fmt}"
    path.write_text(head + f"1\n00:00:00{sep}000 --> 00:00:02{sep}000\nGo to File --> Save\n\n"
                    f"00:00:02{sep}000 --> 00:00:04{sep}000\nthen --> quit\n")
    got = [(d.t, d.text) for d in read_captions(path, fmt)]
    assert got == [(1.0, "Go to File --> Save"), (3.0, "then --> quit")]


def test_a_malformed_timing_line_in_its_place_is_still_refused(tmp_path):
    path = tmp_path / "a.srt"
    path.write_text("1\n00:00:0 --> 00:00:02,000\nA\n")
    with pytest.raises(InputError, match="bad cue times"):
        read_captions(path, "srt")


@pytest.mark.parametrize("names", [
    ["/data/day1/GOPR0001.MP4", "/data/day2/GOPR0001.MP4"],
    ["GOPR0001", "/data/day1/GOPR0001.MP4", "day2/GOPR0001.MP4"],
])
def test_two_videos_of_one_name_in_other_folders_are_refused(tmp_path, names):
    path = tmp_path / "joined.csv"
    path.write_text("t,text,video\n" + "".join(f"{k},c{k},{n}\n" for k, n in enumerate(names)))
    with pytest.raises(InputError, match=r"two files joined"):
        read_captions(path, "csv")


def test_one_video_by_id_name_and_paths_is_one(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "demo.mp4").write_bytes(b"")
    (tmp_path / "y").symlink_to(tmp_path / "x")
    names = ["v_demo", "demo.mp4", f"{tmp_path}/x/demo.mp4", f"{tmp_path}/y/demo.mp4", "x/demo.mp4"]
    path = tmp_path / "one.csv"
    path.write_text("t,text,video\n" + "".join(f"{k},c{k},{n}\n" for k, n in enumerate(names)))
    assert len(read_captions(path, "csv")) == 5


def _clips(n: int = 30, length: float = 2.0) -> list[list]:
    return [[k * length, (k + 1) * length, f"clip {k}"] for k in range(n)]


def _stamp(s: float) -> str:
    return f"{int(s) // 3600:02d}:{int(s) // 60 % 60:02d}:{int(s) % 60:02d},{round(s % 1 * 1000):03d}"


def _write(path, cues) -> None:
    path.write_text(_srt([(_stamp(a), _stamp(b), text) for a, b, text in cues]))


@pytest.mark.parametrize("mistake, line", [
    ("hour", 62), ("length", 62), ("duplicate", 122),
])
def test_one_mistyped_cue_among_equal_clips_is_refused_naming_it(tmp_path, mistake, line):
    cues = _clips()
    if mistake == "hour":
        cues[15][:2] = [3600 + 30, 3600 + 32]  # 00:00:30 typed 01:00:30
    elif mistake == "length":
        cues[15][1] += 0.5
    else:
        cues.append(list(cues[20]))  # pasted twice, written last
    path = tmp_path / "clips.srt"
    _write(path, cues)
    with pytest.raises(InputError, match=rf"clips.srt:{line}: cue .* is off the grid .* subtitle-times"):
        read_captions(path, "srt")
    assert len(read_captions(path, "subtitle-times")) == 30  # as the message says: read as timed captions


def test_a_speech_transcript_is_still_read_and_a_far_last_cue_is_warned_of(tmp_path):
    import random

    rng = random.Random(1)
    t, cues = 0.0, []
    for k in range(40):  # Whisper-like: lengths vary, small gaps
        n = round(rng.uniform(1.0, 5.0), 2)
        cues.append([t, t + n, f"line {k}"])
        t += n + rng.choice([0.0, 0.0, 0.3])
    path = tmp_path / "talk.srt"
    _write(path, cues)
    notes: list[str] = []
    assert len(read_captions(path, "srt", notes=notes)) == 40 and not any("mistyped" in n for n in notes)
    cues[-1][:2] = [cues[-1][0] + 3600, cues[-1][1] + 3600]
    _write(path, cues)
    notes = []
    assert len(read_captions(path, "srt", notes=notes)) == 40
    assert any(n.startswith(f"{path}:158: cue") and "mistyped time" in n for n in notes), notes


ROLL_UP = """WEBVTT
Kind: captions
Language: en

00:00:00.000 --> 00:00:02.750 align:start position:0%
 
we<00:00:00.240><c> are</c><00:00:00.480><c> going</c>

00:00:02.750 --> 00:00:02.760 align:start position:0%
we are going
 

00:00:02.760 --> 00:00:05.000 align:start position:0%
we are going
to<00:00:03.000><c> talk</c><00:00:03.500><c> pasta</c>

00:00:05.000 --> 00:00:05.010 align:start position:0%
to talk pasta
 

00:00:05.010 --> 00:00:08.000 align:start position:0%
to talk pasta
first<00:00:05.500><c> boil</c><00:00:06.000><c> water</c>
"""


def test_a_roll_up_file_holds_each_spoken_line_once(tmp_path):
    path = tmp_path / "yt.vtt"
    path.write_text(ROLL_UP)
    got = [d.text for d in read_captions(path, "vtt")]
    assert got == ["we are going", "to talk pasta", "first boil water"]


def test_a_cr_only_file_over_the_line_bound_is_read_line_by_line(tmp_path):
    from vidground.files import MAX_LINE_BYTES

    n = MAX_LINE_BYTES // 40 + 10  # each cue ~50 bytes: the file is over the bound
    text = "".join(f"{k + 1}\r{_stamp(2 * k)} --> {_stamp(2 * k + 2)}\rclip number {k}\r\r" for k in range(n))
    path = tmp_path / "mac.srt"
    path.write_bytes(text.encode())
    assert path.stat().st_size > MAX_LINE_BYTES
    got = read_captions(path, "srt")
    assert len(got) == n and got[-1].text == f"clip number {n - 1}"
    path.write_bytes(b"1\r00:00:00,000 --> 00:00:02,000\r" + b"x" * (MAX_LINE_BYTES + 1) + b"\r")
    with pytest.raises(InputError, match=r"mac.srt:3: line longer than"):
        read_captions(path, "srt")
    path.write_bytes(b"1\r\n00:00:00,000 --> 00:00:02,000\r\n\xff\xfe\r\n")
    with pytest.raises(InputError, match=r"mac.srt:3: .*UTF-8"):
        read_captions(path, "srt")


def test_only_subtitle_tags_are_stripped_not_text_between_angle_brackets(tmp_path):
    path = tmp_path / "t.srt"
    _write(path, [[0, 2, "if a<b and b>c then"], [2, 4, "I <3 you, press <Enter>"],
                  [4, 6, '<v Roger><i>a</i> <c.colorE5E5E5>b</c> <font color="#fff">c</font><00:00:05.000><c> d</c>'
                         '</v> <lang en>e</lang> <b.loud>f</b> <u>g</u> <ruby>h<rt>i</rt></ruby>']])
    assert [d.text for d in read_captions(path, "srt")] == [
        "if a<b and b>c then", "I <3 you, press <Enter>", "a b c d e f g hi"]
