"""The public entry points: ``describe()`` (stage 1), ``ground()`` (both stages, or stage 2 alone)."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from frame_describer import Describer, FrameDescription, Usage, get_describer, read_descriptions
from frame_describer.descriptions_io import description_metadata, write_descriptions
from vidground.errors import ConfigurationError, InputError, VideoDecodeError
from temporal_reasoner import GroundingResult, Reasoner, Transcript, check_query, get_reasoner, infer_step

if TYPE_CHECKING:
    from frame_describer.cache import DescriptionCache

log = logging.getLogger("vidground")

PathLike = str | Path


class DescribedVideo(BaseModel):
    """Stage 1's output for one video: the descriptions plus what is needed to reason over them."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    video: str
    duration: float
    step: float
    duration_inferred: bool = False
    describer: str
    settings: dict[str, Any] = Field(default_factory=dict)
    descriptions: list[FrameDescription]
    usage: Usage = Field(default_factory=Usage)
    seconds: float = 0.0

    #: the merged transcript :func:`load_descriptions` already built (building one validates every line),
    #: with what it was built from: the same description objects, duration and step
    _built: tuple[Transcript, tuple[int, ...], float, float] | None = PrivateAttr(default=None)

    def transcript(self, *, merge: bool = True) -> Transcript:
        built, ids = self._built, tuple(map(id, self.descriptions))
        if merge and built is not None and built[1:] == (ids, self.duration, self.step):
            t = built[0]
        else:
            t = Transcript.from_descriptions(self.descriptions, duration=self.duration, step=self.step, merge=merge)
            if merge:
                self._built = (t, ids, self.duration, self.step)
        return t.model_copy(update={"duration_inferred": self.duration_inferred})

    def write(self, path: PathLike) -> int:
        """Write the descriptions file (JSONL, atomic); every line carries this video's metadata."""
        return write_descriptions(path, self.descriptions, video=self.video, duration=round(self.duration, 3),
                                  step=self.step, describer=self.describer)


def _progress(iterable: Iterable[Any], total: int | None, enabled: bool, desc: str) -> Iterable[Any]:
    if not enabled or not sys.stderr.isatty():
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="frame", leave=False)


def _with_cache(desc: Describer, cache: Any, path: Path, sampling: dict[str, Any]) -> Any:
    """Wrap ``desc`` in a :class:`CachedDescriber` when a cache is given (or set in ``$VIDGROUND_CACHE``;
    ``cache=False`` turns it off). What changes the image (``max_side``) is part of the key, and so is the
    sampling step for describers whose output depends on the previous frame."""
    if cache is False:
        return None
    if cache is None:
        cache = os.environ.get("VIDGROUND_CACHE") or None
    if cache is None:
        return None
    from frame_describer.cache import CachedDescriber, DescriptionCache

    if not isinstance(cache, DescriptionCache):
        cache = DescriptionCache(Path(cache).expanduser())
    extra = {"max_side": sampling["max_side"]}
    if getattr(desc, "uses_previous_frame", False):
        extra.update(fps=sampling["fps"], num_frames=sampling["num_frames"], max_frames=sampling["max_frames"])
    return CachedDescriber(desc, cache, path, extra=extra)


def describe(
    video: PathLike,
    *,
    describer: str | Describer | None = None,
    fps: float | None = None,
    num_frames: int | None = None,
    max_frames: int | None = None,
    max_side: int | None = 512,
    query: str | None = None,
    cache: "DescriptionCache | PathLike | bool | None" = None,
    progress: bool = False,
    describer_options: dict[str, Any] | None = None,
) -> DescribedVideo:
    """Stage 1: sample frames from ``video`` and describe each one.

    Frames are sampled at ``fps`` (default 1) or as ``num_frames`` evenly spaced ones, at most
    ``max_frames``, and streamed from the decoder to the describer, so memory does not grow with the
    video's length. ``query`` is passed to describers in query-aware mode and ignored otherwise.

    ``cache`` (a :class:`~frame_describer.cache.DescriptionCache` or the path of its SQLite file;
    default ``$VIDGROUND_CACHE`` when set; ``False`` for none) answers frames described before by the same describer
    with the same settings, so each frame is described once across queries and runs.
    ``usage.cached`` counts the frames the cache answered.
    """
    from frame_describer.sampling import DEFAULT_FPS, sample_frames

    path = Path(video)
    started = time.perf_counter()
    # opens the file and checks it (missing, folder, empty, not a video...) and the arguments before
    # any model is loaded; frames then stream lazily
    frames = sample_frames(path, fps=fps, num_frames=num_frames, max_frames=max_frames, max_side=max_side)
    with frames:
        desc = get_describer(describer, **(describer_options or {}))
        if getattr(desc, "mode", "agnostic") == "aware":
            if query is None:
                raise ConfigurationError(f"describer {desc.name!r} is query-aware: give the query")
            query = check_query(query)
        cached = _with_cache(desc, cache, path, {"fps": fps, "num_frames": num_frames, "max_frames": max_frames,
                                                 "max_side": max_side})
        out = list(_progress((cached or desc).describe(frames, query=query), frames.planned, progress,
                             f"describing {path.name}"))
    info = frames.info
    if not out:
        raise VideoDecodeError(path, "no frames could be decoded")
    times = [d.t for d in out]
    # the real spacing of the frames the sampler returned (a cap or count lowers the rate)
    step = infer_step(times) if len(times) > 1 else 1.0 / (fps or DEFAULT_FPS)
    # a truncated file's container claims more than the stream holds: the real end wins
    duration = max(frames.truncated_at or info.duration or 0.0, times[-1])
    seconds = time.perf_counter() - started
    log.info("described %d frames of %s with %s in %.2f s", len(out), path, desc.name, seconds)
    usage = Usage()  # cache hits carry Usage(cached=1)
    for d in out:
        if d.usage is not None:
            usage = usage + d.usage
    return DescribedVideo(video=str(path), duration=duration, step=step, describer=desc.name,
                          settings=desc.settings(), descriptions=out, usage=usage, seconds=seconds)


def load_descriptions(
    descriptions: PathLike | Sequence[FrameDescription] | DescribedVideo,
    *,
    duration: float | None = None,
    format: str = "auto",
    clip_seconds: float | None = None,
) -> DescribedVideo:
    """Stage 2's input from a descriptions file, a list of descriptions or a :class:`DescribedVideo`.

    A file is vidground's JSONL or, with ``format`` (``auto`` detects it), a caption file from another
    tool (``vtggpt``, ``seconds-json``, ``csv``; ``clip_seconds`` is their clip length or interval);
    see :mod:`frame_describer.caption_formats`. Without ``duration`` it is taken from the file's
    metadata when every line agrees, else inferred from the last line's time plus the sampling step
    (or the end of the last clip) and marked as inferred.
    """
    if not isinstance(descriptions, (str, Path)) and (format != "auto" or clip_seconds is not None):
        raise ConfigurationError("format= and clip_seconds= apply to a descriptions file, not to loaded descriptions")
    if isinstance(descriptions, DescribedVideo):
        if duration is None:
            return descriptions
        return descriptions.model_copy(update={"duration": float(duration), "duration_inferred": False})
    source = "<descriptions>"
    if isinstance(descriptions, (str, Path)):
        source = str(descriptions)
        items = read_descriptions(descriptions, format=format, clip_seconds=clip_seconds)
    else:
        items = []
        for d in descriptions:
            items.append(d if isinstance(d, FrameDescription) else FrameDescription.model_validate(d))
        if not items:
            raise InputError("no descriptions given")
        items.sort(key=lambda d: d.t)
    if duration is not None and (duration != duration or duration <= 0):
        raise InputError(f"duration must be a positive number of seconds, got {duration}")
    meta_duration = description_metadata(items, "duration")
    if meta_duration is not None and (isinstance(meta_duration, bool) or not isinstance(meta_duration, (int, float))):
        raise InputError(f"the 'duration' metadata must be a number of seconds, got {meta_duration!r}", path=source)
    meta_step = description_metadata(items, "step")
    step = float(meta_step) if isinstance(meta_step, (int, float)) and meta_step > 0 else None
    transcript = Transcript.from_descriptions(items, duration=duration if duration is not None else meta_duration, step=step)
    # a clip grid's end (caption imports) is only an estimate of the duration: a known one still wins
    inferred = transcript.duration_inferred or (
        duration is None and description_metadata(items, "duration_inferred") is True)
    described = DescribedVideo(
        video=str(description_metadata(items, "video") or source),
        duration=transcript.duration,
        step=transcript.step,
        duration_inferred=inferred,
        describer=str(description_metadata(items, "describer") or "external"),
        descriptions=items,
    )
    described._built = (transcript, tuple(map(id, items)), described.duration, described.step)
    return described


def ground(
    video: PathLike | None = None,
    query: str | None = None,
    *,
    descriptions: PathLike | Sequence[FrameDescription] | DescribedVideo | None = None,
    descriptions_format: str = "auto",
    clip_seconds: float | None = None,
    duration: float | None = None,
    describer: str | Describer | None = None,
    reasoner: str | Reasoner | None = None,
    fps: float | None = None,
    num_frames: int | None = None,
    max_frames: int | None = None,
    max_side: int | None = 512,
    top_k: int | None = None,
    cache: Any = None,
    progress: bool = False,
    describer_options: dict[str, Any] | None = None,
    reasoner_options: dict[str, Any] | None = None,
) -> GroundingResult:
    """Find when ``query`` happens in ``video``.

    Give a ``video`` to run both stages, or ``descriptions`` (a JSONL file, a list of
    :class:`FrameDescription`, or :func:`describe`'s output) to run stage 2 alone. A file may also
    hold another tool's captions, detected or named by ``descriptions_format`` (with
    ``clip_seconds``), as :func:`load_descriptions` reads them.
    Backends default to the offline ones (``describer="cv"``, ``reasoner="embedding"``).
    ``top_k`` keeps only the best K intervals.
    """
    query = check_query(query)
    if top_k is not None and top_k < 1:
        raise ConfigurationError(f"top_k must be at least 1, got {top_k}")
    if (video is None) == (descriptions is None):
        raise ConfigurationError("give exactly one of video= or descriptions=")
    rsn = get_reasoner(reasoner, **(reasoner_options or {}))
    timings: dict[str, float] = {}
    if video is not None:
        if descriptions_format != "auto" or clip_seconds is not None:
            raise ConfigurationError("descriptions_format= and clip_seconds= apply to descriptions=, not to a video")
        described = describe(video, describer=describer, fps=fps, num_frames=num_frames, max_frames=max_frames,
                             max_side=max_side, query=query, cache=cache, progress=progress,
                             describer_options=describer_options)
        if duration is not None:
            described = described.model_copy(update={"duration": float(duration), "duration_inferred": False})
        timings["describe"] = round(described.seconds, 4)
    else:
        if describer is not None:
            raise ConfigurationError("describer= has no effect with descriptions=; give a video instead")
        described = load_descriptions(descriptions, duration=duration, format=descriptions_format,
                                      clip_seconds=clip_seconds)
    transcript = described.transcript()
    started = time.perf_counter()
    result = rsn.ground(query, transcript)
    timings["reason"] = round(time.perf_counter() - started, 4)
    log.info("grounded %r with %s in %.2f s: %d interval(s)", query, rsn.name, timings["reason"], len(result.intervals))
    usage = dict(result.usage)
    if not described.usage.is_empty():
        usage["describe"] = described.usage
    settings = {"fps": fps, "num_frames": num_frames, "max_frames": max_frames, "max_side": max_side,
                "describer": described.settings, "reasoner": rsn.settings(), **result.settings}
    return result.model_copy(update={
        "query": query,
        "video": described.video,
        "duration": transcript.duration,
        "duration_inferred": transcript.duration_inferred,
        "describer": described.describer,
        "reasoner": result.reasoner or rsn.name,
        "usage": usage,
        "timings": {**result.timings, **timings},
        "settings": settings,
        "intervals": result.intervals[:top_k] if top_k else result.intervals,
    })
