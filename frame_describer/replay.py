"""A describer that answers from captions already written: ``replay:CAPTIONS_FILE``.

Each requested frame gets the caption nearest its time (the caption of the clip holding it, for clip
formats), and frames past the captions' end get none. Nothing is decoded from the image and nothing
is paid, so a sampling strategy can be measured on real captions with exact call counts (``calls``),
and a user can compare strategies on captions they already paid for before paying for another run.

Any format :func:`~frame_describer.descriptions_io.read_descriptions` reads is accepted (vidground
JSONL, VTG-GPT clip JSONL, per-second JSON, CSV), or a list of descriptions already in memory.

The captions are one video's. When their lines name it (the ``video`` field ``vidground describe`` and an
eval's transcripts write) or the ``video=`` option does, a session asked to describe another video gets an
:class:`~vidground.errors.InputError` naming both before any frame is answered (:meth:`ReplayDescriber.for_video`):
``vidground eval --videos DIR --describer replay:ONE_FILE`` answered every video with that one video's
captions, silently. Descriptions given in memory are checked the same way: when they carry a ``video`` extra
(as :func:`~frame_describer.descriptions_io.read_descriptions` keeps a file's field), a session refuses another
video. Captions that name no video, in a file or in memory, are answered for any video, as the caller says.
A whole-number ``video=`` (``--describer-opt video=10082798964`` reads a NExT-GQA id as a JSON number) is that id.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from vidground.errors import ConfigurationError, InputError
from vidground.types import Frame, FrameDescription, Usage

from .base import BaseDescriber
from .descriptions_io import description_metadata, read_descriptions
from .video_names import same_video

log = logging.getLogger(__name__)


class ReplayDescriber(BaseDescriber):
    """Answers each frame with the nearest of ``captions`` (a captions file or descriptions).

    ``end`` is where the captions stop holding (seconds): ``duration`` when given, else the file's
    ``duration`` metadata (clip formats carry the end of their last clip), else the last caption's time
    plus the median gap. A frame after ``end`` gets no description: the captions say nothing there.
    ``calls`` counts frames answered, ``past_end`` frames left without one; ``warnings`` what a result built from
    its descriptions should tell its reader (frames past the captions' end), as a frame stream's ``warnings`` do.

    ``video`` is the video the captions are of (a file name, stem or id; a whole number is an id): the captions'
    ``video`` field (a file's, or in-memory descriptions' extra) when every one that has it agrees, else ``None``
    (any video); given, it replaces the field (captions of a video renamed since). A session checks each video it describes against it (:meth:`for_video`).
    """

    name = "replay"

    #: building one reads the captions file: an eval builds one up front to check it and the option values
    #: (vidground.registry.Registry.check)
    lazy = True

    def __init__(self, captions: str | Path | Sequence[FrameDescription], *, format: str = "auto",
                 clip_seconds: float | None = None, duration: float | None = None, video: str | int | None = None):
        if isinstance(captions, (str, Path)):
            self.source = str(captions)
            items = read_descriptions(captions, format=format, clip_seconds=clip_seconds)
        else:
            if format != "auto" or clip_seconds is not None:
                raise ConfigurationError("format= and clip_seconds= apply to a captions file, not to loaded descriptions")
            items = sorted(captions, key=lambda d: d.t)
            self.source = "<descriptions>"
            if not items:
                raise InputError("the replay describer needs at least one caption")
            if not all(isinstance(d, FrameDescription) for d in items):
                raise InputError("the replay describer's captions must be FrameDescription objects or a file")
        self.times = [float(d.t) for d in items]
        self.texts = [d.text for d in items]
        if len(set(self.times)) != len(self.times):
            raise InputError(f"{self.source}: two captions share one time; the replay needs one caption per time")
        self.end = self._end(items, duration)
        if isinstance(video, int) and not isinstance(video, bool):
            video = str(video)  # --describer-opt video=10082798964 reads a numeric id as a JSON number
        if video is not None and (not isinstance(video, str) or not video.strip()):
            raise ConfigurationError(f"video must be the name or id of the video the captions are of, got {video!r}")
        named = description_metadata(items, "video")
        self.video: str | None = video.strip() if video is not None else (
            str(named) if isinstance(named, (str, int)) and not isinstance(named, bool) and str(named).strip() else None)
        self._named_by = "the video= option" if video is not None else "their 'video' field"
        # what changes the answers: the captions themselves (their digest), so a cache keyed on settings()
        # never mixes two caption sets
        digest = hashlib.sha256()
        for t, text in zip(self.times, self.texts):
            digest.update(f"{t:.3f}\t{text}\n".encode())
        self.digest = digest.hexdigest()[:16]
        self.format, self.clip_seconds = format, clip_seconds
        self._lock = threading.Lock()
        self.calls = 0
        self.past_end = 0
        self._past: tuple[float, float] | None = None  # the captions' end and the first frame found past it

    @classmethod
    def from_spec(cls, arg: str | None = None, **options: Any) -> "ReplayDescriber":
        if not arg:
            raise ConfigurationError("the replay describer needs a captions file: 'replay:PATH', e.g. "
                                     "'replay:captions/VIDEO.jsonl'")
        return cls(arg, **options)

    def _end(self, items: list[FrameDescription], duration: float | None) -> float:
        if duration is not None:
            if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not duration > 0:
                raise ConfigurationError(f"duration must be a positive number of seconds, got {duration!r}")
            if duration < self.times[-1]:
                raise InputError(f"duration {duration:g}s is before the last caption ({self.times[-1]:g}s) of {self.source}")
            return float(duration)
        meta = description_metadata(items, "duration")
        if isinstance(meta, (int, float)) and not isinstance(meta, bool) and meta >= self.times[-1]:
            return float(meta)
        gaps = sorted(b - a for a, b in zip(self.times, self.times[1:]))
        return self.times[-1] + (gaps[len(gaps) // 2] if gaps else 1.0)

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode, "captions": self.digest, "end": round(self.end, 3)}

    def for_video(self, video: str | Path) -> "ReplayDescriber":
        """This describer, to describe ``video`` (a path): an :class:`InputError` naming both when the captions are
        of another video (:attr:`video`, compared by file name, stem or id; ActivityNet's ``v_`` may be on either
        side). A session calls it before describing a video, so nothing is answered from the wrong captions."""
        if self.video is None or same_video(self.video, video):
            return self
        stem = PurePath(str(video)).stem
        raise InputError(
            f"these captions are of video {self.video!r} ({self._named_by}), not of {str(video)!r}: a replay answers "
            "one video from its own captions. Give that video's captions file; for an eval over many videos, pass "
            "--descriptions DIR (one captions file per video, found by its id) in place of --videos and --describer; "
            f"if these are this video's captions under another name, pass --describer-opt video={stem} (Python: "
            f"describer_options={{'video': {stem!r}}})", path=self.source)

    def caption_at(self, t: float) -> str | None:
        """The caption nearest ``t`` (the later one on a tie: spans are half-open, a clip's caption holds
        from its start), or ``None`` past the end."""
        if t > self.end + 1e-9 or t < 0:
            return None
        i = bisect.bisect_left(self.times, t)
        if i == len(self.times) or (i > 0 and t - self.times[i - 1] < self.times[i] - t):
            i -= 1
        return self.texts[i]

    @property
    def warnings(self) -> list[str]:
        """What a result built from this describer's descriptions should tell its reader: that frames past the
        captions' end got no description (logged once as well, when the first such frame comes); empty while none
        did. A Python or ``--json`` user reads no log, so a session adds these to a result's ``warnings``."""
        if self._past is None:
            return []
        end, t = self._past
        return [f"{self.source}: the captions end at {end:.1f} s, and the video goes on (a frame at {t:.1f} s): frames "
                "past their end get no description; captions of another video, or of a part of it?"]

    def describe(self, frames: Iterable[Frame], *, query: str | None = None) -> Iterator[FrameDescription]:
        for f in frames:
            text = self.caption_at(f.t)
            with self._lock:
                if text is None:
                    self.past_end += 1
                    if self.past_end == 1:  # once: the rest of the video is silently out of reach otherwise
                        self._past = (self.end, f.t)
                        log.warning("%s", self.warnings[0])
                else:
                    self.calls += 1
            if text is not None:
                yield FrameDescription(t=f.t, text=text, usage=Usage(requests=1, cost_usd=0.0))  # nothing paid: not unpriced


_PIXEL = np.zeros((1, 1, 3), dtype=np.uint8)


def timeline_frames(times: Iterable[float]) -> Iterator[Frame]:
    """Frames that carry only their time (a 1x1 black image), in the order given: what a describer that
    reads only the time (:class:`ReplayDescriber`) needs, with no video to decode."""
    for i, t in enumerate(times):
        yield Frame(t=float(t), index=i, image=_PIXEL)


__all__ = ["ReplayDescriber", "timeline_frames"]
