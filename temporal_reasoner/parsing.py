"""The intervals reply: its JSON schema and a robust parser that applies vidground's
documented validation policy. Re-exported by :mod:`temporal_reasoner.structured`.

Validation policy (what is clamped, what is rejected) - a rejected reply is re-asked with the
reason shown to the model:

* The reply must hold JSON: ``{"intervals": [...]}``, a bare list of intervals, or one interval.
  Code fences, prose around the JSON, single quotes and trailing commas are tolerated.
  An interval is ``{"start": s, "end": e, "score": c}`` (``score`` optional) or ``[s, e(, c)]``.
* Times are seconds. Numeric strings (``"12.5"``, ``"12.5s"``) are read as seconds and
  ``"mm:ss"`` / ``"h:mm:ss"`` strings are converted to seconds, each with a warning. Any other
  string, a boolean, NaN or infinity is rejected.
* Times at most ``tolerance`` (the larger of one sampling step and 2% of the duration) outside
  ``[0, duration]`` are clamped into it, with a warning. Times further outside are rejected;
  integers that fit the video once multiplied by the sampling step are named as probable
  frame numbers in the message, so the model can convert them.
* ``start > end`` (reversed) is rejected. ``start == end`` (a point answer) is widened to one
  sampling step, with a warning.
* An empty list is rejected (the query is assumed to happen). More than ``max_intervals``
  intervals are cut to the first ``max_intervals``. Scores must be finite; when every interval
  has one, intervals are sorted best first.
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonschema
from pydantic import ValidationError

from vidground.errors import ConfigurationError

from vidground.types import Interval

# --- the reply schema -------------------------------------------------------------------------

#: The schema sent as ``response_format`` (strict-mode compatible: every property required,
#: no additional properties).
INTERVALS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "intervals": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "start": {"type": "number", "description": "seconds from the start of the video"},
                    "end": {"type": "number", "description": "seconds from the start of the video"},
                    "score": {"type": "number", "description": "confidence from 0 to 1"},
                },
                "required": ["start", "end", "score"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["intervals"],
    "additionalProperties": False,
}

#: The schema a reply is validated against after normalisation (``score`` optional).
_VALIDATION_SCHEMA: dict[str, Any] = json.loads(json.dumps(INTERVALS_SCHEMA))
_VALIDATION_SCHEMA["properties"]["intervals"]["items"]["required"] = ["start", "end"]
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


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_TRAILING_COMMA = re.compile(r",\s*([\]}])")
_NUMERIC = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*(?:s|sec|secs|second|seconds)?\s*$", re.I)
_CLOCK = re.compile(r"^\s*(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)\s*$")
_PY_LITERALS = re.compile(r"\b(true|false|null)\b")


def _candidates(text: str) -> list[str]:
    """Balanced ``{...}`` / ``[...]`` spans, fenced blocks first, then the rest of the text."""
    sources = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    out: list[str] = []
    for src in sources:
        for i, ch in enumerate(src):
            if ch not in "{[":
                continue
            depth, quote, j = 0, None, i
            while j < len(src):
                c = src[j]
                if quote:
                    if c == "\\":
                        j += 1
                    elif c == quote:
                        quote = None
                elif c in "\"'":
                    quote = c
                elif c in "{[":
                    depth += 1
                elif c in "}]":
                    depth -= 1
                    if depth == 0:
                        out.append(src[i:j + 1])
                        break
                j += 1
            if out:
                break  # the first complete JSON value of this source
        if out:
            break
    return out


def _loads(span: str) -> Any:
    for attempt in (span, _TRAILING_COMMA.sub(r"\1", span)):
        try:
            return json.loads(attempt)
        except json.JSONDecodeError:
            pass
    pythonish = _PY_LITERALS.sub(lambda m: {"true": "True", "false": "False", "null": "None"}[m[1]],
                                 _TRAILING_COMMA.sub(r"\1", span))
    try:
        return ast.literal_eval(pythonish)  # single quotes
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ReplyError("the JSON in your answer is malformed") from None


def extract_json(text: str) -> Any:
    """The first JSON value in a model reply, tolerating fences, prose, single quotes, trailing commas."""
    stripped = text.strip()
    if not stripped:
        raise ReplyError("the answer was empty")
    try:
        return json.loads(stripped)
    except json.JSONDecodeError:
        pass
    spans = _candidates(stripped)
    if not spans:
        raise ReplyError("the answer holds no JSON object")
    return _loads(spans[0])


def _to_seconds(value: Any, where: str, warnings: list[str]) -> Any:
    """Numeric and clock strings become seconds; other values pass through for the schema to judge."""
    if isinstance(value, str):
        if m := _NUMERIC.match(value):
            warnings.append(f"{where}: read the string {value!r} as {float(m[1]):g} seconds")
            return float(m[1])
        if m := _CLOCK.match(value):
            secs = int(m[1] or 0) * 3600 + int(m[2]) * 60 + float(m[3])
            warnings.append(f"{where}: read the clock time {value!r} as {secs:g} seconds")
            return secs
        raise ReplyError(f"{where} is the string {value!r}; give times as numbers of seconds")
    return value


_KEYS = {"start": ("start", "start_time", "begin"), "end": ("end", "end_time", "stop")}


def _normalise(data: Any, warnings: list[str]) -> dict[str, Any]:
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


def parse_reply_detailed(text: str, *, duration: float, step: float | None = None,
                         max_intervals: int | None = None) -> ParsedReply:
    """Like :func:`parse_reply`, also returning the warnings (clamps, conversions) and the JSON."""
    if not (isinstance(duration, (int, float)) and math.isfinite(duration) and duration > 0):
        raise ConfigurationError(f"duration must be a positive number of seconds, got {duration!r}")
    warnings: list[str] = []
    data = _normalise(extract_json(text), warnings)
    problems = _schema_errors(data)
    if problems:
        raise ReplyError("; ".join(problems))
    tol = max(step or 0.0, 0.02 * duration)
    width = step if step else max(0.01 * duration, 0.1)
    intervals: list[Interval] = []
    for i, item in enumerate(data["intervals"]):
        bounds = []
        for key in ("start", "end"):
            v = float(item[key])
            if not math.isfinite(v):
                raise ReplyError(f"intervals[{i}].{key} is {v}; give a finite number of seconds")
            if v < -tol or v > duration + tol:
                hint = ""
                if step and v == int(v) and 0 <= v * step <= duration + step:
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
        try:
            intervals.append(Interval(start=start, end=end, score=None if score is None else float(score)))
        except ValidationError as exc:  # pragma: no cover - guarded above
            raise ReplyError(f"intervals[{i}]: {exc.errors()[0]['msg']}") from None
    if all(iv.score is not None for iv in intervals):
        intervals.sort(key=lambda iv: -(iv.score or 0.0))
    deduped: list[Interval] = []
    for iv in intervals:
        if iv not in deduped:
            deduped.append(iv)
    if max_intervals is not None and len(deduped) > max_intervals:
        warnings.append(f"kept the first {max_intervals} of {len(deduped)} intervals")
        deduped = deduped[:max_intervals]
    return ParsedReply(deduped, warnings, data)


def parse_reply(text: str, *, duration: float, step: float | None = None,
                max_intervals: int | None = None) -> list[Interval]:
    """Extract, validate and repair the intervals in a model reply (see the module's policy).

    Raises :class:`ReplyError` with a message meant to be shown to the model.
    """
    return parse_reply_detailed(text, duration=duration, step=step, max_intervals=max_intervals).intervals


__all__ = ["INTERVALS_SCHEMA", "RESPONSE_FORMATS", "FormatName", "ParsedReply", "ReplyError", "extract_json",
           "parse_reply", "parse_reply_detailed"]
