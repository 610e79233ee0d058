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
* ``tokens`` or ``tokens:M``: Grounded-VideoLLM's discrete relative time tokens ``<0>``..``<M>``
  (``M`` = 300 by default): a time ``t`` in a video of ``D`` seconds is ``min(int(M * t / D), M)``
  and a replied ``k`` is ``D * k / M`` seconds, so the vocabulary is the same for every length.

The indexed styles (``frames``, ``tokens``) are answered in their own units - whole numbers, as in the
transcript - and decoded here, exactly; a number that is not a whole number, or a token past ``<M>``,
is a :class:`~temporal_reasoner.parsing.ReplyError` that the reasoner shows to the model and re-asks.
"""

from __future__ import annotations

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
_TOKEN = re.compile(r"<\s*([+-]?\d+(?:\.\d*)?)\s*>|([+-]?\d+(?:\.\d*)?)")


class ReplyValueError(ValueError):
    """A replied time that cannot be decoded; the parser turns it into a ``ReplyError``."""


@dataclass(frozen=True)
class TimeFormat:
    """A parsed time style (see the module); build one with :meth:`parse`."""

    style: str = "seconds"
    tokens: int | None = None  # M, for ``tokens``
    fps: float | None = None  # for ``frames``; None: the transcript's sampling rate

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

    def frame_rate(self, transcript: "Transcript") -> float:
        return self.fps if self.fps is not None else 1.0 / transcript.step

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
        lines = []
        for e in transcript.entries:
            first, last = (e.times[0], e.times[-1]) if e.times else (e.start, e.end)
            lines.append(f"[{self.frame(first, fps)}-{self.frame(last, fps)}] {e.text}")
        return "\n".join(lines)

    # --- the prompt ---------------------------------------------------------------------------------

    def last(self, transcript: "Transcript") -> int | float:
        """The largest value a reply may give: the duration, the last frame's number, or ``M``."""
        if self.style == "tokens":
            return self.tokens or DEFAULT_TOKENS
        if self.style == "frames":
            return self.frame(transcript.duration, self.frame_rate(transcript))
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
        if isinstance(transcript_or_duration, (int, float)):
            duration, fps = float(transcript_or_duration), self.fps or (1.0 / step if step else 1.0)
        else:
            duration, fps = transcript_or_duration.duration, self.frame_rate(transcript_or_duration)
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
        last = self.frame(duration, fps)
        if not 0 <= k <= last:
            raise ReplyValueError(f"there is no frame {k}: frames run from 0 to {last}")
        if end and (k + 1) / fps >= duration:  # the last frame holds until the end, as in the transcript
            return duration
        return min(max((k + (0.5 if end else -0.5)) / fps, 0.0), duration)


__all__ = ["DEFAULT_TOKENS", "STYLES", "ReplyValueError", "TimeFormat"]
