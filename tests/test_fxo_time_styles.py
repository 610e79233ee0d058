"""FX-O: ``--time-style frames`` on grids that do not start at 0 and ``frames:FPS`` at a rate other than the
sampling rate. A perfect model answering the exact bracket of a line must get exactly the span that line covers,
whatever the sampling: 1 fps, ``--fps 2`` (frames mid-step), ``--num-frames N``, clip captions, keyframe-snapped
times, frames skipped as unchanged, a variable rate (coarse-to-fine refinement). Before, ``frames`` put clip and
``--num-frames`` spans half a step late (clip 4 = [8, 10] s came back 9-11) and its note said where frames were
not; ``frames:FPS`` shrank every span by the gap between 1/FPS and the sampled frame's span (11.5-14.5 came back
11.98-14.02, a whole 24-s video 0-23.02, chat events 1 s apart)."""

from __future__ import annotations

import json
import re

import pytest

from _helpers_openai_server import FakeOpenAIServer, Reply
from temporal_reasoner.parsing import ReplyError, parse_reply
from temporal_reasoner.qa import run_answer
from temporal_reasoner.structured import ChatReply, run_structured
from temporal_reasoner.timestyles import TimeFormat
from temporal_reasoner.transcript import Transcript, infer_step
from vidground.errors import OutputValidationError
from vidground.types import FrameDescription, Usage

_LINE = re.compile(r"^\[(\d+)-(\d+)\] (.*)$", re.M)


def _snapped(times, fps=29.97):
    """Sample times as a decoder gives them: on the video's own frames."""
    return [round(t * fps) / fps for t in times]


#: name -> (sample times, duration, the step the sampler records; None: inferred, as for imported captions)
SAMPLINGS = {
    "1 fps": ([float(t) for t in range(24)], 24.0, 1.0),
    "--fps 2, mid-step": ([0.25 + 0.5 * k for k in range(48)], 24.0, 0.5),
    "--num-frames 8": (_snapped([(k + 0.5) * 23.97 / 8 for k in range(8)]), 23.97, 23.97 / 8),
    "2-s clip captions": ([2.0 * k + 1 for k in range(10)], 20.0, None),
    "keyframe-snapped": ([0.0, 1.04, 1.96, 3.0, 4.08, 4.92, 6.0, 7.06, 8.0, 8.94, 10.0, 11.08], 12.0, 1.0),
    "skipped as unchanged": ([float(t) for t in range(24) if t not in (5, 6, 7, 15)], 24.0, 1.0),
    "coarse-to-fine": ([0.0, 4.0, 8.0, 10.0, 11.0, 12.0, 13.0, 14.0, 16.0, 20.0], 24.0, None),
}


def _transcript(name: str) -> Transcript:
    times, duration, step = SAMPLINGS[name]
    # runs of two or three frames with one text, so lines cover several frames
    return Transcript.from_descriptions([FrameDescription(t=t, text=f"scene {i * 2 // 5}")
                                         for i, t in enumerate(times)], duration=duration, step=step)


class PerfectModel:
    """Answers the bracket of the transcript line whose text is ``target``, as the transcript wrote it; with
    ``whole``, from the first line's first frame to the last line's last."""

    def __init__(self, target: str = "", whole: bool = False, form: str = "intervals"):
        self.target, self.whole, self.form, self.calls = target, whole, form, []

    def lines(self, messages) -> list[tuple[int, int, str]]:
        return [(int(a), int(b), t) for a, b, t in _LINE.findall(messages[-1]["content"])]

    def __call__(self, messages, fmt):
        self.calls.append(messages)
        lines = self.lines(messages)
        if self.whole:
            a, b = lines[0][0], lines[-1][1]
        else:
            a, b = next((a, b) for a, b, t in lines if t == self.target)
        item = {"start": a, "end": b, "score": 1.0}
        body = {"choice": 0, "answer": "a", "intervals": [item]} if self.form == "qa" else {"intervals": [item]}
        return ChatReply(json.dumps(body), "stop", Usage(requests=1))


def _mismatches(style: str) -> list[str]:
    """Every line of every sampling answered by a perfect model, and the whole video: what did not come back as
    the span the transcript gives."""
    bad = []
    for name in SAMPLINGS:
        t = _transcript(name)
        for e in t.entries:
            r = run_structured(PerfectModel(e.text), "q", t, reasoner_name="t", response_formats=["text"],
                               time_style=style, max_attempts=1)
            got = (r.intervals[0].start, r.intervals[0].end)
            if got != pytest.approx((e.start, e.end), abs=1e-9):
                bad.append(f"{name}: {e.text} [{e.start:g}, {e.end:g}] came back {got}")
        r = run_structured(PerfectModel(whole=True), "q", t, reasoner_name="t", response_formats=["text"],
                           time_style=style, max_attempts=1)
        if (r.intervals[0].start, r.intervals[0].end) != pytest.approx((0.0, t.duration), abs=1e-9):
            bad.append(f"{name}: the whole video came back {(r.intervals[0].start, r.intervals[0].end)}")
    return bad


def test_frames_at_the_sampling_rate_decode_each_line_exactly_for_every_sampling():
    # before: clip 4 = [8, 10] came back 9-11; --fps 2 and --num-frames spans half a step late too
    assert _mismatches("frames") == []


@pytest.mark.parametrize("style", ["frames:25", "frames:29.97"])
def test_frames_at_the_videos_rate_decode_each_line_exactly_for_every_sampling(style):
    # before: 1 fps, the line [11.5, 14.5] came back 11.98-14.02 with frames:25, the whole 24-s video 0-23.02
    assert _mismatches(style) == []


def _note_times(note: str) -> "callable":
    """The frame-k-to-seconds rule the prompt's note states."""
    m = re.search(r"frame k is at (?:([\d.]+) \+ )?(?:([\d.]+) x k|k/([\d.]+)) seconds", note)
    assert m, note
    origin = float(m[1] or 0)
    return (lambda k: origin + float(m[2]) * k) if m[2] else (lambda k: origin + k / float(m[3]))


@pytest.mark.parametrize("name", ["1 fps", "--fps 2, mid-step", "--num-frames 8", "2-s clip captions",
                                  "keyframe-snapped", "skipped as unchanged"])
def test_the_note_says_where_each_frame_is_and_offers_only_frames_that_exist(name):
    t = _transcript(name)
    f = TimeFormat.parse("frames")
    note, lines = f.note(t), _LINE.findall(f.render(t))
    at = _note_times(note)
    for e, (a, b, _) in zip(t.entries, lines):  # each line's first and last frames are where the note says
        assert at(int(a)) == pytest.approx(e.times[0], abs=0.1 * t.step), (name, note, a, e.times)
        assert at(int(b)) == pytest.approx(e.times[-1], abs=0.1 * t.step), (name, note, b, e.times)
    last = int(lines[-1][1])
    assert f.last(t) == last and note.endswith(f"from 0 to {last}.")
    assert int(lines[0][0]) == 0  # the first sampled frame is frame 0 (clip captions started at frame 1)


def test_num_frames_note_and_range():
    t = _transcript("--num-frames 8")
    note = TimeFormat.parse("frames").note(t)
    # was "(frame k is at 3 x k seconds)" with frame 4 at 13.48 s, and "from 0 to 8" with frames 0-7
    assert "one frame every 2.996 seconds (frame k is at 1.502 + 2.996 x k seconds)" in note
    assert "from 0 to 7." in note
    with pytest.raises(ReplyError, match="there is no frame 8: frames run from 0 to 7"):
        parse_reply("[4, 8]", duration=t.duration, step=t.step, time_style=TimeFormat.parse("frames").bound(t))


def test_a_frame_past_the_last_is_reasked_then_an_output_validation_error():
    t = _transcript("--num-frames 8")
    calls = []

    def chat(messages, fmt):
        calls.append(messages)
        return ChatReply('{"intervals": [{"start": 4, "end": 8, "score": 1}]}', "stop", Usage(requests=1))

    with pytest.raises(OutputValidationError, match="there is no frame 8: frames run from 0 to 7"):
        run_structured(chat, "q", t, reasoner_name="t", response_formats=["text"], time_style="frames",
                       max_attempts=2)
    assert len(calls) == 2 and "there is no frame 8" in calls[1][-1]["content"]


def test_a_chunk_numbers_its_frames_as_the_whole_video_does():
    t = _transcript("--fps 2, mid-step")
    chunk = t.model_copy(update={"entries": t.entries[7:12]})
    f = TimeFormat.parse("frames")
    assert f.render(chunk).splitlines() == f.render(t).splitlines()[7:12]
    assert f.render(t).splitlines()[0] == "[0-2] scene 0"  # frames at 0.25, 0.75, 1.25 s: 0-2 (was 1-3)


def test_qa_answer_in_frames_on_clip_captions_is_the_clip():
    t = Transcript.from_descriptions([FrameDescription(t=2.0 * k + 1, text="a blue circle" if k == 4 else f"c{k}")
                                      for k in range(10)], duration=20.0)
    a = run_answer(PerfectModel("a blue circle", form="qa"), "what appears?", t, ["a circle", "a square"],
                   reasoner_name="t", response_formats=["text"], time_style="frames")
    assert (a.intervals[0].start, a.intervals[0].end) == (8.0, 10.0)  # was 9-11


def _number(text: str) -> "int | float":
    return float(text) if "." in text else int(text)


def _server_answering(kind: str):
    def respond(req):
        user = req.json["messages"][-1]["content"]
        lines = [(_number(a), _number(b), x) for a, b, x in re.findall(r"^\[([\d.]+)-([\d.]+)\] (.*)$", user, re.M)]
        if kind == "events":
            return Reply.chat(json.dumps({"events": [{"start": a, "end": b, "caption": x, "score": 1}
                                                     for a, b, x in lines]}))
        a, b = next((a, b) for a, b, x in lines if "blue" in x)
        return Reply.chat(json.dumps({"intervals": [{"start": a, "end": b, "score": 1}]}))
    return FakeOpenAIServer(respond)


def test_ground_end_to_end_in_frames_on_clips_and_at_the_videos_rate():
    from pipelines import ground
    clips = [FrameDescription(t=2.0 * k + 1, text="a blue circle appears" if k == 4 else "a man talks")
             for k in range(10)]
    rows = [FrameDescription(t=float(t), text="a blue circle appears" if 12 <= t < 15 else "an empty room")
            for t in range(24)]
    got = {}
    with _server_answering("ground") as srv:
        for name, descs, duration in (("clips", clips, 20.0), ("1 fps", rows, 24.0)):
            for style in ("seconds", "frames", "frames:25"):
                r = ground(descs, "the blue circle", duration=duration, reasoner="openai:m",
                           reasoner_options={"base_url": srv.base_url, "api_key": "x", "time_style": style})
                got[name, style] = (r.best.start, r.best.end)
    assert got[("clips", "seconds")] == (8.0, 10.0) and got[("1 fps", "seconds")] == (11.5, 14.5)
    # before: clips frames 9-11, 1 fps frames:25 11.98-14.02
    assert {k: v for k, v in got.items() if k[0] == "clips"} == {("clips", s): (8.0, 10.0)
                                                               for s in ("seconds", "frames", "frames:25")}
    assert {k: v for k, v in got.items() if k[0] == "1 fps"} == {("1 fps", s): (11.5, 14.5)
                                                               for s in ("seconds", "frames", "frames:25")}


def test_chat_events_at_the_videos_rate_meet_and_cover_the_video():
    from pipelines import events
    rows = [FrameDescription(t=float(t), text="a blue circle appears" if 12 <= t < 15 else
                             ("an empty room" if t < 12 else "a red square")) for t in range(24)]
    with _server_answering("events") as srv:
        res = events(rows, duration=24.0, reasoner="openai:m",
                     reasoner_options={"base_url": srv.base_url, "api_key": "x", "time_style": "frames:25"})
    spans = [(e.start, e.end) for e in sorted(res.events, key=lambda e: e.start)]
    assert spans == [(0.0, 11.5), (11.5, 14.5), (14.5, 24.0)]  # before: (0, 11.02), (11.98, 14.02), (14.98, 24)


#: (the video's rate, the sampling rate, the number of sampled frames): NTSC-rate videos, each sample snapped to
#: the video's own frame, as the decoder gives it, past the frame where the median gap's grid drifted off
NTSC = [(30000 / 1001, 1.0, 600), (24000 / 1001, 2.0, 400), (30000 / 1001, 2.0, 300), (24000 / 1001, 1.0, 300),
        (24000 / 1001, 0.5, 300)]


def _ntsc(video_fps: float, rate: float, n: int) -> Transcript:
    times = _snapped([k / rate for k in range(n)], video_fps)
    # the step the session records: the median gap (1.001 s at 1 fps: most gaps are 30 of 29.97 frames)
    return Transcript.from_descriptions([FrameDescription(t=t, text=f"scene {i * 2 // 5}")
                                         for i, t in enumerate(times)], duration=n / rate, step=infer_step(times))


@pytest.mark.parametrize("video_fps,rate,n", NTSC, ids=["29.97 at 1 fps", "23.976 at --fps 2",
                                                        "29.97 at --fps 2", "23.976 at 1 fps", "23.976 at --fps 0.5"])
def test_frames_on_an_ntsc_rate_video_stay_on_the_sampling_grid(video_fps, rate, n):
    # before: each frame checked against n x 1.001 s lost the grid near frame 100 (100 s at 29.97 and 1 fps, 60 s
    # at --fps 2, 110 s at 23.976), and the note said the frames were "not evenly spaced" listing each one's time
    # (10,683 characters for 10 minutes at 1 fps)
    t = _ntsc(video_fps, rate, n)
    assert t.step == pytest.approx(1.001 / rate)
    f = TimeFormat.parse("frames")
    note, lines = f.note(t), _LINE.findall(f.render(t))
    assert f.frame_rate(t) == rate  # the sampling rate, not 1/1.001 nor a finer grid (1 fps for 0.5)
    assert "not evenly spaced" not in note and len(note) < 250, note
    at = _note_times(note)
    for e, (a, b, _) in zip(t.entries, lines):  # the note's rule puts every frame within a tenth of a step
        assert at(int(a)) == pytest.approx(e.times[0], abs=0.1 / rate) and at(int(b)) == pytest.approx(
            e.times[-1], abs=0.1 / rate)
    assert (int(lines[0][0]), int(lines[-1][1]), f.last(t)) == (0, n - 1, n - 1)
    for e in [*t.entries[::20], t.entries[-1]]:  # a perfect model's reply is exactly the line's span
        r = run_structured(PerfectModel(e.text), "q", t, reasoner_name="t", response_formats=["text"],
                           time_style="frames", max_attempts=1)
        assert (r.intervals[0].start, r.intervals[0].end) == pytest.approx((e.start, e.end), abs=1e-9)
    chunk = t.model_copy(update={"entries": t.entries[100:140]})  # as context.py cuts a long transcript
    assert f.render(chunk).splitlines() == f.render(t).splitlines()[100:140]
