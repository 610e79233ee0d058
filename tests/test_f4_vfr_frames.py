"""``--time-style frames`` on a variable-frame-rate transcript: the sampling rate (1 / the median gap) gave several
frames one number and the prompt stated a rate that was false; the numbers now count the sampled frames, the note
lists their times, and a replied number decodes to that frame's span."""

from __future__ import annotations

import json
import re

import pytest

from temporal_reasoner.parsing import ReplyError, parse_reply
from temporal_reasoner.qa import run_answer
from temporal_reasoner.structured import ChatReply, build_messages, run_structured
from temporal_reasoner.timestyles import TimeFormat
from temporal_reasoner.transcript import Transcript
from vidground.types import FrameDescription, Interval, Usage

VFR = [0, 0.1, 0.2, 3.0, 3.05, 7.5, 10.0, 10.2, 10.4, 14.0, 19.5, 19.9]


@pytest.fixture
def vfr():
    texts = ["a dark room"] * 3 + [f"scene {i}" for i in range(3, 12)]  # the first three merge into one span
    return Transcript.from_descriptions([FrameDescription(t=t, text=x) for t, x in zip(VFR, texts)], duration=21.0)


def _labels(rendered: str) -> list[tuple[int, int]]:
    return [tuple(map(int, m)) for m in re.findall(r"^\[(\d+)-(\d+)\]", rendered, re.M)]


def test_each_sampled_frame_has_its_own_number_and_the_note_its_time(vfr):
    f = TimeFormat.parse("frames")
    assert f.frame_rate(vfr) is None  # no rate is true of every frame
    # was [0-1], [8-8], [8-8], [19-19], [25-25], [26-26], [26-26], [35-35], [49-49], [50-50] at "2.5 frames per
    # second" (1 / the median gap, 0.4 s): 3.0 and 3.05 were both frame 8, 10.2 and 10.4 both frame 26
    assert _labels(f.render(vfr)) == [(0, 2)] + [(k, k) for k in range(3, 12)]
    note = f.note(vfr)
    assert "frames per second" not in note and "x k seconds" not in note
    assert "(frame 0 at 0 s, 1 at 0.1 s, 2 at 0.2 s, 3 at 3 s, 4 at 3.05 s, 5 at 7.5 s" in note
    assert "11 at 19.9 s)" in note
    assert f.last(vfr) == 11
    assert "from 0 to 11" in note


def test_a_replied_frame_is_that_frames_span(vfr):
    f = TimeFormat.parse("frames").bound(vfr)  # as a reasoner decodes: the duration and the step only
    got = parse_reply(json.dumps([3, 4]), duration=vfr.duration, step=vfr.step, time_style=f)
    assert got == [Interval(start=(0.2 + 3.0) / 2, end=(3.05 + 7.5) / 2)]
    assert parse_reply("[0, 11]", duration=vfr.duration, step=vfr.step, time_style=f) == [
        Interval(start=0.0, end=21.0)]
    with pytest.raises(ReplyError, match="no frame 12: frames run from 0 to 11"):
        parse_reply("[3, 12]", duration=vfr.duration, step=vfr.step, time_style=f)
    # every span of the transcript is exactly the reply of its own labels
    for entry, (a, b) in zip(vfr.entries, _labels(f.render(vfr))):
        assert f.decode(a, vfr) == entry.start and f.decode(b, vfr, end=True) == entry.end


class _Scripted:
    def __init__(self, reply):
        self.reply, self.calls = reply, []

    def __call__(self, messages, fmt):
        self.calls.append(messages)
        return ChatReply(self.reply, "stop", Usage(requests=1))


def test_a_chat_reasoner_grounds_and_answers_in_counted_frames(vfr):
    chat = _Scripted('{"intervals": [{"start": 6, "end": 8, "score": 0.9}]}')
    r = run_structured(chat, "the scene changes", vfr, reasoner_name="t", response_formats=["text"],
                       time_style="frames")
    assert r.intervals == [Interval(start=(7.5 + 10.0) / 2, end=(10.4 + 14.0) / 2, score=0.9)]
    assert r.settings["time_style"] == "frames"
    assert "4 at 3.05 s" in chat.calls[0][1]["content"]
    chat = _Scripted('{"choice": 1, "answer": "b", "intervals": [{"start": 9, "end": 9, "score": 0.5}]}')
    a = run_answer(chat, "what happens?", vfr, ["a", "b"], reasoner_name="t", response_formats=["text"],
                   time_style="frames")
    assert a.intervals == [Interval(start=(10.4 + 14.0) / 2, end=(14.0 + 19.5) / 2, score=0.5)]


def test_a_regular_grid_keeps_its_rate():
    t = Transcript.from_descriptions([FrameDescription(t=1.0 + 2 * i, text=f"s{i}") for i in range(5)] +
                                     [FrameDescription(t=15.0, text="s7")], duration=16.0)  # a gap of 2 steps
    f = TimeFormat.parse("frames")
    assert f.frame_rate(t) == 0.5 and f.bound(t).frame_rate(t) == 0.5
    assert "one frame every 2 seconds (frame k is at 1 + 2 x k seconds)" in build_messages(
        "q", t, time_style=f)[1]["content"]
