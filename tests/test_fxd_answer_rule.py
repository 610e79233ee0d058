"""The answer rule after the FX-D review: a labelled answer is not handed over to a stray fragment after it
("in JSON format:" introduces an answer, "Format used:" echoes one), an answer explained interval by interval
keeps all its intervals (a later value whose spans are a subset of an earlier whole answer's is a quote), a
markdown or bracketed label before a stray </think> is a short label, quoted transcript lines before the JSON
are prose (not malformed JSON), and a correction in the prose after a fenced answer is read."""

from __future__ import annotations

import json

import pytest

from temporal_reasoner import parsing
from temporal_reasoner.parsing import ReplyError, parse_reply_detailed

J = '{"intervals": [{"start": 17, "end": 21, "score": 0.9}]}'
D = '{"intervals": [{"start": 10, "end": 15, "score": 0.5}]}'
ANSWER = [(17.0, 21.0)]
TWO = '{"intervals": [{"start": 17, "end": 21, "score": 0.9}, {"start": 25, "end": 30, "score": 0.6}]}'


def spans(reply: str) -> list[tuple[float, float]]:
    return [(i.start, i.end) for i in parse_reply_detailed(reply, duration=36).intervals]


# --- 1. an answer labelled with its format is an answer; an echo label never hands the pick to a fragment ----------

@pytest.mark.parametrize("reply", [
    # Llama-3-style: the label says the answer comes in the asked format; the prose after it has a flat pair
    'Based on the frame descriptions, the person pours water between 17.0 and 21.0 seconds.\n\n'
    f'Here is the answer in JSON format:\n\n{J}\n\nNote: the video spans [0, 36], but the pouring only happens in '
    'the interval above.',
    f"Here is the answer in JSON format: {J}\nNote the clip is [0, 36] long.",
    f"First guess {D}. In the requested format: {J}",
    f"Draft:\n```json\n{D}\n```\nFinal answer in JSON format:\n```json\n{J}\n```",
    f"Using the required schema:\n{J}\n(the whole video would be [0, 36])",
    # an echo label on the only whole answer: still before any fragment
    f"Following the schema:\n{J}\n(for reference, the whole video would be [0, 36])",
])
def test_an_answer_labelled_with_its_format_beats_a_later_fragment_and_an_earlier_draft(reply):
    assert spans(reply) == ANSWER


@pytest.mark.parametrize("label", ["Format used:", "Example output:", "e.g.", "Here is an example in JSON format:",
                                   "For example, in the requested format:"])
def test_an_echo_label_still_marks_an_echo(label):
    assert spans(f"{J}\n{label} {{\"intervals\": [[0, 36]]}}") == ANSWER


# --- 2. an answer followed by its intervals quoted one by one keeps all of them -------------------------------------

@pytest.mark.parametrize("reply", [
    f'{TWO}\n\nExplanation:\n- {{"start": 17, "end": 21}}: the man pours water into the cup\n'
    '- {"start": 25, "end": 30}: he pours a second time',
    f'```json\n{TWO}\n```\nThe first interval:\n```json\n{{"start": 17, "end": 21}}\n```\nThe second:\n'
    '```json\n{"start": 25, "end": 30}\n```',
    f'{TWO}\n\nExplanation: the first interval {{"start": 17.0, "end": 21.0}} shows the pour.',  # floats, not text
])
def test_an_answer_explained_interval_by_interval_keeps_every_interval(reply):
    parsed = parse_reply_detailed(reply, duration=36)
    assert [(i.start, i.end, i.score) for i in parsed.intervals] == [(17, 21, 0.9), (25, 30, 0.6)]
    assert parsed.warnings == []  # a quote says the answer again: no second answer to warn about


def test_a_quote_of_the_whole_answer_keeps_its_scores_and_a_new_interval_is_a_correction():
    parsed = parse_reply_detailed(f"{J}\nSo the pour is at [17, 21].", duration=36)
    assert [(i.start, i.end, i.score) for i in parsed.intervals] == [(17, 21, 0.9)] and parsed.warnings == []
    # a later whole value with an interval the earlier lacks is no quote: the last counts, as before
    assert spans(f'{J}\nOn second thought: {{"intervals": [[17, 21], [25, 30]]}}') == [(17, 21), (25, 30)]
    # an answer is no quote of a format echo before it, whose intervals it happens to share
    assert spans('Example output: {"intervals": [[0, 36], [17, 21]]}\nAnswer: {"intervals": [[17, 21]]}') == ANSWER


# --- 4. a stray </think> after a markdown or bracketed label; an empty reply after the tag -------------------------

@pytest.mark.parametrize("reply", [f"**Answer:** {J}\n</think>", f"Answer (JSON): {J}\n</think>",
                                   f"### Final answer:\n{J}</think>"])
def test_a_markdown_or_bracketed_short_label_before_a_stray_tag_is_accepted(reply):
    parsed = parse_reply_detailed(reply, duration=36)
    assert [(i.start, i.end) for i in parsed.intervals] == ANSWER
    assert any("</think>" in w for w in parsed.warnings)


def test_json_before_the_tag_with_nothing_after_it_is_re_asked_as_reasoning_not_as_empty():
    with pytest.raises(ReplyError, match="before your closing </think> tag was taken as reasoning") as caught:
        parse_reply_detailed(f"Let me think. It might be {J}\n</think>", duration=36)
    assert "empty" not in str(caught.value)


# --- 5. quoted transcript lines before the JSON are prose -------------------------------------------------------

LINES = ["[12.0-15.0] a man enters the kitchen", "[15.0-17.0] he picks up a kettle",
         "[17.0-19.0] he pours water into a cup", "[19.0-21.0] he pours water", "[21.0-23.0] he puts it down"]


@pytest.mark.parametrize("lines", [LINES, [f"[00:{12 + k}] line {k}" for k in range(6)],
                                   [f"[{12 + k}.0s] line {k}" for k in range(6)]])
@pytest.mark.parametrize("fenced", [False, True])
def test_quoted_transcript_lines_before_the_json_are_not_malformed_json(lines, fenced):
    answer = f"```json\n{J}\n```" if fenced else J
    assert spans("The relevant lines are:\n" + "\n".join(lines) + "\n\n" + answer) == ANSWER


def test_a_try_at_json_still_counts_towards_the_malformed_cap():
    with pytest.raises(ReplyError, match="malformed"):
        parse_reply_detailed("{start: 17, end: 21} " * parsing.MAX_CANDIDATES + J, duration=36)
    assert spans("{start: 17, end: 21} " * (parsing.MAX_CANDIDATES - 1) + J) == ANSWER


def test_a_long_reply_of_prose_spans_looks_at_a_bounded_number_of_them(monkeypatch):
    calls = 0
    real = parsing._first_balanced

    def counted(*args, **kwargs):
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(parsing, "_first_balanced", counted)
    reply = "".join(f"[{k}.0-{k + 1}.0] a man talks\n" for k in range(20_000)) + J
    with pytest.raises(ReplyError, match=f"first {parsing.MAX_SPANS} bracketed spans"):
        parse_reply_detailed(reply, duration=36)
    # two readings (quotes as strings, then as apostrophes), each one more look than the spans it takes
    assert calls <= 2 * (parsing.MAX_SPANS + 1)
    calls = 0
    assert spans("".join(f"[{k}.0-{k + 1}.0] a man talks\n" for k in range(parsing.MAX_SPANS - 1)) + J) == ANSWER
    assert calls <= parsing.MAX_SPANS + 1


# --- 6. a correction in the prose after a fenced answer ----------------------------------------------------------

def test_a_correction_after_the_last_fence_is_read_in_order():
    assert spans(f"```json\n{D}\n```\nWait, I misread. The correct answer is:\n{J}") == ANSWER
    # prose after the fence holding only a fragment or an echo does not replace the fenced answer
    assert spans(f"```json\n{J}\n```\nThe video spans [0, 36].") == ANSWER
    assert spans(f"```json\n{J}\n```\nFormat used: {json.dumps({'intervals': [[0, 36]]})}") == ANSWER


# --- 3. QA and events: only a value valid as a whole answer is a candidate ----------------------------------------

Q = '{"choice": 0, "answer": "pours water", "intervals": [[17, 21]]}'
CHOICES = ["pours water", "drinks", "leaves"]
E = '{"events": [{"start": 3, "end": 5, "caption": "a"}, {"start": 6, "end": 9, "caption": "b"}]}'


@pytest.mark.parametrize("reply", [
    f'{Q}\nSupporting intervals: {{"intervals": [[17, 21]]}}',  # no choice: not an answer
    f'{Q}\nSupporting intervals: {{"intervals": [[30, 36]]}}',
    f'{Q}\nNot {{"choice": 7, "intervals": [[3, 5]]}}, which is no option',
])
def test_a_later_incomplete_qa_value_does_not_replace_a_valid_answer(reply):
    from temporal_reasoner.qa import parse_answer

    parsed = parse_answer(reply, choices=CHOICES, duration=36)
    assert (parsed.choice, [(i.start, i.end) for i in parsed.intervals]) == (0, [(17, 21)])


def test_a_qa_quote_of_the_answer_keeps_it_but_another_choice_is_a_correction():
    from temporal_reasoner.qa import parse_answer

    two = '{"choice": 0, "answer": "pours water", "intervals": [[17, 21, 0.9], [25, 30, 0.5]]}'
    parsed = parse_answer(f'{two}\nThe key moment: {{"choice": 0, "intervals": [[17.0, 21.0]]}}', choices=CHOICES,
                          duration=36)
    assert [(i.start, i.end) for i in parsed.intervals] == [(17, 21), (25, 30)] and parsed.warnings == []
    parsed = parse_answer(f'{two}\nNo: {{"choice": 1, "intervals": [[17, 21]]}}', choices=CHOICES, duration=36)
    assert parsed.choice == 1 and any("2 different answers" in w and "'pours water'" in w for w in parsed.warnings)


def test_with_no_valid_qa_value_the_whole_values_error_is_shown():
    from temporal_reasoner.qa import parse_answer

    with pytest.raises(ReplyError, match='"choice" is 7'):
        parse_answer('The clip is [0, 36]. {"choice": 7, "intervals": [[3, 5]]}', choices=CHOICES, duration=36)


@pytest.mark.parametrize("reply", [
    f"{E}\nIn short: [[3, 5], [6, 9]]",
    f"Here are the events in JSON format:\n{E}\nThe video spans [0, 36].",
    f'{E}\nThe key event: [{{"start": 6, "end": 9, "caption": "b"}}]',  # a quote of one of them
])
def test_a_later_incomplete_events_value_or_a_quote_does_not_replace_the_events(reply):
    from temporal_reasoner.events import parse_events

    events, warnings = parse_events(reply, lo=0, hi=36)
    assert [(e.start, e.end, e.caption) for e in events] == [(3, 5, "a"), (6, 9, "b")]
    assert warnings == []


def test_an_answer_followed_by_its_supporting_intervals_is_not_re_asked():
    """Before, "Supporting intervals: {...}" after the answer replaced it and failed on the missing choice: a second,
    paid request."""
    from temporal_reasoner.qa import run_answer
    from temporal_reasoner.structured import ChatReply
    from temporal_reasoner.transcript import Transcript
    from vidground.types import FrameDescription, Usage

    calls = []

    def chat(messages, fmt):
        calls.append(messages)
        return ChatReply(f'{Q}\nSupporting intervals: {{"intervals": [[17, 21]]}}', "stop", Usage(requests=1))

    transcript = Transcript.from_descriptions([FrameDescription(t=t * 2.0, text="a man pours water")
                                               for t in range(18)])
    answer = run_answer(chat, "what does the man do?", transcript, CHOICES, reasoner_name="scripted")
    assert answer.choice == 0 and len(calls) == 1 and answer.settings["attempts"] == 1


def test_the_warning_says_why_the_value_used_was_chosen():
    def said(reply: str) -> str:
        return " ".join(parse_reply_detailed(reply, duration=36).warnings)

    assert "used the last, as a model corrects a draft" in said("At [17, 21], no: at [25, 30].")  # fragments only
    assert "used the whole answer, not the fragments" in said(f"{J}\nThe video spans [0, 36].")
    assert "used the last whole answer (a model corrects a draft), not the fragments" in said(
        f"{D}\nNo: {J}\nThe video spans [0, 36].")


def test_a_python_style_set_of_intervals_is_a_reply_error_not_a_crash():
    from temporal_reasoner.qa import parse_answer

    with pytest.raises(ReplyError, match='"intervals" must be a list'):
        parse_answer("{'choice': 0, 'intervals': {17, 21}}", choices=CHOICES, duration=36)
