"""Directions a text states, so that a query asking one can set aside lines stating the opposite.

Sentence embeddings barely separate opposite directions: to all-MiniLM-L6-v2, "the ball rolls to the
left" is about as close to "something moves to the right" as to "something moves to the left". Lines that differ only in the direction (a motion stream's "moves to the
left" / "moves to the right", a describer's "turns left" / "turns right") then match a query equally.
This module reads the direction words of a few opposite pairs (:data:`AXES`) with rules small enough
to check by eye, so that :class:`~temporal_reasoner.embedding.EmbeddingReasoner` can lower the score
of a unit that states the opposite of what the query asks and not the asked direction itself.

What counts as a direction, and what does not:

* ``left``/``right``: "to the left", "towards the right", "leftwards", "turns left", and "from the
  left" (a motion *from* the left goes right). Positions and sides are not directions: "on the left",
  "at the top right", "to the left of the table", "his left hand", "the right side". Nor are "he left
  the room", "right now" or "right past the house".
* ``up``/``down`` (also "upwards", "downstairs"), but not as the particle of a verb that moves nothing
  that way ("picks it up", "writes it down", "calms down") nor a look "at" something ("looks down at
  his phone"); ``towards``/``away`` (also "approaches", "closer"),
  ``in``/``out`` ("into", "enters", "walks in", "out of", "exits", "leaving", "zooms out"),
  ``clockwise``/``counterclockwise`` (and "anticlockwise"), ``forwards``/``backwards``.
* A mention after a negation in the five words before it, in the same clause ("does not roll left", "never turns
  right") states nothing: "not left" is not read as "right", and a query asking only "not left" asks
  no direction.

A text may state both ends of an axis ("moves up and down", "on the left moving right" states only
right): a unit stating the asked end is never penalised, whatever else it says.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from vidground.types import MOTION_MARK  # where the reasoner's default scope reads directions from

_NEGATION = {"not", "no", "never", "without", "nor", "neither", "cannot", "n't"}
_DETERMINER = {"the", "his", "her", "their", "its", "my", "your", "our", "a", "an"}
_POSITION_PREP = {"on", "at", "in", "of", "near", "by", "beside", "upper", "lower", "top", "bottom"}
_SIDE_NOUN = {"hand", "hands", "side", "sides", "arm", "arms", "leg", "legs", "foot", "feet", "eye", "eyes",
              "ear", "ears", "corner", "corners", "edge", "edges", "half", "shoulder", "knee", "wrist", "wing",
              "lane", "margin", "column", "panel", "part", "of", "one", "angle", "answer", "time", "place",
              "way", "thing", "moment"}
#: Words after a bare "left" that make it the verb ("he left the room") rather than a direction.
_AFTER_LEFT_VERB = {"the", "a", "an", "his", "her", "their", "its", "it", "them", "him", "me", "us", "this",
                    "that", "behind", "for", "with", "alone", "over", "unattended", "open", "on", "in", "at", "by",
                    "there", "here", "outside", "inside", "under", "near", "from"}
#: Words after a bare "right" that make it an adverb ("right now", "right behind", "right past") or an adjective.
_AFTER_RIGHT_ADVERB = {"now", "away", "there", "here", "after", "before", "behind", "next", "into", "under", "past",
                       "across", "around", "along", "onto", "against", "inside", "outside", "where", "if",
                       "over", "above", "below", "beside", "by", "back", "through", "up", "down", "off", "out",
                       "in", "at", "on", "when", "as", "then", "the", "a", "an", "this", "that", "is", "are",
                       "answer", "now,"}
_BEFORE_BARE = {"is", "was", "were", "are", "be", "been", "being", "has", "have", "had", "nothing", "anything",
                "little", "none", "all", "that's", "it's", "you're", "quite", "exactly", "just"}

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_WORD_OR_PART = re.compile(r"[a-z]+")  # "anti-clockwise" -> "anti", "clockwise"


def _words_before(text: str, start: int, n: int) -> list[str]:
    """The ``n`` words before ``start`` (lower case), nearest last; "doesn't" counts as "n't"."""
    words = _WORD.findall(text[max(0, start - 60):start].lower())[-n:]
    return ["n't" if w.endswith("n't") else w for w in words]


def _word_after(text: str, end: int) -> str:
    m = _WORD.search(text[end:end + 30].lower())
    return m.group(0) if m and not text[end:end + m.start()].strip(" ") else ""


_CLAUSE_END = re.compile(r"[,.;:!?]|\b(?:and|but|then|while|whereas)\b", re.IGNORECASE)


def _negated(text: str, start: int) -> bool:
    """A negation among the five words before ``start`` in the same clause ("does not roll to the left")."""
    window = text[max(0, start - 60):start]
    cut = [m.end() for m in _CLAUSE_END.finditer(window)]
    clause = window[cut[-1]:] if cut else window
    return bool(_NEGATION.intersection(_words_before(clause, len(clause), 5)))


def _horizontal(text: str) -> int:
    """Bit 1: states a motion to the left; bit 2: to the right (see the module for the rules)."""
    bits = 0
    for m in re.finditer(r"\b(left|right)(wards?)?\b", text, re.IGNORECASE):
        word = m.group(1).lower()
        end = 1 if word == "left" else 2
        if _negated(text, m.start()):
            continue
        if m.group(2):  # leftwards, rightward
            bits |= end
            continue
        before = _words_before(text, m.start(), 4)
        after = _word_after(text, m.end())
        if after in _SIDE_NOUN:  # "left hand", "to the left of", "right side"
            continue
        rest = list(before)
        while rest and rest[-1] in {"far", "very", "extreme", "most", "outer", "upper", "lower", "top", "bottom", "middle"}:
            rest.pop()
        had_determiner = bool(rest) and rest[-1] in _DETERMINER
        if had_determiner:
            rest.pop()
        prep = rest[-1] if rest else ""
        if prep in {"to", "towards", "toward"}:
            bits |= end
        elif prep == "from":  # coming from the left: moving right
            bits |= 3 - end
        elif prep in _POSITION_PREP or had_determiner:
            continue  # "on the left", "top right", "the left" without a preposition: a place
        elif before and before[-1] in _BEFORE_BARE:
            continue  # "is left", "all right"
        elif word == "left" and after in _AFTER_LEFT_VERB:
            continue  # "left the room": the verb
        elif word == "right" and after in _AFTER_RIGHT_ADVERB:
            continue  # "right now", "right behind"
        else:
            bits |= end  # "turns left", "moves right", "rolls left."
    return bits


def _pattern_axis(first: str, second: str) -> Callable[[str], int]:
    """An axis whose ends are plain patterns (case-insensitive), negation excepted."""
    ends = (re.compile(first, re.IGNORECASE), re.compile(second, re.IGNORECASE))

    def stated(text: str) -> int:
        bits = 0
        for bit, pattern in ((1, ends[0]), (2, ends[1])):
            if any(not _negated(text, m.start()) for m in pattern.finditer(text)):
                bits |= bit
        return bits

    return stated


#: Verbs whose "up"/"down" is a particle that moves nothing the camera sees go that way: "picks it up",
#: "writes it down", "calms down", "turns the volume up" (a body that "sits down" or "stands up" does move).
_PARTICLE_VERB = (r"(?:pick|put|writ|wrote|jot|note|set|shut|calm|turn|hang|hung|fill|clean|tidy|"
                  r"tidie|wash|wrap|pack|open|break|broke|cut|tear|tore|give|gave|mak|made|show|sign|warm|heat|cool|"
                  r"slow|clos|lock|light|mix|add|sum|typ|tie|zip|button|dress|wak|woke|chop|wip|cover|back|end)")
#: A particle "up"/"down": after one of those verbs and at most three words of its object, in one clause, or a
#: look that goes on "at" something ("looks down at his phone": where the eyes go, not a motion).
_PARTICLE_UPDOWN = re.compile(
    rf"\b{_PARTICLE_VERB}(?:e|es|s|ed|d|ing|ting|ping|ped|ten|en)?\s+(?:(?!(?:and|then|but|while)\b)[a-z']+\s+){{0,3}}?(up|down)\b"
    r"|\b(?:look|glanc|star|gaz|peer|peek)\w*\s+(up|down)\s+at\b", re.IGNORECASE)
_UP = re.compile(r"\b(?:up(?:wards?)?|upstairs)\b(?!\s+to\b)", re.IGNORECASE)
_DOWN = re.compile(r"\b(?:down(?:wards?)?|downstairs)\b", re.IGNORECASE)


def _vertical(text: str) -> int:
    """Bit 1: states a motion up; bit 2: down. Particles of other verbs (:data:`_PARTICLE_UPDOWN`) and
    negated mentions state nothing."""
    particles = {m.end(1) if m.group(1) else m.end(2) for m in _PARTICLE_UPDOWN.finditer(text)}
    bits = 0
    for bit, pattern in ((1, _UP), (2, _DOWN)):
        if any(m.end() not in particles and not _negated(text, m.start()) for m in pattern.finditer(text)):
            bits |= bit
    return bits


#: "walks in." / "comes in and sits", not "walks in the park" or "runs in shoes": "in" as a particle ends its phrase
_PARTICLE_END = r"(?=\s*(?:$|[.,;:!?)]|(?:and|then|while|with|through|from|again|slowly|quickly)\b))"
_MOVE = r"(?:zoom|walk|come|came|go|goes|went|run|ran|move|step|get|got|pull|push|lean|climb|crawl|head|drive|fly|flew|swim|slide)\w*"


@dataclass(frozen=True)
class Axis:
    """A pair of opposite directions and the function saying which a text states (bit 1, bit 2)."""

    name: str
    ends: tuple[str, str]
    stated: Callable[[str], int]
    #: a text holding none of these words (lower case) states neither end: the rules are not run on it
    words: frozenset[str]


AXES: tuple[Axis, ...] = (
    Axis("horizontal", ("left", "right"), _horizontal,
         frozenset({"left", "right", "leftward", "leftwards", "rightward", "rightwards"})),
    Axis("vertical", ("up", "down"), _vertical,
         frozenset({"up", "upward", "upwards", "upstairs", "down", "downward", "downwards", "downstairs"})),
    Axis("depth", ("towards", "away"), _pattern_axis(
        r"\b(?:towards?(?!\s+(?:the\s+)?(?:left|right|top|bottom|up|down)\b)|approach(?:es|ing|ed)?|closer)\b",
        r"(?<!right )(?<!far )\baway\b|\brecede\w*"),
        frozenset({"toward", "towards", "approach", "approaches", "approaching", "approached", "closer", "away",
                   "recede", "recedes", "receding", "receded"})),
    Axis("in-out", ("in", "out"), _pattern_axis(
        rf"\b{_MOVE}\s+(?:back\s+)?in(?:side)?\b{_PARTICLE_END}|\binto\b|\benter(?:s|ed|ing)?\b",
        rf"\b{_MOVE}\s+(?:back\s+)?out(?:side)?\b|\bout\s+of\b|\bexit(?:s|ed|ing)?\b|\bleaving\b"),
        frozenset({"in", "inside", "into", "enter", "enters", "entered", "entering", "out", "outside", "exit",
                   "exits", "exited", "exiting", "leaving"})),
    Axis("rotation", ("clockwise", "counterclockwise"), _pattern_axis(
        r"(?<![-a-z])clockwise", r"\b(?:counter|anti)-?\s?clockwise\b"),
        frozenset({"clockwise", "counterclockwise", "anticlockwise"})),
    Axis("forward-backward", ("forwards", "backwards"), _pattern_axis(r"\bforwards?\b", r"\bbackwards?\b"),
         frozenset({"forward", "forwards", "backward", "backwards"})),
)


def stated(text: str) -> np.ndarray:
    """For each axis of :data:`AXES`, which ends ``text`` states: 0 none, 1 the first, 2 the second, 3 both."""
    return np.array(_stated(text), dtype=np.uint8)


@lru_cache(maxsize=65536)
def _stated(text: str) -> tuple[int, ...]:
    """Kept by text: transcripts repeat their lines and clauses, and most hold no direction word at all."""
    words = set(_WORD_OR_PART.findall(text.lower()))
    return tuple(axis.stated(text) if words & axis.words else 0 for axis in AXES)


def asked(query: str) -> np.ndarray | None:
    """For each axis, the one end the query asks (1 or 2; 0 when it names none or both); ``None`` when
    it asks none at all (the common case, which then costs nothing more)."""
    ends = stated(query)
    ends[ends == 3] = 0
    return ends if ends.any() else None


def contradicting(query_ends: np.ndarray, unit_ends: np.ndarray) -> np.ndarray:
    """Which units (rows of ``unit_ends``, from :func:`stated`) state the opposite of an end the query
    asks and not that end itself."""
    axes = np.nonzero(query_ends)[0]
    opposite = (3 - query_ends[axes]).astype(np.uint8)
    return (unit_ends[:, axes] == opposite).any(axis=1)


def stated_all(units: Sequence[str]) -> np.ndarray:
    """:func:`stated` for each unit, one row each (``(len(units), len(AXES))``)."""
    if not units:
        return np.zeros((0, len(AXES)), dtype=np.uint8)
    return np.array([_stated(u) for u in units], dtype=np.uint8)


__all__ = ["AXES", "Axis", "MOTION_MARK", "asked", "contradicting", "stated", "stated_all"]
