"""How times are written in a transcript and read back from a reasoner's reply.

A time style is named by a short spec string, the one value the API, the CLI and run settings carry:

* ``seconds`` (default): ``[12.0-15.0]``; the reply is in seconds.
* ``mmss``: ``[00:12.0-00:15.0]``; the reply is in seconds (clock strings are read too).
* ``frames`` or ``frames:FPS``: frame numbers. A span shows the numbers of its first and last sampled
  frames, ``[24-30]``, and a replied number is read back as the sampled frame it names: a start ``k`` is where
  that frame's span in the transcript starts, an end ``k`` where it ends (a frame holds over the part of the
  video nearer to it than to its neighbours, as in every transcript; several frames with one number hold
  together), so the reply ``[24, 30]`` is exactly the span the line ``[24-30]`` covers, whatever the sampling.
  The numbers are:

  - with ``FPS``, the video's own frames: a frame at ``t`` is number ``round(FPS * t)``, the numbers run from
    0 to the video's last frame, ``ceil(FPS * D) - 1``, and a number that names no sampled frame is read as
    the sampled frame whose span holds its time ``k / FPS``;
  - without ``FPS``, on a regular grid (every sampled frame within a tenth of a step of ``t0 + n x step``,
    ``t0`` the first frame's offset into its step: 0 at 1 fps, 0.25 s at 2 fps sampled mid-step, 1 s for
    2-s clip captions, 1.502 s for ``--num-frames 8`` of a 23.97-s video), the steps from ``t0``: frame ``k``
    is at ``t0 + k x step`` (the prompt says so), the numbers run from 0 to the last sampled frame's, and a
    number in a gap (frames skipped as unchanged) is read as the frame whose span holds ``t0 + k x step``.
    The step is a round rate's where it holds every frame, else the transcript's, else the one fitted to the
    frames, as samples snapped to the video's own frames have a median gap that is not their mean step (a
    29.97-fps video at 1 fps: gaps of 1.001 and 0.968 s, the transcript's step 1.001 s, the grid's 1 s);
  - without ``FPS`` elsewhere (a variable frame rate: a scene-cut sampler, captions of uneven clips,
    coarse-to-fine refinement), the sampled frames counted in order, ``0`` to ``N - 1``; the prompt's note
    lists each frame's time, as no one rate is true of every frame.

  A reasoner decoding replies with only the duration and step
  (:func:`~temporal_reasoner.parsing.parse_reply_detailed`) is given the format :meth:`TimeFormat.bound` to its
  transcript; an unbound format reads ``k`` as a frame at ``k x step`` (or ``k / FPS``) holding for one step
  around it, within ``[0, D]``.
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
    #: for ``frames``, set by :meth:`bound`: the transcript's sampled frames and their numbers, for :meth:`decode`
    frames: "_Frames | None" = dataclasses.field(default=None, compare=False, repr=False)

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
        return self._frames(transcript).rate

    def bound(self, transcript: "Transcript") -> "TimeFormat":
        """This format with what :meth:`decode` needs of ``transcript`` when it is given only a duration and a
        step: for ``frames``, the sampled frames, their numbers and spans."""
        if self.style != "frames":
            return self
        return dataclasses.replace(self, frames=self._frames(transcript))

    def _frames(self, transcript: "Transcript") -> "_Frames":
        """The sampled frames of ``transcript`` numbered in this style (computed once per transcript)."""
        return transcript.derived(("timestyles.frames", self.fps, _GRID_TOLERANCE),
                                  lambda: _Frames.of(transcript, self.fps))

    def token(self, t: float, duration: float) -> int:
        """``min(int(M * t / D), M)``; ``M`` for a video of no length."""
        m = self.tokens or DEFAULT_TOKENS
        if duration <= 0:
            return m
        return min(int(m * max(t, 0.0) / duration + _EPS), m)

    def render(self, transcript: "Transcript") -> str:
        """The transcript, one ``[first-last] text`` line per span, in this style."""
        if self.style in ("seconds", "mmss"):
            return "\n".join(f"[{format_time(e.start, self.style)}-{format_time(e.end, self.style)}] {e.text}"
                             for e in transcript.entries)
        if self.style == "tokens":
            d = transcript.duration
            return "\n".join(f"[<{self.token(e.start, d)}>-<{self.token(e.end, d)}>] {e.text}"
                             for e in transcript.entries)
        frames, lines, n = self._frames(transcript), [], 0  # n: the sampled frames before this span
        for e in transcript.entries:
            last_n = n + max(len(e.times), 1) - 1
            lines.append(f"[{frames.numbers[n]}-{frames.numbers[last_n]}] {e.text}")
            n = last_n + 1
        return "\n".join(lines)

    # --- the prompt ---------------------------------------------------------------------------------

    def last(self, transcript: "Transcript") -> int | float:
        """The largest value a reply may give: the duration, the last frame's number, or ``M``."""
        if self.style == "tokens":
            return self.tokens or DEFAULT_TOKENS
        if self.style == "frames":
            return self._frames(transcript).last
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
        frames = self._frames(transcript)
        fps = frames.rate
        if fps is None:  # a variable frame rate: no rate is true of every frame, so each frame's time is given
            at = ", ".join(f"{k} at {_seconds(t)} s" for k, (t, _, _) in enumerate(frames.spans))
            return (f"Times in the transcript are frame numbers: the sampled frames counted in order, which are not "
                    f"evenly spaced (frame {at}); each line gives its first and last frame. Answer with "
                    f"frame numbers as whole numbers, from 0 to {frames.last}.")
        at = f"{_seconds(frames.origin)} + " if _seconds(frames.origin) != "0" else ""
        rate = (f"{fps:g} frames per second (frame k is at {at}k/{fps:g} seconds)" if fps >= 1
                else f"one frame every {_seconds(1 / fps)} seconds (frame k is at {at}{_seconds(1 / fps)} x k seconds)")
        return (f"Times in the transcript are frame numbers, {rate}; each line gives its first and last frame. "
                f"Answer with frame numbers as whole numbers, from 0 to {frames.last}.")

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
        frames: _Frames | None = None
        if isinstance(transcript_or_duration, (int, float)):
            duration = float(transcript_or_duration)
            if self.style == "frames":
                frames = self.frames
        else:
            duration = transcript_or_duration.duration
            if self.style == "frames":
                frames = self._frames(transcript_or_duration)
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
        if frames is not None:  # bound to a transcript: the sampled frame the number names, and its span
            if not 0 <= k <= frames.last:
                raise ReplyValueError(f"there is no frame {k}: frames run from 0 to {frames.last}")
            lo, hi = frames.span(k)
            return hi if end else lo
        # unbound: frame k at k / rate, holding for one step around it
        fps = self.fps or (1.0 / step if step else 1.0)
        last = _last_frame(duration, fps)
        if not 0 <= k <= last:
            raise ReplyValueError(f"there is no frame {k}: frames run from 0 to {last}")
        if end and k == last:  # the last frame holds until the end, as in the transcript
            return duration
        return min(max((k + (0.5 if end else -0.5)) / fps, 0.0), duration)


def _seconds(t: float) -> str:
    return f"{round(t, 3):g}"


def _last_frame(duration: float, fps: float) -> int:
    """The number of a ``duration``-second video's last frame at ``fps``: ``ceil(fps * D) - 1`` (at least 0)."""
    return max(math.ceil(duration * fps - _EPS) - 1, 0)


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


@dataclass(frozen=True)
class _Frames:
    """A transcript's sampled frames as the ``frames`` style numbers them (see the module)."""

    spans: tuple[tuple[float, float, float], ...]  # each sampled frame's (time, span start, span end), in order
    numbers: tuple[int, ...]  # each sampled frame's number
    rate: float | None  # numbers per second; None: the numbers count the sampled frames
    origin: float  # the time of number 0 on a rate (0 with FPS)
    last: int  # the largest number a reply may give

    @classmethod
    def of(cls, transcript: "Transcript", fps: float | None) -> "_Frames":
        spans = _frame_spans(transcript)
        times = [t for t, _, _ in spans]
        if fps is not None:
            numbers = tuple(int(math.floor(t * fps + 0.5 + _EPS)) for t in times)
            return cls(spans, numbers, fps, 0.0, max(numbers[-1], _last_frame(transcript.duration, fps)))
        grid = _grid_numbers(times, transcript.step)
        if grid is None:
            return cls(spans, tuple(range(len(spans))), None, 0.0, len(spans) - 1)
        step, origin, numbers = grid
        return cls(spans, numbers, 1.0 / step, origin, numbers[-1])

    def span(self, k: int) -> tuple[float, float]:
        """Where number ``k``'s sampled frames start and end; a number that names none is the frame whose span
        holds its time (the first frame before the first span, as in a chunk of a longer video)."""
        named = [i for i, n in enumerate(self.numbers) if n == k]
        if not named:
            assert self.rate is not None  # counted numbers name every frame from 0 to last
            t = self.origin + k / self.rate
            i = max((j for j, (_, lo, _) in enumerate(self.spans) if lo <= t), default=0)
            named = [j for j, n in enumerate(self.numbers) if n == self.numbers[i]]
        return self.spans[named[0]][1], self.spans[named[-1]][2]


def _grid_numbers(times: list[float], step: float) -> tuple[float, float, tuple[int, ...]] | None:
    """(the grid's step, ``t0``, each frame's number) where the frames lie on a regular grid, else None.

    A video's frames are snapped to its own frames, so at 29.97 or 23.976 fps the recorded step (the median gap,
    1.001 s at 1 fps) is not the mean one (1 s): a frame's distance from ``n x step`` grows by 0.001 step a frame,
    past the tolerance near frame 100. So each gap is counted in recorded steps (at least one), the step is fitted
    by least squares to the frames' times against those counts, and the grid (:func:`_on_grid`, the same counts)
    is the first to hold every frame of: the fitted rate rounded to a whole number, 1 or 2 decimals where that is
    within 0.2% of the fit (1 fps, not 0.999 from a chunk of 1.001-s gaps, so a chunk numbers its frames as the
    whole video does), the recorded step, the fitted step.
    """
    counts = [0]
    for a, b in zip(times, times[1:]):
        n = round((b - a) / step)
        if n < 1:
            return None
        counts.append(counts[-1] + n)
    fitted = step
    if counts[-1] > 0:
        mean_c, mean_t = sum(counts) / len(counts), sum(times) / len(times)
        fitted = (sum((c - mean_c) * (t - mean_t) for c, t in zip(counts, times))
                  / sum((c - mean_c) ** 2 for c in counts))
    if not fitted > 0:
        return None
    rounded = [1.0 / r for r in (round(1.0 / fitted, d) for d in range(3)) if r > 0]
    for candidate in [c for c in rounded if abs(c - fitted) <= 0.002 * fitted] + [step, fitted]:
        grid = _on_grid(times, candidate)
        if grid is not None and all(n - grid[1][0] == c for n, c in zip(grid[1], counts)):  # not a finer grid
            return (candidate, *grid)
    return None


def _on_grid(times: list[float], step: float) -> tuple[float, tuple[int, ...]] | None:
    """(``t0``, each frame's number) where every time is within :data:`_GRID_TOLERANCE` of a step of
    ``t0 + n x step`` and the numbers rise (``t0``: the first frame's offset into its step, 0 when within the
    tolerance of it, so a chunk of a video numbers its frames as the whole does); else None."""
    first = times[0] / step
    origin = (first - math.floor(first + _GRID_TOLERANCE)) * step
    if abs(origin) <= _GRID_TOLERANCE * step:
        origin = 0.0
    numbers: list[int] = []
    for t in times:
        x = (t - origin) / step
        n = round(x)
        if abs(x - n) > _GRID_TOLERANCE or (numbers and n <= numbers[-1]):
            return None
        numbers.append(n)
    return origin, tuple(numbers)


__all__ = ["DEFAULT_TOKENS", "STYLES", "ReplyValueError", "TimeFormat"]
