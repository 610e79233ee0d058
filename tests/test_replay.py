"""The replay describer says when a video runs on past its captions (the rest of its tests are in test_search.py)."""

from __future__ import annotations

import logging

from frame_describer.replay import ReplayDescriber, timeline_frames
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
