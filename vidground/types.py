"""vidground's data model: frames, descriptions, transcript entries, intervals, results and usage."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import ConfigurationError


#: Frames are resized so their longest side is at most this many pixels unless told otherwise.
DEFAULT_MAX_SIDE = 512
#: frames per second sampled when neither a rate nor a count is given
DEFAULT_FPS = 1.0
#: What the motion stream (``frame_describer.motion``) writes before its summary in a description, and the ``cv``
#: describer before its measured motion sentence; the embedding reasoner reads directions from there on
#: (``temporal_reasoner.polarity``). Here because both stages need it and neither imports the other.
MOTION_MARK = "Motion:"
#: the latest time (seconds) a video, a description or a duration may have: about 115 days, past any real
#: video; a larger value is a unit mistake (milliseconds, Unix time) or hostile, and is refused
MAX_SECONDS = 1e7


def check_seconds(value: float, what: str = "time") -> float:
    """``value`` unless it is past :data:`MAX_SECONDS` (a ``ValueError`` saying why: pydantic validators
    and the callers that wrap it turn it into a typed error)."""
    if value > MAX_SECONDS:
        raise ValueError(f"{what} {value:g} s is past any video's length (limit {MAX_SECONDS:g} s, about 115 "
                         "days): give seconds from the start of the video, not milliseconds or Unix time")
    return value

class Usage(BaseModel):
    """Tokens and requests spent; add two with ``+``."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    image_tokens: int = 0
    cached: int = 0  # items answered from a cache, not a model
    cost_usd: float | None = None
    #: requests sent again after a transport fault (429, 5xx, a timeout, a dropped connection): the server
    #: received ``requests + retried``, and a provider may bill failed requests too (left out of JSON when 0)
    retried: int = Field(default=0, exclude_if=lambda v: v == 0)
    #: of the ``requests``, those to a model without a price that ``cost_usd`` leaves out, where a sum mixes
    #: priced and unpriced ones (a priced primary, an unpriced fallback); with no cost, all are (not in JSON when 0)
    unpriced: int = Field(default=0, exclude_if=lambda v: v == 0)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def unpriced_requests(self) -> int:
        """The requests ``cost_usd`` leaves out: all of them without a cost."""
        return self.requests if self.cost_usd is None else self.unpriced

    def __add__(self, other: "Usage") -> "Usage":
        if not isinstance(other, Usage):
            return NotImplemented
        cost = None
        if self.cost_usd is not None or other.cost_usd is not None:
            cost = (self.cost_usd or 0.0) + (other.cost_usd or 0.0)
        return Usage(
            requests=self.requests + other.requests,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            image_tokens=self.image_tokens + other.image_tokens,
            cached=self.cached + other.cached,
            cost_usd=cost,
            retried=self.retried + other.retried,
            unpriced=0 if cost is None else self.unpriced_requests + other.unpriced_requests,
        )

    def is_empty(self) -> bool:
        return self == Usage()


class Sampling(BaseModel):
    """How frames are taken from a video, one object for the API, the CLI and runs.

    By rate (``fps``; 1 per second when neither is given) or by count (``num_frames`` evenly spaced);
    ``max_frames`` caps the count (the rate is lowered to fit); frames are resized so their longest side
    is at most ``max_side`` pixels (``None`` keeps the decoded size). Invalid values are a
    :class:`~vidground.errors.ConfigurationError` when the object is built (:meth:`of`), before any
    video is opened or model loaded.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    fps: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    num_frames: int | None = Field(default=None, ge=1)
    max_frames: int | None = Field(default=None, ge=1)
    max_side: int | None = Field(default=DEFAULT_MAX_SIDE, ge=16)

    @model_validator(mode="after")
    def _one_way(self) -> "Sampling":
        if self.fps is not None and self.num_frames is not None:
            raise ValueError("give either fps (sample by rate; --fps) or num_frames (sample by count; --num-frames), "
                             "not both")
        return self

    @classmethod
    def of(cls, value: "Sampling | dict[str, Any] | None" = None, **settings: Any) -> "Sampling":
        """A checked :class:`Sampling` from an instance, a dict and/or keyword settings (later ones win)."""
        if isinstance(value, Sampling) and not settings:
            return value
        merged = {**(value.model_dump() if isinstance(value, Sampling) else dict(value or {})), **settings}
        try:
            return cls.model_validate(merged, strict=True)  # no True for 1, "2" for 2.0 or 512.0 for 512
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            errors = getattr(exc, "errors", lambda: [])()
            if errors:
                first = errors[0]
                where = ".".join(str(x) for x in first.get("loc", ())) or "sampling"
                got = f", got {first['input']!r}" if where != "sampling" and "input" in first else ""
                message = f"{where}: {first.get('msg', exc)}{got}"
            else:
                message = str(exc)
            raise ConfigurationError(message.replace("Value error, ", "")) from None


class Frame(BaseModel):
    """One decoded frame.

    ``t`` is the frame's real presentation time in seconds (not ``index / fps``);
    ``index`` is its position among the *sampled* frames; ``source_index`` its position
    in the decoded stream. ``image`` is an RGB ``uint8`` array of shape (H, W, 3), already
    rotated upright and resized to the sampler's bound.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    t: float = Field(ge=0)
    index: int = Field(ge=0)
    image: np.ndarray = Field(repr=False, exclude=True)
    source_index: int | None = None

    @field_validator("image")
    @classmethod
    def _check_image(cls, v: np.ndarray) -> np.ndarray:
        if not isinstance(v, np.ndarray) or v.ndim != 3 or v.shape[2] != 3 or v.dtype != np.uint8:
            raise ValueError("image must be an RGB uint8 array of shape (H, W, 3)")
        return v

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.image.shape[1]), int(self.image.shape[0])


class FrameDescription(BaseModel):
    """What a describer wrote about the frame at time ``t`` (seconds).

    Extra keys (a describer's metadata, a user's own fields) are allowed and kept, so a
    descriptions file round-trips unchanged.
    """

    model_config = ConfigDict(extra="allow")

    t: float = Field(ge=0, allow_inf_nan=False)
    text: str
    usage: Usage | None = Field(default=None, exclude_if=lambda v: v is None)

    @field_validator("text")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.strip()

    @field_validator("t")
    @classmethod
    def _plausible(cls, v: float) -> float:
        return check_seconds(v)


def jsonable(value: Any) -> Any:
    """Convert numpy scalars and arrays into plain JSON types."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


#: How a transcript writes times: "seconds", "mmss", "frames[:FPS]" or "tokens[:M]" (relative ``<k>``
#: tokens); parsed and checked by ``temporal_reasoner.timestyles.TimeFormat``.
TimeStyle = str


class TranscriptEntry(BaseModel):
    """A span ``[start, end)`` of the video over which the description ``text`` holds.

    ``times`` are the instants of the frames whose description this is (several after identical
    consecutive descriptions were merged); the span is the part of the video nearer to those
    frames than to any other.

    An entry is not changed once built, like the transcript holding it, whose computed values
    (``Transcript.derived``) would otherwise go stale: assigning a field raises pydantic's
    ``ValidationError`` ("Instance is frozen"; a ``ValueError``), and ``times`` is a tuple (a list
    given is taken as a tuple, also by ``model_copy(update=...)``; JSON still writes a list). Make a
    changed entry with ``model_copy(update=...)`` or a new one.
    """

    model_config = ConfigDict(frozen=True)

    start: float = Field(ge=0, allow_inf_nan=False)
    end: float = Field(ge=0, allow_inf_nan=False)
    text: str
    times: tuple[float, ...] = Field(default_factory=tuple, exclude_if=lambda v: not v)

    @model_validator(mode="after")
    def _order(self) -> "TranscriptEntry":
        if self.end < self.start:
            raise ValueError(f"entry end {self.end} is before its start {self.start}")
        return self

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> "TranscriptEntry":
        """Pydantic's copy (no validation), with replacement ``times`` taken as a tuple as validation
        would, so a copy cannot be changed in place either."""
        if update is not None and "times" in update and not isinstance(update["times"], tuple):
            update = {**update, "times": tuple(update["times"])}
        return super().model_copy(update=update, deep=deep)


class Interval(BaseModel):
    """A predicted moment in seconds. ``score`` is the reasoner's confidence (higher is better).

    Accepts the common ``[start, end, score]`` list form as input; ``as_list()`` gives it back, and
    it unpacks like that list: ``start, end, score = interval`` (``interval[0]`` is the start).
    Pydantic's default iteration would yield ``(field name, value)`` pairs, which unpack without an
    error into nonsense. ``dict(interval)`` still gives the field mapping, as for any pydantic model
    (``keys()`` and ``interval["start"]``), and ``np.asarray(intervals)`` an ``(n, 3)`` array.
    """

    model_config = ConfigDict(frozen=True)

    start: float = Field(ge=0, allow_inf_nan=False)
    end: float = Field(ge=0, allow_inf_nan=False)
    score: float | None = Field(default=None, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, data: Any) -> Any:
        if isinstance(data, (list, tuple)):
            if len(data) not in (2, 3):
                raise ValueError("an interval list must be [start, end] or [start, end, score]")
            return dict(zip(("start", "end", "score"), data))
        return data

    @model_validator(mode="after")
    def _order(self) -> "Interval":
        if not self.end > self.start:
            raise ValueError(f"interval end {self.end} must be after its start {self.start}")
        return self

    def __iter__(self) -> Iterator[float | None]:  # type: ignore[override]
        return iter((self.start, self.end, self.score))

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: int | slice | str) -> Any:
        if isinstance(index, str):  # dict(interval) asks for each of keys()
            if index not in type(self).model_fields:
                raise KeyError(index)
            return getattr(self, index)
        return (self.start, self.end, self.score)[index]

    def keys(self) -> tuple[str, ...]:
        """The field names, so that ``dict(interval)`` is ``{"start": ..., "end": ..., "score": ...}``."""
        return tuple(type(self).model_fields)

    @property
    def length(self) -> float:
        return self.end - self.start

    def as_list(self) -> list[float | None]:
        return [self.start, self.end, self.score]

    def iou(self, other: "Interval | tuple[float, float]") -> float:
        s, e = (other.start, other.end) if isinstance(other, Interval) else other
        inter = max(0.0, min(self.end, e) - max(self.start, s))
        union = max(self.end, e) - min(self.start, s)
        return inter / union if union > 0 else 0.0


class _StageUsage:
    """What every result shares: ``usage`` per stage, and its total."""

    @property
    def total_usage(self) -> Usage:
        return sum(self.usage.values(), Usage())


class _Spans(_StageUsage):
    """What a grounding result and an answer share (both have ``intervals``, best first, and ``usage``
    per stage)."""

    @property
    def best(self) -> Interval | None:
        return self.intervals[0] if self.intervals else None


class GroundingResult(_Spans, BaseModel):
    """The answer to one query on one video.

    ``intervals`` are best first. ``duration_inferred`` is true when the duration was not
    given and was inferred from the descriptions (last time plus the sampling step).
    ``usage`` is keyed by stage (``"describe"``, ``"reason"``); ``timings`` by step, in seconds.
    ``curve`` is the reasoner's score over time as ``[t, score]`` pairs, where it has one.
    ``raw`` is the reasoner's raw output (text or JSON) for inspection.
    """

    query: str
    duration: float = Field(ge=0, allow_inf_nan=False)
    duration_inferred: bool = False
    intervals: list[Interval] = Field(default_factory=list)
    video: str | None = None
    describer: str | None = None
    reasoner: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    usage: dict[str, Usage] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)
    curve: list[tuple[float, float]] | None = None
    warnings: list[str] = Field(default_factory=list)
    raw: Any = None


class Answer(_Spans, BaseModel):
    """The answer to one question about one video, and when in the video it is supported.

    ``answer`` is the answer's text: one of ``choices`` when choices were given (``choice`` is then its
    index), else free text (``choice`` is ``None``). ``intervals`` are the spans that support it, best
    first, with scores; ``choice_scores`` the answerer's score of each choice, where it has them.
    ``usage`` is keyed by stage (``"describe"``, ``"reason"``), as in :class:`GroundingResult`;
    ``reasoner`` names what answered (the offline path says it is a baseline) and ``settings`` how.
    """

    question: str
    answer: str
    choice: int | None = None
    choices: list[str] | None = None
    choice_scores: list[float] | None = None
    intervals: list[Interval] = Field(default_factory=list)
    duration: float = Field(ge=0, allow_inf_nan=False)
    duration_inferred: bool = False
    video: str | None = None
    describer: str | None = None
    reasoner: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    usage: dict[str, Usage] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    raw: Any = None


class Event(Interval):
    """One event of a video: ``[start, end)`` in seconds, what happens then (``caption``) and the
    detector's confidence (``score``, higher is better). Serialises like :class:`Interval` plus ``caption``;
    iterating it still gives ``(start, end, score)``."""

    caption: str = Field(min_length=1)

    @field_validator("caption")
    @classmethod
    def _one_line(cls, v: str) -> str:
        text = " ".join(v.split())
        if not text:
            raise ValueError("an event needs a caption")
        return text


class Events(_StageUsage, BaseModel):
    """A video's events (dense video captioning), in order of start time; they may overlap.

    ``usage`` is keyed by stage (``"describe"``, ``"reason"``) and ``timings`` by step, as in
    :class:`GroundingResult`; ``reasoner`` names what found them and ``settings`` how.
    """

    events: list[Event] = Field(default_factory=list)
    duration: float = Field(ge=0, allow_inf_nan=False)
    duration_inferred: bool = False
    video: str | None = None
    describer: str | None = None
    reasoner: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    usage: dict[str, Usage] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    raw: Any = None

    def __len__(self) -> int:
        return len(self.events)


def result_json_schema() -> dict[str, Any]:
    """The JSON schema of a serialised :class:`GroundingResult`."""
    return GroundingResult.model_json_schema(mode="serialization")


def format_time(seconds: float, style: TimeStyle = "seconds") -> str:
    """``12.5`` -> ``"12.5"`` (seconds style) or ``"00:12.5"`` (mm:ss style)."""
    if not math.isfinite(seconds):
        raise ValueError(f"not a finite time: {seconds}")
    if style == "seconds":
        return f"{seconds:.1f}"
    if style == "mmss":
        m, s = divmod(max(0.0, seconds), 60.0)
        return f"{int(m):02d}:{s:04.1f}"
    raise ValueError(f"unknown time style {style!r}; choose 'seconds' or 'mmss'")
