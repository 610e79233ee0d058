"""The intervals reply: its JSON schema and a robust parser that applies vidground's
documented validation policy. Re-exported by :mod:`temporal_reasoner.structured`.

Validation policy (what is clamped, what is rejected) - a rejected reply is re-asked with the
reason shown to the model:

* The reply must hold JSON: ``{"intervals": [...]}``, a bare list of intervals, or one interval.
  Code fences, prose around the JSON, single quotes and trailing commas are tolerated.
  An interval is ``{"start": s, "end": e, "score": c}`` (``score`` optional) or ``[s, e(, c)]``.
* Reasoning blocks (``<think>``, ``<thinking>``, ``<reasoning>``) are left out. When the rest holds several
  valid answers, the last whole one counts (a model correcting itself: "First guess: ... On second thought,
  ..."); whole by shape: an object (``{"intervals": ...}``, one interval) or a list of intervals. A flat
  ``[s, e]`` pair is a fragment: it counts only when there is no whole answer, so "the video spans [0, 36]"
  after an answer does not replace it (after a fenced answer, one introduced as a correction does: "Wait, ...
  Final: [17, 21]"). A value labelled as the format's echo ("Format used: ...", "e.g. ...", "Example: ...",
  "The output should look like this:") is not an answer while another whole one is; "in JSON format:", "in the requested format:"
  introduce an answer, not an echo. A later value whose intervals are all among the last whole answer's before
  it is a quote of it (the answer explained interval by interval), not a correction, unless a label right before it
  makes it the answer ("Actually, only the first:", "**Final Answer:**", "The answer is:") and the parts after the
  answer do not name all of it ("To summarize, the correct intervals are A and B" explains A, B); one that repeats an
  older answer exactly is that answer again ("Candidate 1: ... Candidate 2: ... Final answer: <candidate 1>").
  Single intervals written one per line ("1. {...}\n2. {...}") are one answer. Prose after the last fenced block is
  read too: a value there replaces the fenced answer when it stands after a label or on its own line ("So the answer
  is:", "Let me fix that:", "Revised:", "Die richtige Antwort ist:") or right after a correction word ("Actually,
  it is ..."), and is commentary, left out with a warning, when the sentences before it hedge it ("if", "would",
  "could", "might", "alternatively", "for example", "instead of", "excluded", "rejected") or it is neither.
  A warning says which was used when they differ.
* Times are seconds, except in an indexed time style (frame numbers, ``<k>`` tokens;
  :mod:`temporal_reasoner.timestyles`), whose whole numbers are decoded to seconds first: a number
  that is not whole, or out of the style's range (a token past ``<M>``), is rejected.
  Numeric strings (``"12.5"``, ``"12.5s"``) are read as seconds and
  ``"mm:ss"`` / ``"h:mm:ss"`` strings are converted to seconds, each with a warning. Any other
  string, a boolean, NaN or infinity is rejected.
* Times at most ``tolerance`` (the larger of one sampling step and 2% of the duration) outside
  ``[0, duration]`` are clamped into it, with a warning. Times further outside are rejected;
  integers that fit the video once multiplied by the sampling step are named as probable
  frame numbers in the message, so the model can convert them.
* ``start > end`` (reversed) is rejected. ``start == end`` (a point answer) is widened to one
  sampling step, with a warning.
* An empty list is rejected (the query is assumed to happen). More than ``max_intervals``
  intervals are cut to the first ``max_intervals``. Scores must be finite; a score outside ``[0, 1]``
  (the confidence the prompt asks for) is clamped into it, with a warning, as events' scores are.
  When every interval has one, intervals are sorted best first by the scores as given.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonschema
import numpy as np
from pydantic import ValidationError

from vidground.errors import ConfigurationError

from vidground.types import Interval

from .timestyles import ReplyValueError, TimeFormat

# --- the reply schema -------------------------------------------------------------------------

#: What each of an interval's numbers means, for the model that writes them.
_MEANINGS = {"start": "seconds from the start of the video", "end": "seconds from the start of the video",
             "score": "confidence from 0 to 1"}


def intervals_schema(max_intervals: int | None = None, *, strict: bool = True,
                     time_style: "str | TimeFormat | None" = None) -> dict[str, Any]:
    """The JSON schema of a reasoner's reply, ``{"intervals": [{"start", "end", "score"}, ...]}``,
    derived from :class:`~vidground.types.Interval`'s fields: the one writing of it, used for the
    ``response_format`` steps, the llama.cpp grammar and the validation of replies.

    ``strict``: every property required (OpenAI's strict mode); otherwise those the model
    requires (``score`` optional), as replies are validated. ``max_intervals`` bounds the list to
    1..``max_intervals`` items (for a grammar or a schema-constrained JSON mode); ``None`` leaves it
    unbounded, the subset every strict-mode server accepts. ``time_style``: what ``start`` and ``end``
    are said to be (an indexed style's units instead of seconds).
    """
    fields = Interval.model_fields
    fmt = TimeFormat.parse(time_style)
    meanings = {**_MEANINGS, **({"start": fmt.meaning(), "end": fmt.meaning()} if fmt.indexed else {})}
    item = {"type": "object",
            "properties": {name: {"type": "number", "description": meanings[name]} for name in fields},
            "required": [name for name, f in fields.items() if strict or f.is_required()],
            "additionalProperties": False}
    intervals: dict[str, Any] = {"type": "array", "items": item}
    if max_intervals is not None:
        intervals.update(minItems=1, maxItems=max_intervals)
    return {"type": "object", "properties": {"intervals": intervals}, "required": ["intervals"],
            "additionalProperties": False}


#: The schema sent as the strict ``json_schema`` ``response_format``.
INTERVALS_SCHEMA: dict[str, Any] = intervals_schema()

#: A reply is validated, after normalisation, with ``score`` optional and at least one interval.
_VALIDATION_SCHEMA = intervals_schema(strict=False)
_VALIDATION_SCHEMA["properties"]["intervals"]["minItems"] = 1
_VALIDATOR = jsonschema.Draft202012Validator(_VALIDATION_SCHEMA)

FormatName = Literal["json_schema", "json_object_schema", "json_object", "text"]
#: The degradation ladder, strongest first.
RESPONSE_FORMATS: tuple[str, ...] = ("json_schema", "json_object_schema", "json_object", "text")


# --- parsing ----------------------------------------------------------------------------------


class ReplyError(ValueError):
    """A reply could not be used; the message is what the re-ask shows to the model."""


@dataclass
class ParsedReply:
    intervals: list[Interval]
    warnings: list[str] = field(default_factory=list)
    data: Any = None


_FENCE = "```"
#: Fenced blocks tried before the whole text; a reply with more is pathological, not a reason
#: to do per-block work a million times.
MAX_FENCED_BLOCKS = 16
#: The most balanced spans decoded (fenced blocks' first) before a reply is called malformed.
MAX_CANDIDATES = 4
#: The most balanced spans looked at in one reading of a reply, prose ones (``[12.0-15.0]``, a transcript line
#: quoted) included: each look is a pass over the rest of the text, so this keeps parsing linear.
MAX_SPANS = 64
#: A bracketed span of prose, not a try at JSON: no comma, quote or colon in it (a colon between digits, as in a
#: clock time ``[00:12]``, allowed), no bracket inside, and not one number or literal (``[12]``, ``[]`` decode).
#: It is skipped, not decoded nor counted as a malformed value (a reply quoting transcript lines
#: ``[12.0-15.0] ...`` before its JSON).
_PROSE_SPAN = re.compile(r"[\[{](?:[^,:\"'\[\]{}]|(?<=\d):(?=\d))*[\]}]")
_SCALAR = re.compile(r"\s*(?:[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|true|false|null|True|False|None)?\s*")
_DQ = r'"[^"\\]*(?:\\.[^"\\]*)*"'  # unrolled loops: no two ways to match one text, so a failed
_SQ = r"'[^'\\]*(?:\\.[^'\\]*)*'"  # match costs one pass, never a backtrack
_CLOSED = re.compile(f"{_DQ}|{_SQ}", re.S)
#: By the quote characters still able to open a string: a string, or a quote whose string never
#: closes, with the rest of the text.
_STRINGS = {q: re.compile(f"({'|'.join(p)}|[{q}].*)", re.S)
            for q, p in (("\"'", (_DQ, _SQ)), ('"', (_DQ,)), ("'", (_SQ,)))}
_TRAILING_COMMA = re.compile(r",\s*([\]}])")
_NUMERIC = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?:s|sec|secs|second|seconds)?", re.I)
_CLOCK = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)")
_PY_LITERALS = re.compile(r"\b(true|false|null)\b")


def _fenced(text: str) -> list[tuple[str, str, bool]]:
    """The bodies of the text's first ``` fenced blocks, a leading ``json`` tag and whitespace dropped, each with
    the prose between it and the block before (or the start) and ``False``; then the prose after the last block,
    with ``""`` and ``True``, when there is any and the blocks were not cut at :data:`MAX_FENCED_BLOCKS` (a
    correction written after the fenced answer: "Wait, I misread. The correct answer is: {...}")."""
    out, start, prev = [], text.find(_FENCE), 0
    while start != -1 and len(out) < MAX_FENCED_BLOCKS:
        end = text.find(_FENCE, start + 3)
        if end == -1:
            break
        body = text[start + 3:end]
        out.append(((body[4:] if body[:4] in ("json", "JSON") else body).lstrip(), text[prev:start], False))
        prev = end + 3
        start = text.find(_FENCE, end + 3)
    if out and len(out) < MAX_FENCED_BLOCKS and text[prev:].strip():
        out.append((text[prev:], "", True))
    return out


def _outside_strings(text: str, quotes: str = "\"'") -> list[str]:
    """``text`` as ``[outside, string, outside, ..., outside]``. A quote whose string never closes
    is a plain character (an apostrophe), and so are the later quotes of its kind, which could
    not close either: each kind is given up at most once, so this is at most three regex splits.
    ``quotes``: the characters that open strings."""
    return _split_strings(text, quotes)[0]


def _split_strings(text: str, quotes: str) -> tuple[list[str], int | None]:
    """:func:`_outside_strings`, and where the first quote given up is (``None``: none was): up to it, a longer
    text (the rest of a reply a window was cut from) splits the same."""
    parts: list[str] = []
    gave_up = None
    while quotes:
        split = _STRINGS[quotes].split(text)
        if len(split) == 1 or _CLOSED.fullmatch(split[-2]):
            return parts + split, gave_up
        parts += split[:-3]
        if gave_up is None:
            gave_up = sum(map(len, parts)) + len(split[-3])
        text, quotes = split[-3] + split[-2], quotes.replace(split[-2][0], "")
    return parts + [text], gave_up


def _first_balanced(src: str, pos: int = 0, quotes: str = "\"'") -> tuple[int, int] | None:
    """``(start, end)`` of the first ``{...}`` / ``[...]`` span of ``src[pos:]`` whose brackets
    balance, strings skipped.

    Read from the first bracket: the span is that of the earliest opening bracket that gets
    closed, so an outer bracket left open (a reply cut short) does not hide a complete value
    inside it. The work is a few regex splits and array passes, all in C: the Python-level work
    does not grow with the text. It reads a window of the rest first (a :data:`MAX_SPANS`-th of it, at least
    64 characters), widened eightfold while the window cannot tell: the bracket opening it closes inside
    the window, before any string the window cuts, or the whole rest is read. So looking at many short spans
    costs about one pass over the text, not one per span.
    """
    starts = [p for p in (src.find("{", pos), src.find("[", pos)) if p >= 0]
    if not starts:
        return None
    base = min(starts)
    rest = len(src) - base
    width = max(64, -(-rest // MAX_SPANS))  # at most three windows: a 64th, an 8th, all of it
    while True:
        parts, gave_up = _split_strings(src[base:base + width], quotes)
        whole = width >= rest
        parts[1::2] = map(" ".__mul__, map(len, parts[1::2]))  # strings blanked, positions kept
        chars = np.frombuffer("".join(parts).encode("utf-32-le", "surrogatepass"), "<u4")
        step = ((chars == 91) | (chars == 123)).astype(np.int32) - ((chars == 93) | (chars == 125))
        depth = np.cumsum(step)
        low_after = np.minimum.accumulate(depth[::-1])[::-1]  # min(depth[i:])
        closed = (step[:-1] == 1) & (low_after[1:] < depth[:-1])  # an opener the depth later falls below
        if closed.any():
            first = int(np.argmax(closed))
            last = first + 1 + int(np.argmax(depth[first + 1:] < depth[first]))
            # a window tells when its first bracket closes in it, before any string it cut: no earlier opener
            # could close later instead, and the text up to there splits as the whole rest does
            if whole or (first == 0 and (gave_up is None or last < gave_up)):
                return base + first, base + last + 1
        elif whole:
            return None
        width *= 8


def _loads(span: str) -> Any:
    for attempt in (span, _TRAILING_COMMA.sub(r"\1", span)):
        try:
            return json.loads(attempt)
        except (json.JSONDecodeError, RecursionError):
            pass
    pythonish = _PY_LITERALS.sub(lambda m: {"true": "True", "false": "False", "null": "None"}[m[1]],
                                 _TRAILING_COMMA.sub(r"\1", span))
    try:
        return ast.literal_eval(pythonish)  # single quotes
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ReplyError("the JSON in your answer is malformed") from None


#: Reasoning blocks a model writes before its answer (DeepSeek-R1, Qwen3, QwQ: ``<think>``; others ``<thinking>``,
#: ``<reasoning>``): a draft JSON in one is not the answer.
_REASONING_OPEN = re.compile(r"<(think|thinking|reasoning)>", re.I)
_REASONING_CLOSE = re.compile(r"</(think|thinking|reasoning)>", re.I)


def strip_reasoning(text: str, *, prompt_block: bool = True) -> str:
    """``text`` without its reasoning blocks: each ``<think>...</think>`` (``<thinking>``, ``<reasoning>``) removed,
    and everything before a closing tag that has no opening one (a chat template that opens the block in the
    prompt, as DeepSeek-R1's does; ``prompt_block=False``: only that tag is removed, as when it is a stray one
    after the answer). A block left open (a reply cut short) is kept: it may be all there is.
    Linear in the text: each tag is found once, searching forward."""
    close = _REASONING_CLOSE.search(text)
    opened = _REASONING_OPEN.search(text)
    if close is not None and (opened is None or close.start() < opened.start()):
        # the block was opened by the prompt (or the tag is a stray one)
        text = text[close.end():] if prompt_block else text[:close.start()] + " " + text[close.end():]
    out, pos, lower = [], 0, text.lower()
    while (opened := _REASONING_OPEN.search(text, pos)) is not None:
        end = lower.find(f"</{opened[1].lower()}>", opened.end())
        if end == -1:
            break
        out.append(text[pos:opened.start()])
        pos = end + len(opened[1]) + 3
    out.append(text[pos:])
    return "".join(out)


#: The most JSON values read from one reply for :func:`json_candidates`.
MAX_ANSWERS = 16


def _values(stripped: str, limit: int = MAX_ANSWERS) -> list[tuple[Any, str, bool, int]]:
    """The JSON values in ``stripped`` (a reply, its reasoning blocks left out), in order, each with the prose
    between it and the value before (or the start), whether it is in the prose after the last fenced block
    (read when the fenced blocks hold values), and the number of the part it was read in (0: the whole text; from
    1 on: a fenced block, or the prose after the last): see :func:`json_candidates`."""
    stripped = stripped.strip()
    if not stripped:
        raise ReplyError("the answer was empty")
    try:
        return [(json.loads(stripped), "", False, 0)]
    except (json.JSONDecodeError, RecursionError):
        pass
    error = None
    looked = False  # whether a reading stopped at MAX_SPANS spans
    # single quotes first as strings (Python-style replies), then as apostrophes (prose: "the man's hand")
    for quotes in ("\"'", '"'):
        fenced = _fenced(stripped)
        for sources in ((fenced, [(stripped, "", False)]) if fenced else ([(stripped, "", False)],)):
            found: list[tuple[Any, str, bool, int]] = []
            failures = spans = 0
            for block, (src, lead, after) in enumerate(sources):
                span, prev = _first_balanced(src, 0, quotes), 0
                while span is not None and len(found) < limit and failures < MAX_CANDIDATES:
                    if spans == MAX_SPANS:
                        looked = True
                        break
                    spans += 1
                    text = src[span[0]:span[1]]
                    if not _PROSE_SPAN.fullmatch(text) or _SCALAR.fullmatch(text, 1, len(text) - 1):
                        try:  # (a quoted transcript line "[12.0-15.0] a man enters" is prose: not decoded)
                            found.append((_loads(text), lead + src[prev:span[0]], after,
                                          block + 1 if fenced and sources is fenced else block))
                            lead, prev = "", span[1]
                        except ReplyError as exc:  # prose like "[it's here]" before the JSON: try the next span
                            error = error or exc
                            failures += 1
                    span = _first_balanced(src, span[1], quotes)
            if found:
                return found
    if error is None and looked:
        raise ReplyError(f"no JSON in the first {MAX_SPANS} bracketed spans of the answer; give the JSON answer "
                         "without quoting bracketed text before it")
    raise error or ReplyError("the answer holds no JSON object")


def json_candidates(text: str, limit: int = MAX_ANSWERS) -> list[Any]:
    """The JSON values in a model reply, in order, its reasoning blocks left out (:func:`strip_reasoning`):
    the whole reply when it is one value, else the balanced spans that decode (the first
    :data:`MAX_FENCED_BLOCKS` fenced blocks when any decode, else the whole text), at most ``limit`` of them.
    Fences, prose, single quotes and trailing commas are tolerated. Spans never overlap, so decoding them all
    is linear in the reply's length; at most :data:`MAX_CANDIDATES` spans that do not decode are tried."""
    return [value for value, *_ in _values(strip_reasoning(text), limit)]


#: A label that introduces a value as an echo of the asked format, not an answer ("Format used: {...}",
#: "e.g. {...}", "Example output: {...}", "The output should look like this: {...}"): at most one word between it
#: and the value.
_ECHO_LABEL = re.compile(r"\b(?:(?:format|schema|example|e\.g\.)(?:\s+\w+)?|looks?\s+like(?:\s+this)?)\s*[:=]?$",
                         re.I)
#: ... unless it says the value is given in that format ("Here is the answer in JSON format:", "In the requested
#: format:", "using the required schema:"), and no example is meant ("Here is an example in JSON format:").
_IN_FORMAT = re.compile(r"\b(?:in|using|per|with)\s+(?:[\w-]+\s+){0,3}(?:format|schema)\b[^.\n]*$", re.I)
_EXAMPLE = re.compile(r"\b(?:example|sample|e\.g\.)", re.I)
#: The prose read for a label: its end (a label is short; a longer slice would only cost time).
_LABEL_CHARS = 120
#: What may come before the value a stray ``</think>`` follows: nothing, or a short label ("Answer:", "**Answer:**",
#: "Answer (JSON):", "### Final answer:").
_SHORT_LABEL = re.compile(r"[\w *_()#-]{0,40}:[*_]*")


def _echo(prose: str) -> bool:
    """Whether ``prose``, the text before a value, labels it as an echo of the asked format (:data:`_ECHO_LABEL`)."""
    label = prose.rstrip()[-_LABEL_CHARS:]
    if not _ECHO_LABEL.search(label):
        return False
    given = _IN_FORMAT.search(label)
    return given is None or bool(_EXAMPLE.search(label[:given.start()].rsplit("\n", 1)[-1]))


#: Words that mark a correction of the fenced answer ("Wait, I misread. The correct answer is: {...}", "Actually:
#: {...}", "I made a mistake above. Updated answer: {...}", "on second thought ... the right interval is: {...}"):
#: with a short last sentence ("Actually, it is {...}") they make a value in the prose after the last fenced block
#: the model's later word, as a label does (:func:`_later_word`); a hedge overrides them.
_CORRECTION = re.compile(r"\b(?:correct(?:ed)?\s+(?:answer|one|version|intervals?|times?)|corrected|correction|actually"
                         r"|wait|final\s+answer|updated\s+answer|revised\s+answer|right\s+(?:answer|intervals?)"
                         r"|on\s+second\s+thoughts?|mistake|misread|recount|instead(?!\s+of)|should\s+be)\b"
                         r"|\bcorrect\s*:", re.I)
#: A label right before a value that makes a part of the last answer the answer ("Actually, only the first:",
#: "Final answer:", "I'll go with option 1:", "Answer:"), not a quote explaining it ("The first, {...}, shows ...",
#: "The correct interval for the pouring is {...}, and ..."): the marker, then at most three words.
_NARROWING = re.compile(r"(?:\b(?:actually|correct(?:ed|ion)?(?:\s+answer)?|final\s+answer|updated\s+answer"
                        r"|on\s+second\s+thoughts?|go(?:ing)?\s+with|instead(?!\s+of))|^\W*answer)"
                        r"(?:[\s,]+[\w'-]+){0,3}\s*[:=-]?\s*$", re.I)
_SENTENCE_BREAK = re.compile(r"[.!?](?:\s|$)|[\u3002\uff01\uff1f]|\n")  # and the full-width 。！？


def _sentences(prose: str) -> list[str]:
    """The sentences at the end of ``prose`` (its last :data:`_LABEL_CHARS`), where a label is."""
    return [s for s in _SENTENCE_BREAK.split(prose.rstrip()[-_LABEL_CHARS:]) if s.strip()]


def _read_sentences(prose: str) -> list[str]:
    """The sentences of ``prose`` a label is read on: its last, and the one before when the last is a short label
    ("The answer is:") or there is none ("Wait, I misread.\n{...}")."""
    sentences = _sentences(prose)
    return sentences[-2:] if len(sentences) > 1 and _short_label(sentences[-1]) else sentences[-1:]


def _correction(prose: str) -> bool:
    """Whether ``prose``, the text before a value after the last fenced block, introduces it as a correction
    (:data:`_CORRECTION`), read on :func:`_read_sentences`."""
    return any(_CORRECTION.search(s) for s in _read_sentences(prose))


#: Markdown around a label or a value ("**Final Answer:** {...}", "Final answer: `{...}`", "> Answer:").
_DECOR = " \t*_`>"
#: Words that make a sentence a hedge, a hypothetical or a rejected candidate, whatever else it says ("Note: if the
#: query actually refers to ..., the interval would be {...}", "If I made a mistake ..., the other candidate is
#: {...}", "he drinks instead, so {...} is excluded"): a value it introduces is commentary, never the answer.
#: Conditions and rejections (the Spanish, French, German, Chinese and Japanese "if" too: "Si la consulta se refiere
#: al segundo ..., sería:", "もし2回目の注ぎを指す場合は：") ...
_CONDITIONAL = (r"\b(?:if|alternatively|e\.g\.|for\s+(?:example|instance)|suppose|considered|rejected|ruled\s+out"
                r"|instead\s+of|excluded?|si|wenn|falls)\b|如果|假如|もし|場合")
#: ... and modal verbs ("the interval would be {...}", "serait :", "sería:").
_MODAL = r"\b(?:would|could|might|ser[íi]a|serait|pourrait|podr[íi]a|w[üu]rde|k[öo]nnte)\b"
_HEDGE = re.compile(f"{_CONDITIONAL}|{_MODAL}", re.I)
_CONDITIONAL_WORD, _MODAL_WORD = re.compile(_CONDITIONAL, re.I), re.compile(_MODAL, re.I)
#: Answer in the languages models answer in when asked in them ("Endgültige Antwort:", "最终答案：", "Réponse :",
#: "最終的な答え：").
_ANSWER_WORD = re.compile(r"\b(?:answer|antwort|r[ée]ponse|respuesta|resposta|risposta)\b|答案|回答|答え", re.I)
#: Words by which a label names what follows as the answer ("So the answer is:", "Final events:", "the full list
#: is:", "Réponse finale :") ...
_NAMES_ANSWER = re.compile(r"\b(?:final|finale|endg[üu]ltige?|(?:full|complete)\s+list)\b|最终|最終", re.I)
#: ... or as a correction ("Let me fix that:", "Update: ...", "Here is the right one:", "I was wrong ...:", "Better:",
#: "I changed my mind ...:", "Korrektur: ...", "Corrección: ...", "Attendez, je me suis trompé.", "不对，应该选...：",
#: "すみません、間違えました。"), :data:`_CORRECTION`'s words too.
_NAMES_CORRECTION = re.compile(
    r"\b(?:correct\w*|fix(?:ed|ing)?|updated?|revis\w*|right\s+(?:one|segments?|list)|wrong|better|reconsider\w*"
    r"|changed\s+my\s+mind|missed|forgot\w*|korrektur|korrigier\w*|richtige\w*|geirrt|falsch|corrig\w*|bonne"
    r"|tromp[ée]\w*|erreur|correcci[oó]n|correct[oa]|equivoqu\w*|error)\b|更正|纠正|正确|不对|应该|訂正|修正|正しい|間違",
    re.I)
#: Words by which a label says a part of the answer is dropped ("Let me drop the second interval:", "Removing the
#: weak one:"): with a label they narrow the answer to the part after them (:func:`_label_narrows`).
_DROPS = re.compile(r"\b(?:drop(?:s|ped|ping)?|remov(?:e|es|ed|ing))\b", re.I)
#: A label that is a conclusion alone ("So:", "Therefore:").
_CONCLUSION = re.compile(r"(?:so|thus|therefore|hence)\s*[:\uff1a=]?", re.I)
#: What ends a label: a colon (a full-width one too), an arrow, an equals sign.
_LABEL_END = (":", "\uff1a", "->", "\u2192", "=")
#: A parenthesis or an arrow between a label's words and its end ("Final answer (JSON):", "Final answer -> ").
_LABEL_NOISE = re.compile(r"\s*(?:\([^()]{0,20}\)|->|\u2192)\s*(?=[:\uff1a=]?\s*$)")


def _labelled(prose: str) -> bool:
    """Whether the value after ``prose`` stands after a label (a colon, an arrow, an equals sign) or on a line of its
    own, markdown decoration aside: the structure of an answer given, whatever the label's words."""
    label = prose.rstrip(_DECOR)
    return label == "" or label.endswith(("\n", *_LABEL_END))


def _hedged(prose: str) -> bool:
    """Whether the sentences a label is read on (:func:`_read_sentences`) hedge the value (:data:`_HEDGE`)."""
    return any(_HEDGE.search(s) for s in _read_sentences(prose))


def _label_names_answer(prose: str) -> bool:
    """Whether the label before a value (:func:`_labelled`) names it as the answer or a correction: its sentence
    names the answer (:data:`_ANSWER_WORD`, :data:`_NAMES_ANSWER`, a conclusion alone: "So:") or a correction
    (:data:`_CORRECTION`, :data:`_NAMES_CORRECTION`), with no condition in it and no modal verb unless it names a
    correction by :data:`_NAMES_CORRECTION` ("The correct answer would be:"; not "If ..., the answer is:", "the
    answer would be:", "the pour might actually be two events:"); or the sentence before names a correction and
    neither hedges it ("On reflection, I need to revise this. The transcript shows the pour from 17 to 21 s:"). A
    hedge in the sentence before does not veto a label that names the answer itself ("Hmm, if I look again, the pour
    begins at 30 s. Corrected answer:"). A label naming neither ("Runner-up:", "Other candidate (less likely):", "For
    reference, option A is at:", "Supporting transcript lines:", "My first guess was:", a heading, a value on a line
    of its own) is a remark."""
    sentences = _sentences(prose)
    if not sentences:  # a value on a line of its own right after another: nothing names it
        return False
    label = sentences[-1].strip(_DECOR + "#-")
    before = sentences[-2] if len(sentences) > 1 else ""
    corrects = _NAMES_CORRECTION.search(label) is not None  # "actually", "wait" name no correction with "might"
    if (corrects or _CORRECTION.search(label) or _ANSWER_WORD.search(label) or _NAMES_ANSWER.search(label)
            or _CONCLUSION.fullmatch(label)):
        return not _CONDITIONAL_WORD.search(label) and (corrects or not _MODAL_WORD.search(label))
    return (bool(_CORRECTION.search(before) or _NAMES_CORRECTION.search(before))
            and not _HEDGE.search(before) and not _HEDGE.search(label))


def _later_word(prose: str) -> bool:
    """Whether ``prose``, the text before a value after the last fenced block, gives it as the model's later word
    rather than commentary: labelled (:func:`_labelled`) by a label naming it the answer or a correction (:func:
    `_label_names_answer`: "So the answer is:\n{...}", "Let me fix that:\n{...}", "Revised:\n{...}", "正确答案是：
    {...}"; not "Runner-up: {...}"), or, not hedged (:data:`_HEDGE`), after a correction word (:data:`_CORRECTION`)
    opening the last sentence or in a last sentence of at most four words ("Actually, I think the pour is at {...}",
    "Oh wait, it is {...}"; not "It should be noted that he holds the jug at {...}")."""
    if _labelled(prose):
        return _label_names_answer(prose)
    if _hedged(prose):
        return False
    sentences = _sentences(prose)
    if not sentences:  # punctuation alone between two values ("{...}. {...}."): no word gives it as the answer
        return False
    last = sentences[-1]
    return (_CORRECTION.match(last.lstrip(_DECOR + "#-")) is not None
            or (len(last.split()) <= 4 and _correction(prose)))


def _fenced_remark(prose: str) -> bool:
    """Whether ``prose``, the text before the last fenced block after the fenced answer, makes its value a remark
    rather than the model's later word: a label naming neither an answer nor a correction ("For comparison, the
    drinking happens at:", "Runner-up:") or a hedge (:func:`_hedged`), unless :func:`_later_word` gives it as the
    later word ("Final answer:", "Revised answer:", "Let me fix that:"). A statement without a label ("Hmm, that's
    too wide; the pouring starts at 12.") or nothing between the blocks says nothing against the later block."""
    if _later_word(prose):
        return False
    return prose.rstrip().rstrip(_DECOR).endswith(_LABEL_END) or _hedged(prose)


def _label_narrows(prose: str) -> bool:
    """Whether ``prose`` ends with a label making the value after it the answer when it is a part of the last one:
    :data:`_NARROWING`, markdown, a parenthesis or an arrow aside ("**Final Answer:**", "Final answer (JSON):",
    "Final answer -> "), a label whose sentence names a correction (:data:`_NAMES_CORRECTION`, :data:`_CORRECTION`)
    or a part dropped (:data:`_DROPS`) and no hedge qualifies ("Revised:", "Corrected (dropping the second
    interval):", "Updated, without the weak interval:", "Let me drop the second interval:"), or a short label
    naming the answer ("So my answer:", "The answer is:", "Endgültige Antwort:", "最终答案：", "最終的な答え：", the
    last clause of a longer sentence: "..., so the answer is:") that no hedge in its sentence qualifies."""
    sentences = _sentences(prose.rstrip(_DECOR))
    if not sentences:
        return False
    last = sentences[-1].strip(_DECOR + "#-")
    if _NARROWING.search(_LABEL_NOISE.sub("", last)) or _NARROWING.search(last):
        return True
    if _labelled(prose) and not _HEDGE.search(last) and (_NAMES_CORRECTION.search(last) or _CORRECTION.search(last)
                                                         or _DROPS.search(last)):
        return True  # "Revised (removing the weak interval):", "Updated, without ...:", "Let me drop the second:"
    clause = re.split(r"[,;\uff0c\u3001]", last)[-1]  # "The query asks for the first pour, so the answer is:"
    return (_labelled(prose) and len(clause.split()) <= 6 and _ANSWER_WORD.search(clause) is not None
            and not _HEDGE.search(last))


def _short_label(prose: str) -> bool:
    label = prose.strip()
    return not label or (len(label) <= 48 and _SHORT_LABEL.fullmatch(label) is not None)


def _whole(value: Any) -> bool:
    """Whether a JSON value is a whole answer by its shape, not a fragment: an object (``{"intervals": ...}``,
    one interval ``{"start": .., "end": ..}``, ``{"events": ...}``) or a non-empty list of intervals or events
    (objects, ``[s, e]`` pairs); a flat ``[s, e]`` pair in prose is a fragment."""
    return isinstance(value, dict) or (isinstance(value, list) and bool(value)
                                       and all(isinstance(v, (dict, list)) for v in value))


def value_spans(value: Any) -> frozenset[tuple[float, float]] | None:
    """The ``(start, end)`` pairs, as floats, a JSON value answers with (``{"intervals": ...}``, ``{"events": ...}``,
    one interval, a list of intervals or events); ``None`` when any item has no numeric start and end."""
    if isinstance(value, dict):
        items = value.get("intervals", value.get("events", [value]))
    else:
        items = value if isinstance(value, list) and value and isinstance(value[0], (dict, list)) else [value]
    out = set()
    for item in items if isinstance(items, list) else ():
        pair = ((item.get("start"), item.get("end")) if isinstance(item, dict)
                else tuple(item[:2]) if isinstance(item, list) and len(item) in (2, 3) else None)
        if pair is None or not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in pair):
            return None
        out.add((float(pair[0]), float(pair[1])))
    return frozenset(out) or None


#: What may stand between the items of a list written one per line: a line break, a comma, a list marker ("1.",
#: "2)", "-", "*", "\u2022").
_ITEM_GAP = re.compile(r"\s*,?[ \t]*\n\s*(?:(?:\d{1,3}[.)]|[-*+\u2022])\s*)?")
_ITEM_KEYS = ("start", "start_time", "begin")


def _listed_items(values: list[tuple[Any, str, bool, int]],
                  check: Callable[[Any], Any]) -> list[tuple[Any, str, bool, int]]:
    """``values`` (:func:`_values`) with each run of two or more single items written one per line in one part of the
    reply (objects with a start, such as an interval or an event, apart only by line breaks and list markers:
    "1. {"start": 10, "end": 15}\n2. {"start": 17, "end": 21}", JSON lines) as one list, when ``check`` accepts the
    list: the items of one answer, not drafts each replacing the one before. A run reaching the last of
    :data:`MAX_ANSWERS` values read may go on past them: it is left as it is, never cut silently."""
    def item(value: Any) -> bool:
        return (isinstance(value, dict) and any(k in value for k in _ITEM_KEYS)
                and not any(isinstance(v, (list, dict)) for v in value.values()))

    out: list[tuple[Any, str, bool, int]] = []
    k = 0
    while k < len(values):
        j = k + 1
        if item(values[k][0]):
            while (j < len(values) and item(values[j][0]) and values[j][3] == values[k][3]
                   and _ITEM_GAP.fullmatch(values[j][1])):
                j += 1
        if j - k > 1 and not (j == len(values) >= MAX_ANSWERS):  # a list cut at MAX_ANSWERS values is no answer
            run = [v[0] for v in values[k:j]]
            try:
                check(run)
            except ReplyError:
                j = k + 1
            else:
                out.append((run, *values[k][1:]))
                k = j
                continue
        out.append(values[k])
        k = j
    return out


def _parts_cover(items: list[frozenset | None], last: int, k: int,
                 loose: Callable[[frozenset], frozenset] | None) -> bool:
    """Whether the first part ``k`` of the answer ``last`` that a label narrows to and the values after it that are
    parts of it (their items a subset of its, or their ``loose`` items) name all of it between two or more of them:
    the answer explained part by part ("To summarize, the correct intervals are A and B", "Final answer: A and B",
    "- Correct: A (pour)\n- Correct: B (refill)"), never a narrowing of it to one part, whatever the label before a
    part says. Parts named before ``k`` do not count: "Candidates: AB\nThe segment B shows drinking.\nFinal answer:
    A" narrows to A."""
    whole = items[last]
    if whole is None:
        return False
    see = loose or (lambda found: found)
    parts = [mine for mine in items[k:] if mine is not None and (mine <= whole or see(mine) <= see(whole))]
    return len(parts) > 1 and see(frozenset().union(*parts)) >= see(whole)


def choose_answer(text: str, check: Callable[[Any], Any], *, full: Callable[[Any], bool] = _whole,
                  spans: Callable[[Any], frozenset | None] | None = None,
                  brief: Callable[[Any], str] | None = None,
                  loose: Callable[[frozenset], frozenset] | None = None) -> tuple[Any, list[str]]:
    """The answer in a reply, and warnings: of its JSON values (reasoning blocks left out) that ``check`` accepts
    (it returns the value as used, or raises :class:`ReplyError`; a task's whole validation, so an incomplete
    value is no candidate), the last ``full`` one ("whole" by its shape, such as ``{"intervals": ...}``) that is
    not a format echo, else the last whole one, else the last fragment not an echo, else the last fragment. A
    model that corrects itself ("First guess: {...} On second thought, {...}") means the last; a fragment in
    prose ("the video spans [0, 36]") never replaces a whole answer. A value introduced as the format's echo
    (prose right before it ends with "format", "schema", "example" or "e.g.", one word and a colon allowed:
    "Format used: {...}"; not "in JSON format:", "in the requested format:") is not an answer while another
    whole one is. A value whose ``spans`` (the checked value's set of items, compared as numbers) are a subset of
    those of the last whole answer kept before it (not an echo, not a quote) is a quote of it, not a correction (an
    answer followed by its intervals explained one by one, even when one of them was an earlier draft), unless a
    label right before it makes it the answer (:func:`_label_narrows`: "Actually, only the first: {...}", "**Final
    Answer:** {...}", "So my answer: {...}", "Endgültige Antwort: {...}") and the parts after the last answer do not
    name all of it between them (:func:`_parts_cover`: "To summarize, the correct intervals are A and B" explains
    the answer A, B); an older answer repeated that is not a subset of the last is a revert to it ("Candidate 1: A,
    Candidate 2: B, Final answer: A" is A). Single items written one per line ("1. {"start": ..}\n2. {..}", JSON
    lines) are one list when ``check`` accepts it (:func:`_listed_items`). A value in the prose after the last
    fenced block is the model's later word when it stands after a label or on a line of its own ("So the answer
    is:\n{...}", "Let me fix that:", "正确答案是：") or after a correction word in a short sentence ("Actually, it is
    {...}"), and commentary when the sentences before it hedge it ("Note: if ... would be {...}", "If I made a
    mistake ..., the other candidate is {...}", "Alternatively, ...", "For example, ...") or neither holds (:func:`
    _later_word`); commentary is left out with a warning naming it, unless the fenced blocks hold no valid value
    but format echoes. A flat pair there counts as a whole answer when introduced as a correction ("Wait, ...
    Final: [17, 21]"). The last fenced block after the fenced answer is read so too, unless nothing or a statement
    without a label stands before it (:func:`_fenced_remark`: "For comparison, the drinking happens at:" makes it a
    remark), and in a reply with no fenced block a value after the answer that the sentences before hedge ("I
    excluded {...} because ...") is commentary. Warnings say which value was used when others (not quotes nor
    commentary) differ, and name a part of the answer in its own fence or after a label ending its line that was
    read as a quote, not a narrowing, unless the parts after the answer name all of it. A reply whose valid value comes
    before a stray closing ``</think>`` tag uses it (with a warning) only when it opens the reply (nothing or a
    short label such as "Answer:" or "**Answer:**" before it); otherwise all before the tag is reasoning
    (DeepSeek-R1's template opens the block in the prompt) and the reply has no answer (nothing after the tag:
    the re-ask says so). None valid: the first whole value's error, else the first value's."""
    primary = strip_reasoning(text)
    attempts = [primary]
    whole = strip_reasoning(text, prompt_block=False)
    if whole != primary:
        attempts.append(whole)
    first_error: ReplyError | None = None
    whole_error: ReplyError | None = None  # a whole value's says more than a fragment's ("[0, 36]" in prose)
    for n, attempt in enumerate(attempts):
        try:
            values = _values(attempt)
        except ReplyError as exc:
            first_error = first_error or exc
            continue
        if n and not _short_label(values[0][1]):  # a value inside the reasoning a template opened is a draft
            if not primary.strip():
                raise ReplyError("the JSON before your closing </think> tag was taken as reasoning, not as the "
                                 "answer; give the answer after the tag")
            continue
        valid: list[tuple[Any, str, Any, bool, int]] = []
        for value, prose, after, block in _listed_items(values, check):
            try:
                valid.append((check(value), prose, value, after, block))
            except ReplyError as exc:
                first_error = first_error or exc
                if full(value):
                    whole_error = whole_error or exc
        if not valid:
            continue
        every = range(len(valid))
        # a fragment after the fenced answer, labelled as a correction ("Wait, the pour is later. Final: [17, 21]"),
        # is the model's later word, as a whole value there is
        whole_k = [full(v[2]) or (v[3] and _correction(v[1]) and _later_word(v[1])) for v in valid]
        echo = [_echo(v[1]) for v in valid]
        # a value in the prose after the last fenced block is commentary ("Alternatively, ...", "Note: if ... would
        # be ...") unless given as the model's later word ("So the answer is:\n...", "Actually, it is ...")
        aside = [v[3] and not _later_word(v[1]) for v in valid]
        if all(aside[k] or echo[k] for k in every):  # ... while the fenced blocks hold a valid answer, not an echo
            aside = [False] * len(valid)
        # ... or a part of the answer after a label narrowing it ("Let me drop the second interval:"), decided below
        dropping = [aside[k] and _label_narrows(valid[k][1]) for k in every]
        aside = [aside[k] and not dropping[k] for k in every]
        items = [spans(v[0]) if spans else None for v in valid]
        # a value opening the last fenced block holding a valid value, after the first (not the prose after the
        # last block): a block after it would be the model's next word ("Hmm, or maybe: {B} No, the first one is
        # right: {A}")
        last_block = max((v[4] for v in valid if v[4] > 0 and not v[3]), default=0)
        opens = [v[4] == last_block > 0 and not v[3] and (k == 0 or valid[k - 1][4] != v[4])
                 for k, v in enumerate(valid)]
        quote = [False] * len(valid)
        quoted: list[int | None] = [None] * len(valid)  # the answer a quote is a part of
        last: int | None = None  # the last kept whole answer (not an echo)
        opened: int | None = None  # the first part of it after it that a label narrows to
        for k in every:
            if aside[k]:
                continue
            mine, theirs = items[k], items[last] if last is not None else None
            # a quote repeats some of the last answer's items (an older answer repeated exactly, not among them,
            # is a revert to it: "Candidate 1: A, Candidate 2: B, Final answer: A"), unless a label makes it the
            # answer ("Actually, only the first: A" narrows the answer) and the parts after the last answer do not
            # name all of it from the first such label on ("To summarize, the correct intervals are A and B": an
            # explanation; a part named before it, "The segment B shows drinking", is no summary)
            part = (mine is not None and theirs is not None
                    and (mine <= theirs or (loose is not None and loose(mine) < loose(theirs))))
            revert = any(items[j] == mine is not None and not (aside[j] or quote[j] or echo[j]) for j in range(k))
            if not part and (dropping[k] or last is not None and not revert and (
                    (opens[k] and _fenced_remark(valid[k][1]))
                    or (valid[k][4] == 0 and _hedged(valid[k][1]) and not _later_word(valid[k][1])))):
                # the last fenced block after the fenced answer is its correction only as the prose after it
                # is (:func:`_fenced_remark`); in a reply with no fenced answer, a value the sentences before hedge
                # after the answer is commentary too ("Answer: {A} Reasoning: ... I excluded {B} because ...");
                # an earlier answer repeated is a revert to it ("No, the first one is right:")
                aside[k] = True
                continue
            narrowed = False
            if part and mine != theirs and _label_narrows(valid[k][1]):
                opened = k if opened is None else opened
                narrowed = not _parts_cover(items, last, opened, loose)
            if part and not narrowed:
                quote[k], quoted[k] = True, last
            elif whole_k[k] and not echo[k]:
                last, opened = k, None
        tier = [2 * (not whole_k[k]) + echo[k] for k in every]  # whole answers, whole echoes, fragments, echoed ones
        kept = [k for k in every if not quote[k] and not aside[k]]  # never empty: the first kept value quotes nothing
        best = min(tier[k] for k in kept)
        pick = [k for k in kept if tier[k] == best][-1]
        chosen = valid[pick][0]
        notes = []
        others = [k for k in kept if k != pick and valid[k][0] != chosen]  # a quote says it again
        if others:
            drafts = any(tier[k] == best for k in others)  # all before the pick: it is the last of its tier
            around = any(tier[k] != best for k in others)
            which = ("the last, as a model corrects a draft" if not around
                     else "the whole answer, not the fragments, quotes of it or format echoes around it" if not drafts
                     else "the last whole answer (a model corrects a draft), not the fragments, quotes of it or "
                          "format echoes around it")
            shown = f" (others: {', '.join(brief(valid[k][0]) for k in others)})" if brief else ""
            notes.append(f"the reply held {len(others) + 1} different answers; used {which}{shown}")
        asides = [k for k in every if aside[k] and whole_k[k] and valid[k][0] != chosen
                  and not (items[k] is not None and items[pick] is not None and items[k] <= items[pick])]
        if asides:  # an example or a rejected candidate after the answer: said, as the reading may be wrong
            shown = f": {', '.join(brief(valid[k][0]) for k in asides)}" if brief else ""
            notes.append(f"left out {len(asides)} value(s) after the answer, read as commentary "
                         f"(an alternative, an example or a rejected candidate), not as a correction{shown}")
        blocks = [v[4] for v in valid if v[4] > 0 and not v[3]]

        def explained(k: int) -> bool:  # the answer's parts named after it cover it: an explanation, not a narrowing
            whole = quoted[k]
            return whole is not None and _parts_cover(items, whole, min(j for j in every if quoted[j] == whole), loose)

        parts = [k for k in every if quote[k] and valid[k][0] != chosen and items[k] != items[pick]
                 and ((valid[k][4] > 0 and not valid[k][3] and blocks.count(valid[k][4]) == 1)
                      or re.search(r"[:\uff1a=][\s*_`>]*\n[ \t>`]*$", valid[k][1]) is not None)
                 and not explained(k)]
        if parts:  # a part given its own fence or label, read as a quote, may have been meant to narrow the answer
            shown = f": {', '.join(brief(valid[k][0]) for k in parts)}" if brief else ""
            notes.append(f"left out {len(parts)} value(s) after the answer that name a part of it, read as quotes of "
                         f"it, not as a narrowing (no label naming a correction or an answer before them){shown}")
        if n:
            notes.append("the only answer came before a closing </think> tag that no <think> opened; used it")
        return chosen, notes
    raise whole_error or first_error or ReplyError("the answer holds no JSON object")


def last_json(text: str, usable: Callable[[Any], bool], warnings: list[str] | None = None) -> Any:
    """The JSON value in a reply that ``usable`` accepts and is its answer (a draft, then the answer: the answer
    counts; an answer, then a fragment such as ``[12, 36]`` in prose: the answer counts; see
    :func:`choose_answer`), a warning added to ``warnings`` when another usable one differs; the first value when
    none is usable (its error is the one to show)."""
    def check(value: Any) -> Any:
        if not usable(value):
            raise ReplyError("not usable")
        return value
    try:
        value, notes = choose_answer(text, check, spans=value_spans)
    except ReplyError:
        return json_candidates(text)[0]
    if warnings is not None:
        warnings.extend(notes)
    return value


def extract_json(text: str) -> Any:
    """The first JSON value in a model reply (:func:`json_candidates`), its reasoning blocks left out."""
    return json_candidates(text, limit=1)[0]


def clock_seconds(text: str) -> float | None:
    """The seconds an ``"mm:ss"`` / ``"h:mm:ss"`` string says (``"1:02:03.5"``: 3723.5), ``None`` for other text."""
    m = _CLOCK.fullmatch(text.strip())
    return None if m is None else int(m[1] or 0) * 3600 + int(m[2]) * 60 + float(m[3])


def _to_seconds(value: Any, where: str, warnings: list[str]) -> Any:
    """Numeric and clock strings become seconds; other values pass through for the schema to judge."""
    if isinstance(value, str):
        if m := _NUMERIC.fullmatch(value.strip()):
            warnings.append(f"{where}: read the string {value!r} as {float(m[1]):g} seconds")
            return float(m[1])
        if (secs := clock_seconds(value)) is not None:
            warnings.append(f"{where}: read the clock time {value!r} as {secs:g} seconds")
            return secs
        raise ReplyError(f"{where} is the string {value!r}; give times as numbers of seconds")
    return value


_KEYS = {"start": ("start", "start_time", "begin"), "end": ("end", "end_time", "stop")}


def _normalise(data: Any, warnings: list[str], decode: Callable[[Any, bool], Any] | None = None) -> dict[str, Any]:
    if isinstance(data, dict) and "intervals" not in data and any(k in data for k in _KEYS["start"]):
        data = {"intervals": [data]}
    elif isinstance(data, list):
        if len(data) in (2, 3) and all(isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in data):
            data = [data]  # one [start, end(, score)] interval
        data = {"intervals": data}
    if not isinstance(data, dict) or "intervals" not in data:
        raise ReplyError('the answer must be a JSON object with an "intervals" list')
    items = data["intervals"]
    if not isinstance(items, list):
        raise ReplyError('"intervals" must be a list')
    out = []
    for i, item in enumerate(items):
        if isinstance(item, (list, tuple)):
            if len(item) not in (2, 3):
                raise ReplyError(f"intervals[{i}] must be [start, end] or [start, end, score]")
            item = dict(zip(("start", "end", "score"), item))
        if isinstance(item, dict):
            item = dict(item)
            for key, aliases in _KEYS.items():
                for alias in aliases[1:]:
                    if key not in item and alias in item:
                        item[key] = item.pop(alias)
            for key in ("start", "end", "score"):
                if key in item:
                    if decode is not None and key != "score":
                        try:
                            item[key] = decode(item[key], key == "end")
                        except ReplyValueError as exc:
                            raise ReplyError(f"intervals[{i}].{key}: {exc}") from None
                    else:
                        item[key] = _to_seconds(item[key], f"intervals[{i}].{key}", warnings)
            if item.get("score", 0) is None:
                item.pop("score")
            item = {k: v for k, v in item.items() if k in ("start", "end", "score")}
        out.append(item)
    return {"intervals": out}


def _schema_errors(data: dict[str, Any]) -> list[str]:
    msgs = []
    for err in sorted(_VALIDATOR.iter_errors(data), key=lambda e: list(e.path)):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.path).lstrip(".")
        if err.validator == "minItems":
            msgs.append("the intervals list is empty; give at least one interval")
        else:
            msgs.append(f"{path or 'answer'}: {err.message}")
    return msgs


def _answer(text: str, warnings: list[str], decode: Callable[[Any, bool], Any] | None) -> dict[str, Any]:
    """The reply's valid answer, normalised (:func:`choose_answer`: the last whole one, else the last fragment; a
    draft in a reasoning block is left out). None valid: the first whole value's error, else the first value's."""
    def check(value: Any) -> tuple[dict[str, Any], list[str]]:
        notes: list[str] = []
        data = _normalise(value, notes, decode)
        problems = _schema_errors(data)
        if problems:
            raise ReplyError("; ".join(problems))
        return data, notes

    (data, notes), chosen = choose_answer(text, check, brief=lambda o: _brief(o[0]),
                                          spans=lambda o: value_spans(o[0]))
    warnings.extend(chosen)
    warnings.extend(notes)
    return data


def _brief(data: dict[str, Any]) -> str:
    return "[" + ", ".join(f"{i.get('start')}-{i.get('end')}" for i in data["intervals"][:3]
                           if isinstance(i, dict)) + "]"


def parse_reply_detailed(text: str, *, duration: float, step: float | None = None,
                         max_intervals: int | None = None, time_style: "str | TimeFormat | None" = None) -> ParsedReply:
    """Like :func:`parse_reply`, also returning the warnings (clamps, conversions) and the JSON.

    ``time_style``: an indexed style (``frames``, ``tokens``; :mod:`temporal_reasoner.timestyles`) reads
    ``start``/``end`` in its units and decodes them to seconds before the policy applies."""
    if not (isinstance(duration, (int, float)) and math.isfinite(duration) and duration > 0):
        raise ConfigurationError(f"duration must be a positive number of seconds, got {duration!r}")
    fmt = TimeFormat.parse(time_style)
    warnings: list[str] = []
    decode = (lambda v, end: fmt.decode(v, duration, step, end=end)) if fmt.indexed else None
    data = _answer(text, warnings, decode)
    tol = max(step or 0.0, 0.02 * duration)
    width = step if step else max(0.01 * duration, 0.1)
    intervals: list[Interval] = []
    raw_scores: list[float | None] = []
    for i, item in enumerate(data["intervals"]):
        bounds = []
        for key in ("start", "end"):
            v = float(item[key])
            if not math.isfinite(v):
                raise ReplyError(f"intervals[{i}].{key} is {v}; give a finite number of seconds")
            if v < -tol or v > duration + tol:
                hint = ""
                if step and not fmt.indexed and v == int(v) and 0 <= v * step <= duration + step:
                    hint = (f"; {v:g} looks like a frame number - convert it to seconds "
                            f"(frames are {step:g}s apart)")
                raise ReplyError(f"intervals[{i}].{key} = {v:g} is outside the video, which lasts "
                                 f"{duration:g} seconds{hint}")
            if v < 0 or v > duration:
                clamped = min(max(v, 0.0), float(duration))
                warnings.append(f"intervals[{i}].{key}: clamped {v:g} to {clamped:g}")
                v = clamped
            bounds.append(v)
        start, end = bounds
        if float(item["start"]) > float(item["end"]):
            raise ReplyError(f"intervals[{i}] is reversed: start {item['start']:g} is after end "
                             f"{item['end']:g}; start must come first")
        if end <= start:
            start, end = (start, min(start + width, duration)) if start + width <= duration \
                else (max(duration - width, 0.0), float(duration))
            warnings.append(f"intervals[{i}]: widened a point answer at {bounds[0]:g}s to "
                            f"[{start:g}, {end:g}]")
        score = item.get("score")
        if score is not None and not math.isfinite(float(score)):
            raise ReplyError(f"intervals[{i}].score is {score}; give a finite number")
        raw_scores.append(None if score is None else float(score))
        if score is not None and not 0.0 <= float(score) <= 1.0:  # the prompt asks for a confidence in [0, 1]
            clamped = min(max(float(score), 0.0), 1.0)
            warnings.append(f"intervals[{i}].score {float(score):g} clamped to [0, 1]")
            score = clamped
        try:
            intervals.append(Interval(start=start, end=end, score=None if score is None else float(score)))
        except ValidationError as exc:  # pragma: no cover - guarded above
            raise ReplyError(f"intervals[{i}]: {exc.errors()[0]['msg']}") from None
    if all(s is not None for s in raw_scores):  # best first by the model's own scores (8 before 6, both clamped)
        order = sorted(range(len(intervals)), key=lambda k: -(raw_scores[k] or 0.0))
        intervals = [intervals[k] for k in order]
    deduped = list(dict.fromkeys(intervals))  # in order, each once
    if max_intervals is not None and len(deduped) > max_intervals:
        warnings.append(f"kept the first {max_intervals} of {len(deduped)} intervals")
        deduped = deduped[:max_intervals]
    return ParsedReply(deduped, warnings, data)


def parse_reply(text: str, *, duration: float, step: float | None = None,
                max_intervals: int | None = None, time_style: "str | TimeFormat | None" = None) -> list[Interval]:
    """Extract, validate and repair the intervals in a model reply (see the module's policy).

    Raises :class:`ReplyError` with a message meant to be shown to the model.
    """
    return parse_reply_detailed(text, duration=duration, step=step, max_intervals=max_intervals,
                                time_style=time_style).intervals


__all__ = ["INTERVALS_SCHEMA", "RESPONSE_FORMATS", "intervals_schema", "FormatName", "ParsedReply", "ReplyError", "extract_json",
           "choose_answer", "json_candidates", "last_json", "strip_reasoning", "value_spans",
           "parse_reply", "parse_reply_detailed"]
