"""The offline QA baseline reads its evidence as a user does: an option whose word the supporting descriptions
say outright, and a direction they state (not its opposite), win over what the sentence model alone prefers.
The demo asked "which way does the camera pan" (left / right) and answered left, 0.423 against 0.377, from a
span whose descriptions all say "panning quickly to the right"."""

from __future__ import annotations

import numpy as np
import pytest

from temporal_reasoner import get_reasoner
from temporal_reasoner.qa import DIRECTION_WEIGHT, WORD_WEIGHT, evidence_baseline, evidence_terms
from _helpers_text import transcript

BEIGE = "The main colours are beige and brown."


@pytest.fixture(scope="module")
def reasoner():
    r = get_reasoner("embedding")
    r.encoder  # load the model once for the module
    return r


@pytest.fixture(scope="module")
def demo():
    """`vidground demo`'s video as its `cv` describer saw it (tour/demo.descriptions.jsonl), one text a second."""
    return transcript(
        (5, BEIGE), (1, f"A person on the left is walking. {BEIGE}"),
        (1, f"A person on the left is walking to the right. {BEIGE}"),
        (1, f"A person in the centre is walking to the right. {BEIGE}"),
        (4, f"A person is standing in the centre. {BEIGE}"),
        (2, f"A person on the right is walking to the right. {BEIGE}"),
        (1, f"Motion: something at the bottom on the right is moving. {BEIGE}"), (2, BEIGE),
        (4, "The scene is dark; the lights seem to be off."), (3, BEIGE),
        (6, f"Motion: the camera is panning quickly to the right. {BEIGE}"), (1, BEIGE),
        (1, "The view changed completely: a scene cut. The main colours are green and blue."),
        (4, "The main colours are green and blue."))


@pytest.mark.parametrize("question, choices, want", [
    ("which way does the camera pan", ["left", "right"], "right"),  # was left, 0.423 vs 0.377
    ("which way does the camera pan", ["to the left", "to the right"], "right"),  # was right by 0.017
    ("in which direction does the camera move quickly", ["left", "right", "up", "down"], "right"),  # was left
    ("which way is the person walking when they come in", ["left", "right"], "right"),  # was left, 0.597 vs 0.477
    ("what happens to the lights", ["they turn on", "they go off"], "off"),  # was "they turn on", 0.630 vs 0.576
    ("are the lights on or off", ["on", "off"], "off"),
    ("where does the person stand", ["in the centre", "on the left", "on the right"], "centre"),
])
def test_the_demo_answered_from_what_its_descriptions_say(reasoner, demo, question, choices, want):
    a = evidence_baseline(reasoner, question, demo, choices)
    assert want in a.answer, (a.answer, a.choice_scores)
    others = [s for i, s in enumerate(a.choice_scores) if i != a.choice]
    assert a.choice_scores[a.choice] - max(others) >= 0.04  # not by a hair
    assert a.settings["word_weight"] == WORD_WEIGHT and a.settings["direction_weight"] == DIRECTION_WEIGHT


def test_the_pan_is_told_apart_from_its_opposite_and_the_terms_can_be_turned_off(reasoner, demo):
    a = evidence_baseline(reasoner, "which way does the camera pan", demo, ["left", "right"])
    assert a.intervals[0].start == pytest.approx(23.5) and a.intervals[0].end == pytest.approx(29.5)
    assert a.choice_scores[1] - a.choice_scores[0] >= 2 * DIRECTION_WEIGHT - 0.1
    off = evidence_baseline(reasoner, "which way does the camera pan", demo, ["left", "right"], word_weight=0,
                            direction_weight=0)
    assert off.choice == 0  # the sentence model alone: the defect this fixes
    assert a.choice_scores[1] - off.choice_scores[1] == pytest.approx(DIRECTION_WEIGHT, abs=1e-4)


def test_evidence_terms_words_and_directions():
    pan = ["Motion: the camera is panning quickly to the right.", BEIGE]
    assert evidence_terms("which way does the camera pan", ["left", "right"], pan).tolist() == [
        -DIRECTION_WEIGHT, DIRECTION_WEIGHT]
    # a direction stated nowhere (or only negated) moves nothing; stating both ends supports either
    assert evidence_terms("which way", ["left", "right"], [BEIGE, "it does not pan to the left"]).tolist() == [0, 0]
    assert evidence_terms("which way", ["left", "right"], ["it pans left, then right"]).tolist() == [
        DIRECTION_WEIGHT, DIRECTION_WEIGHT]
    # only where the options are opposites: "walk away" among options naming no direction is not asked about
    # where the man goes (on NExT-GQA's real captions such a term cost 1.0 point of Acc@QA)
    assert evidence_terms("what does the man do next", ["walk away", "sit on a chair"],
                          ["The man walks towards the camera and sits on a chair."]
                          ) == pytest.approx([WORD_WEIGHT / 2, WORD_WEIGHT])  # "walk" said, "away" a word not said
    assert evidence_terms("what does the man do next", ["walk away", "walk towards the camera"],
                          ["The man walks towards the camera."]
                          ) == pytest.approx([-DIRECTION_WEIGHT, DIRECTION_WEIGHT + WORD_WEIGHT])
    # a place is a word, not a direction: "on the left" is said by a unit stating a motion to the right
    got = evidence_terms("where is the person", ["on the left", "in the middle"],
                         ["A person on the left is walking to the right."])
    assert got.tolist() == [WORD_WEIGHT, 0]
    # the share of the option's own words said, endings aside; the question's words and the words every
    # option shares count for none
    options = ["the boy unwraps the red present", "the boy throws it away", "the boy gives it to a girl"]
    got = evidence_terms("what does the boy do with the present", options,
                         ["The boy is unwrapping a gift.", "A girl laughs."])
    assert got == pytest.approx([WORD_WEIGHT / 2, 0, WORD_WEIGHT / 2])
    assert evidence_terms("what colour", ["beige and brown", "green and blue"], ["The main colours are green."]
                          ) == pytest.approx([0, WORD_WEIGHT / 2])
    assert isinstance(evidence_terms("q", ["a b", "c d"], [""]), np.ndarray)


@pytest.mark.parametrize("weights", [{"word_weight": -0.1}, {"direction_weight": "0.15"}, {"word_weight": True},
                                     {"direction_weight": 2}])
def test_bad_weights_are_a_configuration_error(demo, weights):
    from vidground.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="must be between 0 \\(off\\) and 1"):
        evidence_baseline(object(), "which way", demo, ["left", "right"], **weights)
