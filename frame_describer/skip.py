"""Skip frames that did not change: a frame nearly the same as the last one described is not sent.

Lectures, surveillance footage, screen recordings and slides hold one picture for minutes; describing
each second of them pays a model to write the same sentence again. :class:`SkipUnchanged` compares each
frame with the last frame it sent to the describer, on a small grey thumbnail (a cheap distance that
ignores compression noise and tiny motion), and reuses that frame's description for a frame within
``threshold`` of it. A reused description says so (``reused_from``: the time of the frame described).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterable, Iterator
from typing import Any

import cv2
import numpy as np

from vidground.errors import ConfigurationError

from .base import DescriptionStream, StreamState, leftovers
from vidground.types import Frame, FrameDescription, Usage

#: the thumbnail's side in pixels: small enough to be cheap and to blur noise, large enough to see a change
THUMB = 32


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A ``THUMB`` x ``THUMB`` grey thumbnail (float32, grey levels 0-255)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.shape[2] == 3 else image[..., 0]
    return cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """The mean absolute difference of two thumbnails, in grey levels (0-255)."""
    return float(np.abs(a - b).mean())


class SkipUnchanged:
    """Wraps a describer: frames within ``threshold`` (mean absolute grey-level difference of 32x32
    thumbnails, 0-255) of the last frame sent are not sent; they get that frame's description.

    It wraps the cache (not the other way round), so the cache holds only what the describer wrote.
    ``sent`` counts frames passed to the wrapped describer, ``skipped`` frames answered by reuse.
    Describers that compare consecutive frames see only the frames sent.
    """

    def __init__(self, describer: Any, threshold: float = 2.0):
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold >= 0:
            raise ConfigurationError(f"the skip-unchanged threshold must be a grey-level difference >= 0, got {threshold!r}")
        self.inner = describer
        self.threshold = float(threshold)
        self.name = describer.name
        self.mode = getattr(describer, "mode", "agnostic")
        self.sent = 0
        self.skipped = 0

    def settings(self) -> dict[str, Any]:
        return {**self.inner.settings(), "skip_unchanged": self.threshold}

    def describe(self, frames: Iterable[Frame], *, query: str | None = None) -> Iterator[FrameDescription]:
        """Descriptions in frame order: the wrapped describer's for frames sent, reused ones between. Stopped
        early, it passes on what the wrapped describer finished and did not hand over (its stream's ``unread``:
        :class:`~frame_describer.base.DescriptionStream`), for a description cache in front to keep."""
        return DescriptionStream(lambda out: self._stream(frames, query, out))

    def _stream(self, frames: Iterable[Frame], query: str | None,
                out: StreamState) -> Generator[FrameDescription, None, None]:
        pending: deque[tuple[float, bool]] = deque()  # (time, sent) in frame order
        last: list[np.ndarray] = []

        def sent_frames() -> Iterator[Frame]:
            for f in frames:
                thumb = thumbnail(f.image)
                if last and distance(thumb, last[0]) <= self.threshold:
                    pending.append((f.t, False))
                    self.skipped += 1
                    continue
                last[:] = [thumb]
                pending.append((f.t, True))
                self.sent += 1
                yield f

        previous: FrameDescription | None = None
        inner = self.inner.describe(sent_frames(), query=query)
        try:
            for d in inner:
                while pending and not pending[0][1] and previous is not None:  # skipped after the previous one sent
                    yield _reuse(previous, pending.popleft()[0])
                if pending:
                    pending.popleft()
                previous = out.handed = d
                yield d
                while pending and not pending[0][1]:
                    yield _reuse(previous, pending.popleft()[0])
            while pending and previous is not None:  # frames skipped after the last one sent
                t, was_sent = pending.popleft()
                if not was_sent:
                    yield _reuse(previous, t)
        finally:
            try:
                getattr(inner, "close", lambda: None)()  # a stream stopped early waits for its requests in flight
            finally:
                out.unread.extend(leftovers(inner))


def _reuse(d: FrameDescription, t: float) -> FrameDescription:
    return FrameDescription(**{**d.model_dump(exclude={"usage"}), "t": t, "reused_from": d.t, "usage": Usage()})


__all__ = ["SkipUnchanged", "thumbnail", "distance", "THUMB"]
