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
