"""The answer rule after the FX-C review: the last whole answer counts (a model correcting itself), a fragment
(a flat [s, e] pair in prose) never replaces a whole one, "whole" is judged by shape, and a value before a
stray </think> is used only when it opens the reply (a DeepSeek-R1 draft inside the reasoning is not)."""

from __future__ import annotations

import pytest

from temporal_reasoner.events import parse_events
from temporal_reasoner.parsing import ReplyError, parse_reply_detailed

ANSWER = [(17.0, 21.0)]


def spans(reply: str) -> list[tuple[float, float]]:
    return [(i.start, i.end) for i in parse_reply_detailed(reply, duration=36).intervals]


# --- 1. a value inside the reasoning a template opened is not the answer ------------------------------------------

@pytest.mark.parametrize("reply", [
    'Okay, the pour... maybe {"intervals": [{"start": 10, "end": 15}]}? No, the caption at 17 s is the pour.\n'
    '</think>\n\n{"intervals": [{"start": 17}]}',  # invalid after the tag: re-ask, not the draft
    'The pour might be {"intervals": [{"start": 10, "end": 15}]} but I am unsure.\n</think>\n\n'
    'I cannot find this event in the descriptions.',
    'Let me check {"intervals": [{"start": 10, "end": 15}]} hmm.\n</think>\n\n',
])
def test_a_draft_before_the_templates_closing_tag_is_not_used(reply):
    with pytest.raises(ReplyError):
        parse_reply_detailed(reply, duration=36)


@pytest.mark.parametrize("reply", [
    '{"intervals": [[17, 21]]} (I removed my </think> block)',
    'Answer: {"intervals": [[17, 21]]}\n</think>',
    '  {"start": 17, "end": 21}</think>',
])
def test_a_value_opening_the_reply_before_a_stray_tag_is_used(reply):
    parsed = parse_reply_detailed(reply, duration=36)
    assert [(i.start, i.end) for i in parsed.intervals] == ANSWER
    assert any("</think>" in w for w in parsed.warnings)


# --- 2. between whole answers the last wins -------------------------------------------------------------------------

def test_a_model_correcting_itself_gets_its_last_whole_answer():
    parsed = parse_reply_detailed('First guess: {"intervals": [{"start": 10, "end": 15}]}\n'
                                  'On second thought, {"intervals": [{"start": 17, "end": 21}]}', duration=36)
    assert [(i.start, i.end) for i in parsed.intervals] == ANSWER
    assert any("2 different answers; used the last" in w and "10-15" in w for w in parsed.warnings)


def test_a_format_echo_is_not_an_answer_but_an_answer_labelled_alone_is():
    assert spans('{"intervals": [[17, 21]]}\nExample output: {"intervals": [[0, 36]]}') == ANSWER
    assert spans('Format: {"intervals": [[17, 21]]}') == ANSWER  # the only value is the answer


# --- 3. whole by shape ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reply", [
    '{"start": 17, "end": 21}\n\nThe person actually appears in frames [30, 36] only briefly.',
    '[[17, 21]]\nThe video spans [0, 36].',
    '[{"start": 17, "end": 21}] - the final frames [30, 36] are dark',
])
def test_a_single_interval_or_a_list_of_intervals_is_whole_a_flat_pair_is_not(reply):
    parsed = parse_reply_detailed(reply, duration=36)
    assert [(i.start, i.end) for i in parsed.intervals] == ANSWER
    assert any("the whole answer, not the fragments" in w for w in parsed.warnings)
    # fragments only: the last, as between whole answers
    assert spans('The video spans [0, 36]; the event is [17, 21]') == ANSWER


def test_an_events_list_is_whole_and_a_span_in_prose_after_it_is_not():
    events, warnings = parse_events('[{"start": 3, "end": 5, "caption": "a"}, {"start": 6, "end": 9, "caption": "b"}]'
                                    '\nThe final event spans [6, 10].', lo=0, hi=10)
    assert [(e.start, e.end, e.caption) for e in events] == [(3, 5, "a"), (6, 9, "b")]
    assert warnings == []  # since FX-D a value is a candidate only when valid as a whole events answer: [6, 10] is not
