"""Direction words: what a text states, what a query asks, and the embedding reasoner telling apart
lines that differ only in their direction (which the sentence model barely does)."""

from __future__ import annotations

import numpy as np
import pytest

from vidground.errors import ConfigurationError
from temporal_reasoner import Interval, get_reasoner, polarity
from temporal_reasoner.polarity import AXES, asked, contradicting, stated, stated_all
from _helpers_text import transcript

H, V, DEPTH, IN_OUT, ROT, FB = range(len(AXES))


def _ends(text: str) -> dict[str, str]:
    """``{axis name: "left" / "right" / "both"}`` for the axes ``text`` states."""
    out = {}
    for axis, bits in zip(AXES, stated(text)):
        if bits:
            out[axis.name] = "both" if bits == 3 else axis.ends[bits - 1]
    return out


@pytest.mark.parametrize("text, ends", [
    ("the ball rolls to the left", {"horizontal": "left"}),
    ("Motion: the camera pans quickly to the right", {"horizontal": "right"}),
    ("the car turns left.", {"horizontal": "left"}),
    ("it drifts leftwards", {"horizontal": "left"}),
    ("a runner comes from the left", {"horizontal": "right"}),  # from the left: moving right
    ("moves to the far right", {"horizontal": "right"}),
    ("something on the left moves to the right", {"horizontal": "right"}),  # a place, then a direction
    ("the person stands up", {"vertical": "up"}),
    ("the person sits down", {"vertical": "down"}),
    ("the dog walks towards the camera", {"depth": "towards"}),
    ("the dog runs away", {"depth": "away"}),
    ("the camera zooms in.", {"in-out": "in"}),
    ("the camera zooms out", {"in-out": "out"}),
    ("she walks into the room", {"in-out": "in"}),
    ("he walks out of the room", {"in-out": "out"}),
    ("the wheel turns clockwise", {"rotation": "clockwise"}),
    ("the wheel turns anti-clockwise", {"rotation": "counterclockwise"}),
    ("the wheel turns counterclockwise", {"rotation": "counterclockwise"}),
    ("the car rolls backwards", {"forward-backward": "backwards"}),
    ("the ball bounces up and down", {"vertical": "both"}),
])
def test_the_directions_a_text_states(text, ends):
    assert _ends(text) == ends


@pytest.mark.parametrize("text", [
    "A person is standing on the left", "a lamp at the top right", "the cup to the left of the plate",
    "he raises his left hand", "the right side of the road", "he left the room", "the bag left on it",
    "right now the room is empty", "he is right behind her", "all right", "the right answer",
    "the person walks in the park", "someone is running in shoes", "up to the end",
    "the ball does not roll left", "the car never turns right", "it doesn't move up",  # negated
])
def test_places_sides_other_senses_and_negations_state_no_direction(text):
    assert _ends(text) == {}


def test_a_query_asks_one_end_per_axis_and_not_left_asks_nothing():
    assert asked("the ball rolls to the left")[H] == 1
    assert asked("the ball rolls to the right")[H] == 2
    assert asked("the person walks") is None
    assert asked("the ball does not roll left") is None  # "not left" is not read as "right"
    assert asked("the ball bounces up and down") is None  # both ends: neither is asked
    q = asked("the person stands up and walks to the left")
    assert q[H] == 1 and q[V] == 1


@pytest.mark.parametrize("query", [
    "she writes it down", "he looks down at his phone", "she picks it up right away", "car drives right past the house",
    "he put the red cup down", "she is picking up the phone", "the man calms down", "he turns the music up",
])
def test_particles_of_phrasal_verbs_and_right_as_an_adverb_ask_no_direction(query):
    assert asked(query) is None


@pytest.mark.parametrize("query, axis, end", [
    ("the ball rolls to the left", H, 1), ("the camera pans right", H, 2), ("something moves up", V, 1),
    ("it moves slowly up", V, 1), ("the camera tilts down", V, 2), ("she picks it up and moves up", V, 1),
    ("the person sits down", V, 2),  # the body does move down
])
def test_directions_of_motion_still_count_beside_those_rules(query, axis, end):
    q = asked(query)
    assert q is not None and q[axis] == end and q.sum() == end


def test_only_units_stating_the_opposite_and_not_the_asked_end_contradict():
    units = ["something moves to the right", "something moves to the left", "on the left, moving right",
             "it moves left, then right", "nothing moves", "the camera pans to the right and tilts up"]
    query = asked("the ball rolls to the left")
    assert contradicting(query, stated_all(units)).tolist() == [True, False, True, False, False, True]
    assert stated_all([]).shape == (0, len(AXES))
    assert not contradicting(asked("the person sits down"), stated_all(["the person walks left"])).any()


# ------------------------------------------------------------------ the reasoner on text

@pytest.fixture(scope="module")
def reasoner():
    r = get_reasoner("embedding")
    r.encoder  # load the model once for the module
    return r


STILL = "The main colours are beige and brown. Motion: nothing moves."


def _moves(way: str) -> str:
    return f"The main colours are beige and brown. Motion: something at the bottom in the middle moves to the {way}."


def test_lines_that_differ_only_in_direction_get_the_asked_one(reasoner):
    # the motion benchmark's transcript in small: the same object moves left, then right
    tr = transcript((5, STILL), (5, _moves("left")), (5, STILL), (5, _moves("right")), (5, STILL))
    left = reasoner.ground("the ball rolls to the left", tr)
    right = reasoner.ground("the ball rolls to the right", tr)
    assert left.best.iou(Interval(start=5, end=10)) >= 0.7
    assert right.best.iou(Interval(start=15, end=20)) >= 0.7
    assert left.settings["polarity"] == pytest.approx(0.15)
    # without the term, the model cannot tell them apart: both queries get the same span
    off = get_reasoner("embedding", polarity=0.0, encoder=reasoner.encoder)
    a, b = off.ground("the ball rolls to the left", tr).best, off.ground("the ball rolls to the right", tr).best
    assert (a.start, a.end) == (b.start, b.end)


def test_any_text_with_polarity_scope_any_other_axes_and_a_line_stating_both_ends(reasoner):
    anywhere = get_reasoner("embedding", polarity_scope="any", encoder=reasoner.encoder)
    tr = transcript((6, "The camera zooms out slowly."), (6, "A bird sits on a branch."), (6, "The camera zooms in slowly."))
    assert anywhere.ground("the camera zooms in", tr).best.iou(Interval(start=12, end=18)) >= 0.7
    assert anywhere.ground("the camera zooms out", tr).best.iou(Interval(start=0, end=6)) >= 0.7
    # a line that names the asked direction is never penalised, whatever else it says
    tr = transcript((6, "A bird sits on a branch."), (6, "The wheel turns clockwise, then counterclockwise."),
                    (6, "A bird sits on a branch."))
    assert anywhere.ground("the wheel turns clockwise", tr).best.iou(Interval(start=6, end=12)) >= 0.7
    assert anywhere.settings()["polarity_scope"] == "any"


def test_by_default_only_the_motion_streams_words_are_read(reasoner):
    off = get_reasoner("embedding", polarity=0.0, encoder=reasoner.encoder)
    # a describer's own words: the scores are the plain similarities
    tr = transcript((6, "The car turns right."), (6, "A bird sits on a branch."), (6, "The car turns left."))
    assert np.array_equal(reasoner.entry_scores("the car turns left", tr), off.entry_scores("the car turns left", tr))
    # the stream's summary after a describer's sentences, one of its clauses starting a new sentence
    own = "A person is walking on the left, moving to the right. Motion: the camera pans slowly to the left; "
    tr = transcript((5, STILL), (5, own + "something in the centre moves up."), (5, STILL),
                    (5, own + "something in the centre moves down."), (5, STILL))
    down = reasoner.ground("something moves down", tr)
    assert down.best.iou(Interval(start=15, end=20)) >= 0.7
    # the describer's "moving to the right" is not read: a query asking "left" finds both stream lines
    assert np.array_equal(reasoner.entry_scores("a person walks to the left", tr),
                          off.entry_scores("a person walks to the left", tr))


def test_the_motion_mark_is_what_the_motion_stream_writes():
    from frame_describer.motion import Motion

    assert Motion(camera="left", camera_speed=0.2).text().startswith(polarity.MOTION_MARK)
    assert Motion().text().startswith(polarity.MOTION_MARK)


def test_a_negated_query_is_grounded_without_the_term(reasoner, monkeypatch):
    # "not left" asks no direction (documented): the scores are the plain similarities
    tr = transcript((5, STILL), (5, _moves("left")), (5, STILL), (5, _moves("right")), (5, STILL))
    off = get_reasoner("embedding", polarity=0.0, encoder=reasoner.encoder)
    query = "the ball does not roll to the left"
    assert np.array_equal(reasoner.entry_scores(query, tr), off.entry_scores(query, tr))
    # and a query without any direction word costs no reading of the transcript's units
    read = []
    monkeypatch.setattr(polarity, "stated_all", lambda units: read.append(units))
    reasoner.ground("the person walks", tr)
    assert read == []


@pytest.mark.parametrize("value", [-0.1, 2.5, "0.2", True])
def test_a_bad_polarity_is_a_configuration_error(value):
    with pytest.raises(ConfigurationError, match="polarity"):
        get_reasoner("embedding", polarity=value)
    with pytest.raises(ConfigurationError, match="polarity_scope 'motions'; choose one of: motion, any"):
        get_reasoner("embedding", polarity_scope="motions")
