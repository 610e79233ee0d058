"""Parsing, validation policy, re-asking and the response-format ladder (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from vidground.errors import IncompleteOutputError, OutputValidationError, ProviderError
from vidground.types import FrameDescription, Usage
from temporal_reasoner.base import BaseReasoner
from temporal_reasoner.structured import (
    INTERVALS_SCHEMA,
    ChatReply,
    ReplyError,
    build_messages,
    extract_json,
    intervals_schema,
    is_format_refusal,
    parse_reply,
    parse_reply_detailed,
    response_format,
    run_structured,
)
from temporal_reasoner.transcript import Transcript
from vidground.types import GroundingResult, Interval

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def transcript() -> Transcript:
    texts = ["a person sits on a sofa"] * 3 + ["a person opens the fridge door"] * 2 + ["a person drinks from a cup"] * 5
    return Transcript.from_descriptions([FrameDescription(t=i * 2.0, text=t) for i, t in enumerate(texts)])


# --- extraction -------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    '{"intervals": [{"start": 6, "end": 10, "score": 0.8}]}',
    'Here you go:\n```json\n{"intervals": [{"start": 6, "end": 10, "score": 0.8}]}\n```\nHope it helps.',
    "The answer is {'intervals': [{'start': 6, 'end': 10, 'score': 0.8,},],} as requested.",
    '{"intervals": [[6, 10, 0.8]]}',
    '[{"start": 6, "end": 10, "score": 0.8}]',
    '{"start": 6.0, "end": 10.0, "score": 0.8}',
    '{"intervals": [{"start_time": 6, "end_time": 10, "score": 0.8}]}',
])
def test_tolerant_extraction(text):
    assert parse_reply(text, duration=20, step=2) == [Interval(start=6, end=10, score=0.8)]


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("I cannot tell.", "no JSON"),
    ('{"intervals": [{"start": 6, "end": ', "no JSON"),  # truncated
    ('{"intervals": [{"start": 6 "end": 10}]}', "malformed"),
    ('{"intervals": []}', "empty; give at least one"),
    ('{"intervals": [{"start": 10, "end": 6}]}', "reversed"),
    ('{"intervals": [{"start": NaN, "end": 6}]}', "finite"),
    ('{"intervals": [{"start": 1, "end": Infinity}]}', "finite"),
    ('{"intervals": [{"start": "six", "end": 10}]}', "string 'six'"),
    ('{"intervals": [{"start": true, "end": 10}]}', "not of type 'number'"),
    ('{"intervals": [{"start": 6}]}', "'end' is a required property"),
    ('{"answer": 3}', '"intervals" list'),
    ('{"intervals": [{"start": 50, "end": 90}]}', "outside the video, which lasts 20"),
    ('{"intervals": [{"start": -5, "end": 3}]}', "outside the video"),
])
def test_rejections_explain_themselves(text, message):
    with pytest.raises(ReplyError, match=message):
        parse_reply(text, duration=20, step=2)


def test_frame_numbers_are_named_not_misread():
    # 30 frames 0.5 s apart: "frames 24 to 28" would be 12-14 s; read as seconds they are past the end.
    with pytest.raises(ReplyError, match="24 looks like a frame number.*0.5s apart"):
        parse_reply('{"intervals": [{"start": 24, "end": 28}]}', duration=15, step=0.5)


def test_strings_for_numbers_and_clock_times_are_converted_with_warnings():
    r = parse_reply_detailed('{"intervals": [{"start": "6.5", "end": "00:10", "score": "0.5"}]}', duration=20, step=2)
    assert r.intervals == [Interval(start=6.5, end=10, score=0.5)]
    assert any("'00:10' as 10 seconds" in w for w in r.warnings)
    r = parse_reply_detailed('{"intervals": [{"start": "1:02:03", "end": "1:02:05"}]}', duration=4000)
    assert r.intervals[0].start == 3723 and r.intervals[0].end == 3725


def test_clamping_within_tolerance_and_point_answers():
    r = parse_reply_detailed('{"intervals": [{"start": -0.3, "end": 20.4, "score": 0.9}]}', duration=20, step=1)
    assert r.intervals == [Interval(start=0, end=20, score=0.9)]
    assert len([w for w in r.warnings if "clamped" in w]) == 2
    r = parse_reply_detailed('{"intervals": [{"start": 7, "end": 7}]}', duration=20, step=2)
    assert r.intervals == [Interval(start=7, end=9)] and "widened" in r.warnings[0]
    r = parse_reply_detailed('{"intervals": [{"start": 20, "end": 20}]}', duration=20, step=2)
    assert r.intervals == [Interval(start=18, end=20)]


def test_sorted_best_first_deduplicated_and_cut():
    text = json.dumps({"intervals": [{"start": 0, "end": 2, "score": 0.1}, {"start": 4, "end": 6, "score": 0.9},
                                     {"start": 4, "end": 6, "score": 0.9}, {"start": 8, "end": 9, "score": 0.5}]})
    r = parse_reply_detailed(text, duration=10, max_intervals=2)
    assert [iv.start for iv in r.intervals] == [4, 8]
    assert any("kept the first 2" in w for w in r.warnings)


def test_extract_json_prefers_fenced_block():
    assert extract_json('Example {"a": 1}\n```json\n{"b": 2}\n```') == {"b": 2}


def test_schema_is_strict_mode_compatible_and_accepts_valid_reply():
    items = INTERVALS_SCHEMA["properties"]["intervals"]["items"]
    assert set(items["required"]) == set(items["properties"]) and items["additionalProperties"] is False
    jsonschema.validate({"intervals": [{"start": 1.0, "end": 2.0, "score": 0.5}]}, INTERVALS_SCHEMA)
    assert response_format("json_schema")["json_schema"]["strict"] is True
    assert response_format("json_object_schema") == {"type": "json_object", "schema": INTERVALS_SCHEMA}
    bounded = response_format("json_object_schema", max_intervals=2)["schema"]["properties"]["intervals"]
    assert bounded["maxItems"] == 2 and "maxItems" not in INTERVALS_SCHEMA["properties"]["intervals"]
    assert response_format("text") is None
    with pytest.raises(ValueError, match="choose one of: json_schema"):
        response_format("yaml")


# --- prompts (golden) -------------------------------------------------------------------------

@pytest.mark.parametrize("style", ["seconds", "mmss"])
def test_prompt_golden_snapshot(transcript, style):
    rendered = build_messages("the person opens the fridge", transcript, time_style=style, max_intervals=3)
    path = GOLDEN / f"reason_messages_{style}.json"
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert rendered == expected, f"prompt changed: if deliberate, update {path}"


# --- the loop ---------------------------------------------------------------------------------

class Scripted:
    """A chat callable answering from a script; exceptions in the script are raised."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.calls: list[tuple[list[dict], dict | None]] = []

    def __call__(self, messages, fmt):
        self.calls.append((messages, fmt))
        r = self.replies.pop(0)
        if isinstance(r, BaseException):
            raise r
        return r if isinstance(r, ChatReply) else ChatReply(r, "stop", Usage(requests=1, prompt_tokens=100, completion_tokens=10))


GOOD = '{"intervals": [{"start": 6, "end": 10, "score": 0.9}]}'


def test_reask_shows_the_error_and_usage_sums(transcript):
    chat = Scripted('{"intervals": [{"start": 10, "end": 6}]}', GOOD)
    r = run_structured(chat, "the person opens the fridge", transcript, reasoner_name="t", response_formats=["text"])
    assert r.intervals == [Interval(start=6, end=10, score=0.9)]
    assert r.usage["reason"] == Usage(requests=2, prompt_tokens=200, completion_tokens=20)
    assert r.settings["attempts"] == 2
    second = chat.calls[1][0]
    assert second[-2] == {"role": "assistant", "content": '{"intervals": [{"start": 10, "end": 6}]}'}
    assert "reversed" in second[-1]["content"] and second[-1]["role"] == "user"


def test_length_cut_is_incomplete_and_exhaustion_raises_with_diagnosis(transcript):
    cut = ChatReply('{"intervals": [{"start": 6, "en', "length", Usage(requests=1, completion_tokens=50))
    chat = Scripted(cut, cut)
    with pytest.raises(IncompleteOutputError) as info:
        run_structured(chat, "q", transcript, reasoner_name="t", max_attempts=2, response_formats=["text"])
    err = info.value
    assert err.attempts == 2 and err.raw_outputs == [cut.text, cut.text]
    assert err.usage == Usage(requests=2, completion_tokens=100) and "cut off" in err.errors[0]
    assert "cut off" in chat.calls[1][0][-1]["content"]

    chat = Scripted("no idea", '{"intervals": []}', "[]")
    with pytest.raises(OutputValidationError) as info:
        run_structured(chat, "q", transcript, reasoner_name="t", response_formats=["text"])
    assert not isinstance(info.value, IncompleteOutputError)
    assert info.value.attempts == 3 and len(info.value.errors) == 3 and info.value.usage.requests == 3


class FixedReasoner(BaseReasoner):
    name = "fixed"

    def ground(self, query, transcript):
        return GroundingResult(query=query, duration=transcript.duration, intervals=[Interval(start=1, end=2)],
                               reasoner=self.name, usage={"reason": Usage()})


def test_fallback_after_last_attempt(transcript):
    chat = Scripted("nope", "nope")
    r = run_structured(chat, "q", transcript, reasoner_name="t", max_attempts=2, fallback=FixedReasoner(),
                       response_formats=["text"])
    assert r.intervals == [Interval(start=1, end=2)] and r.settings["fallback"] == "fixed"
    assert r.usage["reason"].requests == 2 and r.raw == ["nope", "nope"]
    assert "used the fallback reasoner 'fixed'" in r.warnings[-1]
    lazy = []
    r = run_structured(Scripted(GOOD), "q", transcript, reasoner_name="t",
                       fallback=lambda: lazy.append(1) or FixedReasoner(), response_formats=["text"])
    assert lazy == [] and r.intervals[0].start == 6  # a lazy fallback is not built when unused


def test_ladder_degrades_and_remembers_refusals_in_the_set_it_is_given(transcript):
    refused: set[str] = set()
    chat = Scripted(ProviderError("HTTP 500: 'loc': ('body', 'response_format', 'type')", status=500),
                    ProviderError("HTTP 400: json_object with a schema is not supported", status=400), GOOD)
    r = run_structured(chat, "q", transcript, reasoner_name="t", refused=refused)
    assert [c[1] and c[1]["type"] for c in chat.calls] == ["json_schema", "json_object", "json_object"]
    assert "schema" in chat.calls[1][1] and "schema" not in chat.calls[2][1]
    assert r.settings["response_format"] == "json_object" and r.settings["attempts"] == 1
    assert refused == {"json_schema", "json_object_schema"}
    chat = Scripted(GOOD)
    run_structured(chat, "q", transcript, reasoner_name="t", refused=refused)
    assert chat.calls[0][1] == {"type": "json_object"}  # no refusal paid again
    chat = Scripted(GOOD)
    run_structured(chat, "q", transcript, reasoner_name="t", refused=set())  # another backend's memory
    assert chat.calls[0][1]["type"] == "json_schema"


@pytest.mark.parametrize("status, message, refusal", [
    (400, "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model", True),
    (422, "response format: unsupported", True),
    (500, "1 validation error: {'loc': ('body', 'response_format', 'type'), 'input': 'json_schema'}", True),
    (500, "internal server error", False),  # a transient fault, whatever was asked
    (502, "bad gateway while handling response_format", False),
    (503, "json_schema backend overloaded", False),
    (429, "rate limit on response_format requests", False),
    (400, "context length exceeded", False),
    (None, "the request timed out", False),
])
def test_only_an_explicit_refusal_of_the_format_is_one(status, message, refusal):
    assert is_format_refusal(ProviderError(f"HTTP {status}: {message}", status=status)) is refusal


def test_non_format_errors_propagate_and_are_not_remembered(transcript):
    refused: set[str] = set()
    for error in (ProviderError("HTTP 401", status=401), ProviderError("HTTP 400 context too long", status=400),
                  ProviderError("HTTP 500: internal error", status=500)):
        chat = Scripted(error)
        with pytest.raises(ProviderError, match=str(error)):
            run_structured(chat, "q", transcript, reasoner_name="t", refused=refused)
        assert len(chat.calls) == 1
    assert refused == set()


def test_one_schema_for_the_strict_format_the_bounded_formats_and_validation():
    assert intervals_schema() == INTERVALS_SCHEMA
    assert response_format("json_object_schema", max_intervals=2)["schema"] == intervals_schema(2)
    assert intervals_schema(strict=False)["properties"]["intervals"]["items"]["required"] == ["start", "end"]


def test_apostrophes_around_the_json_do_not_hide_it():
    """Prose whose apostrophes pair up like a single-quoted string around the JSON ("the man's hand ...
    that's it") is read again with only double quotes as strings."""
    from temporal_reasoner.parsing import extract_json

    assert extract_json('Answer {note: the man\'s hand} {"intervals": [[1.0, 2.0, 0.9]]} that\'s it') == {
        "intervals": [[1.0, 2.0, 0.9]]}
    assert extract_json('Frames [12-15 show the person\'s hand: {"a": 1}. That\'s my answer.') == {"a": 1}
    assert extract_json("{'intervals': [{'start': 1, 'end': 2}]}") == {"intervals": [{"start": 1, "end": 2}]}
