"""benchmarks/motion_heldout.py: how a motion sentence is read and scored against a clip's truth, and that the
clips are drawn as their truth says (each frame drawn afresh: a first version drew onto the still clips'
scene itself, so their things left trails)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import motion_heldout as bench  # noqa: E402


def test_reading_the_stream_s_and_cv_s_sentences():
    assert bench.read_sentence("The main colours are grey. Motion: nothing moves.") == {"camera": None, "objects": []}
    said = bench.read_sentence("Motion: the camera pans slowly to the right; a small round red object on the right "
                               "moves to the left.")
    assert said == {"camera": "right", "objects": ["left"], "what": ["a small round red object on the right"]}
    assert bench.read_sentence("Motion: the camera is tilting quickly up.")["camera"] == "up"
    assert bench.read_sentence("Motion: something at the top in the middle is moving down and left.")["objects"] \
        == ["down and left"]
    assert bench.read_sentence("Motion: a small round cyan object in the centre moves.")["objects"] == [None]


def test_scoring_who_moves_and_which_way():
    truth = {"camera": None, "objects": ["up"], "what": [("white", "round")]}
    camera = bench.score(truth, bench.read_sentence("Motion: the camera tilts slowly down."))
    assert camera == {"who": "said camera for objects", "object": "none"}
    right = bench.score(truth, bench.read_sentence("Motion: a small round white object in the centre moves up."))
    assert right == {"who": "right", "object": "right", "colour": "right", "shape": "right"}
    wrong = bench.score(truth, bench.read_sentence("Motion: a small wide grey object in the centre moves down."))
    assert wrong == {"who": "right", "object": "opposite", "colour": "wrong", "shape": "wrong"}
    diagonal = {"camera": None, "objects": ["down and right"], "what": [("purple", "wide")]}
    assert bench.score(diagonal, bench.read_sentence("Motion: something on the left moves down."))["object"] == "wrong"
    still = {"camera": None, "objects": [], "what": []}
    assert bench.score(still, bench.read_sentence("Motion: nothing moves.")) == {"who": "right"}
    t = bench.totals([{"s": camera}, {"s": right}, {"s": wrong}], "s")
    assert t["who_right"] == 2 and t["direction"]["object"] == {"right": 1, "wrong": 0, "opposite": 1, "none": 1}


def test_each_frame_shows_the_thing_once_where_its_truth_puts_it():
    clip = next(c for c in bench.clips() if c.name.startswith("white disc up"))
    scene = clip.background()
    first, later = clip.frame(0, scene), clip.frame(30, scene)  # 0 s and 3 s
    assert (scene == clip.background()).all()  # drawing left the scene as it was
    white = [np.nonzero((im > 240).all(axis=2)) for im in (first, later)]
    (y0, x0), (y1, x1) = ((ys.mean(), xs.mean()) for ys, xs in white)
    assert abs(x1 - x0) < 1 and abs((y0 - y1) - 3 * 28) < 2  # 28 px a second up, and no trail behind it
    assert clip.truth() == {"camera": None, "objects": ["up"], "what": [("white", "round")]}
