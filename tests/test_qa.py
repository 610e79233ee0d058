"""Grounded video QA: inputs, the prompt (golden), reply parsing and re-asking, the chat backends'
answer(), the offline evidence baseline, the Session/API/CLI entry points (no network, no model)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from vidground.errors import ConfigurationError, InputError, OutputValidationError
from vidground.types import Answer, FrameDescription, GroundingResult, Interval, TranscriptEntry, Usage
from temporal_reasoner.base import BaseReasoner
from temporal_reasoner.parsing import ReplyError
from temporal_reasoner.qa import (
    BASELINE_SUFFIX,
    answer_question,
    answer_schema,
    build_qa_messages,
    check_choices,
    check_question,
    evidence_baseline,
    parse_answer,
    qa_response_format,
    run_answer,
)
from temporal_reasoner.structured import ChatReply
from temporal_reasoner.transcript import Transcript

from _helpers_openai_server import Reply, openai_server  # noqa: F401

GOLDEN = Path(__file__).parent / "golden"
CHOICES = ["share it with the girl", "unwrap it", "throw it away"]
GOOD = '{"choice": 1, "answer": "unwrap it", "intervals": [{"start": 4, "end": 8, "score": 0.8}]}'


@pytest.fixture
def transcript() -> Transcript:
    texts = (["a boy sits on a sofa"] * 2 + ["the boy picks up a red present"] * 2
             + ["the boy tears the paper to unwrap it"] * 2 + ["a girl laughs at the toy train"] * 4)
    return Transcript.from_descriptions([FrameDescription(t=i * 2.0, text=t) for i, t in enumerate(texts)])


# --- bad inputs: typed one-line errors --------------------------------------------------------

@pytest.mark.parametrize("choices, message", [
    ("unwrap it", "unknown choice format: got a single string"),
    ({"a": "unwrap it"}, "unknown choice format: got dict"),
    (3, "unknown choice format: got int"),
    (["unwrap it", 2], r"unknown choice format: choices\[1\] is int"),
    (["unwrap it", "  "], r"choices\[1\] is empty"),
    (["unwrap it", ""], r"choices\[1\] is empty"),
    (["Unwrap  it", "throw it", "unwrap it"], r"choices\[0\] and choices\[2\] are the same option"),
    (["unwrap it"], "at least two choices"),
    ([], "at least two choices"),
])
def test_bad_choices_are_one_line_input_errors(choices, message):
    with pytest.raises(InputError, match=message) as info:
        check_choices(choices)
    assert "\n" not in str(info.value)


def test_choices_are_normalised_and_none_means_free_text():
    assert check_choices(("  unwrap   it ", "throw it")) == ["unwrap it", "throw it"]
    assert check_choices(None) is None


@pytest.mark.parametrize("question, message", [("", "the question is empty"), ("   \n", "the question is empty"),
                                               (None, "the question must be text"),
                                               (b"why", "the question must be text")])
def test_question_without_text(question, message):
    with pytest.raises(InputError, match=message):
        check_question(question)


def test_empty_transcript_is_an_input_error():
    blank = Transcript(duration=4.0, step=1.0, entries=[TranscriptEntry(start=0, end=4, text=" ")])
    with pytest.raises(InputError, match="the transcript is empty"):
        answer_question(WordReasoner(), "why?", blank, CHOICES)
    from pipelines import answer

    with pytest.raises(InputError, match="no descriptions given"):
        answer([], "why did the boy pick up the present", CHOICES, reasoner=WordReasoner())


# --- the prompt (golden) and the reply schema -------------------------------------------------

@pytest.mark.parametrize("kind", ["choices", "free"])
def test_prompt_golden_snapshot(transcript, kind):
    rendered = build_qa_messages("why did the boy pick up the present", transcript,
                                 CHOICES if kind == "choices" else None, max_intervals=3)
    path = GOLDEN / f"qa_messages_{kind}.json"
    assert rendered == json.loads(path.read_text(encoding="utf-8")), f"prompt changed: if deliberate, update {path}"


def test_reply_schema_is_the_intervals_schema_plus_the_answer():
    schema = answer_schema(3)
    assert schema["required"] == ["choice", "answer", "intervals"]
    assert schema["properties"]["choice"]["enum"] == [0, 1, 2]
    assert "choice" not in answer_schema(None)["properties"]
    bounded = answer_schema(3, 2)
    assert bounded["properties"]["intervals"]["maxItems"] == 2 and bounded["properties"]["answer"]["maxLength"] == 200
    fmt = qa_response_format("json_schema", 3)
    assert fmt["json_schema"]["name"] == "answer" and fmt["json_schema"]["strict"] is True
    assert qa_response_format("text", 3) is None
    with pytest.raises(ConfigurationError, match="unknown response format"):
        qa_response_format("yaml", 3)


# --- parsing ----------------------------------------------------------------------------------

@pytest.mark.parametrize("reply, choice", [
    (GOOD, 1),
    ('{"choice": "2", "intervals": [[4, 8, 0.5]]}', 2),
    ('{"choice": "B", "intervals": [[4, 8]]}', 1),
    ('```json\n{"answer": "Throw it away.", "intervals": [{"start": 4, "end": 8}]}\n```', 2),
    ('{"choice": 0.0, "answer": "x", "intervals": [[4, 8, 0.5]]}', 0),
])
def test_parse_answer_reads_the_choice_as_number_letter_or_text(reply, choice):
    parsed = parse_answer(reply, choices=CHOICES, duration=20, step=2)
    assert parsed.choice == choice and parsed.answer == CHOICES[choice]
    assert parsed.intervals[0].start == 4 and parsed.intervals[0].end == 8


@pytest.mark.parametrize("reply, message", [
    ('{"choice": 7, "intervals": [[4, 8]]}', r"not the number of an option \(0 to 2\)"),
    ('{"choice": "eat it", "intervals": [[4, 8]]}', "must be the number of one option"),
    ('{"choice": 1}', 'no "intervals"'),
    ('{"choice": 1, "intervals": [[8, 4]]}', "reversed"),
    ('[[4, 8]]', "must be a JSON object"),
])
def test_parse_answer_rejects_with_the_reason(reply, message):
    with pytest.raises(ReplyError, match=message):
        parse_answer(reply, choices=CHOICES, duration=20, step=2)


def test_free_text_answer():
    parsed = parse_answer('{"answer": " to  unwrap it ", "intervals": [[4, 8, 1]]}', choices=None, duration=20)
    assert parsed.answer == "to unwrap it" and parsed.choice is None
    with pytest.raises(ReplyError, match='"answer" must be a non-empty text'):
        parse_answer('{"answer": "", "intervals": [[4, 8, 1]]}', choices=None, duration=20)


# --- the ask / re-ask loop --------------------------------------------------------------------

class Scripted:
    def __init__(self, *replies):
        self.replies, self.calls = list(replies), []

    def __call__(self, messages, fmt):
        self.calls.append((messages, fmt))
        return ChatReply(self.replies.pop(0), "stop", Usage(requests=1, prompt_tokens=100, completion_tokens=10))


def test_invalid_reply_is_reasked_with_the_error_and_usage_sums(transcript):
    chat = Scripted('{"choice": 9, "intervals": [[4, 8]]}', GOOD)
    a = run_answer(chat, "why did the boy pick up the present", transcript, CHOICES, reasoner_name="scripted")
    assert isinstance(a, Answer) and a.answer == "unwrap it" and a.choice == 1 and a.choices == CHOICES
    assert a.intervals == [Interval(start=4, end=8, score=0.8)]
    assert a.usage["reason"] == Usage(requests=2, prompt_tokens=200, completion_tokens=20)
    assert a.settings["attempts"] == 2 and a.warnings[0].startswith("attempt 1 rejected")
    reask = chat.calls[1][0][-1]["content"]
    assert "not the number of an option" in reask and '"choice"' in reask
    assert chat.calls[0][1]["json_schema"]["schema"]["properties"]["choice"]["enum"] == [0, 1, 2]


def test_no_usable_reply_is_an_output_validation_error(transcript):
    chat = Scripted(*['{"choice": 9, "intervals": [[4, 8]]}'] * 2)
    with pytest.raises(OutputValidationError, match="no usable answer after 2") as info:
        run_answer(chat, "why?", transcript, CHOICES, reasoner_name="scripted", max_attempts=2)
    assert info.value.attempts == 2 and info.value.usage.requests == 2


def test_openai_reasoner_answers_through_its_server(openai_server, transcript):
    from temporal_reasoner.openai_reasoner import OpenAIReasoner

    openai_server.script(Reply.chat(GOOD, prompt_tokens=300, completion_tokens=20))
    rsn = OpenAIReasoner("gpt-4o-mini", base_url=openai_server.base_url, api_key="sk-test", retry_base_delay=0.01)
    a = rsn.answer("why did the boy pick up the present", transcript, choices=CHOICES)
    (req,) = openai_server.requests
    body = req.json
    assert body["messages"] == build_qa_messages("why did the boy pick up the present", transcript, CHOICES)
    assert body["response_format"] == qa_response_format("json_schema", 3)
    assert a.choice == 1 and a.reasoner == "openai:gpt-4o-mini" and a.usage["reason"].prompt_tokens == 300


def test_llamacpp_answer_grammar_compiles():
    pytest.importorskip("llama_cpp")
    from temporal_reasoner.llamacpp_reasoner import grammar_text

    text = grammar_text(answer_schema(3, 3), int_digits=2)
    assert "choice" in text and "answer" in text and "intervals" in text


# --- the offline evidence baseline ------------------------------------------------------------

class BagOfWords:
    """A deterministic sentence 'encoder': unit-length word-count vectors over a fixed vocabulary."""

    def __init__(self):
        self.vocab: dict[str, int] = {}

    def encode(self, texts):
        rows = []
        for t in texts:
            v = np.zeros(64)
            for w in re.findall(r"[a-z]+", t.lower()):
                v[self.vocab.setdefault(w, len(self.vocab) % 64)] += 1.0
            rows.append(v / (np.linalg.norm(v) or 1.0))
        return np.asarray(rows)


class WordReasoner(BaseReasoner):
    """Grounds on the entry sharing most words with the query; has a sentence encoder."""

    name = "words"

    def __init__(self, arg: str | None = None):
        self.encoder = BagOfWords()

    def ground(self, query, transcript):
        words = set(query.lower().split()) - {"the", "a"}
        hit = max(transcript.entries, key=lambda e: len(words & set(e.text.lower().split())))
        return GroundingResult(query=query, duration=transcript.duration,
                               intervals=[Interval(start=hit.start, end=hit.end, score=1.0)], reasoner=self.name,
                               usage={"reason": Usage()})


def test_evidence_baseline_picks_the_choice_seen_around_the_grounded_span(transcript):
    a = evidence_baseline(WordReasoner(), "why did the boy pick up the present", transcript, CHOICES)
    assert a.answer == "unwrap it" and a.choice == 1 and len(a.choice_scores) == 3
    assert a.reasoner == "words" + BASELINE_SUFFIX and a.settings["method"] == "evidence-baseline"
    assert a.intervals == [Interval(start=3.0, end=7.0, score=1.0)]


def test_evidence_baseline_free_text_answers_with_a_transcript_sentence(transcript):
    a = evidence_baseline(WordReasoner(), "what does the boy pick up", transcript)
    assert a.choice is None and a.answer == "the boy picks up a red present"


def test_a_reasoner_without_encoder_or_answer_cannot_answer(transcript):
    class Bare(BaseReasoner):
        name = "bare"

        def ground(self, query, transcript):
            raise AssertionError("not reached")

    with pytest.raises(ConfigurationError, match="cannot answer questions"):
        answer_question(Bare(), "why?", transcript, CHOICES)


# --- Session, API and CLI ---------------------------------------------------------------------

def test_session_and_api_answer_from_descriptions(tmp_path, transcript):
    from pipelines import Session, answer

    descs = [FrameDescription(t=i * 2.0, text=e) for i, e in enumerate(
        ["a boy sits on a sofa"] * 2 + ["the boy picks up a red present"] * 2
        + ["the boy tears the paper to unwrap it"] * 2)]
    a = answer(descs, "why did the boy pick up the present", CHOICES, reasoner=WordReasoner())
    assert a.choice == 1 and a.describer == "external" and a.settings["reasoner"] == {"name": "words"}
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(d.model_dump()) + "\n" for d in descs), encoding="utf-8")
    with Session(reasoner=WordReasoner()) as s:
        b = s.answer(descriptions=path, question="why did the boy pick up the present", choices=CHOICES, duration=12)
    assert b.answer == a.answer and b.duration == 12 and b.video == str(path)
    with pytest.raises(ConfigurationError, match="exactly one of video= or descriptions="):
        answer(question="why?", choices=CHOICES, reasoner=WordReasoner())


def test_cli_ask(tmp_path, capsys):
    from pipelines.cli import main
    from temporal_reasoner import reasoners

    reasoners.register("words-test", WordReasoner)
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"t": i, "text": t}) + "\n" for i, t in enumerate(
        ["a boy sits", "the boy picks up a present", "the boy tears the paper to unwrap it"])), encoding="utf-8")
    args = ["ask", "--descriptions", str(path), "why did the boy pick up the present", "--reasoner", "words-test"]
    assert main([*args, "--choice", "unwrap it", "--choice", "throw it away"]) == 0
    out = capsys.readouterr().out
    assert "answer:    unwrap it  (choice 0)" in out and "* 0. unwrap it" in out
    assert main([*args, "--choice", "unwrap it", "--choice", "throw it away", "--json"]) == 0
    assert Answer.model_validate_json(capsys.readouterr().out).choice == 0
    for bad, message in ((["--choice", "unwrap it", "--choice", "Unwrap it"], "are the same option"),
                         (["--choice", "unwrap it"], "at least two choices"),
                         (["--choice", ""], r"choices\[0\] is empty")):
        assert main([*args, *bad]) == 1
        err = capsys.readouterr().err
        assert re.search(message, err) and err.count("\n") == 1
    assert main(["ask", "--descriptions", str(path), "  ", "--choice", "a", "--choice", "b"]) == 1
    assert "the question is empty" in capsys.readouterr().err


@pytest.mark.slow
def test_answer_on_the_rendered_demo_video(demo_video, demo_described):
    """Both stages on a rendered video with known events: the offline path picks the event asked about
    and grounds it on the event's true span."""
    from pipelines import Session

    video, events = demo_video
    lights = next(e for e in events if e.name == "lights off")
    options = ["the lights go out and the room is dark", "a person walks into the room",
               "the camera pans quickly to the right"]
    with Session(reasoner="embedding") as s:
        a = s.answer(demo_described, "when do the lights go out", options)
    assert a.choice == 0 and a.reasoner == "embedding" + BASELINE_SUFFIX
    assert Interval(start=lights.start, end=lights.end).iou(a.best) >= 0.5
