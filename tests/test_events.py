"""Dense events: the types, the offline change-point path, the chat path (prompt golden, parsing, re-asking,
chunking, the OpenAI-compatible reasoner against the local fake server), the Session/API/CLI entry points,
bad inputs, and the localisation metrics on hand-computed cases (no network, no model)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from vidground.errors import ConfigurationError, EvaluationError, InputError, OutputValidationError
from vidground.types import Event, Events, FrameDescription, Interval, TranscriptEntry
from temporal_reasoner.base import BaseReasoner
from temporal_reasoner.events import (
    build_events_messages,
    chunks,
    events_response_format,
    events_schema,
    find_events,
    novelty,
    offline_events,
    parse_events,
    pick_boundaries,
    run_events,
)
from temporal_reasoner.parsing import ReplyError
from temporal_reasoner.structured import ChatReply
from temporal_reasoner.transcript import Transcript
from pipelines.event_metrics import boundary_f1, densevid_localisation, event_recall, tiou

from _helpers_openai_server import Reply, openai_server  # noqa: F401
from test_qa import BagOfWords

GOLDEN = Path(__file__).parent / "golden"
KITCHEN, GARDEN, STREET = "a man chops onions in a kitchen", "a dog digs in a garden", "cars drive down a street"


class Words(BagOfWords):
    """test_qa's word-count 'encoder' with ``grouped``, as the real encoder stacks the pieces of each text."""

    def grouped(self, texts, split, tag=""):
        pieces = [split(t) or [""] for t in texts]
        matrix = self.encode([p for ps in pieces for p in ps])
        return matrix, np.cumsum([0, *(len(ps) for ps in pieces[:-1])])


class WordsReasoner(BaseReasoner):
    name = "words"

    def __init__(self, arg: str | None = None):
        self.encoder = Words()

    def ground(self, query, transcript):  # pragma: no cover - not used here
        raise NotImplementedError


def scenes(*parts: tuple[str, int], step: float = 1.0) -> Transcript:
    texts = [t for text, n in parts for t in [text] * n]
    return Transcript.from_descriptions([FrameDescription(t=i * step, text=t) for i, t in enumerate(texts)],
                                        merge=False)


# --- types --------------------------------------------------------------------------------------

def test_event_serialises_like_an_interval_plus_its_caption():
    e = Event(start=1, end=2.5, caption="  a man\n chops onions ", score=0.5)
    assert e.model_dump() == {"start": 1.0, "end": 2.5, "score": 0.5, "caption": "a man chops onions"}
    start, end, score = e
    assert (start, end, score) == (1.0, 2.5, 0.5) and isinstance(e, Interval)
    out = Events(events=[e], duration=3.0)
    assert Events.model_validate_json(out.model_dump_json()) == out and len(out) == 1
    with pytest.raises(ValueError, match="an event needs a caption"):
        Event(start=0, end=1, caption="   ")
    with pytest.raises(ValueError, match="must be after its start"):
        Event(start=2, end=1, caption="x")


# --- offline: change points ---------------------------------------------------------------------

def test_novelty_and_peaks_on_a_hand_made_curve():
    v = np.array([[1.0, 0.0]] * 4 + [[0.0, 1.0]] * 4)
    curve = novelty(v, 2)
    assert curve.shape == (7,) and curve[3] == pytest.approx(1.0) and curve[0] == pytest.approx(0.0)
    assert curve[2] == pytest.approx(1 - 1 / math.sqrt(2))  # [a, a] against [a, b]: cos 45 degrees
    times = np.arange(8.0)
    assert pick_boundaries(times, curve, 8.0, min_event_seconds=2, threshold=0.0) == [3]
    assert pick_boundaries(times, curve, 8.0, min_event_seconds=5, threshold=0.0) == []  # 3.5 s from the start
    assert pick_boundaries(times, np.zeros(7), 8.0, min_event_seconds=1, threshold=0.0) == []  # flat: no event


def test_offline_events_cut_where_the_descriptions_change_and_caption_each():
    t = scenes((KITCHEN, 12), (GARDEN, 10), (STREET, 14))
    out = find_events(WordsReasoner(), t, min_event_seconds=3)
    assert [(e.start, e.end) for e in out.events] == [(0.0, 11.5), (11.5, 21.5), (21.5, 36.0)]
    assert [e.caption for e in out.events] == [KITCHEN, GARDEN, STREET]
    assert all(0 < e.score <= 1 for e in out.events)
    assert out.reasoner == "words+change-points" and out.settings["method"] == "change-points"
    assert out.duration == 36.0 and out.warnings == []


def test_offline_caption_is_the_sentence_that_sets_the_event_apart():
    t = scenes(("The room is bright. " + KITCHEN, 10), ("The room is bright. " + GARDEN, 10))
    out = find_events(WordsReasoner(), t, min_event_seconds=3)
    assert [e.caption for e in out.events] == [KITCHEN, GARDEN]


def test_offline_caption_is_not_a_sentence_most_frames_share_when_the_event_is_worded_frame_by_frame():
    """The demo's descriptions: a sentence in most frames, and what happens worded differently from frame to frame.
    Pulled away from the video's mean alone, the shared sentence was still the nearest (it fills every frame of the
    event, each wording only a few): the demo's first two events both took it."""
    bg = "The main colours are beige and brown."
    t = scenes((bg, 5), ("A person on the left is walking. " + bg, 2),
               ("A person in the centre is walking to the right. " + bg, 1), ("A person is standing in the centre. " + bg, 4),
               ("A person on the right is walking to the right. " + bg, 2), (bg, 3),
               ("The scene is dark; the lights seem to be off.", 4), (bg, 3),
               ("Motion: the camera is panning quickly to the right. " + bg, 6), (bg, 1),
               ("The main colours are green and blue.", 5))
    out = find_events(WordsReasoner(), t)
    assert [(e.start, e.end) for e in out.events] == [(0.0, 30.5), (30.5, 36.0)]
    assert out.events[0].caption.startswith("A person") and out.events[1].caption == "The main colours are green and blue"
    single = find_events(WordsReasoner(), scenes(("A man chops onions. The room is bright.", 2), ("The room is bright.", 4)))
    assert [e.caption for e in single.events] == ["The room is bright"]  # one event: its sentence nearest the mean


def test_offline_min_event_length_and_max_events_are_kept():
    t = scenes((KITCHEN, 10), (GARDEN, 2), (STREET, 10))
    short = find_events(WordsReasoner(), t, window_seconds=1, min_event_seconds=1, threshold=0.0)
    assert [(e.start, e.end) for e in short.events] == [(0.0, 9.5), (9.5, 11.5), (11.5, 22.0)]
    merged = find_events(WordsReasoner(), t, window_seconds=1, min_event_seconds=5)
    assert all(e.end - e.start >= 5 for e in merged.events) and len(merged.events) == 2
    capped = find_events(WordsReasoner(), t, window_seconds=1, min_event_seconds=1, threshold=0.0, max_events=2)
    assert len(capped.events) == 2
    wide = find_events(WordsReasoner(), t, window_seconds=8, min_event_seconds=1, threshold=0.0)
    assert len(wide.events) == 2  # a 2-s scene is too short for 8-s windows to tell apart from its neighbours


def test_nested_events_add_the_coarse_scale_where_it_differs():
    # two scenes of 6 s, each of two 3-s halves: 3-s windows cut at every half, 6-s windows only between scenes
    t = scenes((KITCHEN, 3), ("a man washes onions in a kitchen", 3), (GARDEN, 3), ("a dog sleeps in a garden", 3))
    fine = find_events(WordsReasoner(), t, window_seconds=1.5, min_event_seconds=2, threshold=0.0)
    assert [(e.start, e.end) for e in fine.events] == [(0.0, 2.5), (2.5, 5.5), (5.5, 8.5), (8.5, 12.0)]
    both = find_events(WordsReasoner(), t, window_seconds=1.5, min_event_seconds=2, threshold=0.0, nested=True)
    coarse = [e for e in both.events if all(e.iou(f) < 0.9 for f in fine.events)]
    assert coarse and all(c.end - c.start >= 4 for c in coarse) and both.settings["nested"] is True
    assert len(both.events) == len(fine.events) + len(coarse)
    with pytest.raises(ConfigurationError, match="nested must be true or false"):
        find_events(WordsReasoner(), t, nested="yes")


def test_nested_events_keep_max_events_and_the_best_scored():
    t = scenes((KITCHEN, 3), ("a man washes onions in a kitchen", 3), (GARDEN, 3), ("a dog sleeps in a garden", 3))
    opts = dict(window_seconds=1.5, min_event_seconds=2, threshold=0.0, nested=True)
    both = find_events(WordsReasoner(), t, **opts)
    assert len(both.events) > 3  # the fine scale's 3 and the coarse one's together exceed a cap of 3
    capped = find_events(WordsReasoner(), t, max_events=3, **opts)
    assert len(capped.events) == 3
    fine3 = find_events(WordsReasoner(), t, **(opts | {"nested": False, "max_events": 3}))
    coarse3 = find_events(WordsReasoner(), t, **(opts | {"window_seconds": 3, "min_event_seconds": 4,
                                                        "nested": False, "max_events": 3}))
    pool = fine3.events + [c for c in coarse3.events if all(c.iou(e) < 0.9 for e in fine3.events)]
    best = sorted((e.score or 0.0 for e in pool), reverse=True)[:3]
    assert sorted((e.score or 0.0 for e in capped.events), reverse=True) == best
    assert [e.start for e in capped.events] == sorted(e.start for e in capped.events)


def test_events_on_a_one_frame_video_are_the_whole_video():
    t = Transcript.from_descriptions([FrameDescription(t=0.0, text=KITCHEN)], duration=2.0)
    out = find_events(WordsReasoner(), t)
    assert [(e.start, e.end, e.caption, e.score) for e in out.events] == [(0.0, 2.0, KITCHEN, 1.0)]
    assert out.warnings == ["one description: the whole video is one event"]


def test_events_on_a_rendered_one_frame_video(tmp_path):
    """Both stages on a video of a single frame: one event, the whole video, captioned by its description."""
    from frame_describer.synthetic import render_numbered_video
    from pipelines import events

    video = render_numbered_video(tmp_path / "one.mp4", n_frames=1, fps=10)
    out = events(video, describer="cv", reasoner=WordsReasoner())
    (only,) = out.events
    assert only.start == 0.0 and only.end == out.duration > 0 and only.caption
    assert out.warnings == ["one description: the whole video is one event"] and out.describer == "cv"


def test_empty_transcript_is_an_input_error():
    t = Transcript(duration=4.0, step=1.0, entries=[TranscriptEntry(start=0, end=4, text="")])
    with pytest.raises(InputError, match="the transcript is empty"):
        find_events(WordsReasoner(), t)
    with pytest.raises(InputError, match="need a Transcript"):
        find_events(WordsReasoner(), [KITCHEN])


@pytest.mark.parametrize("options, message", [
    ({"window_seconds": 0}, "window_seconds must be above 0"),
    ({"window_seconds": -3}, "window_seconds must be above 0"),
    ({"min_event_seconds": float("nan")}, "min_event_seconds must be a finite number"),
    ({"min_event_seconds": True}, "min_event_seconds must be a finite number"),
    ({"threshold": "high"}, "threshold must be a finite number"),
    ({"max_events": 0}, "max_events must be a whole number >= 1"),
    ({"max_events": 2.5}, "max_events must be a whole number >= 1"),
    ({"chunk_entries": 10}, r"unknown events option\(s\) chunk_entries for the offline path"),
    ({"windw": 3}, r"unknown events option\(s\) windw"),
])
def test_nonsense_options_are_configuration_errors(options, message):
    with pytest.raises(ConfigurationError, match=message) as info:
        find_events(WordsReasoner(), scenes((KITCHEN, 4)), **options)
    assert "\n" not in str(info.value)


def test_a_reasoner_without_encoder_or_chat_cannot_find_events():
    class Plain(BaseReasoner):
        name = "plain"

        def ground(self, query, transcript):  # pragma: no cover
            raise NotImplementedError

    with pytest.raises(ConfigurationError, match="'plain' cannot find events"):
        find_events(Plain(), scenes((KITCHEN, 4)))


# --- the chat path ------------------------------------------------------------------------------

GOOD = json.dumps({"events": [{"start": 0, "end": 4.5, "caption": "a man chops onions", "score": 0.9},
                              {"start": 4.5, "end": 10, "caption": "a dog digs", "score": 0.8}]})


@pytest.fixture
def short() -> Transcript:
    return Transcript.from_descriptions([FrameDescription(t=float(i), text=KITCHEN if i < 5 else GARDEN)
                                         for i in range(10)])


def test_prompt_golden_snapshot(short):
    rendered = build_events_messages(short, max_events=5)
    path = GOLDEN / "events_messages.json"
    assert rendered == json.loads(path.read_text(encoding="utf-8")), f"prompt changed: if deliberate, update {path}"


def test_reply_schema_is_derived_from_the_event_model():
    schema = events_schema()
    item = schema["properties"]["events"]["items"]
    assert item["properties"] == {"start": {"type": "number"}, "end": {"type": "number"},
                                  "caption": {"type": "string"}, "score": {"type": "number"}}
    assert item["required"] == ["start", "end", "caption", "score"] and item["additionalProperties"] is False
    assert set(item["properties"]) <= set(Event.model_fields)
    assert events_schema(4)["properties"]["events"]["maxItems"] == 4
    fmt = events_response_format("json_schema")
    assert fmt["json_schema"]["name"] == "events" and fmt["json_schema"]["strict"] is True
    assert events_response_format("text") is None
    with pytest.raises(ConfigurationError, match="unknown response format"):
        events_response_format("yaml")


def test_parse_events_checks_every_event():
    events, warnings = parse_events("```json\n" + GOOD + "\n```", lo=0, hi=10)
    assert [(e.start, e.end, e.caption) for e in events] == [(0.0, 4.5, "a man chops onions"), (4.5, 10.0, "a dog digs")]
    assert warnings == []
    # a bare list, out of order, a little past the end, a score above 1: sorted, clamped, noted
    events, warnings = parse_events('[{"start": 5, "end": 10.6, "caption": "b", "score": 1.5},'
                                    ' {"start": 0, "end": 5, "caption": "a"}]', lo=0, hi=10, step=1.0)
    assert [(e.start, e.end, e.score) for e in events] == [(0.0, 5.0, None), (5.0, 10.0, 1.0)]
    assert len(warnings) == 2
    for reply, message in [
        ('{"intervals": []}', 'no "events"'),
        ('[]', "empty list"),  # '{"events": []}' is zero events (tests/test_fxp_events.py)
        ('{"events": "all of it"}', "must be a list"),
        ('{"events": [{"start": 3, "end": 2, "caption": "x"}]}', r"events\[0\] ends \(2\) before"),
        ('{"events": [{"start": 0, "end": 2, "caption": ""}]}', r"events\[0\].caption must be a non-empty text"),
        ('{"events": [{"start": "soon", "end": 2, "caption": "x"}]}', r"events\[0\].start must be a number"),
        ('{"events": [{"start": 0, "end": 50, "caption": "x"}]}', r"events\[0\].end is 50, outside"),
        ('{"events": [{"start": 0, "end": 2, "caption": "x", "score": "high"}]}', "score must be a number"),
    ]:
        with pytest.raises(ReplyError, match=message):
            parse_events(reply, lo=0, hi=10, step=0.5)


def test_run_events_re_asks_with_the_error_and_counts_usage(short):
    seen = []
    replies = iter(['{"events": [{"start": 4, "end": 2, "caption": "x"}]}', GOOD])

    def chat(messages, fmt):
        seen.append((messages, fmt))
        return ChatReply(text=next(replies))

    out = run_events(chat, short, reasoner_name="fake", response_formats=("text",))
    assert [e.caption for e in out.events] == ["a man chops onions", "a dog digs"]
    assert len(seen) == 2 and "ends (2) before" in seen[1][0][-1]["content"]
    assert out.usage["reason"].requests == 2 and out.settings["attempts"] == 2
    assert out.warnings and out.warnings[0].startswith("rejected:")


def test_relative_time_tokens_are_written_and_decoded_exactly(short):
    """tokens:10 on a 10-s video: <k> is k seconds; a reply in tokens comes back in seconds, a token past <M>
    is re-asked in the style's units."""
    messages = build_events_messages(short, time_style="tokens:10")
    assert "[<0>-<4>] " + KITCHEN in messages[1]["content"] and "0 <= start < end <= 10" in messages[0]["content"]
    assert "<time token>" in messages[0]["content"]
    replies = iter(['{"events": [{"start": 0, "end": 11, "caption": "x", "score": 1}]}',
                    '{"events": [{"start": "<0>", "end": 5, "caption": "kitchen", "score": 1},'
                    ' {"start": 5, "end": 10, "caption": "garden", "score": 1}]}'])
    seen = []

    def chat(messages, fmt):
        seen.append(messages)
        return ChatReply(text=next(replies))

    out = run_events(chat, short, reasoner_name="fake", response_formats=("text",), time_style="tokens:10")
    assert [(e.start, e.end) for e in out.events] == [(0.0, 5.0), (5.0, 10.0)]
    assert "there is no time token <11>" in seen[1][-1]["content"] and "<0> <= start < end <= <10>" in seen[1][-1]["content"]
    assert out.settings["time_style"] == "tokens:10"
    with pytest.raises(ConfigurationError, match="unknown time style"):
        build_events_messages(short, time_style="hours")


def test_run_events_gives_up_with_every_raw_output(short):
    def chat(messages, fmt):
        return ChatReply(text="no idea")

    with pytest.raises(OutputValidationError) as info:
        run_events(chat, short, reasoner_name="fake", response_formats=("text",), max_attempts=2)
    assert info.value.raw_outputs == ["no idea", "no idea"] and info.value.attempts == 2


def test_a_long_transcript_is_sent_in_overlapping_chunks_with_absolute_times():
    t = scenes((KITCHEN, 10), (GARDEN, 10), (STREET, 10))
    parts = chunks(t, 12)
    assert [(p.entries[0].start, p.entries[-1].end) for p in parts] == [(0.0, 11.5), (10.5, 22.5), (21.5, 30.0)]
    asked = []

    def chat(messages, fmt):
        text = messages[-1]["content"]
        asked.append(text)
        spans = [(float(a), float(b)) for a, b in re.findall(r"\[([\d.]+)-([\d.]+)\]", text)]
        lo, hi = spans[0][0], spans[-1][1]
        # the model reports every scene it sees; the one across a cut is seen twice
        found = [{"start": max(lo, s), "end": min(hi, e), "caption": c, "score": 0.5}
                 for s, e, c in ((0, 9.5, "kitchen"), (9.5, 19.5, "garden"), (19.5, 30, "street"))
                 if min(hi, e) - max(lo, s) > 0.5 * (e - s)]
        return ChatReply(text=json.dumps({"events": found}))

    out = run_events(chat, t, reasoner_name="fake", response_formats=("text",), chunk_entries=12)
    assert len(asked) == 3 and "part of the transcript from 10.5 to 22.5;" in asked[1]
    assert [(e.start, e.end, e.caption) for e in out.events] == [
        (0.0, 9.5, "kitchen"), (10.5, 19.5, "garden"), (21.5, 30.0, "street")]
    assert out.settings["chunks"] == 3 and out.usage["reason"].requests == 3


def test_chat_options_are_checked(short):
    with pytest.raises(ConfigurationError, match="chunk_entries must be a whole number"):
        run_events(lambda m, f: ChatReply(text=GOOD), short, reasoner_name="x", chunk_entries=0)
    with pytest.raises(ConfigurationError, match=r"unknown events option\(s\) window_seconds for the chat path"):
        from temporal_reasoner.openai_reasoner import OpenAIReasoner

        find_events(OpenAIReasoner("m", base_url="http://127.0.0.1:9", api_key="k"), short, window_seconds=3)


def test_openai_reasoner_finds_events_through_its_server(openai_server, short):
    from temporal_reasoner.openai_reasoner import OpenAIReasoner

    openai_server.script(Reply.chat(GOOD, prompt_tokens=200, completion_tokens=40))
    rsn = OpenAIReasoner("gpt-4o-mini", base_url=openai_server.base_url, api_key="sk-test", retry_base_delay=0.01)
    out = find_events(rsn, short, max_events=5)
    (req,) = openai_server.requests
    assert req.json["messages"] == build_events_messages(short, max_events=5)
    assert req.json["response_format"] == events_response_format("json_schema")
    assert out.reasoner == "openai:gpt-4o-mini" and out.usage["reason"].prompt_tokens == 200
    assert [e.caption for e in out.events] == ["a man chops onions", "a dog digs"]


def test_openai_reasoner_steps_down_the_ladder_when_the_schema_is_refused(openai_server, short):
    from temporal_reasoner.openai_reasoner import OpenAIReasoner

    openai_server.script(Reply.error(400, "response_format json_schema is not supported"), Reply.chat(GOOD))
    rsn = OpenAIReasoner("m", base_url=openai_server.base_url, api_key="sk-test", retry_base_delay=0.01)
    out = find_events(rsn, short)
    assert [r.json.get("response_format", {}).get("type") for r in openai_server.requests] == ["json_schema", "json_object"]
    assert "json_schema" in rsn.refused_formats and len(out.events) == 2


def test_a_reasoners_own_events_method_is_used_with_the_chat_settings_checked(short):
    calls = []

    class Own(BaseReasoner):
        name = "own"

        def ground(self, query, transcript):  # pragma: no cover
            raise NotImplementedError

        def events(self, transcript, **options):
            calls.append(options)
            return Events(events=[Event(start=0, end=1, caption="x")], duration=transcript.duration)

    assert len(find_events(Own(), short, max_events=2).events) == 1 and calls == [{"max_events": 2}]
    with pytest.raises(ConfigurationError, match=r"unknown events option\(s\) window_seconds for the chat path"):
        find_events(Own(), short, window_seconds=3)


def test_llamacpp_events_grammar_compiles_and_bounds_the_reply():
    pytest.importorskip("llama_cpp")
    from temporal_reasoner.llamacpp_reasoner import _grammar, grammar_text

    schema = events_schema(4)
    assert schema["properties"]["events"]["items"]["properties"]["caption"]["maxLength"] == 200
    text = grammar_text(schema, int_digits=3)
    assert all(k in text for k in ("caption", "start", "end", "score"))
    assert _grammar(schema, int_digits=3) is not None


# --- Session / API / CLI ------------------------------------------------------------------------

def test_api_events_on_descriptions_records_provenance():
    from pipelines import events

    descs = [FrameDescription(t=float(i), text=KITCHEN if i < 8 else GARDEN) for i in range(16)]
    out = events(descs, reasoner=WordsReasoner(), min_event_seconds=3)
    assert [(e.start, e.end) for e in out.events] == [(0.0, 7.5), (7.5, 16.0)]
    assert out.reasoner == "words+change-points" and "reason" in out.timings
    assert out.settings["min_event_seconds"] == 3
    with pytest.raises(ConfigurationError, match="unknown events option"):
        events(descs, reasoner=WordsReasoner(), nonsense=1)
    with pytest.raises(InputError, match="no descriptions given"):
        events([], reasoner=WordsReasoner())


def test_cli_events(tmp_path, capsys):
    from pipelines.cli import main
    from temporal_reasoner import reasoners

    reasoners.register("words-events-test", WordsReasoner)
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"t": i, "text": KITCHEN if i < 8 else STREET}) + "\n" for i in range(16)),
                    encoding="utf-8")
    args = ["events", "--descriptions", str(path), "--reasoner", "words-events-test"]
    assert main([*args, "--events-opt", "min_event_seconds=3"]) == 0
    out = capsys.readouterr().out
    assert KITCHEN in out and STREET in out and "2 event(s) in 16.00 s" in out
    assert main([*args, "--json"]) == 0
    assert len(Events.model_validate_json(capsys.readouterr().out).events) == 2
    assert main([*args, "--events-opt", "window_seconds=-1"]) == 1
    err = capsys.readouterr().err
    assert "window_seconds must be above 0" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as e:  # a malformed command line: the usage, exit 2
        main([*args, "extra.mp4"])
    assert e.value.code == 2 and "with --descriptions give no video" in capsys.readouterr().err
    hostile = tmp_path / "hostile.jsonl"  # a caption's terminal escape is printed visibly, not obeyed
    hostile.write_text(json.dumps({"t": 0, "text": "a man \x1b[2J cooks"}) + "\n", encoding="utf-8")
    assert main(["events", "--descriptions", str(hostile), "--reasoner", "words-events-test"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "cooks" in out


def test_cli_events_time_style_reaches_the_chat(openai_server, tmp_path, capsys):
    from pipelines.cli import main

    openai_server.script(Reply.chat('{"events": [{"start": "<0>", "end": "<50>", "caption": "cooking", "score": 1},'
                                    ' {"start": "<50>", "end": "<100>", "caption": "digging", "score": 1}]}'))
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"t": i, "text": KITCHEN if i < 5 else GARDEN}) + "\n" for i in range(10)),
                    encoding="utf-8")
    args = ["events", "--descriptions", str(path), "--duration", "10", "--reasoner", "openai:m", "--base-url",
            openai_server.base_url, "--api-key", "sk-test", "--json"]
    assert main([*args, "--time-style", "tokens:100"]) == 0, capsys.readouterr().err
    out = Events.model_validate_json(capsys.readouterr().out)
    assert [(e.start, e.end) for e in out.events] == [(0.0, 5.0), (5.0, 10.0)]
    assert out.settings["reasoner"]["time_style"] == "tokens:100"  # once, with the reasoner's other settings
    (req,) = openai_server.requests
    assert "[<0>-<45>] " + KITCHEN in req.json["messages"][1]["content"]  # 4.5 s of 10: token 45 of 100
    assert main([*args, "--time-style", "hours"]) == 1
    assert "unknown time style 'hours'" in capsys.readouterr().err


@pytest.mark.slow
def test_offline_events_on_the_rendered_demo_video(tmp_path):
    from frame_describer.synthetic import render_demo_video
    from pipelines import events

    video = tmp_path / "demo.mp4"
    truth = render_demo_video(video)
    out = events(video, describer="cv", reasoner="embedding", window_seconds=3, min_event_seconds=2)
    lights = next(ev for ev in truth if "light" in ev.query)
    assert any(e.iou((lights.start, lights.end)) >= 0.5 for e in out.events)
    assert out.describer == "cv" and out.video == str(video)


@pytest.mark.slow
def test_offline_events_of_the_demo_video_each_say_what_sets_them_apart(demo_video):
    """`vidground events` on the demo gave its first two events the same caption, the colours of the room."""
    from pipelines import events

    out = events(demo_video[0], describer="cv", reasoner="embedding")
    captions = [e.caption for e in out.events]
    assert len(captions) >= 2 and all(a != b for a, b in zip(captions, captions[1:])), captions
    assert "person" in captions[0], captions


# --- eval activitynet-events -------------------------------------------------------------------

def _anet_fixture(tmp_path):
    """Two reference sets over three videos, and descriptions for two of them (one with the v_ prefix dropped)."""
    refs1 = {"v_a": {"duration": 20.0, "timestamps": [[0, 10], [10, 20]], "sentences": ["cook", "dig"]},
             "v_b": {"duration": 16.0, "timestamps": [[0, 8], [8, 16]], "sentences": ["x", "y"]},
             "v_c": {"duration": 10.0, "timestamps": [[0, 10]], "sentences": ["z"]}}
    refs2 = {"v_a": {"duration": 20.0, "timestamps": [[0, 20]], "sentences": ["all"]}}
    (tmp_path / "val_1.json").write_text(json.dumps(refs1))
    (tmp_path / "val_2.json").write_text(json.dumps(refs2))
    folder = tmp_path / "descriptions"
    folder.mkdir()
    for name, (first, second, n) in {"v_a": (KITCHEN, GARDEN, 10), "b": (STREET, GARDEN, 8)}.items():
        (folder / f"{name}.jsonl").write_text("".join(
            json.dumps({"t": float(i), "text": first if i < n else second}) + "\n" for i in range(2 * n)))
    (tmp_path / "data").mkdir()
    return tmp_path


@pytest.fixture
def no_caption_scorers(monkeypatch):
    """Caption scoring starts Java (tested on its own, slow): here it reports itself missing."""
    from vidground.errors import MissingDependencyError

    def missing():
        raise MissingDependencyError("pycocoevalcap", "captions", "caption metrics (METEOR, CIDEr, BLEU)")

    monkeypatch.setattr("pipelines.event_metrics.caption_scorers", missing)


def test_eval_activitynet_events_scores_resumes_and_records_the_references(tmp_path, capsys, no_caption_scorers):
    from pipelines.cli import main
    from temporal_reasoner import reasoners

    reasoners.register("words-anet-test", WordsReasoner)
    root = _anet_fixture(tmp_path)
    args = ["eval", "activitynet-events", "--descriptions", str(root / "descriptions"), "--data-root",
            str(root / "data"), "--references", str(root / "val_1.json"), "--references", str(root / "val_2.json"),
            "--reasoner", "words-anet-test", "--events-opt", "min_event_seconds=3", "--out", str(root / "run"),
            "--allow-missing", "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    # v_a: [0, 9.5], [9.5, 20] against val_1's [0, 10], [10, 20] (tIoU 0.95, 0.95) and val_2's [0, 20] (0.475,
    # 0.525); v_b: [0, 7.5], [7.5, 16] against val_1's [0, 8], [8, 16] (0.94, 0.94). v_c has no input: not scored
    loc = metrics["localisation"]
    assert all(loc[f"{k}@{t}"] == 100.0 for k in ("precision", "recall") for t in ("0.3", "0.5", "0.7", "0.9"))
    val_2 = metrics["per_reference"]["val_2.json"]  # v_a alone: one of two predictions above 0.5, none above 0.7
    assert (val_2["precision@0.5"], val_2["recall@0.5"], val_2["precision@0.3"], val_2["recall@0.7"]) == (50.0, 100.0, 100.0, 0.0)
    assert val_2["videos"] == 1 and metrics["per_reference"]["val_1.json"]["videos"] == 2
    assert metrics["videos"] == 2 and metrics["missing_inputs"] == 1
    assert {Path(p).name for p in metrics["references"]} == {"val_1.json", "val_2.json"}
    assert all(len(r["sha256"]) == 64 for r in metrics["references"].values())
    assert "mean" in printed and "sha256" in printed and "captions not scored: caption metrics (METEOR, CIDEr, BLEU) needs" in printed
    assert "vidground[captions]" in metrics["captions"]["not_scored"]
    lines = (root / "run" / "events.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["video"] for x in lines) == ["v_a", "v_b"]
    assert main(args) == 0  # resumed: nothing run again, same figures
    capsys.readouterr()
    assert (root / "run" / "events.jsonl").read_text().splitlines() == lines
    assert json.loads((root / "run" / "metrics.json").read_text())["localisation"] == loc


def _anet_args(root, *extra):
    from temporal_reasoner import reasoners

    reasoners.register("words-anet-test", WordsReasoner)
    return ["eval", "activitynet-events", "--descriptions", str(root / "descriptions"), "--data-root",
            str(root / "data"), "--references", str(root / "val_1.json"), "--reasoner", "words-anet-test",
            "--events-opt", "min_event_seconds=3", "--out", str(root / "run"), "--allow-missing", "--quiet", *extra]


def test_eval_activitynet_events_leaves_out_a_reference_set_without_scored_videos(tmp_path, capsys, no_caption_scorers):
    from pipelines.cli import main

    root = _anet_fixture(tmp_path)
    (root / "other.json").write_text(json.dumps({"v_z": {"duration": 5.0, "timestamps": [[0, 5]], "sentences": ["q"]}}))
    assert main(_anet_args(root, "--references", str(root / "other.json"))) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    assert metrics["references_without_scored_videos"] == [str(root / "other.json")]
    assert set(metrics["per_reference"]) == {"val_1.json"} and metrics["references"][str(root / "other.json")]["scored_videos"] == 0
    assert metrics["localisation"]["recall@0.9"] == 100.0 and "none of the scored videos, left out" in printed


def test_eval_activitynet_events_resumes_past_a_torn_or_damaged_line(tmp_path, capsys, no_caption_scorers):
    from pipelines.cli import main

    root = _anet_fixture(tmp_path)
    assert main(_anet_args(root)) == 0
    capsys.readouterr()
    path = root / "run" / "events.jsonl"
    lines = path.read_text().splitlines()
    first = json.loads((root / "run" / "metrics.json").read_text())["localisation"]
    keep = next(x for x in lines if json.loads(x)["video"] == "v_a")
    path.write_text("not json at all\n" + keep + "\n" + '{"video": "v_b", "ev')  # damaged, whole, torn by a kill
    assert main(_anet_args(root)) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert (root / "run" / "events.jsonl.corrupt").read_text() == "not json at all\n"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert sorted(r["video"] for r in rows) == ["v_a", "v_b"]  # v_b run again, appended after a clean cut
    assert json.loads((root / "run" / "metrics.json").read_text())["localisation"] == first


def test_eval_activitynet_events_records_and_checks_its_settings(tmp_path, capsys, no_caption_scorers):
    from pipelines.cli import main

    root = _anet_fixture(tmp_path)
    assert main(_anet_args(root)) == 0
    capsys.readouterr()
    config = json.loads((root / "run" / "config.json").read_text())
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    assert metrics["config"] == config
    assert (config["mode"], config["reasoner"], config["describer"], config["sampling"]) == \
        ("descriptions", "words-anet-test", None, None)
    assert config["events_options"] == {"min_event_seconds": 3}
    args = _anet_args(root)
    args[args.index("min_event_seconds=3")] = "min_event_seconds=4"
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "holds an events run with other settings" in err and "events_options" in err and err.count("\n") == 1
    assert main(_anet_args(root, "--reasoner-opt", "api_key=sk-secret")) == 1
    err = capsys.readouterr().err
    assert "reasoner_options" in err and "sk-secret" not in err


@pytest.mark.parametrize("text, what", [("garbage\n", "not valid JSON"), ("[1]\n", "a JSON list, not an object")])
def test_eval_activitynet_events_names_a_damaged_config_json(tmp_path, capsys, no_caption_scorers, text, what):
    """Resuming an events run read config.json without the check grounding runs have: a JSON list was
    'internal error: AttributeError'."""
    from pipelines.cli import main

    root = _anet_fixture(tmp_path)
    assert main(_anet_args(root)) == 0
    capsys.readouterr()
    (root / "run" / "config.json").write_text(text)
    assert main(_anet_args(root)) == 1
    err = capsys.readouterr().err
    assert "damaged run file" in err and what in err and str(root / "run" / "config.json") in err
    assert "internal error" not in err and err.count("\n") == 1


def test_eval_activitynet_events_bad_inputs(tmp_path, capsys, no_caption_scorers):
    from pipelines.cli import main

    root = _anet_fixture(tmp_path)
    base = ["eval", "activitynet-events", "--data-root", str(root / "data"), "--out", str(root / "run"), "--quiet"]
    (root / "bad.json").write_text(json.dumps({"v_a": {"timestamps": [[0]], "sentences": ["a"]}}))
    (root / "few.json").write_text(json.dumps({v: {"timestamps": [[0, 1]], "sentences": ["a"]} for v in ("v_a", "v_x", "v_y")}))
    for extra, message in [
        (["--descriptions", str(root / "descriptions"), "--references", str(root / "bad.json")],
         "video v_a: 'timestamps' must be a list of"),
        (["--descriptions", str(root / "descriptions"), "--references", str(root / "nowhere.json")],
         "reference file not found"),
        (["--descriptions", str(root / "descriptions")], "no reference file"),
        (["--references", str(root / "val_1.json")], "give one input"),
        (["--descriptions", str(root / "descriptions"), "--references", str(root / "few.json")],
         "2 of 3 selected videos have no input"),
        (["--descriptions", str(root / "descriptions"), "--references", str(root / "val_1.json"), "--describer", "cv"],
         "--describer has no effect with --descriptions"),  # it was silently ignored
    ]:
        assert main([*base, *extra]) == 1
        err = capsys.readouterr().err
        assert message in err, err


@pytest.mark.parametrize("extra, flag", [
    (["--strategy", "coarse-to-fine"], "--strategy"), (["--budget", "4"], "--budget"),
    (["--budget-seconds", "2"], "--budget-seconds"), (["--skip-unchanged", "2"], "--skip-unchanged"),
    (["--keyframe-tolerance", "0"], "--keyframe-tolerance"),
    (["--top-k", "1"], "--top-k"), (["--strict"], "--strict"), (["--subset", "ids.txt"], "--subset"),
    (["--executor", "ray"], "--executor"), (["--concurrency", "4", "--no-report"], "--concurrency, --no-report"),
])
def test_eval_activitynet_events_refuses_options_it_would_ignore(tmp_path, capsys, extra, flag):
    from pipelines.cli import main

    root = _anet_fixture(tmp_path)
    assert main(_anet_args(root, *extra)) == 1
    err = capsys.readouterr().err
    assert f"{flag}: not available for activitynet-events" in err and err.count("\n") == 1, err
    assert not (root / "run").exists()


# --- metrics ------------------------------------------------------------------------------------

def test_densevid_localisation_on_a_hand_computed_case():
    refs1 = {"v1": [[0, 10], [10, 20]], "v2": [[0, 5]]}
    refs2 = {"v1": [[0, 20]]}
    preds = {"v1": [[0, 10], [12, 20], [30, 40]]}  # v2 has no prediction: 0 on both
    m = densevid_localisation(preds, [refs1, refs2], tious=(0.5, 0.9))
    # v1 at 0.5: set 1 -> preds 0 and 1 match (IoU 1, 0.8), P 2/3, R 2/2; set 2 -> pred 0 (0.5 is not > 0.5)
    # misses, pred 1 (0.4) misses: P 0, R 0. Best: P 2/3, R 1. v2: 0, 0.
    assert m["precision@0.5"] == pytest.approx(100 * (2 / 3) / 2, abs=1e-3)
    assert m["recall@0.5"] == pytest.approx(50.0)
    # at 0.9 only pred 0 matches ref [0, 10] of set 1: P 1/3, R 1/2
    assert m["precision@0.9"] == pytest.approx(100 * (1 / 3) / 2, abs=1e-3)
    assert m["recall@0.9"] == pytest.approx(25.0)
    assert m["precision"] == pytest.approx((m["precision@0.5"] + m["precision@0.9"]) / 2, abs=1e-3)
    p, r = m["precision"], m["recall"]
    assert m["f1"] == pytest.approx(2 * p * r / (p + r), abs=1e-3) and m["videos"] == 2
    # only the first max_proposals predictions count
    assert densevid_localisation(preds, [refs1], tious=(0.5,), max_proposals=1)["precision@0.5"] == pytest.approx(50.0)
    with pytest.raises(EvaluationError, match="no reference set"):
        densevid_localisation(preds, [])
    with pytest.raises(EvaluationError, match="not a"):
        densevid_localisation({"v1": [[1]]}, [refs1])


def test_boundary_f1_and_event_recall_by_hand():
    b = boundary_f1([10.0, 11.0, 30.0], [10.5, 20.0], tolerance=2.0)
    assert (b["hits"], b["precision"], b["recall"]) == (1, 1 / 3, 1 / 2)  # 10.5 is matched once
    assert b["f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert boundary_f1([], [], 2.0)["f1"] == 1.0 and boundary_f1([], [5.0], 2.0)["f1"] == 0.0
    assert tiou((0, 10), (5, 15)) == pytest.approx(1 / 3)
    assert event_recall([(0, 10), (10, 20)], [(0, 9), (12, 30), (40, 50)], 0.5) == pytest.approx(1 / 3)
    with pytest.raises(EvaluationError):
        event_recall([(0, 1)], [], 0.5)


@pytest.mark.slow
def test_densevid_captions_on_hand_computed_cases():
    """An exact caption on an exactly placed event scores 1 (METEOR, BLEU-4) on its video; a video without
    predictions 0; a caption placed where no reference is compared with junk and scores 0."""
    pytest.importorskip("pycocoevalcap")
    import shutil

    if shutil.which("java") is None:
        pytest.skip("no Java runtime")
    from pipelines.event_metrics import densevid_captions

    refs = [{"v1": {"timestamps": [[0, 10], [10, 20]], "sentences": ["a man chops onions in a kitchen",
                                                                     "a dog digs in the garden"]},
             "v2": {"timestamps": [[0, 5]], "sentences": ["cars drive down a busy street"]}}]
    exact = densevid_captions({"v1": [(0, 10, "a man chops onions in a kitchen")]}, refs, tious=(0.5, 0.9))
    assert exact["METEOR@0.5"] == pytest.approx(50.0, abs=0.5) and exact["Bleu_4@0.9"] == pytest.approx(50.0, abs=0.5)
    assert exact["METEOR"] == pytest.approx(50.0, abs=0.5)
    misplaced = densevid_captions({"v1": [(30, 40, "a man chops onions in a kitchen")]}, refs, tious=(0.5,))
    assert misplaced["METEOR@0.5"] == pytest.approx(0.0, abs=0.5) and misplaced["Bleu_4@0.5"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(EvaluationError, match="not a .start, end, caption. triple"):
        densevid_captions({"v1": [(0, 10)]}, refs, tious=(0.5,))
