"""``vidground ground VIDEO QUERY`` says, on a plain run, how many frames were sampled and how many the
description cache gave (what ``describe`` says of them, read from the described video's usage)."""

from __future__ import annotations

import json
from pathlib import Path

from _helpers_eval import render_toy_videos
from pipelines.cli import main
from pipelines.session import Session


def _frames_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("frames:")]


def test_a_second_ground_of_a_video_says_every_frame_came_from_the_cache(tmp_path, capsys):
    video = render_toy_videos(tmp_path / "videos", ["vid0"]) / "vid0.mp4"
    args = ["ground", str(video), "a person opens a door", "--cache", str(tmp_path / "c.sqlite")]
    assert main(args) == 0
    first = _frames_lines(capsys.readouterr().out)
    assert main(args) == 0
    second = _frames_lines(capsys.readouterr().out)
    assert first == ["frames:    3 sampled, 0 from the description cache (3 described now)"]
    assert second == ["frames:    3 sampled, 3 from the description cache (0 described now)"]


def test_without_a_cache_every_frame_is_described_and_json_is_unchanged(tmp_path, capsys):
    video = render_toy_videos(tmp_path / "videos", ["vid0"]) / "vid0.mp4"
    assert main(["ground", str(video), "a person opens a door", "--no-cache"]) == 0
    assert _frames_lines(capsys.readouterr().out) == [
        "frames:    3 sampled, 0 from the description cache (3 described now)"]
    assert main(["ground", str(video), "a person opens a door", "--json"]) == 0
    out = capsys.readouterr().out
    assert "sampled" not in out and "frames" not in json.loads(out)


def test_a_skip_unchanged_run_keeps_its_own_line(tmp_path, capsys):
    video = render_toy_videos(tmp_path / "videos", ["vid0"]) / "vid0.mp4"
    assert main(["ground", str(video), "a person opens a door", "--skip-unchanged", "0.1", "--no-cache"]) == 0
    assert _frames_lines(capsys.readouterr().out) == ["frames:    skip-unchanged 0.1: 3 sent, 0 reused"]


def test_remembered_describes_nothing(tmp_path):
    video = render_toy_videos(tmp_path / "videos", ["vid0"]) / "vid0.mp4"
    with Session(describer="cv", cache=str(tmp_path / "c.sqlite")) as session:
        assert session.remembered(video) is None  # not described yet: None, and nothing is described
        assert session.remembered(tmp_path / "missing.mp4") is None
        described = session.describe(video)
        again = session.remembered(Path(video))  # as described, a copy of its own (FX-F: editing one leaked)
        assert again == described and again is not described and again.descriptions[0] is not described.descriptions[0]
    with Session(describer="cv", cache=str(tmp_path / "c.sqlite")) as session:
        session.describe(video)
        again = session.remembered(video)
        assert (len(again.descriptions), again.usage.cached) == (3, 3)


def test_several_queries_and_ask_say_where_their_frames_came_from(tmp_path, capsys):
    """``ground -q A -q B`` prints the line once, in the first table (where its usage is: the video is described
    once for all queries), and ``ask`` prints it as ``ground`` does (before: neither had it)."""
    video = render_toy_videos(tmp_path / "videos", ["vid0"]) / "vid0.mp4"
    cache = ["--cache", str(tmp_path / "c.sqlite")]
    assert main(["ground", str(video), "-q", "a person opens a door", "-q", "a person sits down", *cache]) == 0
    out = capsys.readouterr().out
    assert _frames_lines(out) == ["frames:    3 sampled, 0 from the description cache (3 described now)"]
    assert out.index("frames:") < out.index("== query 2 of 2")
    assert main(["ask", str(video), "what does the person open?", *cache]) == 0
    assert _frames_lines(capsys.readouterr().out) == [
        "frames:    3 sampled, 3 from the description cache (0 described now)"]
    assert main(["ask", str(video), "what does the person open?", "--json", *cache]) == 0
    assert "sampled" not in capsys.readouterr().out
