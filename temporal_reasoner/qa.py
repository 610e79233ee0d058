"""Grounded video QA: answer a question about a transcript and give the intervals that support it.

Two ways to answer:

* **a chat model** (OpenAI-compatible, transformers, llama.cpp): the transcript, the question and the
  options (when there are any) go into one prompt (``prompts/templates/qa_*``); the reply is JSON
  ``{"choice", "answer", "intervals"}``, validated and re-asked like every chat reply
  (:mod:`temporal_reasoner.structured`: the same ``response_format`` ladder, refusal memory and
  interval validation policy). Each chat reasoner's ``answer()`` calls :func:`run_answer`.
* **the evidence baseline** (offline, :func:`evidence_baseline`), for the similarity reasoners
  (``embedding``, ``vtggpt``, ``naive``): the question is grounded by the reasoner, then each option is
  scored by how well the transcript's sentences in and around the grounded interval match it (the
  option, and the question followed by the option, encoded by the reasoner's sentence model), plus what
  they say outright for it (its words; of opposite directions, the one they state); the best option wins.
  Without options it answers with the transcript sentence that best matches the question inside the
  grounded interval. It reads no answer from a language model: it is a baseline, and every
  answer it gives says so (``reasoner`` ends in ``+evidence-baseline``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import prompts
from vidground.errors import ConfigurationError, IncompleteOutputError, InputError
from vidground.types import Answer, Interval, TimeStyle, Usage

from . import polarity as _polarity
from .base import check_query
from .parsing import RESPONSE_FORMATS, ParsedReply, ReplyError, choose_answer, intervals_schema, parse_reply_detailed
from .structured import (ChatFn, _ask, ask_or_overflow, fallback_answered, keep_paid, reask_until_valid,
                         resolve_fallback, response_format)
from .timestyles import TimeFormat
from .transcript import Transcript

#: The name the offline path's answers carry after the reasoner's, so no table mistakes it for a model.
BASELINE_SUFFIX = "+evidence-baseline"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


# --- inputs -----------------------------------------------------------------------------------

def check_question(question: Any) -> str:
    """The question, whitespace collapsed; an :class:`InputError` for one that is not text or is empty."""
    try:
        return check_query(question)
    except InputError as exc:
        raise InputError(str(exc).replace("query", "question")) from None


def check_choices(choices: Any) -> list[str] | None:
    """``None``, or the options as a list of distinct non-empty texts (whitespace collapsed).

    An :class:`InputError` for an unknown format (a single string, a mapping, numbers: give a list of
    texts), fewer than two options, an empty option, or two options that are the same text (ignoring
    case and spacing).
    """
    if choices is None:
        return None
    if isinstance(choices, (str, bytes, dict)) or not isinstance(choices, (list, tuple)):
        kind = "a single string" if isinstance(choices, (str, bytes)) else type(choices).__name__
        raise InputError(f"unknown choice format: got {kind}; give the options as a list of texts, "
                         "e.g. ['unwrap it', 'share with the girl']")
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, c in enumerate(choices):
        if not isinstance(c, str):
            raise InputError(f"unknown choice format: choices[{i}] is {type(c).__name__} {c!r}, not text")
        text = " ".join(c.split())
        if not text:
            raise InputError(f"choices[{i}] is empty")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(f"choices[{i}] is not valid text (bytes that are not UTF-8?)") from None
        key = text.lower()
        if key in seen:
            raise InputError(f"choices[{seen[key]}] and choices[{i}] are the same option ({text!r}); "
                             "give each option once")
        seen[key] = i
        out.append(text)
    if len(out) < 2:
        raise InputError(f"give at least two choices, or none for a free-text answer; got {len(out)}")
    return out


def check_transcript(transcript: Transcript) -> Transcript:
    """The transcript, or an :class:`InputError` when it has no text to answer from."""
    if not transcript.entries or not any(e.text.strip() for e in transcript.entries):
        raise InputError("the transcript is empty: no description to answer the question from")
    return transcript


# --- the chat path: schema, prompt, parsing ---------------------------------------------------

def answer_schema(n_choices: int | None, max_intervals: int | None = None,
                  time_style: "str | TimeFormat | None" = None) -> dict[str, Any]:
    """The JSON schema of a QA reply: the intervals reply (:func:`~temporal_reasoner.parsing.intervals_schema`)
    plus ``answer`` (text) and, with ``n_choices`` options, ``choice`` (the option's number, 0-based).
    ``max_intervals`` bounds the list and the answer's length (for a grammar or a schema-constrained JSON
    mode); ``None`` gives the subset every strict-mode server accepts."""
    schema = intervals_schema(max_intervals, time_style=time_style)
    props: dict[str, Any] = {}
    if n_choices:
        props["choice"] = {"type": "integer", "enum": list(range(n_choices)),
                           "description": "the number of the chosen option"}
    props["answer"] = {"type": "string", "description": "the answer in words" if not n_choices
                       else "the chosen option's text"}
    if max_intervals is not None:  # a grammar: bound the text so a small model cannot ramble
        props["answer"]["maxLength"] = 200
    schema["properties"] = {**props, **schema["properties"]}
    schema["required"] = [*props, *schema["required"]]
    return schema


def qa_response_format(name: str, n_choices: int | None, *, max_intervals: int | None = None,
                       time_style: "str | TimeFormat | None" = None) -> dict[str, Any] | None:
    """The ``response_format`` of a ladder step (see :func:`structured.response_format`) for a QA reply."""
    if name == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "answer", "strict": True,
                                                       "schema": answer_schema(n_choices, time_style=time_style)}}
    if name == "json_object_schema":
        return {"type": "json_object", "schema": answer_schema(n_choices, max_intervals, time_style)}
    return response_format(name)  # the steps without a schema are the same for every reply


_INTERVAL_FORM = '"intervals": [{"start": <UNIT>, "end": <UNIT>, "score": <confidence 0 to 1>}]'


def reply_form(choices: Sequence[str] | None, unit: str = "seconds") -> str:
    """The reply's form as the prompts show it, times in ``unit``."""
    form = _INTERVAL_FORM.replace("UNIT", unit)
    if choices:
        return '{"choice": <number of the chosen option>, "answer": "<its text>", ' + form + "}"
    return '{"answer": "<a short answer>", ' + form + "}"


def build_qa_messages(question: str, transcript: Transcript, choices: Sequence[str] | None = None, *,
                      time_style: "TimeStyle | TimeFormat" = "seconds", max_intervals: int = 3) -> list[dict[str, str]]:
    """The chat messages that ask for the answer and its supporting intervals, times in ``time_style``."""
    fmt = TimeFormat.parse(time_style)
    if max_intervals < 1:
        raise ConfigurationError(f"max_intervals must be at least 1, got {max_intervals}")
    if choices:
        block = ("Options:\n" + "\n".join(f"{i}. {c}" for i, c in enumerate(choices))
                 + f"\nChoose exactly one option by its number (0 to {len(choices) - 1}).")
    else:
        block = "Answer in a few words."
    user = prompts.load("qa_user").render(
        duration=f"{transcript.duration:.1f}", time_note=fmt.note(transcript),
        transcript=fmt.render(transcript), question=check_question(question), choices_block=block,
        max_intervals=max_intervals)
    if fmt.indexed:
        unit, units = fmt.units()
        system = prompts.load("qa_system_indexed").render(form=reply_form(choices, unit), units=units,
                                                          last=fmt.last(transcript))
    else:
        system = prompts.load("qa_system").render(form=reply_form(choices))
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def qa_prompt_hashes(time_style: "TimeStyle | TimeFormat | None" = None) -> dict[str, str]:
    system = "qa_system_indexed" if TimeFormat.parse(time_style).indexed else "qa_system"
    return {n: prompts.load(n).hash for n in (system, "qa_user", "qa_reask", "reask_incomplete")}


@dataclass
class ParsedAnswer:
    answer: str
    choice: int | None
    intervals: list[Interval]
    #: not compared: two values of a reply that answer alike are one answer, whatever was clamped in each
    warnings: list[str] = field(default_factory=list, compare=False)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def resolve_choice(value: Any, answer: Any, choices: Sequence[str], warnings: list[str] | None = None) -> int:
    """The option a reply chose: its number (``2``, ``"2"``), its letter (``"C"``) or its text; a
    :class:`ReplyError` naming the valid numbers otherwise.

    When the ``answer`` text is exactly one option's text (as :func:`_norm` compares them) and ``value`` names
    another, or no option at all, the text wins and a note is appended to ``warnings``: a model that numbers the
    options from 1 (``{"answer": "c1", "choice": 0}`` for ``["c0", "c1"]`` meant c1) shifted every answer by one,
    silently, when the number was taken; the text says which option was meant, and a number can only point."""
    by_text = _text_choice(answer, choices)
    try:
        picked = _resolve_choice(value, answer, choices)
    except ReplyError as exc:
        if by_text is None or value is None:
            raise
        why = str(exc)
    else:
        if by_text is None or by_text == picked:
            return picked
        why = f'"choice" {value!r} is option {picked} ({choices[picked]!r})'
    if warnings is not None:
        number = value if isinstance(value, int) and not isinstance(value, bool) else (
            int(value) if isinstance(value, float) and value.is_integer() else None)
        warnings.append(f'the reply\'s "choice" and "answer" disagree: {why}, but "answer" {answer.strip()!r} is '
                        f'the text of option {by_text}; took option {by_text}, the text'
                        + (" (a model that numbers the options from 1 gives each number one too high)"
                           if number == by_text + 1 else ""))
    return by_text


def _text_choice(answer: Any, choices: Sequence[str]) -> int | None:
    """The option whose text ``answer`` is, when exactly one is; else None."""
    if not isinstance(answer, str) or not _norm(answer):
        return None
    found = [i for i, c in enumerate(choices) if _norm(c) == _norm(answer)]
    return found[0] if len(found) == 1 else None


def _resolve_choice(value: Any, answer: Any, choices: Sequence[str]) -> int:
    n = len(choices)
    if isinstance(value, bool):
        value = None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        if 0 <= value < n:
            return value
        raise ReplyError(f'"choice" is {value}, not the number of an option (0 to {n - 1})')
    texts = {_norm(c): i for i, c in enumerate(choices)}
    for v in (value, answer):
        if isinstance(v, str):
            s = v.strip().rstrip(".)")
            if s.isdigit() and 0 <= int(s) < n:
                return int(s)
            if len(s) == 1 and s.upper() in _LETTERS[:n]:
                return _LETTERS.index(s.upper())
            if _norm(v) in texts:
                return texts[_norm(v)]
    got = value if value is not None else answer
    raise ReplyError(f'"choice" must be the number of one option, 0 to {n - 1}; got {got!r}')


def parse_answer(text: str, *, choices: Sequence[str] | None, duration: float, step: float | None = None,
                 max_intervals: int | None = None, time_style: "str | TimeFormat | None" = None) -> ParsedAnswer:
    """A QA reply's answer, chosen option and intervals (validated by the intervals policy of
    :mod:`temporal_reasoner.parsing`); a :class:`ReplyError` says what to fix. Of several values in the reply, only
    those valid as a whole answer (the choice or answer too, not only the intervals) are candidates
    (:func:`~temporal_reasoner.parsing.choose_answer`): "Supporting intervals: {"intervals": ...}" after the answer
    does not replace it. ``"intervals": []`` (which the strict schema allows) is an answer grounded nowhere, kept
    with a warning: the choice still answers the question (NExT-GQA scores it; its span counts as a miss)."""
    def check(value: Any) -> ParsedAnswer:
        if not isinstance(value, dict):
            raise ReplyError(f"the answer must be a JSON object of the form {reply_form(choices)}")
        if "intervals" not in value:
            raise ReplyError('the answer has no "intervals": give the time spans that support it')
        if value["intervals"] == []:  # an answer the model grounds nowhere is still the answer (NExT-GQA scores
            # its choice for Acc@QA, its span as a miss): kept with a warning, not re-asked and paid for again
            parsed = ParsedReply([], ["the reply gives no interval supporting the answer: the answer is not grounded"])
        else:
            try:
                intervals = json.dumps({"intervals": value["intervals"]})
            except (TypeError, ValueError):  # a Python-style reply's set ({17, 21}), read by literal_eval
                raise ReplyError('"intervals" must be a list of time spans') from None
            parsed = parse_reply_detailed(intervals, duration=duration, step=step, max_intervals=max_intervals,
                                          time_style=time_style)
        if choices:
            notes: list[str] = []
            choice = resolve_choice(value.get("choice"), value.get("answer"), choices, notes)
            return ParsedAnswer(choices[choice], choice, parsed.intervals, [*notes, *parsed.warnings])
        answer = value.get("answer")
        if not isinstance(answer, str) or not answer.strip():
            raise ReplyError('"answer" must be a non-empty text')
        return ParsedAnswer(" ".join(answer.split()), None, parsed.intervals, parsed.warnings)

    def spans(a: ParsedAnswer) -> frozenset:  # a quote repeats the answer with some of its intervals
        said = a.choice if a.choice is not None else a.answer
        # the answer itself is an item too: the same answer grounded nowhere quotes it (a part of it), another
        # answer grounded nowhere is an answer of its own (the empty set would be a part of every answer)
        return frozenset({(said, None, None), *((said, i.start, i.end) for i in a.intervals)})

    chosen, notes = choose_answer(text, check, spans=spans,
                                  brief=lambda a: f"{a.answer!r} at " + (", ".join(
                                      f"{i.start:g}-{i.end:g}" for i in a.intervals[:3]) or "no interval"))
    return ParsedAnswer(chosen.answer, chosen.choice, chosen.intervals, notes + chosen.warnings)


def run_answer(chat: ChatFn, question: str, transcript: Transcript, choices: Sequence[str] | None = None, *,
               reasoner_name: str, max_attempts: int = 3, response_formats: Sequence[str] = RESPONSE_FORMATS,
               refused: set[str] | None = None, time_style: TimeStyle = "seconds", max_intervals: int = 3,
               settings: dict[str, Any] | None = None, fallback: Any = None,
               fallback_transcript: Transcript | None = None) -> Answer:
    """Ask ``chat`` for the answer and its intervals, validating and re-asking (the error shown to the
    model) until a reply is usable; as :func:`structured.run_structured` does for intervals. After
    ``max_attempts`` the ``fallback`` reasoner answers if given (a reasoner, a spec string or a callable
    returning one, resolved only then: :func:`answer_question`, so ``embedding`` gives the evidence baseline),
    with the chat attempts' usage, raw outputs and a warning kept; else an :class:`OutputValidationError`
    carries every raw output and the usage. ``fallback_transcript``: what the fallback reads instead of
    ``transcript`` (the transcript before it was merged to fit the chat model's context: the fallback has
    no such limit, and a merged span may have dropped the words that answer)."""
    question = check_question(question)
    choices = check_choices(choices)
    check_transcript(transcript)
    if max_attempts < 1:
        raise ConfigurationError(f"max_attempts must be at least 1, got {max_attempts}")
    n = len(choices) if choices else None
    for name in response_formats:
        qa_response_format(name, n)
    tf = TimeFormat.parse(time_style).bound(transcript)  # an irregular transcript's frame numbers decode through it
    unit = tf.units()[0]
    refused = set() if refused is None else refused
    ladder = [f for f in response_formats if f not in refused] or [list(response_formats)[-1]]
    base = build_qa_messages(question, transcript, choices, time_style=tf, max_intervals=max_intervals)
    messages = base
    usage, raws, errors, used = Usage(), [], [], []
    parsed: ParsedAnswer | None = None

    def once() -> ParsedAnswer:
        nonlocal usage, messages

        def formats(name: str) -> dict[str, Any] | None:
            return qa_response_format(name, n, max_intervals=max_intervals, time_style=tf)

        reply = ask_or_overflow(lambda: _ask(chat, messages, ladder, refused, used, formats=formats),
                                messages is not base, errors)
        usage = usage + reply.usage
        raws.append(reply.text)
        if reply.finish_reason == "length":
            errors.append("the reply was cut off (finish_reason=length)")
            messages = base + [{"role": "assistant", "content": reply.text},
                               {"role": "user", "content": prompts.load("reask_incomplete").render(
                                   max_intervals=max_intervals)}]
            raise IncompleteOutputError("the reply was cut off (finish_reason=length)")
        try:
            return parse_answer(reply.text, choices=choices, duration=transcript.duration, step=transcript.step,
                                max_intervals=max_intervals, time_style=tf)
        except ReplyError as exc:
            errors.append(str(exc))
            messages = base + [{"role": "assistant", "content": reply.text},
                               {"role": "user", "content": prompts.load("qa_reask").render(
                                   error=str(exc), form=reply_form(choices, unit),
                                   duration=f"{tf.last(transcript)}" if tf.indexed else f"{transcript.duration:.1f}")}]
            raise

    with keep_paid(lambda: usage):
        parsed, failure = reask_until_valid(once, max_attempts)
    info = {**(settings or {}), "method": "chat", "attempts": len(raws),
            "response_format": used[-1] if used else None, "max_intervals": max_intervals,
            "time_style": tf.spec, "prompts": qa_prompt_hashes(tf)}
    if parsed is None:
        summary = f"{reasoner_name}: no usable answer after {len(raws)} attempt(s); last error: {errors[-1]}"
        with keep_paid(lambda: usage):
            fallback = resolve_fallback(fallback)
            if fallback is not None:
                res = answer_question(fallback, question,
                                      transcript if fallback_transcript is None else fallback_transcript, choices)
        if fallback is None:
            raise failure(summary, raw_outputs=raws, errors=errors, attempts=len(raws), usage=usage)
        return fallback_answered(res, fallback, reasoner_name=reasoner_name, info=info, usage=usage, raws=raws,
                                 warning=lambda name: f"{summary}; used the fallback reasoner {name!r}")
    return Answer(question=question, answer=parsed.answer, choice=parsed.choice, choices=choices,
                  intervals=parsed.intervals, duration=transcript.duration,
                  duration_inferred=transcript.duration_inferred, reasoner=reasoner_name, settings=info,
                  usage={"reason": usage}, raw=raws[-1] if len(raws) == 1 else raws,
                  warnings=[f"attempt {i + 1} rejected: {e}" for i, e in enumerate(errors)] + parsed.warnings)


def fit_transcript(transcript: Transcript, cost: Callable[[Transcript], int], budget: int, *,
                   before_merging: Callable[[], None] | None = None) -> tuple[Transcript, list[str]]:
    """``transcript`` as it fits ``budget`` prompt tokens: as is, else with near-duplicate spans merged
    (:func:`~temporal_reasoner.context.merge_to_fit`, only as much as needed, no time range lost). A transcript
    that does not fit even then is a :class:`ConfigurationError` (answers are not combined across chunks).
    ``before_merging`` is called when the transcript does not fit as is: a check that raises when no merging
    could make the prompt fit (:func:`fit_question`'s question too long on its own)."""
    from .context import merge_to_fit, merged_note

    tokens = cost(transcript)
    if tokens <= budget:
        return transcript, []
    if before_merging is not None:
        before_merging()
    fit = merge_to_fit(transcript, cost, budget)
    if fit.fits:
        return fit.transcript, [merged_note(len(transcript), budget, fit.threshold, fit.max_texts, len(fit.transcript))]
    raise ConfigurationError(f"the question's prompt ({tokens} tokens) does not fit the model's context ({budget} "
                             "tokens) even with near-duplicate spans merged; use a larger context (n_ctx or "
                             "context_tokens) or shorter descriptions")


def fit_question(question: str, transcript: Transcript, choices: Sequence[str] | None,
                 count_tokens: Callable[[list[dict[str, str]]], int], budget: int, *,
                 time_style: "TimeStyle | TimeFormat" = "seconds", max_intervals: int = 3) -> tuple[Transcript, list[str]]:
    """:func:`fit_transcript` for the prompt asking ``question`` (:func:`build_qa_messages`), its tokens counted by
    ``count_tokens``. A question (with its options) that does not fit ``budget`` with no description at all is an
    :class:`InputError` about the question, as ground's query (:func:`~temporal_reasoner.context.check_query_fits`):
    it was a ConfigurationError saying to use a larger context or shorter descriptions. Nothing is sent."""
    from .context import check_query_fits

    def messages(t: Transcript) -> list[dict[str, str]]:
        return build_qa_messages(question, t, choices, time_style=time_style, max_intervals=max_intervals)

    # the text measured: the question and its options (a placeholder in their place gives the fixed prompt's share)
    asked = "\n".join([question, *choices]) if choices else question

    def alone() -> None:
        check_query_fits(asked, count_tokens, budget, lambda q, t: messages(t) if q is asked else build_qa_messages(
            q, t, time_style=time_style, max_intervals=max_intervals), transcript,
            what="question with its options" if choices else "question")

    return fit_transcript(transcript, lambda t: count_tokens(messages(t)), budget, before_merging=alone)


# --- the offline evidence baseline ------------------------------------------------------------

#: How far around the grounded interval the evidence is read: this fraction of its length on each
#: side, and at least :data:`MARGIN_SECONDS`.
MARGIN_FRACTION = 0.5
MARGIN_SECONDS = 2.0
#: Added to an option's similarity for its own words found in the evidence (times the share found, see
#: :func:`evidence_terms`), and added (taken off) for a direction the evidence states (only its opposite).
WORD_WEIGHT = 0.1
DIRECTION_WEIGHT = 0.15

#: Words that say nothing about which option the evidence supports.
_STOP = frozenset("""a an the and or of to in on at by for with from into onto as is are was were be been being it its
he she they them his her their him this that these those there here what which who whom why how when where does did
do doing done has have had having not no so some any one very just then than about go goes went get gets got
come comes came""".split())


def _stem(word: str) -> str:
    """``word`` without a plural or verb ending ("colours", "unwrapping", "moved", "move": "colour", "unwrap",
    "mov", "mov"): crude, but the same for the option and the descriptions, which is all a match needs."""
    for end in ("ing", "ed", "es", "s", "e"):
        if word.endswith(end) and len(word) - len(end) >= 3 and not word.endswith("ss"):
            word = word[:-len(end)]
            if end in ("ing", "ed") and word[-1] == word[-2] and word[-1] not in "aeioulsfz":
                word = word[:-1]  # "unwrapping", "stopped"
            return word
    return word


def _words(text: str) -> set[str]:
    return {_stem(w) for w in re.findall(r"[a-z]+", text.lower()) if w not in _STOP}


def evidence_terms(question: str, choices: Sequence[str], units: Sequence[str], *, word_weight: float = WORD_WEIGHT,
                   direction_weight: float = DIRECTION_WEIGHT) -> np.ndarray:
    """What the evidence ``units`` (the descriptions read to answer) add to each option's similarity.

    The sentence model scores "panning to the right" about as close to "left" as to "right", and a word the
    descriptions say outright ("the lights seem to be off") barely more than a related one; a user reads the
    evidence for both. So, per option: ``word_weight`` times the share of its own words (those not in the
    question nor in every option; stop words and endings aside) that the units say; and for a direction the
    option names where the options name both ends of its axis (:mod:`temporal_reasoner.polarity`: "left" /
    "right", "up" / "down"...), ``direction_weight`` added when a unit states it, taken off when the units
    state only its opposite. Directions are read in all the units (not only a motion stream's): options that
    are opposites ask about them. (Read for every option naming a direction, "walk away" among options naming
    none, the term cost 1.0 point of Acc@QA on NExT-GQA's dev half: captions word directions loosely.)"""
    said = set().union(*map(_words, units))
    states = np.bitwise_or.reduce(_polarity.stated_all(units), axis=0)
    own = [_words(c) for c in choices]
    shared = set.intersection(*own) | _words(question)
    asked = _polarity.stated_all(choices)
    asked[asked == 3] = 0  # "up and down": asks neither end
    # the axes on which the options are opposites: "walk away" among options naming no direction is not asked about
    opposed = ((asked == 1).any(axis=0) & (asked == 2).any(axis=0))
    out = np.zeros(len(choices))
    for i in range(len(choices)):
        ends = np.where(opposed, asked[i], 0)
        axes = np.nonzero(ends)[0]
        named = {_stem(w) for a in axes for w in _polarity.AXES[a].words}  # judged as directions, not words
        words = own[i] - shared - named
        if words:
            out[i] += word_weight * len(words & said) / len(words)
        if len(axes):
            have, want = states[axes], ends[axes]
            if ((have & want) != 0).any():
                out[i] += direction_weight
            elif ((have & (3 - want)) != 0).any():
                out[i] -= direction_weight
    return out


def evidence_baseline(reasoner: Any, question: str, transcript: Transcript, choices: Sequence[str] | None = None,
                      *, margin_fraction: float = MARGIN_FRACTION, margin_seconds: float = MARGIN_SECONDS,
                      word_weight: float = WORD_WEIGHT, direction_weight: float = DIRECTION_WEIGHT) -> Answer:
    """The offline answer: ground ``question`` with ``reasoner`` (a similarity reasoner, which has a sentence
    ``encoder``), then score each option by its best similarity to the transcript's sentences in and
    around the best interval (the option, and the question followed by the option, averaged), plus what
    those sentences say outright for it (:func:`evidence_terms`: its words, its direction); the best
    option wins. Without options, the sentence of that window that best matches the question is the
    answer. A baseline: no language model reads the transcript."""
    from .spans import text_units

    question = check_question(question)
    choices = check_choices(choices)
    check_transcript(transcript)
    for key, weight in (("word_weight", word_weight), ("direction_weight", direction_weight)):
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
            raise ConfigurationError(f"{key} must be between 0 (off) and 1, got {weight!r}")
    encoder = getattr(reasoner, "encoder", None)
    if encoder is None or not hasattr(encoder, "encode"):
        raise ConfigurationError(f"reasoner {getattr(reasoner, 'name', reasoner)!r} cannot answer questions: use a "
                                 "chat reasoner (openai:MODEL, hf:MODEL, llamacpp:PATH) or the offline 'embedding' "
                                 "baseline")
    grounded = reasoner.ground(question, transcript)
    best = grounded.best or Interval(start=0.0, end=transcript.duration)
    margin = max(margin_seconds, margin_fraction * (best.end - best.start))
    lo, hi = best.start - margin, best.end + margin
    window = [e for e in transcript.entries if e.end > lo and e.start < hi] or list(transcript.entries)
    units = [u for e in window for u in (text_units(e.text, level="sentence") or [e.text])]
    vectors = encoder.encode(units)
    if choices:
        forms = encoder.encode([f for c in choices for f in (c, f"{question} {c}")])
        sims = (vectors @ forms.T).reshape(len(units), len(choices), 2).mean(axis=2)
        scores = sims.max(axis=0) + evidence_terms(question, choices, units, word_weight=word_weight,
                                                   direction_weight=direction_weight)
        choice = int(np.argmax(scores))
        answer, choice_scores = choices[choice], [round(float(s), 5) for s in scores]
    else:
        sims = vectors @ encoder.encode([question])[0]
        choice, choice_scores = None, None
        answer = units[int(np.argmax(sims))]
    name = f"{grounded.reasoner or getattr(reasoner, 'name', 'reasoner')}{BASELINE_SUFFIX}"
    settings = {"method": "evidence-baseline", "margin_fraction": margin_fraction, "margin_seconds": margin_seconds,
                "word_weight": word_weight, "direction_weight": direction_weight,
                "window": [round(max(lo, 0.0), 3), round(min(hi, transcript.duration), 3)],
                "grounding": grounded.settings}
    return Answer(question=question, answer=answer, choice=choice, choices=choices, choice_scores=choice_scores,
                  intervals=grounded.intervals or [best], duration=transcript.duration,
                  duration_inferred=transcript.duration_inferred, reasoner=name, settings=settings,
                  usage=grounded.usage, timings=grounded.timings, warnings=grounded.warnings)


def answer_question(reasoner: Any, question: str, transcript: Transcript, choices: Sequence[str] | None = None) -> Answer:
    """Answer with ``reasoner``: its own ``answer()`` (the chat reasoners), else the offline
    :func:`evidence_baseline` (the similarity reasoners)."""
    question = check_question(question)
    choices = check_choices(choices)
    check_transcript(transcript)
    own = getattr(reasoner, "answer", None)
    if callable(own):
        return own(question, transcript, choices=choices)
    return evidence_baseline(reasoner, question, transcript, choices)


__all__ = ["BASELINE_SUFFIX", "ParsedAnswer", "answer_question", "answer_schema", "build_qa_messages",
           "check_choices", "check_question", "check_transcript", "evidence_baseline", "evidence_terms", "fit_question",
           "fit_transcript", "parse_answer", "qa_response_format", "reply_form", "resolve_choice", "run_answer"]
