"""The rate a sampling by rate really uses, without PyAV (a warm run that finds every frame in the description
cache imports no decoder: :meth:`pipelines.session.Session.describe`)."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

log = logging.getLogger(__name__)

#: set on a log record whose text a result's ``warnings`` carry too, so that a command that prints them
#: (``vidground describe``; ``ground``, ``ask``, ``events`` without --json) says it once: ``getattr(record, IN_RESULT)``
IN_RESULT = "vidground_in_result"


def rate_used(fps: float, video_fps: float | None, *, warn: str | os.PathLike[str] | None = None,
              notes: list[str] | None = None) -> float:
    """The rate a request for ``fps`` frames a second samples at: ``fps``, or the video's own rate ``video_fps``
    when ``fps`` is above it (by more than 1%: a 29.97-fps video asked for 30 is sampled at 30). Above its rate a
    video gives every frame once, never one twice (:class:`~frame_describer.sampling.FrameStream`), so that is the
    rate used: what :attr:`FrameStream.fps <frame_describer.sampling.FrameStream>`, a description's
    ``sampling["fps"]`` and a coarse-to-fine search's grid use (a 10-fps video asked for 100 fps recorded 100, and
    its search grid had 10 points per frame). ``video_fps`` None or 0 (the container states none): ``fps``.
    ``warn``, a video's path: a rate capped is said in a warning naming it (a coarse-to-fine search's grid, which
    :func:`~frame_describer.sampling.sample_frames` does not plan), logged and appended to ``notes`` when given
    (what a result's ``warnings`` take: a Python or ``--json`` user reads no log; the record is then marked
    :data:`IN_RESULT`, so a command line that prints the result's warnings does not say it twice)."""
    if video_fps and math.isfinite(video_fps) and fps > video_fps * 1.01:
        if warn is not None:
            text = (f"{Path(warn).name}: fps={fps:g} asks for more frames than the video has ({video_fps:.4g} fps): "
                    "sampled at the video's rate, every frame once at most")
            if notes is not None:
                notes.append(text)
            log.warning("%s", text, extra={IN_RESULT: notes is not None})
        return float(video_fps)
    return float(fps)


__all__ = ["IN_RESULT", "rate_used"]
