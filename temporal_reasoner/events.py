"""Dense events (dense video captioning): a transcript's events as scored ``(start, end, caption)``.

Two ways to find them, both reading the same transcript as grounding and QA:

* **offline** (:func:`offline_events`, the similarity reasoners ``embedding``, ``vtggpt``, ``naive``):
  each sampled frame's description is embedded (the mean of its sentences' vectors, through the
  reasoner's own encoder and on-disk embedding store), a *novelty* curve is computed at every gap between
  frames (cosine distance between the mean vector of the ``window`` seconds before and after it), and
  its peaks become boundaries: highest first, each above ``threshold`` standard deviations over the
  curve's mean and above :data:`MIN_NOVELTY` (a change in cosine units: an unchanging video is one event) and at
  least ``min_event_seconds`` from every boundary already kept and from the video's ends. Each event's caption
  is the event's description sentence that most sets it apart: its nearness to the event's mean vector less its
  nearness to the events beside it or to the whole video's (a representative description, picked, not written;
  without the motion stream's ``Motion:`` marker). Its score is how sharply it stands apart from its
  neighbours (the novelty at its boundaries over the video's highest). Linear in the transcript's length:
  the windows are running sums, so a long transcript costs one pass.
* **a chat model** (:func:`run_events`, any reasoner with a ``chat`` callable: OpenAI-compatible,
  transformers, llama.cpp): the transcript goes into one prompt (``prompts/templates/events_*``) and the
  reply is JSON ``{"events": [{"start", "end", "caption", "score"}]}``, with the schema derived from
  :class:`~vidground.types.Event`, validated and re-asked with the error shown, through the same
  ``response_format`` ladder and refusal memory as every chat reply. ``{"events": []}`` (which the schema
  allows) is an answer: the model saw no event, kept with a warning, not re-asked; an event listed twice in one
  reply (same times and caption) is kept once, with a warning. A long transcript is sent in
  overlapping chunks of ``chunk_entries`` spans (times stay absolute), and events found twice in an
  overlap are kept once. Events may overlap where the model says one contains or runs alongside another.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import prompts
from vidground.errors import ConfigurationError, IncompleteOutputError, InputError
from vidground.types import MOTION_MARK, Event, Events, TimeStyle, Usage

from .parsing import RESPONSE_FORMATS, ReplyError, choose_answer, clock_seconds
from .structured import (ChatFn, _ask, ask_or_overflow, fallback_answered, keep_paid, reask_until_valid,
                         resolve_fallback, response_format)
from .timestyles import ReplyValueError, TimeFormat
from .transcript import Transcript

#: Offline defaults: the novelty window on each side of a gap, the shortest event, and how far above the
#: novelty curve's mean (in standard deviations) a boundary must stand.
WINDOW_SECONDS = 8.0
MIN_EVENT_SECONDS = 4.0
THRESHOLD = 1.0
#: The least novelty (``1 - cos`` between the mean description vectors of the windows either side of a gap) that
#: is a boundary, whatever the curve around it: less is no change of what the descriptions say. An unchanging
#: video's curve is float noise (~1e-12), whose peaks stand as far above its own mean as a real change's do. The
#: floor sits just above that noise and far under any change of words: with all-MiniLM-L6-v2 a trailing period
#: changes a description by 0.003, and a real change of one sentence among the ``cv`` describer's several ("A
#: person is standing on the left" -> "on the right", the others unchanged) moves the curve by only 0.012, an
#: "open" refrigerator in a caption by 0.029 (a floor of 0.05 lost both, RV-M); the relative level
#: (``THRESHOLD``) is what decides among real changes.
MIN_NOVELTY = 1e-4
#: Chat defaults: at most this many events per request, and spans per request (longer transcripts are chunked).
MAX_EVENTS = 20
CHUNK_ENTRIES = 300


# --- inputs -----------------------------------------------------------------------------------

def check_transcript(transcript: Any) -> Transcript:
    """The transcript, or an :class:`InputError` when there is nothing to find events in."""
    if not isinstance(transcript, Transcript):
        raise InputError(f"events need a Transcript, got {type(transcript).__name__}")
    if not any(e.text.strip() for e in transcript.entries):
        raise InputError("the transcript is empty: no description to find events in")
    if not transcript.duration > 0:
        raise InputError("the video has no duration: no time to place events in")
    return transcript


def _number(name: str, value: Any, *, minimum: float = 0.0, strict: bool = True, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a finite number, got {value!r}")
    if value < minimum or (strict and value == minimum):
        raise ConfigurationError(f"{name} must be {'above' if strict else 'at least'} {minimum:g}, got {value!r}")
    return float(value)


def _count(name: str, value: Any, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a whole number >= 1, got {value!r}")
    return value


# --- offline: change points in the description embeddings --------------------------------------

def novelty(vectors: np.ndarray, width: int) -> np.ndarray:
    """``1 - cos`` between the mean of the ``width`` rows before each gap and the ``width`` rows after it:
    one value per gap between consecutive rows (``len(vectors) - 1`` values), from running sums."""
    m = len(vectors)
    if m < 2:
        return np.zeros(0)
    csum = np.vstack([np.zeros((1, vectors.shape[1])), np.cumsum(vectors, axis=0)])
    gaps = np.arange(1, m)
    lo, hi = np.maximum(gaps - width, 0), np.minimum(gaps + width, m)
    left, right = csum[gaps] - csum[lo], csum[hi] - csum[gaps]
    norms = np.linalg.norm(left, axis=1) * np.linalg.norm(right, axis=1)
    cos = np.einsum("ij,ij->i", left, right) / np.where(norms > 0, norms, 1.0)
    return np.clip(1.0 - cos, 0.0, 2.0)


def pick_boundaries(times: np.ndarray, curve: np.ndarray, duration: float, *, min_event_seconds: float,
                    threshold: float, max_events: int | None = None, width: int = 1,
                    min_novelty: float = MIN_NOVELTY) -> list[int]:
    """The gaps (indices into ``curve``; gap ``g`` lies between ``times[g]`` and ``times[g + 1]``) that become
    boundaries: peaks of the curve (its highest within ``width`` gaps either side; the first of a plateau),
    highest first, each above ``mean + threshold * std`` of the curve and above ``min_novelty`` (a change in the
    embedding's cosine units: the relative level alone finds peaks in any curve, float noise included), and at
    least ``min_event_seconds`` from the video's ends and from every boundary kept before it. A window's novelty
    ramps up and down around a change, so only its peak marks it."""
    if len(curve) == 0:
        return []
    at = (times[:-1] + times[1:]) / 2
    level = max(float(curve.mean() + threshold * curve.std()), min_novelty)
    n = len(curve)
    kept: list[int] = []
    for g in np.argsort(-curve, kind="stable"):
        if curve[g] <= level or (max_events is not None and len(kept) + 1 >= max_events):
            break
        lo, hi = max(0, g - width), min(n, g + width + 1)
        if curve[lo:hi].max() > curve[g] or (curve[lo:g] == curve[g]).any():
            continue
        t = at[g]
        if t < min_event_seconds or duration - t < min_event_seconds:
            continue
        if all(abs(t - at[k]) >= min_event_seconds for k in kept):
            kept.append(int(g))
    return sorted(kept)


def _frame_vectors(encoder: Any, transcript: Transcript) -> tuple[np.ndarray, np.ndarray, list[list[str]], np.ndarray,
                                                                 np.ndarray, list[int]]:
    """Per sampled frame: its time and unit vector (the mean of its entry's sentence vectors); per entry:
    its sentences, their vectors and the rows where each entry's start (and the last ends); and the entry
    each frame belongs to."""
    from .spans import text_units

    entries = transcript.entries
    units, starts = encoder.grouped([e.text for e in entries], lambda text: text_units(text, level="sentence"),
                                    tag="sentence")
    bounds = np.append(starts, len(units))
    entry_vecs = np.stack([units[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])
    entry_vecs /= np.maximum(np.linalg.norm(entry_vecs, axis=1, keepdims=True), 1e-12)
    frame_times, owner = [], []
    for i, e in enumerate(entries):
        ts = e.times or [(e.start + e.end) / 2]
        frame_times.extend(ts)
        owner.extend([i] * len(ts))
    sentences = [text_units(e.text, level="sentence") or [e.text] for e in entries]
    return np.asarray(frame_times, dtype=float), entry_vecs[owner], sentences, units, bounds, owner


def offline_events(encoder: Any, transcript: Transcript, *, window_seconds: float = WINDOW_SECONDS,
                   min_event_seconds: float = MIN_EVENT_SECONDS, threshold: float = THRESHOLD,
                   max_events: int | None = None, nested: bool = False, reasoner_name: str = "embedding") -> Events:
    """The offline events of ``transcript``: change points of its description embeddings (see the module's
    docstring), a representative description as each event's caption, scored. ``encoder`` is a similarity
    reasoner's sentence encoder (``encode`` and ``grouped``). With ``nested``, the events found again at twice
    the scale (windows and shortest event doubled) are added where they differ from the fine ones (tIoU
    below 0.9): they span several fine events and overlap them, as a long activity holds its steps."""
    check_transcript(transcript)
    window_seconds = _number("window_seconds", window_seconds)
    min_event_seconds = _number("min_event_seconds", min_event_seconds)
    threshold = _number("threshold", threshold, minimum=-math.inf)
    max_events = _count("max_events", max_events, allow_none=True)
    if not isinstance(nested, bool):
        raise ConfigurationError(f"nested must be true or false, got {nested!r}")
    if encoder is None or not hasattr(encoder, "grouped"):
        raise ConfigurationError("offline events need a similarity reasoner's sentence encoder (reasoner 'embedding')")
    frames = _frame_vectors(encoder, transcript)
    events, peak = _segment(frames, transcript, window_seconds, min_event_seconds, threshold, max_events)
    if nested:
        coarse, _ = _segment(frames, transcript, 2 * window_seconds, 2 * min_event_seconds, threshold, max_events)
        events += [c for c in coarse if all(c.iou(e) < 0.9 for e in events)]
        if max_events is not None and len(events) > max_events:  # each scale keeps the cap; together they may not
            events = sorted(events, key=lambda e: -(e.score or 0.0))[:max_events]
        events.sort(key=lambda e: (e.start, -e.end))
    warnings = ["one description: the whole video is one event"] if len(frames[0]) == 1 else []
    if len(frames[0]) > 1 and peak <= MIN_NOVELTY:
        warnings.append(f"no change between the descriptions (the largest, {peak:.2g}, is under {MIN_NOVELTY:g} in "
                        "cosine distance): the whole video is one event")
    settings = {"method": "change-points", "window_seconds": window_seconds, "min_event_seconds": min_event_seconds,
                "threshold": threshold, "max_events": max_events, "nested": nested,
                "caption": "representative description"}
    return Events(events=events, duration=transcript.duration, duration_inferred=transcript.duration_inferred,
                  reasoner=f"{reasoner_name}+change-points", settings=settings, warnings=warnings)


def _segment(frames: tuple[Any, ...], transcript: Transcript, window_seconds: float, min_event_seconds: float,
             threshold: float, max_events: int | None) -> tuple[list[Event], float]:
    """The events between the change points at one scale, each captioned and scored, and the novelty curve's
    highest value (0 for a video of one frame)."""
    times, vectors, sentences, units, bounds, owner = frames
    width = max(1, int(round(window_seconds / transcript.step)))
    curve = novelty(vectors, width)
    gaps = pick_boundaries(times, curve, transcript.duration, min_event_seconds=min_event_seconds,
                           threshold=threshold, max_events=max_events, width=max(1, width // 2))
    cuts = [0.0, *((times[g] + times[g + 1]) / 2 for g in gaps), transcript.duration]
    strength = [None, *(float(curve[g]) for g in gaps), None]
    # a boundary's score: its novelty over the video's highest, a boundary too (above MIN_NOVELTY: a curve of noise
    # makes none, so its own maximum never turns noise into a score near 1); no boundary, one event: 1
    top = float(curve.max()) if len(curve) and curve.max() > 0 else 1.0
    overall = vectors.mean(axis=0)
    spans = []
    for k, (a, b) in enumerate(zip(cuts[:-1], cuts[1:])):
        inside = (times >= a) & (times < b) if k + 1 < len(cuts) - 1 else (times >= a)
        rows = np.flatnonzero(inside)
        if len(rows) == 0:  # a gap between samples wider than the event: the nearest frame speaks for it
            rows = np.array([int(np.argmin(np.abs(times - (a + b) / 2)))])
        spans.append((a, b, rows))
    centres = [vectors[rows].mean(axis=0) for _, _, rows in spans]
    events = []
    for k, (a, b, rows) in enumerate(spans):
        # the event's sentence that most sets it apart: its nearness to the event's mean vector less its
        # nearness to the events beside it and to the whole video, whichever is nearer. A sentence they share
        # ("the colours are beige") says nothing of this event; pulled away from the video's mean alone, it
        # still won where it filled most frames (the demo's first two events both took it). One event is the
        # whole video: nothing to set it apart from, its sentence nearest the mean
        others = [*(centres[j] for j in (k - 1, k + 1) if 0 <= j < len(spans)), overall] if len(spans) > 1 else []
        best_text, best_sim = "", -math.inf
        for entry in dict.fromkeys(owner[r] for r in rows):
            lo, hi = bounds[entry], bounds[entry + 1]
            sims = units[lo:hi] @ centres[k]
            if others:
                sims = sims - np.max([units[lo:hi] @ c for c in others], axis=0)
            j = int(np.argmax(sims))
            if sims[j] > best_sim:
                best_sim, best_text = float(sims[j]), sentences[entry][min(j, len(sentences[entry]) - 1)]
        sides = [s for s in (strength[k], strength[k + 1]) if s is not None]
        score = round(float(np.mean(sides)) / top, 4) if sides else 1.0
        events.append(Event(start=round(a, 3), end=round(b, 3), caption=_caption(best_text) or "(no description)",
                            score=min(score, 1.0)))
    return events, float(curve.max()) if len(curve) else 0.0


def _caption(sentence: str) -> str:
    """A description sentence as an event's caption: without the :data:`~vidground.types.MOTION_MARK` that opens
    the motion stream's summary and ``cv``'s motion sentence (a marker for the reasoner's direction term, as the
    benchmarks read the text after it, not words of the caption)."""
    text = sentence.strip()
    if text.startswith(MOTION_MARK):
        said = text[len(MOTION_MARK):].strip()
        return said[:1].upper() + said[1:] if said else text
    return text


# --- the chat path: schema, prompt, parsing ---------------------------------------------------

_FIELDS = ("start", "end", "caption", "score")


def events_schema(max_events: int | None = None) -> dict[str, Any]:
    """The JSON schema of an events reply, derived from :class:`~vidground.types.Event`'s fields (their JSON
    types; every field required and nothing else allowed, the subset strict-mode servers accept).
    ``max_events`` bounds the list and each caption's length (for a grammar or a schema-constrained JSON mode)."""
    fields = Event.model_json_schema()["properties"]

    def json_type(prop: dict[str, Any]) -> str:
        if "type" in prop:
            return prop["type"]
        return next(p["type"] for p in prop["anyOf"] if p.get("type") not in (None, "null"))

    item = {"type": "object", "properties": {k: {"type": json_type(fields[k])} for k in _FIELDS},
            "required": list(_FIELDS), "additionalProperties": False}
    events: dict[str, Any] = {"type": "array", "items": item}
    if max_events is not None:  # a grammar: bound the list and each caption, so a small model cannot ramble
        events["maxItems"] = max_events
        item["properties"]["caption"]["maxLength"] = 200
    return {"type": "object", "properties": {"events": events}, "required": ["events"], "additionalProperties": False}


def events_response_format(name: str, *, max_events: int | None = None) -> dict[str, Any] | None:
    """The ``response_format`` of a ladder step for an events reply."""
    if name == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "events", "strict": True, "schema": events_schema()}}
    if name == "json_object_schema":
        return {"type": "json_object", "schema": events_schema(max_events)}
    return response_format(name)


def reply_form(fmt: TimeFormat | None = None) -> str:
    """The reply's form as the prompts show it, times in the style's units."""
    unit = TimeFormat.parse(fmt).units()[0] if fmt is not None else "seconds"
    return ('{"events": [{"start": <' + unit + '>, "end": <' + unit + '>, "caption": "<what happens>", '
            '"score": <confidence 0 to 1>}]}')


FORM = reply_form()


def _time_rule(fmt: TimeFormat, transcript: Transcript) -> str:
    if fmt.indexed:
        return (f"start and end are {fmt.units()[1]} written as whole numbers, as in the transcript (not "
                f"seconds); 0 <= start < end <= {fmt.last(transcript)}")
    return ('times are seconds from the start of the video, as plain numbers (not frame numbers, not "mm:ss" '
            "strings); 0 <= start < end <= the video's duration")


def _labels(fmt: TimeFormat, part: Transcript) -> tuple[str, str]:
    """How the transcript writes the first and the last time of ``part``."""
    lines = fmt.render(part).split("\n")
    first, last = lines[0], lines[-1]
    return first[1:first.index("-")], last[last.index("-") + 1:last.index("]")]


def _cut_off(max_events: int) -> str:
    return f"it was cut off before it was complete; be brief, with at most {max_events} events and short captions"


def reask_events_messages(base: list[dict[str, str]], reply: str, error: str, fmt: TimeFormat,
                          part: Transcript) -> list[dict[str, str]]:
    """The re-ask after an unusable ``reply`` to ``base`` (the events prompt of ``part``): the reply and the
    error shown to the model."""
    first, last = _labels(fmt, part)
    return base + [{"role": "assistant", "content": reply},
                   {"role": "user", "content": prompts.load("events_reask").render(error=error, form=reply_form(fmt),
                                                                                   lo=first, hi=last)}]


def build_events_messages(transcript: Transcript, *, time_style: "TimeStyle | TimeFormat" = "seconds",
                          max_events: int = MAX_EVENTS, part: bool = False) -> list[dict[str, str]]:
    """The chat messages that ask for the events of ``transcript``, times written in ``time_style``
    (:mod:`temporal_reasoner.timestyles`); with ``part``, ``transcript`` is a chunk of a long video (its
    ``duration`` the whole video's) and the prompt says which part it is."""
    fmt = TimeFormat.parse(time_style)
    _count("max_events", max_events)
    part_note = ""
    if part:
        first, last = _labels(fmt, transcript)
        part_note = (f"This is the part of the transcript from {first} to {last}; list only the events in it, "
                     "with times as the transcript writes them.\n")
    user = prompts.load("events_user").render(duration=f"{transcript.duration:.1f}", time_note=fmt.note(transcript),
                                              part_note=part_note, transcript=fmt.render(transcript),
                                              max_events=max_events)
    system = prompts.load("events_system").render(form=reply_form(fmt), time_rule=_time_rule(fmt, transcript))
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def events_prompt_hashes() -> dict[str, str]:
    return {n: prompts.load(n).hash for n in ("events_system", "events_user", "events_reask")}


def _time(value: Any, what: str, fmt: TimeFormat, transcript: Transcript | None, *, end: bool,
          warnings: list[str]) -> float:
    """A replied time in seconds: decoded from the style's units (frames, tokens), else a number of seconds (a
    numeric string read as one; an ``"mm:ss"`` / ``"h:mm:ss"`` string converted, with a warning, as a ground reply's
    is)."""
    if fmt.indexed:
        try:
            return float(fmt.decode(value, transcript if transcript is not None else 0.0, end=end))
        except ReplyValueError as exc:
            raise ReplyError(f"{what}: {exc}") from None
    if isinstance(value, str):
        if (seconds := clock_seconds(value)) is not None:
            warnings.append(f"{what}: read the clock time {value!r} as {seconds:g} seconds")
            return seconds
        try:
            value = float(value.strip().rstrip("s"))
        except ValueError:
            raise ReplyError(f"{what} must be a number of seconds, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ReplyError(f"{what} must be a number of seconds, got {value!r}")
    return float(value)


def parse_events(text: str, *, lo: float, hi: float, step: float | None = None, max_events: int | None = None,
                 time_style: "TimeStyle | TimeFormat | None" = None,
                 transcript: Transcript | None = None) -> tuple[list[Event], list[str]]:
    """An events reply's events, in order of start, each checked: times are numbers (in ``time_style``'s
    units, decoded to seconds against ``transcript``) within ``[lo, hi]`` seconds (up to one sampling
    ``step`` outside is clamped, with a warning), end after start, a caption that is text, a score between
    0 and 1 (clamped) or none. A :class:`ReplyError` says what to fix. Of several values in the reply, only those
    valid as a whole (every event checked so) are candidates (:func:`~temporal_reasoner.parsing.choose_answer`):
    "In short: [[3, 5], [6, 9]]" after the events does not replace them."""
    fmt = TimeFormat.parse(time_style)
    if fmt.indexed and transcript is None:
        raise ConfigurationError(f"time style {fmt.spec!r} needs the transcript to decode a reply's times")
    form = reply_form(fmt)
    chosen, notes = choose_answer(text, lambda value: _check_events(value, form, lo, hi, step, max_events, fmt,
                                                                     transcript),
                                  spans=_event_items, brief=_brief_events, loose=_event_times)
    return chosen.events, notes + chosen.warnings


def _event_items(checked: _CheckedEvents) -> frozenset[tuple[float, float, str]]:
    """What a later value must repeat to quote an events answer: each event's times and caption, so a correction
    that only rewords a caption ("Sorry, correction: ... "a woman walks in"") is an answer, not a quote."""
    return frozenset((e.start, e.end, e.caption) for e in checked.events)


def _event_times(items: frozenset[tuple[float, float, str]]) -> frozenset[tuple[float, float]]:
    """The times of :func:`_event_items`: a later value naming some of the last answer's events by their times alone
    (captions reworded: "The key event: ...") quotes it; one with all its times and new captions corrects it."""
    return frozenset((start, end) for start, end, _ in items)


def _brief_events(checked: _CheckedEvents) -> str:
    return "[" + ", ".join(f"{e.start:g}-{e.end:g} {e.caption[:30]!r}" for e in checked.events[:3]) + "]"


@dataclass
class _CheckedEvents:
    events: list[Event]
    warnings: list[str] = field(compare=False)  # two values listing the same events are one answer


def _check_events(data: Any, form: str, lo: float, hi: float, step: float | None, max_events: int | None,
                  fmt: TimeFormat, transcript: Transcript | None) -> _CheckedEvents:
    """One JSON value of an events reply, checked as :func:`parse_events` says (a :class:`ReplyError` otherwise)."""
    if isinstance(data, dict):
        if "events" not in data:
            raise ReplyError(f'the answer has no "events": answer with {form}')
        data = data["events"]
    elif isinstance(data, list) and not data:  # a bare "[]" (in prose, a format's echo) is no answer
        raise ReplyError(f"the answer is an empty list; answer with {form} (\"events\": [] when nothing happens)")
    if not isinstance(data, list):
        raise ReplyError(f'"events" must be a list of events of the form {form}')
    if not data:  # what events_schema allows: the model saw nothing happen (an answer, not a mistake to re-ask)
        return _CheckedEvents([], ["the reply lists no event: the model found no events here"])
    slack = step if step is not None else 0.0
    events, warnings = [], []
    # the part's own first and last times as the transcript writes them, decoded: a reply echoing them is at the
    # part's bounds, even where the style's units cannot say them exactly (a time token rounds down)
    own = _own_bounds(fmt, transcript, lo, hi)
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise ReplyError(f"events[{i}] must be an object with start, end, caption and score")
        start = _time(item.get("start"), f"events[{i}].start", fmt, transcript, end=False, warnings=warnings)
        end = _time(item.get("end"), f"events[{i}].end", fmt, transcript, end=True, warnings=warnings)
        for name, t in (("start", start), ("end", end)):
            if t < lo - slack - 1e-9 or t > hi + slack + 1e-9:
                raise ReplyError(f"events[{i}].{name} is {item.get(name)!r}, outside the part of the video asked "
                                 f"about ({lo:g} to {hi:g} seconds)")
        s, e = own.get((start, False), start), own.get((end, True), end)
        s, e = min(max(s, lo), hi), min(max(e, lo), hi)
        if (s, e) != (own.get((start, False), start), own.get((end, True), end)):
            warnings.append(f"events[{i}] clamped from {start:g}-{end:g} to {s:g}-{e:g} s")
        if not e > s:
            raise ReplyError(f"events[{i}] ends ({item.get('end')!r}) before or where it starts ({item.get('start')!r})")
        caption = item.get("caption")
        if not isinstance(caption, str) or not caption.strip():
            raise ReplyError(f'events[{i}].caption must be a non-empty text saying what happens')
        score = item.get("score")
        if score is not None:
            if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
                raise ReplyError(f"events[{i}].score must be a number from 0 to 1, got {score!r}")
            if not 0.0 <= score <= 1.0:
                warnings.append(f"events[{i}].score {score:g} clamped to [0, 1]")
                score = min(max(float(score), 0.0), 1.0)
        event = Event(start=s, end=e, caption=caption, score=score)
        twin = next((k for k, ev in enumerate(events) if (ev.start, ev.end, ev.caption) == (s, e, event.caption)), None)
        if twin is not None:  # the same event listed twice: one event (the higher score kept)
            warnings.append(f"events[{i}] repeats an earlier event ({s:g}-{e:g} {event.caption[:30]!r}); kept once")
            if score is not None and (events[twin].score is None or score > events[twin].score):
                events[twin] = event
            continue
        events.append(event)
    if max_events is not None and len(events) > max_events:
        warnings.append(f"the reply listed {len(events)} events; kept the first {max_events}")
        events = events[:max_events]
    return _CheckedEvents(sorted(events, key=lambda ev: (ev.start, ev.end)), warnings)


def _own_bounds(fmt: TimeFormat, transcript: Transcript | None, lo: float, hi: float) -> dict[tuple[float, bool], float]:
    """``{(decoded time, is an end): bound}`` for an indexed style: the part's first start and last end as the
    transcript writes them (``_labels``), decoded, mapped to ``lo`` and ``hi``. A time token is the moment rounded
    down to a token, so a chunk starting at 4.5 s is written ``<k>`` and ``<k>`` decodes to 4.48 s: a reply echoing
    it means the chunk's start, not a time before the part asked about."""
    if not fmt.indexed or transcript is None or not transcript.entries:
        return {}
    first, last = _labels(fmt, transcript)
    try:
        return {(float(fmt.decode(first, transcript, end=False)), False): lo,
                (float(fmt.decode(last, transcript, end=True)), True): hi}
    except ReplyValueError:  # a label the style cannot read back: no echo to recognise
        return {}


def chunks(transcript: Transcript, size: int) -> list[Transcript]:
    """``transcript`` as consecutive parts of at most ``size`` spans, each overlapping the previous by a tenth
    (so an event across a cut is seen whole in one part); times stay absolute and each part keeps the whole
    video's duration."""
    entries = transcript.entries
    if len(entries) <= size:
        return [transcript]
    overlap = max(1, size // 10) if size > 1 else 0
    out, i = [], 0
    while True:
        part = entries[i:i + size]
        # the whole video's duration: relative time tokens are fractions of it
        out.append(Transcript(duration=transcript.duration, step=transcript.step, entries=part))
        if i + size >= len(entries):
            return out
        i += size - overlap


class SpanTooLongError(InputError):
    """One span of the transcript is too long for the model's context on its own: no chunk can hold it, so
    no request is sent for it. An input error of that video (an eval counts it as that video's failure and
    runs the others); a reasoner's ``fallback``, when set, finds the video's events instead."""

    def __init__(self, message: str, *, span: int, tokens: int, budget: int):
        self.span, self.tokens, self.budget = span, tokens, budget
        super().__init__(message)


def fitting_chunk_entries(transcript: Transcript, count_tokens: Any, budget: int | None, *,
                          time_style: "TimeStyle | TimeFormat" = "seconds", max_events: int = MAX_EVENTS) -> int:
    """The chunk length (spans) for :func:`run_events` whose every chunk fits ``budget`` tokens as
    ``count_tokens(messages)`` counts them: :data:`CHUNK_ENTRIES`, halved until each chunk fits (down to one
    span); :data:`CHUNK_ENTRIES` when ``budget`` is ``None`` (no limit known). What is counted is a chunk's
    re-ask (its prompt and the re-ask text, the reply left out), so ``budget`` must leave room for two replies
    (the one appended to the re-ask, and its answer) and for a longer error than the one counted. A span too
    long to fit alone is a :class:`SpanTooLongError` naming it, before any request (the server would refuse
    each prompt)."""
    size = CHUNK_ENTRIES
    if budget is None:
        return size
    fmt = TimeFormat.parse(time_style)

    def cost(part: Transcript, size: int) -> int:  # the re-ask's prompt (the reply left out: budget has room)
        base = build_events_messages(part, time_style=fmt, max_events=max_events, part=len(transcript) > size)
        return count_tokens(reask_events_messages(base, "", _cut_off(max_events), fmt, part))

    while size > 1 and any(cost(part, size) > budget for part in chunks(transcript, size)):
        size //= 2
    if size == 1:
        costs = [cost(part, 1) for part in chunks(transcript, 1)]
        worst = max(range(len(costs)), key=costs.__getitem__)
        if costs[worst] > budget:
            e = transcript.entries[worst]
            # the same span with a one-word text: when even that does not fit, no video's events can, a setting
            # (the context, max_tokens) not this video's descriptions is wrong, and every video would be described
            # for nothing
            one = transcript.model_copy(update={"entries": [e.model_copy(update={"text": "x"})]})
            least = cost(one, 1)
            if least > budget:
                raise ConfigurationError(
                    f"the model's context leaves {budget} tokens for an events prompt, but one with a single one-word "
                    f"span takes {least}: use a larger context (n_ctx or context_tokens) or a smaller max_tokens")
            raise SpanTooLongError(
                f"span {worst + 1} of {len(costs)} of the transcript ({e.start:g}-{e.end:g} s, {len(e.text)} "
                f"characters) is too long for the model's context: its events prompt and re-ask are {costs[worst]} tokens, "
                f"{budget} are left for a prompt; use a larger context (n_ctx or context_tokens) or shorter "
                "descriptions", span=worst, tokens=costs[worst], budget=budget)
    return size


def _fallback_events(fb: Any, transcript: Transcript, *, reasoner_name: str, info: dict[str, Any], usage: Usage,
                     raws: list[str], note: str, left_out: int = 0, left_out_requests: int = 0) -> Events:
    """The whole transcript's events found by the fallback reasoner ``fb``, with the chat requests' ``usage``
    (the fallback's added) and raw outputs kept and a warning saying why (``note``) and which parts' events were
    left out, their ``left_out_requests`` paid requests still counted."""
    left = ""
    if left_out:
        left = (f" (the events of the {left_out} part(s) before it were left out; the {left_out_requests} request(s) "
                "paid for them are counted in the usage)")
    return fallback_answered(find_events(fb, transcript), fb, reasoner_name=reasoner_name, info=info, usage=usage,
                             raws=raws, warning=lambda name: f"{note}; used the fallback reasoner {name!r} for the "
                                                             f"whole video{left}")


def _same(a: Event, b: Event) -> bool:
    return a.iou(b) >= 0.5


def run_events(chat: ChatFn, transcript: Transcript, *, reasoner_name: str, max_attempts: int = 3,
               response_formats: Sequence[str] = RESPONSE_FORMATS, refused: set[str] | None = None,
               time_style: "TimeStyle | TimeFormat" = "seconds", max_events: int = MAX_EVENTS,
               chunk_entries: int | None = CHUNK_ENTRIES,
               settings: dict[str, Any] | None = None, fallback: Any = None,
               count_tokens: Any = None, budget: int | None = None) -> Events:
    """Ask ``chat`` for the events of ``transcript``, one request per chunk of ``chunk_entries`` spans,
    validating and re-asking (the error shown to the model) until each chunk's reply is usable. After
    ``max_attempts`` on a chunk the ``fallback`` reasoner (a reasoner, a spec string or a callable returning
    one, resolved only then) finds the whole transcript's events with its own defaults (:func:`find_events`:
    ``embedding`` gives the offline change points), the chat requests' usage, raw outputs and a warning kept;
    without one an :class:`OutputValidationError` carries every raw output and the usage. A re-ask that does
    not fit the model's context ends that chunk's attempts the same way (the usage paid kept).

    ``chunk_entries=None``: chunks as long as fit ``budget`` tokens by ``count_tokens``
    (:func:`fitting_chunk_entries`); a span too long for it alone is answered by the ``fallback`` when one is
    set, else a :class:`SpanTooLongError`."""
    check_transcript(transcript)
    max_attempts = _count("max_attempts", max_attempts)
    max_events = _count("max_events", max_events)
    for name in response_formats:
        events_response_format(name)
    fmt = TimeFormat.parse(time_style)
    if chunk_entries is None:
        try:
            chunk_entries = fitting_chunk_entries(transcript, count_tokens, budget, time_style=fmt,
                                                  max_events=max_events)
        except SpanTooLongError as exc:
            fb = resolve_fallback(fallback)
            if fb is None:
                raise
            info = {**(settings or {}), "method": "chat", "attempts": 0, "max_events": max_events,
                    "time_style": fmt.spec, "prompts": events_prompt_hashes()}
            return _fallback_events(fb, transcript, reasoner_name=reasoner_name, info=info, usage=Usage(), raws=[],
                                    note=f"{reasoner_name}: {exc}; no request sent")
    chunk_entries = _count("chunk_entries", chunk_entries)
    refused = set() if refused is None else refused
    ladder = [f for f in response_formats if f not in refused] or [list(response_formats)[-1]]
    parts = chunks(transcript, chunk_entries)
    usage, raws, all_errors, used = Usage(), [], [], []
    found: list[Event] = []
    warnings: list[str] = []

    def info() -> dict[str, Any]:
        return {**(settings or {}), "method": "chat", "attempts": len(raws), "chunks": len(parts),
                "chunk_entries": chunk_entries, "response_format": used[-1] if used else None,
                "max_events": max_events, "time_style": fmt.spec, "prompts": events_prompt_hashes()}

    for n, part in enumerate(parts):
        lo, hi = (0.0, transcript.duration) if len(parts) == 1 else (part.entries[0].start, part.entries[-1].end)
        base = build_events_messages(part, time_style=fmt, max_events=max_events, part=len(parts) > 1)
        messages, errors = base, []
        where = "" if len(parts) == 1 else f"part {n + 1} of {len(parts)}: "

        def once() -> tuple[list[Event], list[str]]:
            nonlocal usage, messages
            reply = ask_or_overflow(lambda: _ask(chat, messages, ladder, refused, used,
                                                 formats=lambda name: events_response_format(name, max_events=max_events)),
                                    messages is not base, errors)
            usage = usage + reply.usage
            raws.append(reply.text)
            if reply.finish_reason == "length":
                errors.append("the reply was cut off (finish_reason=length)")
                messages = reask_events_messages(base, reply.text, _cut_off(max_events), fmt, part)
                raise IncompleteOutputError("the reply was cut off (finish_reason=length)")
            try:
                return parse_events(reply.text, lo=lo, hi=hi, step=transcript.step, max_events=max_events,
                                    time_style=fmt, transcript=part)
            except ReplyError as exc:
                errors.append(str(exc))
                messages = reask_events_messages(base, reply.text, str(exc), fmt, part)
                raise

        asked_before, paid_before = len(raws), usage
        with keep_paid(lambda: usage):  # the parts before this one were paid too
            parsed, failure = reask_until_valid(once, max_attempts)
        all_errors.extend(where + e for e in errors)
        if parsed is None:
            part_of = f" for part {n + 1} of {len(parts)}" if len(parts) > 1 else ""
            summary = f"{reasoner_name}: no usable events{part_of} after {len(raws) - asked_before} attempt(s); " \
                      f"last error: {errors[-1]}"
            with keep_paid(lambda: usage):
                fb = resolve_fallback(fallback)
                if fb is not None:
                    return _fallback_events(fb, transcript, reasoner_name=reasoner_name, info=info(), usage=usage,
                                            raws=raws, note=summary, left_out=n, left_out_requests=paid_before.requests)
            raise failure(summary, raw_outputs=raws, errors=all_errors, attempts=len(raws), usage=usage)
        new, notes = parsed
        warnings += [where + w for w in notes]
        found += [e for e in new if not any(_same(e, old) for old in found)]  # an overlap's events, kept once
    return Events(events=sorted(found, key=lambda e: (e.start, e.end)), duration=transcript.duration,
                  duration_inferred=transcript.duration_inferred, reasoner=reasoner_name, settings=info(),
                  usage={"reason": usage}, raw=raws[-1] if len(raws) == 1 else raws,
                  warnings=[f"rejected: {e}" for e in all_errors] + warnings)


# --- dispatch ---------------------------------------------------------------------------------

_OFFLINE = ("window_seconds", "min_event_seconds", "threshold", "max_events", "nested")
_CHAT = ("max_events", "chunk_entries")


def events_path(reasoner: Any, options: dict[str, Any] | None = None) -> str:
    """Which way ``reasoner`` finds events (``"own"``, ``"chat"`` or ``"offline"``), with ``options`` checked
    against that path's settings (names and values) before any video is described: an unknown or invalid
    one is a :class:`ConfigurationError` naming the valid ones."""
    options = options or {}
    own = callable(getattr(reasoner, "events", None))
    if own or callable(getattr(reasoner, "chat", None)):  # a model's own events() takes the chat path's settings
        _check_options(options, _CHAT, "chat")
        for key in _CHAT:
            if key in options:
                _count(key, options[key])
        return "own" if own else "chat"
    if getattr(reasoner, "encoder", None) is None:
        name = getattr(reasoner, "name", type(reasoner).__name__)
        raise ConfigurationError(f"reasoner {name!r} cannot find events: use a chat reasoner (openai:MODEL, hf:MODEL, "
                                 "llamacpp:PATH) or the offline 'embedding' reasoner")
    _check_options(options, _OFFLINE, "offline")
    for key in ("window_seconds", "min_event_seconds"):
        if key in options:
            _number(key, options[key])
    if "threshold" in options:
        _number("threshold", options["threshold"], minimum=-math.inf)
    if "max_events" in options:
        _count("max_events", options["max_events"], allow_none=True)
    if not isinstance(options.get("nested", False), bool):
        raise ConfigurationError(f"nested must be true or false, got {options['nested']!r}")
    return "offline"


def find_events(reasoner: Any, transcript: Transcript, **options: Any) -> Events:
    """The events of ``transcript`` with ``reasoner``: its own ``events()`` if it has one, else through its
    ``chat`` callable (:func:`run_events`) for a chat reasoner, else :func:`offline_events` with its sentence
    encoder for a similarity reasoner. ``options`` are that path's settings (:func:`events_path`)."""
    check_transcript(transcript)
    path = events_path(reasoner, options)
    if path == "own":
        return reasoner.events(transcript, **options)
    name = getattr(reasoner, "name", type(reasoner).__name__)
    if path == "chat":
        model = getattr(reasoner, "model_name", None)  # a local model's name is its backend's plus its path
        if isinstance(model, str) and ":" not in name:
            name = f"{name}:{model}"
        # an OpenAI-compatible server negotiates the response_format ladder; the local models answer in text
        formats = getattr(reasoner, "response_formats", None) if hasattr(reasoner, "refused_formats") else None
        settings = reasoner.settings() if callable(getattr(reasoner, "settings", None)) else {}
        return run_events(reasoner.chat, transcript, reasoner_name=name,
                          max_attempts=getattr(reasoner, "max_attempts", 3), response_formats=formats or ("text",),
                          refused=getattr(reasoner, "refused_formats", None),
                          time_style=getattr(reasoner, "time_style", "seconds"), settings=settings,
                          fallback=getattr(reasoner, "fallback", None), **options)
    return offline_events(reasoner.encoder, transcript, reasoner_name=name, **options)


def _check_options(options: dict[str, Any], valid: Sequence[str], path: str) -> None:
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigurationError(f"unknown events option(s) {', '.join(unknown)} for the {path} path; "
                                 f"valid: {', '.join(valid)}")


__all__ = ["CHUNK_ENTRIES", "FORM", "MAX_EVENTS", "MIN_EVENT_SECONDS", "MIN_NOVELTY", "THRESHOLD", "WINDOW_SECONDS",
           "build_events_messages", "check_transcript", "reply_form", "chunks", "fitting_chunk_entries", "events_prompt_hashes", "events_response_format",
           "events_path", "events_schema", "find_events", "novelty", "offline_events", "parse_events", "pick_boundaries",
           "run_events", "reask_events_messages", "SpanTooLongError"]
