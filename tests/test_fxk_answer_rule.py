"""The answer rule after the FX-K review of 1f5e98f: a final answer repeating an earlier candidate is that answer,
not a quote of the other candidate (a quote is only of the last answer kept); a value in the prose after a fenced
answer replaces it only when introduced as a correction; an events correction that only rewords a caption is an
answer, not a quote of the events it corrects."""

from __future__ import annotations

import json

import pytest

from temporal_reasoner.events import parse_events
from temporal_reasoner.parsing import parse_reply_detailed
from temporal_reasoner.qa import parse_answer


def ground(reply: str) -> tuple[list[tuple[float, float]], list[str]]:
    parsed = parse_reply_detailed(reply, duration=36.0, step=1.0)
    return [(i.start, i.end) for i in parsed.intervals], parsed.warnings


def intervals(*pairs: tuple[float, float]) -> str:
    return json.dumps({"intervals": [{"start": s, "end": e} for s, e in pairs]})


A, B = intervals((10, 15)), intervals((17, 21))
CHOICES = ["x", "y", "z"]


# --- 1. repeating an earlier candidate as the final answer reverts to it ----------------------------------------------

@pytest.mark.parametrize("reply", [
    f"Candidate 1: {A}\nCandidate 2: {B}\nCandidate 1 matches the query better.\nFinal answer: {A}",
    f"```json\n{A}\n```\nHmm, or maybe:\n```json\n{B}\n```\nNo, the first one is right:\n```json\n{A}\n```",
])
def test_a_final_answer_repeating_an_earlier_candidate_is_that_candidate(reply):
    """On 1f5e98f: 17-21, the rejected candidate, with a warning naming 10-15 as the other (the repeat was taken
    as a quote of the first candidate)."""
    got, warnings = ground(reply)
    assert got == [(10, 15)]
    assert len(warnings) == 1 and "(others: [17-21])" in warnings[0]


def test_a_qa_final_answer_repeating_an_earlier_option_is_that_option():
    reply = ('Option A: {"choice": 0, "intervals": [[10, 15]]}\nOption B: {"choice": 1, "intervals": [[17, 21]]}\n'
             'A is better supported. Final answer: {"choice": 0, "intervals": [[10, 15]]}')
    parsed = parse_answer(reply, choices=CHOICES, duration=36.0, step=1.0)
    assert (parsed.choice, [(i.start, i.end) for i in parsed.intervals]) == (0, [(10, 15)])
    assert len(parsed.warnings) == 1 and "'y' at 17-21" in parsed.warnings[0]


def test_a_subset_of_the_last_answer_introduced_as_a_correction_narrows_it():
    """{10-15}, then {10-15, 17-21}, then "Actually, only the first: {10-15}": a correction narrowing the answer."""
    got, _ = ground(f"First: {A}\nOr both: {intervals((10, 15), (17, 21))}\nActually, only the first: {A}")
    assert got == [(10, 15)]


def test_an_answer_explained_interval_by_interval_keeps_them_when_one_was_a_draft():
    """RV-G: a draft {10-15}, the answer {10-15, 17-21}, then each interval explained: the explaining {10-15} is a
    quote of the last answer, not a revert to the draft (6add0a5 gave 17-21 alone)."""
    got, _ = ground(f"Initially I thought {A}. Looking again, there are two: {intervals((10, 15), (17, 21))}. "
                    f"The first, {A}, shows him entering; the second, {intervals((17, 21))}, shows him leaving.")
    assert got == [(10, 15), (17, 21)]


def test_a_correction_after_a_fenced_answer_needs_no_keyword_and_commentary_is_warned():
    """RV-G: unmarked prose after a fenced answer is the model's later word (6add0a5 kept the fenced draft silently
    for "I made a mistake above. Updated answer: {...}"); a value marked as an example or a rejected candidate is
    left out, with a warning."""
    fenced = f"```json\n{A}\n```\n"
    for prose in ("I made a mistake above. Updated answer:\n",
                  "Wait, I misread the transcript. Let me recount the frames carefully.\nThe answer is: ",
                  "Hmm, on second thought, the man only enters at 17 s, so the right interval is:\n"):
        got, notes = ground(fenced + prose + intervals((17, 21)))
        assert got == [(17, 21)], prose
        assert notes, prose
    got, notes = ground(fenced + "I first considered " + intervals((17, 21)) + " but rejected it.")
    assert got == [(10, 15)]
    assert any("rejected candidate" in n for n in notes)


def test_a_quote_is_of_the_last_answer_kept_and_keeps_it_without_a_warning():
    both = intervals((17, 21), (25, 30))
    # the answer explained interval by interval, after a draft: the quotes are of the last answer
    got, warnings = ground(f"Draft: {A}\nAnswer: {both}\nExplanation:\n- {B} he enters\n- {intervals((25, 30))}")
    assert got == [(17, 21), (25, 30)]
    assert len(warnings) == 1 and "(others: [10-15])" in warnings[0]
    # a repeat of the last answer says it again
    assert ground(f"{A}\nSo: {B}\nIn short: {B}") == ([(17, 21)], ground(f"{A}\nSo: {B}")[1])


# --- 2. prose after the last fenced answer: commentary unless introduced as a correction ----------------------------

@pytest.mark.parametrize("prose", [
    f"I first considered {A} but rejected it.",
    f"For example, a different query would give {intervals((1, 3))}.",
    f"I should be careful here.\nOne could argue for {A}, but the door opens later.",
])
def test_a_value_in_the_commentary_after_a_fenced_answer_does_not_replace_it(prose):
    """On 1f5e98f: the commentary's value, with a warning naming the fenced answer. Now the fenced answer, and a
    warning that a value was left out as commentary (the reading may be wrong: the user is told)."""
    got, warnings = ground(f"```json\n{B}\n```\n{prose}")
    assert got == [(17, 21)]
    assert len(warnings) == 1 and "rejected candidate" in warnings[0]


def test_a_qa_value_in_the_commentary_after_a_fenced_answer_does_not_replace_it():
    reply = ('```json\n{"choice": 1, "intervals": [[17, 21]]}\n```\n'
             'For instance, if he had left, the reply would be {"choice": 2, "intervals": [[30, 34]]}.')
    parsed = parse_answer(reply, choices=CHOICES, duration=36.0, step=1.0)
    assert (parsed.choice, [(i.start, i.end) for i in parsed.intervals]) == (1, [(17, 21)])
    assert len(parsed.warnings) == 1 and "rejected candidate" in parsed.warnings[0]


@pytest.mark.parametrize("prose", [
    f"Wait, I misread. The correct answer is:\n{B}",
    f"Wait, I misread the query.\n{B}",
    f"Actually: {B}",
    f"My final answer is {B}",
    f"Corrected:\n{B}",
    f"It should be {B} instead.",
    f"I made a mistake above. Updated answer:\n{B}",
    f"Hmm, on second thought, the man only enters at 17 s, so the right interval is:\n{B}",
    f"Use {B} instead",  # "instead" after the value is not read: commentary, left out with a warning
])
def test_a_value_introduced_as_a_correction_after_a_fenced_answer_replaces_it(prose):
    got, warnings = ground(f"```json\n{A}\n```\n{prose}")
    if prose.startswith("Use"):
        assert got == [(10, 15)] and len(warnings) == 1 and "commentary" in warnings[0]
    else:
        assert got == [(17, 21)] and len(warnings) == 1 and "(others: [10-15])" in warnings[0]


@pytest.mark.parametrize("prose", [
    f"Alternatively, the second pour also partially matches: {B}",
    f"Note: the segment {B} might also be relevant, but it is less likely.",
    f"Another candidate was {B}, but it matches less well.",
    f"I chose this instead of {B}, which shows the drinking.",
])
def test_a_hedged_alternative_after_a_fenced_answer_is_commentary(prose):
    """RV-H: f654d73 took each of these for the model's later word (17-21); the fenced answer stands, warned."""
    got, warnings = ground(f"```json\n{A}\n```\n{prose}")
    assert got == [(10, 15)] and len(warnings) == 1 and "commentary" in warnings[0]


def test_picking_an_earlier_candidate_that_is_part_of_the_last_one_with_a_label_is_that_candidate():
    """RV-H: f654d73 read 'I'll go with option 1: {A}' after 'Option 2: {A, B}' as a quote of option 2."""
    both = intervals((10, 15), (17, 21))
    assert ground(f"Option 1: {A}\nOption 2: {both}\nI'll go with option 1: {A}")[0] == [(10, 15)]
    assert ground(f"Candidate 1: {A}\nCandidate 2: {both}\nCandidate 1 matches better.\nAnswer: {A}")[0] == [(10, 15)]


def test_a_descriptive_correct_or_should_be_inside_an_explanation_keeps_the_whole_answer():
    """RV-H: 'The correct interval for the pouring is {A}, and the drinking is {B}.' after the answer {A, B} flipped
    the answer to 17-21 (f654d73): only a label right before a value narrows the answer."""
    both = intervals((10, 15), (17, 21))
    for tail in (f"The correct interval for the pouring is {A}, and the drinking is {B}.",
                 f"The pouring should be {A} and the drinking {B}."):
        got, warnings = ground(f"Answer:\n```json\n{both}\n```\n{tail}")
        assert (got, warnings) == ([(10, 15), (17, 21)], []), tail


def test_commentary_after_a_fence_counts_when_the_fenced_blocks_hold_no_valid_answer():
    got, _ = ground(f"```json\n{{\"note\": \"see below\"}}\n```\nI would say {B}.")
    assert got == [(17, 21)]


# --- 3. an events correction that only rewords a caption ---------------------------------------------------------

def test_an_events_correction_of_a_caption_alone_is_the_answer_with_a_warning():
    """On 1f5e98f: 'a man walks in', silently (the correction's times were those of the answer: a 'quote')."""
    man = '{"events": [{"start": 3, "end": 5, "caption": "a man walks in"}]}'
    woman = '{"events": [{"start": 3, "end": 5, "caption": "a woman walks in"}]}'
    events, warnings = parse_events(f"{man}\nSorry, correction: {woman}", lo=0, hi=36, step=1.0)
    assert [(e.start, e.end, e.caption) for e in events] == [(3, 5, "a woman walks in")]
    assert len(warnings) == 1 and "'a man walks in'" in warnings[0]
    # a quote of one event, caption and all, still keeps every event
    two = '{"events": [{"start": 3, "end": 5, "caption": "a"}, {"start": 6, "end": 9, "caption": "b"}]}'
    events, warnings = parse_events(f'{two}\nThe key one: [{{"start": 6, "end": 9, "caption": "b"}}]', lo=0, hi=36)
    assert (len(events), warnings) == (2, [])


def test_an_events_summary_rewording_some_events_is_a_quote_and_a_caption_correction_is_not():
    """RV-G: after an events answer, "The key event: [{3-5 'the man enters the room'}]" names some of its events by
    their times with another caption: a quote (6add0a5 replaced the answer with it); the same times all given new
    captions is a correction."""
    def E(*evs):
        return json.dumps({"events": [{"start": s, "end": e, "caption": c} for s, e, c in evs]})
    events, warnings = parse_events(E((3, 5, "a man walks in"), (8, 12, "he sits down"))
                                    + "\nThe key event: " + E((3, 5, "the man enters the room")), lo=0, hi=36, step=1)
    assert [(e.start, e.end, e.caption) for e in events] == [(3, 5, "a man walks in"), (8, 12, "he sits down")]
    assert warnings == []
    events, warnings = parse_events(E((3, 5, "a man walks in")) + "\nSorry, correction: "
                                    + E((3, 5, "a woman walks in")), lo=0, hi=36, step=1)
    assert [e.caption for e in events] == ["a woman walks in"] and len(warnings) == 1


def test_a_qa_answer_explained_by_one_of_its_intervals_keeps_both_when_that_one_was_the_draft():
    """RV-G Q1: draft {choice 1, [10-15]}, final {choice 1, [10-15], [17-21]}, evidence {choice 1, [10-15]}."""
    def Q(*spans):
        return json.dumps({"choice": 1, "intervals": [list(s) for s in spans]})
    reply = f"Draft: {Q((10, 15))}\nFinal: {Q((10, 15), (17, 21))}\nEvidence: {Q((10, 15))}"
    parsed = parse_answer(reply, choices=CHOICES, duration=36.0, step=1.0)
    assert (parsed.choice, [(i.start, i.end) for i in parsed.intervals]) == (1, [(10, 15), (17, 21)])
