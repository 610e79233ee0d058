"""The replay describer says when a video runs on past its captions (the rest of its tests are in test_search.py)."""

from __future__ import annotations

import json
import logging

import pytest

from frame_describer.replay import ReplayDescriber, timeline_frames
from vidground.errors import ConfigurationError
from vidground.types import FrameDescription


def test_frames_past_the_captions_are_warned_about_once(caplog):
    replay = ReplayDescriber([FrameDescription(t=t, text=f"second {t}") for t in range(4)])  # ends at 4 s
    with caplog.at_level(logging.WARNING, logger="frame_describer.replay"):
        inside = list(replay.describe(timeline_frames([0.0, 1.0, 3.0, 4.0])))
        assert len(inside) == 4 and caplog.records == []  # nothing past the end: nothing said
        out = list(replay.describe(timeline_frames([3.0, 5.0, 6.0, 30.0])))
    assert [d.t for d in out] == [3.0] and replay.past_end == 3
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["<descriptions>: the captions end at 4.0 s, and the video goes on (a frame at 5.0 s): frames "
                        "past their end get no description; captions of another video, or of a part of it?"]


def test_replayed_captions_cost_nothing_rather_than_an_unknown_price(tmp_path):
    """README: replay compares strategies "at no cost"; the CLI said "est. unknown (36 request(s) to a model
    without a price)" for `vidground ground kitchen.mp4 Q --describer replay:kitchen.descriptions.jsonl`."""
    from frame_describer.synthetic import render_numbered_video
    from pipelines import ground
    from pipelines.runs import format_cost

    video = render_numbered_video(tmp_path / "v.mp4", n_frames=40, fps=10)  # 4 s
    captions = tmp_path / "captions.jsonl"
    captions.write_text("".join(f'{{"t": {t}, "text": "caption {t}"}}\n' for t in range(4)))
    result = ground(str(video), "caption 2", describer=f"replay:{captions}")
    usage = result.usage["describe"]
    assert usage.requests == 4 and usage.cost_usd == 0.0 and usage.unpriced_requests == 0  # every call counted
    assert format_cost(usage.cost_usd, usage.requests, usage.unpriced_requests) == "$0.0000"


def _captions(path, video=None, n=4):
    """A vidground JSONL captions file of ``n`` seconds, naming ``video`` on each line when given."""
    import json

    path.write_text("".join(json.dumps({**({"video": video} if video is not None else {}), "t": float(t),
                                        "text": f"caption {t}"}) + "\n" for t in range(n)))
    return path


def test_captions_of_another_video_are_refused_naming_both(tmp_path):
    """`vidground eval nextgqa --videos vids --describer replay:imp/10030609934.jsonl` answered every video with
    10030609934's captions, silently; now a video the captions are not of is an InputError before a frame of it
    is answered, on the dense path (with and without a description cache) and on the coarse-to-fine path."""
    import pytest

    from frame_describer.cache import DescriptionCache
    from frame_describer.synthetic import render_numbered_video
    from pipelines.session import Session
    from vidground.errors import InputError

    own = render_numbered_video(tmp_path / "10030609934.mp4", n_frames=40, fps=10)
    other = render_numbered_video(tmp_path / "10082798964.mp4", n_frames=40, fps=10)
    captions = _captions(tmp_path / "10030609934.jsonl", video="10030609934")
    for cache in (None, DescriptionCache(tmp_path / "c.sqlite")):
        for search in (None, "coarse-to-fine"):
            with Session(describer=f"replay:{captions}", cache=cache, search=search) as s:
                assert s.ground(own, "caption 2").best is not None  # the captions' own video: answered
                answered = s.describer.calls
                with pytest.raises(InputError) as exc:
                    s.ground(other, "caption 2")
                assert s.describer.calls == answered  # not one frame of the other video answered
            message = str(exc.value)
            assert "'10030609934'" in message and "10082798964.mp4" in message and str(captions) in message
            assert "--descriptions DIR" in message and "--describer-opt video=10082798964" in message

def test_captions_naming_no_video_or_renamed_by_the_video_option_answer_the_video_given(tmp_path):
    """What the user clearly means still works: a file with no 'video' field answers any video, and
    video= (--describer-opt video=ID) says which video the captions are of, replacing the field (a video renamed
    since); an ActivityNet id matches with or without its v_, and a field holding the video's path matches it."""
    import pytest

    from frame_describer.synthetic import render_numbered_video
    from pipelines import ground
    from vidground.errors import ConfigurationError, InputError

    video = render_numbered_video(tmp_path / "renamed.mp4", n_frames=40, fps=10)
    nameless = _captions(tmp_path / "nameless.jsonl")
    assert ground(str(video), "caption 2", describer=f"replay:{nameless}").best is not None
    kitchen = _captions(tmp_path / "kitchen.jsonl", video="clips/kitchen.mp4")
    with pytest.raises(InputError, match="'clips/kitchen.mp4' \\(their 'video' field\\), not of"):
        ground(str(video), "caption 2", describer=f"replay:{kitchen}")
    result = ground(str(video), "caption 2", describer=f"replay:{kitchen}", describer_options={"video": "renamed"})
    assert result.best is not None
    with pytest.raises(InputError, match="'elsewhere' \\(the video= option\\)"):
        ground(str(video), "caption 2", describer=f"replay:{kitchen}", describer_options={"video": "elsewhere"})
    with pytest.raises(ConfigurationError, match="video must be the name or id"):
        ReplayDescriber(kitchen, video="  ")

    anet = ReplayDescriber(_captions(tmp_path / "a.jsonl", video="v_abc123"))
    assert anet.for_video(tmp_path / "abc123.mp4") is anet and anet.for_video(tmp_path / "v_abc123.mkv") is anet
    by_path = ReplayDescriber(_captions(tmp_path / "p.jsonl", video=str(video)))
    assert by_path.for_video(video) is by_path
    with pytest.raises(InputError):
        by_path.for_video(tmp_path / "kitchen.mp4")


def test_the_video_option_the_error_offers_runs_for_a_numeric_id(tmp_path, capsys):
    """The refusal's way out, `--describer-opt video=10082798964`, failed for NExT-GQA's numeric ids: the option
    is read as JSON, so the id came as an int and was refused ("video must be the name or id of the video ...,
    got 10082798964"). Run the hint the error gives, as given, through the CLI: a whole number is the id's digits."""
    import re

    from frame_describer.synthetic import render_numbered_video
    from pipelines.cli import main

    other = render_numbered_video(tmp_path / "10082798964.mp4", n_frames=40, fps=10)
    captions = _captions(tmp_path / "10030609934.jsonl", video="10030609934")
    command = ["ground", str(other), "caption 2", "--describer", f"replay:{captions}", "--json"]
    assert main(command) != 0
    err = capsys.readouterr().err
    hint = re.search(r"pass (--describer-opt) (video=\S+) \(Python", err)
    assert hint is not None, err
    assert main(command + list(hint.groups())) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert json.loads(out)["intervals"]
    assert ReplayDescriber(captions, video=10082798964).video == "10082798964"
    for wrong in (True, 1.5, 0.0):  # a bool or a fraction is no id
        with pytest.raises(ConfigurationError, match="video must be the name or id"):
            ReplayDescriber(captions, video=wrong)


def test_descriptions_in_memory_are_checked_when_they_name_their_video():
    """The module's doc: in-memory descriptions carrying a ``video`` extra are checked as a file's field is;
    without one they answer any video."""
    from vidground.errors import InputError

    named = ReplayDescriber([FrameDescription(t=float(t), text=f"c{t}", video="kitchen") for t in range(3)])
    assert named.video == "kitchen" and named.for_video("clips/kitchen.mp4") is named
    with pytest.raises(InputError, match="'kitchen' \\(their 'video' field\\), not of 'garden.mp4'"):
        named.for_video("garden.mp4")
    nameless = ReplayDescriber([FrameDescription(t=float(t), text=f"c{t}") for t in range(3)])
    assert nameless.video is None and nameless.for_video("garden.mp4") is nameless
