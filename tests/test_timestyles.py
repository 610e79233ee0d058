"""Transcript time styles: seconds, mm:ss, frame numbers and relative <k> tokens; the prompt in each
(golden), the reply decoded in the same style, exactly, at the edges, and bad values re-asked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vidground.errors import ConfigurationError, OutputValidationError
from vidground.types import FrameDescription, Interval, Usage
from temporal_reasoner.parsing import ReplyError, parse_reply, parse_reply_detailed
from temporal_reasoner.qa import build_qa_messages, run_answer
from temporal_reasoner.structured import ChatReply, build_messages, response_format, run_structured
from temporal_reasoner.timestyles import DEFAULT_TOKENS, TimeFormat
from temporal_reasoner.transcript import Transcript

from test_structured import GOLDEN, transcript  # noqa: F401 - the goldens' transcript, in every style
from _helpers_openai_server import openai_server  # noqa: F401 - the fixture


# --- specs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, canonical", [
    (None, "seconds"), ("seconds", "seconds"), ("mmss", "mmss"), ("frames", "frames"), ("frames:25", "frames:25"),
    ("frames:29.97", "frames:29.97"), ("tokens", f"tokens:{DEFAULT_TOKENS}"), ("tokens:1", "tokens:1"),
])
def test_specs_parse_to_a_canonical_name(spec, canonical):
    assert TimeFormat.parse(spec).spec == canonical
    assert TimeFormat.parse(canonical).spec == canonical


@pytest.mark.parametrize("spec, message", [
    ("hours", "unknown time style 'hours'; choose one of: seconds, mmss, frames"),
    ("tokens:0", "M .* must be a whole number of at least 1, got '0'"),
    ("tokens:-3", "at least 1"), ("tokens:2.5", "whole number"), ("tokens:abc", "whole number"),
    ("frames:0", "FPS must be a positive number"), ("frames:nan", "FPS must be a positive"),
    ("frames:x", "FPS must be"), ("seconds:2", "takes no parameter"), (3, "a time style is a string"),
])
def test_bad_specs_are_configuration_errors(spec, message):
    with pytest.raises(ConfigurationError, match=message):
        TimeFormat.parse(spec)


def test_bad_spec_fails_when_a_chat_reasoner_is_built():
    from temporal_reasoner.openai_reasoner import OpenAIReasoner

    with pytest.raises(ConfigurationError, match="unknown time style"):
        OpenAIReasoner("gpt-4o-mini", api_key="x", time_style="minutes")
    assert OpenAIReasoner("gpt-4o-mini", api_key="x", time_style="tokens").time_style == "tokens:300"


# --- tokens: encoding and decoding at the edges ------------------------------------------------

def test_tokens_follow_grounded_videollm_at_the_edges():
    f = TimeFormat.parse("tokens")
    assert f.token(0.0, 60.0) == 0 and f.token(60.0, 60.0) == 300  # t = 0 and t = D
    assert f.token(61.0, 60.0) == 300  # past the end: min(., M)
    assert f.token(0.199, 60.0) == 0 and f.token(0.2, 60.0) == 1  # int() cuts down: 300 * 0.199 / 60 = 0.995
    assert f.token(59.999, 60.0) == 299
    one = TimeFormat.parse("tokens:1")  # M = 1: the start is <0>, the end <1>
    assert [one.token(t, 10.0) for t in (0.0, 5.0, 9.99, 10.0)] == [0, 0, 0, 1]
    assert one.decode(0, 10.0) == 0.0 and one.decode(1, 10.0, end=True) == 10.0


@pytest.mark.parametrize("m, duration", [(300, 60.0), (300, 0.9), (3, 0.9), (7, 13.3), (100, 3600.0), (1, 5.0)])
def test_every_token_decodes_and_encodes_back_to_itself(m, duration):
    # rounding: D * k / M in floating point must land in token k's part, not just below it
    f = TimeFormat.parse(f"tokens:{m}")
    for k in range(m + 1):
        t = f.decode(k, duration)
        assert t == duration * k / m and f.token(t, duration) == k


@pytest.mark.parametrize("value, expected", [(0, 0.0), (150, 30.0), (300, 60.0), ("<45>", 9.0), ("45", 9.0),
                                             (45.0, 9.0), ("< 7 >", 1.4)])
def test_token_replies_decode_exactly(value, expected):
    assert TimeFormat.parse("tokens").decode(value, 60.0) == pytest.approx(expected, abs=0)


@pytest.mark.parametrize("value, message", [
    (301, r"no time token <301>: tokens run from <0> to <300>"), (-1, "no time token <-1>"),
    (12.5, "not a whole number"), ("<12.5>", "not a whole number"), ("12s", "not a time token"),
    ("<a>", "not a time token"), (True, "not a time token"), (None, "not a time token"),
    (float("nan"), "not a time token"),
])
def test_bad_token_values_are_reply_errors_naming_the_range(value, message):
    text = json.dumps({"intervals": [{"start": value, "end": 200}]})
    with pytest.raises(ReplyError, match=r"intervals\[0\]\.start: .*" + message):
        parse_reply(text, duration=60.0, step=1.0, time_style="tokens")


def test_token_reply_is_parsed_to_seconds():
    r = parse_reply_detailed('{"intervals": [{"start": "<75>", "end": 135, "score": 0.8}, [135, 300]]}',
                             duration=20.0, step=2.0, time_style="tokens")
    assert r.intervals == [Interval(start=5.0, end=9.0, score=0.8), Interval(start=9.0, end=20.0)]
    with pytest.raises(ReplyError, match="reversed"):
        parse_reply('{"intervals": [{"start": 200, "end": 100}]}', duration=20.0, time_style="tokens")


# --- frames ------------------------------------------------------------------------------------

def test_frame_reply_is_exactly_the_span_its_lines_cover(transcript):
    f = TimeFormat.parse("frames")  # sampled every 2 s: frame k is at 2k s
    assert f.render(transcript).splitlines() == ["[0-2] a person sits on a sofa",
                                                 "[3-4] a person opens the fridge door",
                                                 "[5-9] a person drinks from a cup"]
    for entry, (a, b) in zip(transcript.entries, [(0, 2), (3, 4), (5, 9)]):
        got = parse_reply(json.dumps([a, b]), duration=transcript.duration, step=transcript.step, time_style=f)
        assert (got[0].start, got[0].end) == (entry.start, entry.end)
    assert f.last(transcript) == 9  # ten frames, at 0, 2, ..., 18 s
    with pytest.raises(ReplyError, match="no frame 10: frames run from 0 to 9"):
        parse_reply("[3, 10]", duration=transcript.duration, step=transcript.step, time_style=f.bound(transcript))


def test_frames_at_a_given_rate():
    t = Transcript.from_descriptions([FrameDescription(t=i * 0.5, text=f"s{i}") for i in range(4)], duration=2.0)
    f = TimeFormat.parse("frames:30")
    assert f.render(t).splitlines()[1] == "[15-15] s1"
    bound = f.bound(t)  # frames 15 and 30 are the sampled frames at 0.5 and 1 s: their spans, not 1/30 s
    assert parse_reply("[15, 30]", duration=2.0, step=0.5, time_style=bound) == [Interval(start=0.25, end=1.25)]
    assert parse_reply("[0, 59]", duration=2.0, step=0.5, time_style=bound) == [Interval(start=0.0, end=2.0)]
    with pytest.raises(ReplyError, match="no frame 60: frames run from 0 to 59"):  # 60 frames in 2 s at 30 fps
        parse_reply("[0, 60]", duration=2.0, step=0.5, time_style=bound)


# --- prompts (golden) and the loop ---------------------------------------------------------------

@pytest.mark.parametrize("style", ["frames", "tokens:100"])
def test_prompt_golden_snapshot(transcript, style):
    rendered = build_messages("the person opens the fridge", transcript, time_style=style, max_intervals=3)
    path = GOLDEN / f"reason_messages_{style.split(':')[0]}.json"
    assert rendered == json.loads(path.read_text(encoding="utf-8")), f"prompt changed: if deliberate, update {path}"


def test_qa_prompt_golden_snapshot_in_tokens(transcript):
    rendered = build_qa_messages("what does the person open?", transcript, ["the fridge", "a door"],
                                 time_style="tokens:100")
    path = GOLDEN / "qa_messages_tokens.json"
    assert rendered == json.loads(path.read_text(encoding="utf-8")), f"prompt changed: if deliberate, update {path}"


def test_reply_schema_says_the_units():
    schema = response_format("json_schema", time_style="tokens:50")["json_schema"]["schema"]
    item = schema["properties"]["intervals"]["items"]["properties"]
    assert "time token" in item["start"]["description"] and "0 to 50" in item["end"]["description"]
    assert "seconds" in response_format("json_schema")["json_schema"]["schema"]["properties"]["intervals"][
        "items"]["properties"]["start"]["description"]


class Scripted:
    def __init__(self, *replies):
        self.replies, self.calls = list(replies), []

    def __call__(self, messages, fmt):
        self.calls.append(messages)
        return ChatReply(self.replies.pop(0), "stop", Usage(requests=1))


def test_token_past_m_is_reasked_in_tokens_then_decoded(transcript):
    chat = Scripted('{"intervals": [{"start": 25, "end": 450, "score": 0.9}]}',
                    '{"intervals": [{"start": 25, "end": 45, "score": 0.9}]}')
    r = run_structured(chat, "the person opens the fridge", transcript, reasoner_name="t",
                       response_formats=["text"], time_style="tokens:100")
    assert r.intervals == [Interval(start=5.0, end=9.0, score=0.9)]
    assert r.settings["time_style"] == "tokens:100" and "reason_system_indexed" in r.settings["prompts"]
    reask = chat.calls[1][-1]["content"]
    assert "no time token <450>: tokens run from <0> to <100>" in reask and "0 <= start <= end <= 100" in reask


def test_malformed_tokens_every_attempt_is_an_output_validation_error(transcript):
    chat = Scripted(*['{"intervals": [{"start": 2.5, "end": 9}]}'] * 2)
    with pytest.raises(OutputValidationError, match="not a whole number"):
        run_structured(chat, "the person opens the fridge", transcript, reasoner_name="t",
                       response_formats=["text"], time_style="tokens", max_attempts=2)


def test_qa_answer_in_frames_is_decoded(transcript):
    chat = Scripted('{"choice": 0, "answer": "the fridge", "intervals": [{"start": 3, "end": 4, "score": 0.7}]}')
    a = run_answer(chat, "what does the person open?", transcript, ["the fridge", "a door"], reasoner_name="t",
                   response_formats=["text"], time_style="frames")
    assert a.choice == 0 and a.intervals == [Interval(start=5.0, end=9.0, score=0.7)]
    assert a.settings["time_style"] == "frames"


def test_seconds_and_mmss_prompts_are_unchanged_by_the_new_styles(transcript):
    for style in ("seconds", "mmss"):
        path = GOLDEN / f"reason_messages_{style}.json"
        assert build_messages("the person opens the fridge", transcript, time_style=style) == json.loads(
            path.read_text(encoding="utf-8"))


# --- the CLI: ground --time-style, eval --time-style / --motion ---------------------------------

def test_cli_ground_in_tokens_against_a_local_server(openai_server, tmp_path, capsys):
    from _helpers_openai_server import Reply
    from pipelines.cli import main
    from vidground.types import GroundingResult

    seen = []

    def respond(req):
        seen.append(req.json["messages"])
        return Reply.chat('{"intervals": [{"start": 25, "end": 45, "score": 0.7}]}')

    openai_server.responder = respond
    path = tmp_path / "d.jsonl"
    texts = ["a person sits on a sofa"] * 3 + ["a person opens the fridge door"] * 2 + ["a person drinks"] * 5
    path.write_text("".join(json.dumps({"t": i * 2.0, "text": t}) + "\n" for i, t in enumerate(texts)))
    rc = main(["ground", "--descriptions", str(path), "the person opens the fridge", "--reasoner", "openai:m",
               "--base-url", openai_server.base_url, "--api-key", "sk-test", "--time-style", "tokens:100", "--json"])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    result = GroundingResult.model_validate_json(printed.out)
    assert result.intervals == [Interval(start=5.0, end=9.0, score=0.7)]
    assert result.settings["reasoner"]["time_style"] == "tokens:100"
    assert "[<25>-<45>] a person opens the fridge door" in seen[0][1]["content"]


@pytest.mark.parametrize("argv, message", [
    (["--time-style", "tokens:0"], "M .* at least 1"),
    (["--time-style", "tokens", "--reasoner-opt", "time_style=seconds"], "give the time style once"),
    (["--motion"], "--motion measures the video's frames"),
])
def test_cli_ground_refuses_bad_time_style_and_motion_without_video(tmp_path, capsys, argv, message):
    from pipelines.cli import main

    path = tmp_path / "d.jsonl"
    path.write_text('{"t": 0, "text": "a door"}\n{"t": 1, "text": "a cup"}\n')
    rc = main(["ground", "--descriptions", str(path), "a door", "--reasoner", "openai:m", "--api-key", "k", *argv])
    assert rc != 0 and re.search(message, capsys.readouterr().err)


def test_eval_motion_and_time_style_are_run_settings(tmp_path):
    from pipelines.runs import _MUST_MATCH, RunConfig

    assert "motion" in _MUST_MATCH and "reasoner_options" in _MUST_MATCH  # a resumed run cannot mix them
    with pytest.raises(ConfigurationError, match="--motion measures the videos' frames"):
        RunConfig(dataset="qvhighlights", descriptions=str(tmp_path), motion=True).check()
    assert RunConfig(dataset="qvhighlights", videos=str(tmp_path), motion=True).to_json()["motion"] is True


def test_eval_cli_time_style_is_a_checked_reasoner_option(tmp_path):
    from _helpers_eval import cli, register_fakes, write_toy_dataset

    register_fakes()
    ds, desc = write_toy_dataset(tmp_path / "data")
    common = ["eval", "jsonl", "--dataset-file", ds, "--descriptions", desc, "--limit", "1", "--quiet", "--no-report"]
    with pytest.raises(ConfigurationError, match="unknown time style 'hours'"):
        cli(*common, "--out", tmp_path / "a", "--time-style", "hours")
    with pytest.raises(ConfigurationError, match="give the time style once"):
        cli(*common, "--out", tmp_path / "b", "--time-style", "tokens", "--reasoner-opt", "time_style=mmss")
    with pytest.raises(ConfigurationError, match="--time-style applies to the chat reasoners"):  # offline ones read no times
        cli(*common, "--out", tmp_path / "c", "--time-style", "tokens", "--reasoner", "embedding")
