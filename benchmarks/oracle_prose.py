"""Writing Charades action classes as clauses and as varied free-form prose.

:func:`action_clause` gives the one canonical gerund clause of a class (``"Opening a door"`` ->
``"opening a door"``) used by the terse oracle transcript. :class:`ProseWriter` writes the same facts
as a real describer might: several phrasings of each action (gerund and finite verb forms, one of the
alternatives a class name lists, such as phone *or* camera), two actions sometimes joined in one
sentence, shuffled sentence order, and distractor sentences about the room, visible objects and the
picture. It draws everything from the ``random.Random`` it is given, so output is reproducible.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

# Classes whose slash-separated alternatives are verbs (or need a rewrite): explicit variants.
_VARIANTS: dict[str, list[str]] = {
    "Watching/Reading/Looking at a book": ["reading a book", "looking at a book", "watching a book"],
    "Watching/looking at a picture": ["looking at a picture", "watching a picture", "viewing a picture"],
    "Watching/Looking outside of a window": ["looking outside of a window", "looking out the window",
                                             "watching outside a window"],
    "Working/Playing on a laptop": ["working on a laptop", "playing on a laptop", "typing on a laptop"],
    "Taking/consuming some medicine": ["taking some medicine", "consuming some medicine", "taking medicine"],
    "Watching something/someone/themselves in a mirror": ["watching themselves in a mirror",
                                                          "looking at themselves in a mirror", "looking in a mirror"],
    "Wash a dish/dishes": ["washing a dish", "washing dishes", "washing the dishes"],
    "Watching a laptop or something on a laptop": ["watching a laptop", "watching something on a laptop",
                                                   "looking at a laptop screen"],
    "Tidying a shelf or something on a shelf": ["tidying a shelf", "tidying something on a shelf",
                                                "organizing a shelf"],
    "Someone is awakening somewhere": ["awakening", "waking up"],
    "Someone is awakening in bed": ["awakening in bed", "waking up in bed"],
    "Someone is going from standing to sitting": ["going from standing to sitting", "sitting down"],
    "Someone is standing up from somewhere": ["standing up from somewhere", "standing up", "getting up"],
    "Someone is running somewhere": ["running somewhere", "running"],
    "Someone is cooking something": ["cooking something", "cooking", "cooking food"],
    "Someone is eating something": ["eating something", "eating", "eating food"],
    "Someone is dressing": ["dressing", "getting dressed", "putting on clothes"],
    "Someone is undressing": ["undressing", "getting undressed", "taking off clothes"],
}

# Gerund -> third person singular, for every leading verb the variants use.
_THIRD = {
    "holding": "holds", "putting": "puts", "taking": "takes", "throwing": "throws", "tidying": "tidies",
    "washing": "washes", "closing": "closes", "fixing": "fixes", "opening": "opens", "sitting": "sits",
    "working": "works", "playing": "plays", "talking": "talks", "smiling": "smiles", "watching": "watches",
    "reading": "reads", "looking": "looks", "snuggling": "snuggles", "reaching": "reaches", "laughing": "laughs",
    "walking": "walks", "turning": "turns", "drinking": "drinks", "pouring": "pours", "lying": "lies",
    "standing": "stands", "eating": "eats", "making": "makes", "grasping": "grasps", "awakening": "awakens",
    "cooking": "cooks", "dressing": "dresses", "running": "runs", "going": "goes", "sneezing": "sneezes",
    "undressing": "undresses", "consuming": "consumes", "viewing": "views", "waking": "wakes",
    "typing": "types", "getting": "gets", "organizing": "organizes",
}

_SINGLE = ["The person is {g}.", "A person is {g}.", "Someone is {g}.", "The person {p}.", "Someone {p}.",
           "We see a person {g}.", "In this frame, the person is {g}.", "The person appears to be {g}.",
           "There is a person {g}.", "A person {p} here."]
_PAIR = ["The person is {g1} while {g2}.", "A person {p1} while {g2}.", "The person is {g1} and {g2}.",
         "Someone {p1} and {p2}.", "While {g2}, the person is {g1}."]
_IDLE = ["A person is in the {scene}.", "Nothing much is happening.", "The person is idle.",
         "No clear activity is visible.", "The person pauses for a moment."]
_SCENE = ["The room looks like a {scene}.", "This appears to be a {scene}.", "The scene is set in a {scene}.",
          "The setting is a {scene}."]
_OBJECT = ["In the background: {obj}.", "The frame also shows some {obj}.", "Nearby there is some {obj}.",
           "Visible in the frame: {obj}."]
_PICTURE = ["The lighting is dim.", "The room is brightly lit.", "The camera is still.",
            "The image is slightly blurry.", "The walls are white.", "Light comes in from a window.",
            "The picture is grainy.", "The floor is carpeted."]


def _canonical_token(token: str) -> str:
    if token.endswith("/s") or token.endswith("/es"):
        return token.split("/")[0]
    return token.replace("/", " or ")


def action_clause(class_name: str) -> str:
    """The canonical gerund clause of a Charades class: ``"Someone is smiling"`` -> ``"smiling"``."""
    name = class_name.strip()
    if name == "Wash a dish/dishes":
        return "washing a dish or dishes"
    if name.startswith("Someone is "):
        name = name[len("Someone is "):]
    words = [_canonical_token(w) for w in name.split()]
    text = " ".join(words)
    return text[:1].lower() + text[1:]


def action_variants(class_name: str) -> list[str]:
    """Several gerund phrasings of a class (one of its slash alternatives each)."""
    if class_name in _VARIANTS:
        return list(_VARIANTS[class_name])
    name = class_name[len("Someone is "):] if class_name.startswith("Someone is ") else class_name
    words = name.split()
    words[0] = words[0].lower()
    variants = [[]]
    for w in words:
        if w.endswith("/s") or w.endswith("/es"):
            base = w.split("/")[0]
            alts = [base, base + w.split("/")[1]]
        else:
            alts = w.split("/")
        variants = [v + [a] for v in variants for a in alts]
    return [re.sub(r"\ba (?=[aeiou])", "an ", " ".join(v)) for v in variants]


def third_person(gerund_clause: str) -> str:
    """``"opening a door"`` -> ``"opens a door"`` (the leading verb only)."""
    head, _, rest = gerund_clause.partition(" ")
    verb = _THIRD.get(head)
    if verb is None:
        raise KeyError(f"no third-person form for {head!r}")
    return f"{verb} {rest}".strip()


class ProseWriter:
    """Writes one frame's facts as a few varied sentences, with distractors."""

    def __init__(self, rng: random.Random, *, scene: str = "", objects: Sequence[str] = ()):
        self.rng = rng
        scene = re.sub(r"\s*\(.*?\)", "", scene).split("/")[0].strip().lower()
        self.scene = scene if scene and scene != "other" else "room"
        self.objects = [o.lower() for o in objects]

    def _single(self, g: str) -> str:
        return self.rng.choice(_SINGLE).format(g=g, p=third_person(g))

    def frame(self, class_names: Sequence[str]) -> str:
        rng = self.rng
        clauses = [rng.choice(action_variants(c)) for c in class_names]
        rng.shuffle(clauses)
        sentences: list[str] = []
        while clauses:
            if len(clauses) >= 2 and rng.random() < 0.35:
                g1, g2 = clauses.pop(), clauses.pop()
                sentences.append(rng.choice(_PAIR).format(g1=g1, g2=g2, p1=third_person(g1), p2=third_person(g2)))
            else:
                sentences.append(self._single(clauses.pop()))
        if not sentences:
            sentences.append(rng.choice(_IDLE).format(scene=self.scene))
        for _ in range(rng.choice((0, 1, 1, 2))):
            kind = rng.random()
            if kind < 0.3:
                sentences.append(rng.choice(_SCENE).format(scene=self.scene))
            elif kind < 0.65 and self.objects:
                sentences.append(rng.choice(_OBJECT).format(obj=rng.choice(self.objects)))
            else:
                sentences.append(rng.choice(_PICTURE))
        rng.shuffle(sentences)
        return " ".join(s[:1].upper() + s[1:] for s in sentences)
