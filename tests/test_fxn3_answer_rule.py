"""The answer rule on RV-K's held-out probes (FX-N3): an explicit narrowing revision after the fenced answer ("Revised
(removing the weak interval):", "Corrected (dropping the second interval):", "Let me drop the second interval:")
was ignored silently at d228067 (both intervals kept, no warning; 77cc687 narrowed); a fenced remark after the answer
("For comparison, the drinking happens at:") replaced it; and in a reply with no fence a rejected candidate after the
answer ("I excluded {B} because he drinks then.") replaced it."""

from __future__ import annotations

import pytest

from test_fxn2_answer_corpus import AB, B, CH, E, E3, EVS, TE, TE3, A, F, Q0, Q1, ev, qa
from test_fxn_answer_corpus import answer
from temporal_reasoner.qa import parse_answer

Q0B = qa(0, (12, 18), (30, 36))

NARROWING = ["Revised:", "Revised (removing the weak interval):", "Corrected (dropping the second interval):",
             "Updated, without the weak interval:", "Let me drop the second interval:"]


@pytest.mark.parametrize("label", NARROWING)
@pytest.mark.parametrize("task, whole, part, expected", [
    ("g", AB, A, [(12, 18)]),
    ("q", Q0B, Q0, (0, [(12, 18)])),
    ("e", E, E3, TE3),
])
def test_a_labelled_revision_to_a_part_of_the_answer_narrows_it(label, task, whole, part, expected):
    for reply in (F(whole) + "\n" + label + "\n" + F(part), F(whole) + "\n" + label + "\n" + part):
        got, warnings = answer(task, reply, duration=60.0)
        assert got == expected, reply
        assert len(warnings) == 1 and "used the last" in warnings[0]


@pytest.mark.parametrize("label", ["If the weak one is dropped, it would be:", "Revised? Maybe, if dropped:"])
def test_a_hedged_revision_label_does_not_narrow(label):
    assert answer("g", F(AB) + "\n" + label + "\n" + F(A))[0] == [(12, 18), (30, 36)]


def test_a_part_in_its_own_fence_read_as_a_quote_is_said():
    got, warnings = answer("g", F(AB) + "\nThe pour itself:\n" + F(A))
    assert got == [(12, 18), (30, 36)]
    assert len(warnings) == 1 and "read as quotes of it" in warnings[0] and warnings[0].endswith(": [12-18]")


def test_an_answer_explained_part_by_part_in_fences_is_not_warned_about():
    reply = F(AB) + "\nThe first pour:\n" + F(A) + "\nThe second:\n" + F(B)
    assert answer("g", reply) == ([(12, 18), (30, 36)], [])


@pytest.mark.parametrize("task, first, other, expected", [
    ("g", A, B, [(12, 18)]),
    ("q", Q0, Q1, (0, [(12, 18)])),
    ("e", E3, ev(*EVS[2:]), TE3),
])
@pytest.mark.parametrize("remark", ["For comparison, the drinking happens at:", "Runner-up:",
                                    "If you meant the drinking, it would be:"])
def test_a_fenced_remark_after_the_answer_does_not_replace_it(task, first, other, expected, remark):
    got, warnings = answer(task, F(first) + "\n" + remark + "\n" + F(other), duration=60.0)
    assert got == expected
    assert len(warnings) == 1 and warnings[0].startswith("left out 1 value(s) after the answer")


@pytest.mark.parametrize("between", ["\nFinal answer:\n", "\nRevised answer:\n", "\nLet me fix that:\n", "\n",
                                     "\nHmm, that's too wide; the pouring starts at 30 and ends at 36.\n"])
def test_a_later_fenced_block_given_as_the_later_word_still_corrects_the_answer(between):
    got, warnings = answer("g", F(A) + between + F(B))
    assert got == [(30, 36)]
    assert len(warnings) == 1 and "(others: [12-18])" in warnings[0]


def test_no_fence_a_rejected_candidate_after_the_answer_is_commentary():
    reply = ("Answer: " + A + "\n\nReasoning: the pour is visible from 12 to 18 s. I excluded " + B +
             " because he drinks then.")
    got, warnings = answer("g", reply)
    assert got == [(12, 18)]
    assert len(warnings) == 1 and warnings[0].startswith("left out 1 value(s)") and warnings[0].endswith("[30-36]")
    parsed = parse_answer("Answer: " + Q0 + "\nI ruled out " + Q1 + " since he pours first.", choices=CH, duration=60)
    assert parsed.choice == 0


def test_no_fence_a_correction_after_the_answer_still_replaces_it():
    assert answer("g", A + "\nWait, I misread. The correct answer is: " + B)[0] == [(30, 36)]
    assert answer("g", "First guess: " + A + " On second thought, " + B)[0] == [(30, 36)]


def test_events_revision_dropping_the_last_event():
    reply = F(E) + "\nRevised (the last event is not in the video):\n" + F(E3)
    assert answer("e", reply, duration=60.0)[0] == TE3
    assert answer("e", F(E) + "\nKey moments:\n" + F(E3), duration=60.0)[0] == TE
