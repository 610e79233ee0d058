"""Build a timestamped transcript from frame descriptions and render it for a reasoner."""

from __future__ import annotations

import statistics
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vidground.errors import InputError
from vidground.types import FrameDescription

from vidground.types import TimeStyle, TranscriptEntry, format_time

from .timestyles import TimeFormat


T = TypeVar("T")


#: values computed from a transcript (its entries' texts, sample times...), kept so a repeat query does not
#: redo them: ``id(transcript) -> (weak reference to it, {key: value})``. Kept outside the model, so
#: copies, pickles and equality never see it; an entry is dropped when its transcript is freed (the
#: reference's callback), and the reference must still point at the very transcript asking, so an object
#: that later lands at a freed transcript's address never reads its values.
_DERIVED: dict[int, tuple[weakref.ReferenceType[Any], dict[Any, Any]]] = {}


def _forget(key: int) -> Callable[[weakref.ReferenceType[Any]], None]:
    def forget(ref: weakref.ReferenceType[Any]) -> None:
        slot = _DERIVED.get(key)
        if slot is not None and slot[0] is ref:  # not a newer transcript's entry under the same id
            _DERIVED.pop(key, None)
    return forget


def infer_step(times: Sequence[float]) -> float:
    """The sampling step: the median gap between consecutive times (1.0 for a single frame)."""
    gaps = [b - a for a, b in zip(times, times[1:]) if b > a]
    return float(statistics.median(gaps)) if gaps else 1.0


class Transcript(BaseModel):
    """Timestamped description spans covering the video.

    A frame's description is about the instant the frame was sampled, so each description holds
    over the part of the video nearer to its frame than to any other: from halfway after the
    previous frame to halfway before the next (the first span starts at 0 and the last ends at the
    duration). Consecutive identical texts are merged into one span (``merge=True``), which
    shortens what a reasoner reads without losing any information; every span keeps the instants
    of its frames in ``times``. Every reasoner thus reads the same convention: a frame at 3 s and
    the next at 4 s meet at 3.5 s.

    A transcript is not changed once built: its fields cannot be assigned and ``entries`` is a tuple
    (a list given is taken as a tuple, also by ``model_copy(update=...)``), so what a query computed
    from it once (:meth:`derived`) stays true. Make a changed transcript with ``model_copy(update=...)``
    or a new one. Its entries are frozen too (:class:`~vidground.types.TranscriptEntry`: a field cannot be
    assigned and ``times`` is a tuple); a changed entry is a new one (``entry.model_copy(update=...)``).
    """

    model_config = ConfigDict(frozen=True)

    duration: float = Field(ge=0, allow_inf_nan=False)
    step: float = Field(gt=0, allow_inf_nan=False)
    duration_inferred: bool = False
    entries: tuple[TranscriptEntry, ...]

    def derived(self, key: Any, compute: Callable[[], T]) -> T:
        """``compute()``, once per transcript and ``key``: a repeat query reuses what the first computed.

        Held for this very object (checked by identity through a weak reference, dropped when it is
        freed); a copy, an unpickled or a ``model_copy(update=...)`` transcript computes its own."""
        slot = _DERIVED.get(id(self))
        if slot is None or slot[0]() is not self:
            slot = (weakref.ref(self, _forget(id(self))), {})
            _DERIVED[id(self)] = slot
        values = slot[1]
        if key not in values:
            values[key] = compute()
        return values[key]

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> "Transcript":
        """Pydantic's copy (no validation), with replacement ``entries`` taken as a tuple as validation
        would, so a copy cannot be changed in place either."""
        if update is not None and "entries" in update and not isinstance(update["entries"], tuple):
            update = {**update, "entries": tuple(update["entries"])}
        return super().model_copy(update=update, deep=deep)

    @model_validator(mode="after")
    def _check(self) -> "Transcript":
        if not self.entries:
            raise ValueError("a transcript needs at least one entry")
        return self

    @classmethod
    def from_descriptions(
        cls,
        descriptions: Sequence[FrameDescription],
        *,
        duration: float | None = None,
        step: float | None = None,
        merge: bool = True,
    ) -> "Transcript":
        if not descriptions:
            raise InputError("no frame descriptions to build a transcript from")
        descs = sorted(descriptions, key=lambda d: d.t)
        times = [d.t for d in descs]
        step = step if step is not None else infer_step(times)
        inferred = duration is None
        if duration is None:
            duration = times[-1] + step
        if duration < times[-1]:
            raise InputError(
                f"duration {duration:g}s is shorter than the last description's time {times[-1]:g}s"
            )
        entries: list[TranscriptEntry] = []
        first = 0  # the first frame of the run of identical texts that frame i ends (merge=True)
        for i, d in enumerate(descs):
            if merge and i + 1 < len(descs) and descs[i + 1].text == d.text:
                continue
            start = 0.0 if first == 0 else (times[first - 1] + times[first]) / 2
            end = float(duration) if i + 1 == len(descs) else (d.t + times[i + 1]) / 2
            entries.append(TranscriptEntry(start=start, end=end, text=d.text, times=tuple(times[first:i + 1])))
            first = i + 1
        return cls(duration=float(duration), step=float(step), duration_inferred=inferred, entries=entries)

    def render(self, style: TimeStyle = "seconds") -> str:
        """One line per span: ``[12.0-15.0] text`` (or ``[00:12.0-00:15.0] text`` in mm:ss style; the
        other styles, frame numbers and ``<k>`` tokens, are :mod:`temporal_reasoner.timestyles`')."""
        if style in ("seconds", "mmss"):
            return "\n".join(
                f"[{format_time(e.start, style)}-{format_time(e.end, style)}] {e.text}" for e in self.entries
            )
        return TimeFormat.parse(style).render(self)

    def __len__(self) -> int:
        return len(self.entries)
