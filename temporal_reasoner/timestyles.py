"""How times are written in a transcript and read back from a reasoner's reply.

A time style is named by a short spec string, the one value the API, the CLI and run settings carry:

* ``seconds`` (default): ``[12.0-15.0]``; the reply is in seconds.
* ``mmss``: ``[00:12.0-00:15.0]``; the reply is in seconds (clock strings are read too).
* ``frames`` or ``frames:FPS``: frame numbers at ``FPS`` frames per second (default: the transcript's
  sampling rate, so the numbers count the sampled frames). A span shows the numbers of its first and
  last frames, ``[24-30]`` (a frame at ``t`` is number ``round(FPS * t)``); as in the transcript, frame
  ``k`` holds over the part of the video nearer to it than to its neighbours, so a replied start ``k`` is
  ``(k - 1/2) / FPS`` seconds and a replied end ``k`` is ``(k + 1/2) / FPS``, within ``[0, D]`` (the last
  frame's end is ``D``): the reply ``[24, 30]`` is exactly the span the line ``[24-30]`` covers.
  Without ``FPS``, the sampling rate is used only where the frames were sampled on a regular grid (every gap
  between two frames a whole number of sampling steps): on a variable-frame-rate transcript (a scene-cut
  sampler, captions of uneven clips) the median step gives several frames one number and states a rate
  that is false. There the numbers count the sampled frames in order, ``0`` to ``N - 1``, the prompt's
  note lists each frame's time, and a replied ``k`` is the span of that frame in the transcript (from
  halfway after the frame before to halfway before the next). A reasoner decoding replies with only the
  duration and step (:func:`~temporal_reasoner.parsing.parse_reply_detailed`) is given the format
  :meth:`TimeFormat.bound` to its transcript.
* ``tokens`` or ``tokens:M``: Grounded-VideoLLM's discrete relative time tokens ``<0>``..``<M>``
  (``M`` = 300 by default): a time ``t`` in a video of ``D`` seconds is ``min(int(M * t / D), M)``
  and a replied ``k`` is ``D * k / M`` seconds, so the vocabulary is the same for every length.

The indexed styles (``frames``, ``tokens``) are answered in their own units - whole numbers, as in the
transcript - and decoded here, exactly; a number that is not a whole number, or a token past ``<M>``,
is a :class:`~temporal_reasoner.parsing.ReplyError` that the reasoner shows to the model and re-asks.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

from vidground.errors import ConfigurationError
from vidground.types import format_time

#: A :class:`~temporal_reasoner.transcript.Transcript` (not imported: it renders through this module).
Transcript = Any

STYLES = ("seconds", "mmss", "frames", "tokens")
#: Grounded-VideoLLM's number of relative time tokens.
DEFAULT_TOKENS = 300
#: Float error tolerated when a time is cut to a token (0.3 s of 0.9 s with M = 3 is token 1, not 0).
_EPS = 1e-9
#: How far from a whole number of sampling steps a gap between two frames may be on a regular grid.
_GRID_TOLERANCE = 0.1
_TOKEN = re.compile(r"<\s*([+-]?\d+(?:\.\d*)?)\s*>|([+-]?\d+(?:\.\d*)?)")


class ReplyValueError(ValueError):
    """A replied time that cannot be decoded; the parser turns it into a ``ReplyError``."""


@dataclass(frozen=True)
class TimeFormat:
    """A parsed time style (see the module); build one with :meth:`parse`."""

    style: str = "seconds"
    tokens: int | None = None  # M, for ``tokens``
    fps: float | None = None  # for ``frames``; None: the transcript's sampling rate
    #: for ``frames`` without FPS on an irregular transcript (:meth:`bound`): each sampled frame's (time, start, end)
    frames: tuple[tuple[float, float, float], ...] | None = dataclasses.field(default=None, compare=False,
                                                                               repr=False)

    @classmethod
    def parse(cls, spec: "str | TimeFormat | None") -> "TimeFormat":
        """``"seconds"``, ``"mmss"``, ``"frames"``, ``"frames:25"``, ``"tokens"``, ``"tokens:100"``."""
        if isinstance(spec, TimeFormat):
            return spec
        if spec is None:
            return cls()
        if not isinstance(spec, str):
            raise ConfigurationError(f"a time style is a string such as 'seconds' or 'tokens:300', got {spec!r}")
        name, _, arg = spec.strip().partition(":")
        if name not in STYLES:
            raise ConfigurationError(f"unknown time style {spec!r}; choose one of: seconds, mmss, frames[:FPS], "
                                     f"tokens[:M]")
        if name in ("seconds", "mmss"):
            if arg:
                raise ConfigurationError(f"time style {name!r} takes no parameter, got {spec!r}")
            return cls(name)
        if name == "tokens":
            if not arg:
                return cls("tokens", tokens=DEFAULT_TOKENS)
            if not re.fullmatch(r"\d+", arg) or int(arg) < 1:
                raise ConfigurationError(f"time style {spec!r}: M (the number of time tokens) must be a whole "
                                         f"number of at least 1, got {arg!r}")
            return cls("tokens", tokens=int(arg))
        if not arg:
            return cls("frames")
        try:
            fps = float(arg)
        except ValueError:
            fps = math.nan
        if not (math.isfinite(fps) and fps > 0):
            raise ConfigurationError(f"time style {spec!r}: FPS must be a positive number of frames per second, "
                                     f"got {arg!r}")
        return cls("frames", fps=fps)

    @property
    def spec(self) -> str:
        """The canonical spec string (``tokens`` -> ``tokens:300``), as run settings record it."""
        if self.style == "tokens":
            return f"tokens:{self.tokens}"
        if self.style == "frames" and self.fps is not None:
            return f"frames:{self.fps:g}"
        return self.style

    @property
    def indexed(self) -> bool:
        """Whether replies are whole numbers in the style's own units (frames, tokens), not seconds."""
        return self.style in ("frames", "tokens")

    # --- encoding ---------------------------------------------------------------------------------

    def frame_rate(self, transcript: "Transcript") -> float | None:
        """The frames per second the numbers count: ``FPS``, else the transcript's sampling rate where its frames
        lie on a regular grid; None where they do not (the numbers then count the sampled frames in order)."""
        if self.fps is not None:
            return self.fps
        grid = self._grid(transcript)
        return grid if isinstance(grid, float) else None

    def bound(self, transcript: "Transcript") -> "TimeFormat":
        """This format with what :meth:`decode` needs of ``transcript`` when it is given only a duration and a
        step: for ``frames`` without FPS on an irregular transcript, the sampled frames' spans."""
        if self.style != "frames" or self.fps is not None:
            return self
        grid = self._grid(transcript)
        return self if isinstance(grid, float) else dataclasses.replace(self, frames=grid)

    def _grid(self, transcript: "Transcript") -> "float | tuple[tuple[float, float, float], ...]":
        """The sampling rate (a float) for a regular transcript, else each sampled frame's (time, start, end)."""
        return transcript.derived(("timestyles.grid", _GRID_TOLERANCE), lambda: _frame_grid(transcript))

    def token(self, t: float, duration: float) -> int:
        """``min(int(M * t / D), M)``; ``M`` for a video of no length."""
        m = self.tokens or DEFAULT_TOKENS
        if duration <= 0:
            return m
        return min(int(m * max(t, 0.0) / duration + _EPS), m)

    def frame(self, t: float, fps: float) -> int:
        return int(math.floor(t * fps + 0.5 + _EPS))

    def render(self, transcript: "Transcript") -> str:
        """The transcript, one ``[first-last] text`` line per span, in this style."""
        if self.style in ("seconds", "mmss"):
            return "\n".join(f"[{format_time(e.start, self.style)}-{format_time(e.end, self.style)}] {e.text}"
                             for e in transcript.entries)
        if self.style == "tokens":
            d = transcript.duration
            return "\n".join(f"[<{self.token(e.start, d)}>-<{self.token(e.end, d)}>] {e.text}"
                             for e in transcript.entries)
        fps = self.frame_rate(transcript)
        lines, n = [], 0  # n: the sampled frames before this span (irregular: the numbers count them)
        for e in transcript.entries:
            if fps is None:
                last_n = n + max(len(e.times), 1) - 1
                lines.append(f"[{n}-{last_n}] {e.text}")
                n = last_n + 1
                continue
            first, last = (e.times[0], e.times[-1]) if e.times else (e.start, e.end)
            lines.append(f"[{self.frame(first, fps)}-{self.frame(last, fps)}] {e.text}")
        return "\n".join(lines)

    # --- the prompt ---------------------------------------------------------------------------------

    def last(self, transcript: "Transcript") -> int | float:
        """The largest value a reply may give: the duration, the last frame's number, or ``M``."""
        if self.style == "tokens":
            return self.tokens or DEFAULT_TOKENS
        if self.style == "frames":
            fps = self.frame_rate(transcript)
            return self.frame(transcript.duration, fps) if fps is not None else len(_frame_spans(transcript)) - 1
        return transcript.duration

    def note(self, transcript: "Transcript") -> str:
        """The prompt's line saying how the transcript's times are written and how to answer."""
        if self.style == "seconds":
            return "Times in the transcript are seconds."
        if self.style == "mmss":
            return "Times in the transcript are minutes:seconds (01:30.0 is 90 seconds); answer in seconds."
        if self.style == "tokens":
            m = self.tokens
            return (f"Times in the transcript are relative time tokens: the video is cut into {m} equal parts and "
                    f"<k> is the moment k/{m} of the way through (<0> is the start, <{m}> the end). Answer "
                    f"with the token numbers as whole numbers (<45> is 45), from 0 to {m}.")
        fps = self.frame_rate(transcript)
        if fps is None:  # a variable frame rate: no rate is true of every frame, so each frame's time is given
            at = ", ".join(f"{k} at {_seconds(t)} s" for k, (t, _, _) in enumerate(_frame_spans(transcript)))
            return (f"Times in the transcript are frame numbers: the sampled frames counted in order, which are not "
                    f"evenly spaced (frame {at}); each line gives its first and last frame. Answer with "
                    f"frame numbers as whole numbers, from 0 to {self.last(transcript)}.")
        rate = (f"{fps:g} frames per second (frame k is at k/{fps:g} seconds)" if fps >= 1
                else f"one frame every {1 / fps:g} seconds (frame k is at {1 / fps:g} x k seconds)")
        return (f"Times in the transcript are frame numbers, {rate}; each line gives its first and last frame. "
                f"Answer with frame numbers as whole numbers, from 0 to {self.last(transcript)}.")

    def units(self) -> tuple[str, str]:
        """(one unit, the plural) as the prompts name them."""
        return {"tokens": ("time token", "time tokens"), "frames": ("frame number", "frame numbers")}.get(
            self.style, ("seconds", "seconds"))

    def meaning(self) -> str:
        """What ``start`` and ``end`` are, for the reply schema's descriptions."""
        if self.style == "tokens":
            return f"time token number k of <k>, 0 to {self.tokens}, as in the transcript"
        if self.style == "frames":
            return "frame number, as in the transcript"
        return "seconds from the start of the video"

    # --- decoding -----------------------------------------------------------------------------------

    def decode(self, value: Any, transcript_or_duration: "Transcript | float", step: float | None = None, *,
               end: bool = False) -> Any:
        """A replied ``start`` (``end=False``) or ``end`` in seconds (indexed styles); other styles' values
        pass through.

        Raises :class:`ReplyValueError` with a message for the model when the value is not a whole
        number in range (a ``<k>`` string or a numeric string is read as its number).
        """
        if not self.indexed:
            return value
        spans: tuple[tuple[float, float, float], ...] | None = None
        if isinstance(transcript_or_duration, (int, float)):
            duration, fps = float(transcript_or_duration), self.fps or (1.0 / step if step else 1.0)
            if self.style == "frames" and self.fps is None and self.frames is not None:
                spans = self.frames
        else:
            duration, rate = transcript_or_duration.duration, self.frame_rate(transcript_or_duration)
            fps = rate or 1.0
            if self.style == "frames" and rate is None:
                spans = _frame_spans(transcript_or_duration)
        what = "time token" if self.style == "tokens" else "frame number"
        k: Any = value
        if isinstance(value, str):
            m = _TOKEN.fullmatch(value.strip())
            if not m:
                raise ReplyValueError(f"the string {value!r} is not a {what}; give whole numbers as in the transcript")
            k = float(m[1] or m[2])
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not math.isfinite(k):
            raise ReplyValueError(f"{value!r} is not a {what}; give whole numbers as in the transcript")
        if k != int(k):
            raise ReplyValueError(f"{value!r} is not a whole number; {what}s are whole numbers as in the transcript")
        k = int(k)
        if self.style == "tokens":
            m_tokens = self.tokens or DEFAULT_TOKENS
            if not 0 <= k <= m_tokens:
                raise ReplyValueError(f"there is no time token <{k}>: tokens run from <0> to <{m_tokens}>")
            return duration * k / m_tokens
        if spans is not None:  # numbers that count the sampled frames: frame k's span in the transcript
            if not 0 <= k < len(spans):
                raise ReplyValueError(f"there is no frame {k}: frames run from 0 to {len(spans) - 1}")
            return spans[k][2] if end else spans[k][1]
        last = self.frame(duration, fps)
        if not 0 <= k <= last:
            raise ReplyValueError(f"there is no frame {k}: frames run from 0 to {last}")
        if end and (k + 1) / fps >= duration:  # the last frame holds until the end, as in the transcript
            return duration
        return min(max((k + (0.5 if end else -0.5)) / fps, 0.0), duration)


def _seconds(t: float) -> str:
    return f"{round(t, 3):g}"


def _frame_spans(transcript: "Transcript") -> tuple[tuple[float, float, float], ...]:
    """Each sampled frame of ``transcript`` in order: (its time, where its span starts, where it ends), the span
    being the part of its transcript span nearer to it than to the frames beside it (a span without ``times`` is
    one frame, at its start)."""
    out = []
    for e in transcript.entries:
        times = list(e.times) or [e.start]
        for i, t in enumerate(times):
            lo = e.start if i == 0 else (times[i - 1] + t) / 2
            hi = e.end if i == len(times) - 1 else (t + times[i + 1]) / 2
            out.append((float(t), float(lo), float(hi)))
    return tuple(out)


def _frame_grid(transcript: "Transcript") -> "float | tuple[tuple[float, float, float], ...]":
    """``1 / step`` where every gap between two sampled frames is a whole number (at least one) of sampling steps,
    within :data:`_GRID_TOLERANCE` of a step (frame numbers at that rate are then distinct and as true as the
    grid); else the frames' spans (:func:`_frame_spans`), for numbers that count the frames."""
    spans = _frame_spans(transcript)
    step = transcript.step
    for (a, _, _), (b, _, _) in zip(spans, spans[1:]):
        steps = (b - a) / step
        if round(steps) < 1 or abs(steps - round(steps)) > _GRID_TOLERANCE:
            return spans
    return 1.0 / step


__all__ = ["DEFAULT_TOKENS", "STYLES", "ReplyValueError", "TimeFormat"]
