"""Defects a reviewer confirmed in the chat side (FX-B): an answer replaced by numbers in the prose after it, a
stray </think>, a deadlock in the shared limiter's finalizer, a learned context size unused by ask/events or
grown again, the unknown-cost wording, and a --json list lost on an unexpected error."""

from __future__ import annotations

import pytest

from temporal_reasoner.parsing import ReplyError, parse_reply_detailed

ANSWER = (17.0, 21.0)


# --- 1. the answer, not the prose after it ----------------------------------------------------------------------

@pytest.mark.parametrize("reply", [
    'The event happens at {"intervals": [{"start": 17, "end": 21, "score": 0.9}]}. The video spans [0, 36].',
    'Answer: {"intervals": [[17, 21, 0.9]]}\n(frames [3, 4] were ambiguous)',
    '{"intervals": [{"start": 17, "end": 21}]}\nFormat used: {"intervals": [{"start": 0, "end": 36}]}',
    'The video spans [0, 36]. The event: {"intervals": [[17, 21]]}',  # a whole answer over a fragment before it
])
def test_prose_after_the_answer_does_not_replace_it(reply):
    parsed = parse_reply_detailed(reply, duration=36)
    assert [(i.start, i.end) for i in parsed.intervals] == [ANSWER]
    assert not any("used the last" in w for w in parsed.warnings)


def test_a_marked_correction_still_wins():
    parsed = parse_reply_detailed('{"intervals": [[0, 36]]} no: {"intervals": [[17, 21]]}', duration=36)
    assert [(i.start, i.end) for i in parsed.intervals] == [ANSWER]
    assert any("used the last" in w for w in parsed.warnings)
    parsed = parse_reply_detailed('<think>Draft {"intervals":[[0,36]]}</think>{"intervals":[[17,21]]}', duration=36)
    assert [(i.start, i.end) for i in parsed.intervals] == [ANSWER] and parsed.warnings == []


def test_a_stray_closing_think_tag_after_the_answer_keeps_it():
    parsed = parse_reply_detailed('{"intervals":[[17,21]]} (I removed my </think> block)', duration=36)
    assert [(i.start, i.end) for i in parsed.intervals] == [ANSWER]
    assert any("</think>" in w for w in parsed.warnings)
    # a block the template opened still hides its draft when an answer follows the tag
    parsed = parse_reply_detailed('Draft {"intervals":[[0,36]]}</think>{"intervals":[[17,21]]}', duration=36)
    assert [(i.start, i.end) for i in parsed.intervals] == [ANSWER] and parsed.warnings == []
    with pytest.raises(ReplyError):
        parse_reply_detailed("no JSON </think> none here", duration=36)


# --- 7. ask and events: the same rule -----------------------------------------------------------------------------

def test_an_answer_followed_by_a_json_looking_value_in_prose_is_kept():
    from temporal_reasoner.events import parse_events
    from temporal_reasoner.qa import parse_answer

    parsed = parse_answer('{"answer": "yes", "intervals": [[17, 21]]}\nFormat: {"answer": "...", '
                          '"intervals": [[0, 36]]}', choices=None, duration=36)
    assert parsed.answer == "yes" and [(i.start, i.end) for i in parsed.intervals] == [ANSWER]
    events, _ = parse_events('{"events": [{"start": 3, "end": 5, "caption": "b"}]} e.g. '
                             '{"events": [{"start": 0, "end": 10, "caption": "example"}]}', lo=0, hi=10)
    assert [(e.start, e.end, e.caption) for e in events] == [(3, 5, "b")]
    events, _ = parse_events('[{"start": 3, "end": 5, "caption": "b"}] (times in [0, 10])', lo=0, hi=10)
    assert [(e.start, e.end, e.caption) for e in events] == [(3, 5, "b")]
