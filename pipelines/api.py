"""The one-line entry points: ``describe()`` (stage 1), ``ground()``, ``answer()`` and ``events()`` (both
stages, or stage 2 alone).

Each call runs in a short-lived :class:`~pipelines.session.Session`, which closes what it opened;
loaded models are shared process-wide, so repeated calls do not reload them. For many queries of one
video, use a session directly: it describes once and remembers the transcript.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from frame_describer import Describer, FrameDescription
from vidground.errors import ConfigurationError
from temporal_reasoner import GroundingResult, Reasoner, check_query

from vidground.types import DEFAULT_MAX_SIDE, Answer, Events

from .search import Search
from .session import DescribedVideo, Session, load_descriptions

PathLike = str | Path


def describe(
    video: PathLike,
    *,
    describer: str | Describer | None = None,
    fps: float | None = None,
    num_frames: int | None = None,
    max_frames: int | None = None,
    max_side: int | None = 512,
    query: str | None = None,
    cache: Any = None,
    progress: bool = False,
    describer_options: dict[str, Any] | None = None,
    motion: bool = False,
    skip_unchanged: float | None = None,
) -> DescribedVideo:
    """Stage 1: sample frames from ``video`` and describe each one (see :meth:`Session.describe`).

    Frames are sampled at ``fps`` (default 1) or as ``num_frames`` evenly spaced ones, at most
    ``max_frames``, resized to at most ``max_side`` pixels. ``cache`` (a
    :class:`~frame_describer.cache.DescriptionCache` or the path of its SQLite file; default ``$VIDGROUND_CACHE``
    when set, else ``~/.cache/vidground/descriptions.sqlite`` for a describer named by a spec string, see
    :class:`Session`; ``True`` is the same; ``False`` for none) answers frames described before by the same
    describer with the same settings; ``usage.cached`` counts them. ``motion=True`` appends what moved since
    the previous sample to each description (:mod:`frame_describer.motion`). ``skip_unchanged`` (grey levels, e.g.
    ``2.0``) does not send a frame whose small grey thumbnail is that close to the last frame sent; it reuses that
    frame's description (the result's ``sampling["skip_unchanged"]`` says how many were sent).
    """
    sampling = dict(fps=fps, num_frames=num_frames, max_frames=max_frames, max_side=max_side)
    with Session(describer=describer, sampling=sampling, cache=cache, describer_options=describer_options,
                 progress=progress, motion=motion, skip_unchanged=skip_unchanged) as session:
        return session.describe(video, query=query)


def _one_off(descriptions: Any, describer: Any, reasoner: Any, fps: Any, num_frames: Any, max_frames: Any,
             max_side: Any, cache: Any, progress: bool, describer_options: Any, reasoner_options: Any,
             search: Any = None, skip_unchanged: Any = None, motion: bool = False, *, given: Any = None) -> Session:
    """The short-lived session of one ground()/answer()/events() call. What applies to describing a video only (a
    describer, its options, the sampling settings, a search, skip-unchanged or motion: which frames are described,
    and how)
    is refused with descriptions, given as ``descriptions=`` or as the call's first argument (``given``: a list of
    them, describe()'s output), rather than ignored."""
    if descriptions is None and not isinstance(given, (DescribedVideo, list, tuple)):
        return Session(describer=describer, reasoner=reasoner, sampling=dict(
            fps=fps, num_frames=num_frames, max_frames=max_frames, max_side=max_side), cache=cache, progress=progress,
            describer_options=describer_options, reasoner_options=reasoner_options, search=search,
            skip_unchanged=skip_unchanged, motion=motion)
    video_only = {"describer": describer is not None, "describer_options": bool(describer_options),
                  "fps": fps is not None, "num_frames": num_frames is not None, "max_frames": max_frames is not None,
                  "max_side": max_side != DEFAULT_MAX_SIDE, "search": Search.of(search).refines,
                  "skip_unchanged": skip_unchanged is not None, "motion": bool(motion)}
    if any(video_only.values()):
        names = ", ".join(f"{k}=" for k, v in video_only.items() if v)
        raise ConfigurationError(f"{names} apply to describing a video and have no effect with descriptions; give a "
                                 "video instead, or leave them out")
    return Session(describer=None, reasoner=reasoner, cache=cache, progress=progress,
                   reasoner_options=reasoner_options)


def ground(
    video: PathLike | DescribedVideo | Sequence[FrameDescription] | None = None,
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
    search: Any = None,
    skip_unchanged: float | None = None,
    motion: bool = False,
) -> GroundingResult:
    """Find when ``query`` happens in ``video``.

    Give a ``video`` to run both stages, or ``descriptions`` (a JSONL file, a list of
    :class:`FrameDescription`, or :func:`describe`'s output; the last two may be given first, as ``video``, as
    :func:`answer` takes them) to run stage 2 alone; with descriptions, the settings of describing a video
    (``describer``, ``fps``, ``num_frames``, ``max_frames``, ``max_side``, ``search``, ``skip_unchanged``,
    ``motion``) are a :class:`ConfigurationError`, not ignored. A file may also
    hold another tool's captions, detected or named by ``descriptions_format`` (with
    ``clip_seconds``), as :func:`load_descriptions` reads them.
    Backends default to the offline ones (``describer="cv"``, ``reasoner="embedding"``).
    ``top_k`` keeps only the best K intervals. On a long video, ``search="coarse-to-fine"`` (or its settings,
    ``{"strategy": "coarse-to-fine", "budget": 300}``, a :class:`~pipelines.search.Search`) describes a sparse
    pass, then densely only around the candidates (``settings["search"]`` lists every frame described and why),
    and ``skip_unchanged`` (grey levels) reuses the last description for a frame nearly the same as the last one
    sent; both apply to a video, not to ``descriptions``. ``motion=True`` appends what moved since the previous
    sample to each description, as :func:`describe`'s.
    """
    query = check_query(query)
    with _one_off(descriptions, describer, reasoner, fps, num_frames, max_frames, max_side, cache, progress,
                  describer_options, reasoner_options, search, skip_unchanged, motion, given=video) as session:
        return session.ground(video, query, descriptions=descriptions, descriptions_format=descriptions_format,
                              clip_seconds=clip_seconds, duration=duration, top_k=top_k)


def answer(
    video_or_descriptions: PathLike | DescribedVideo | Sequence[FrameDescription] | None = None,
    question: str | None = None,
    choices: Sequence[str] | None = None,
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
    cache: Any = None,
    progress: bool = False,
    describer_options: dict[str, Any] | None = None,
    reasoner_options: dict[str, Any] | None = None,
    skip_unchanged: float | None = None,
    motion: bool = False,
) -> Answer:
    """Answer ``question`` about a video, and say when the answer is seen.

    ``video_or_descriptions`` is a video file (both stages), :func:`describe`'s output or a list of
    :class:`FrameDescription` (stage 2 alone); a descriptions *file* goes in ``descriptions=``. With
    ``choices`` (a list of at least two distinct texts) the answer is one of them (``Answer.choice`` is its
    index), else free text. ``Answer.intervals`` are the spans that support it, best first. A chat reasoner
    (``openai:MODEL``, ``hf:MODEL``, ``llamacpp:PATH``) answers through its model; the default ``embedding``
    reasoner answers with the offline *evidence baseline* (ground the question, pick the choice best
    matched by the descriptions in and around the grounded span), named as such in ``Answer.reasoner``.
    ``skip_unchanged`` and ``motion`` describe the video as for :func:`ground` (a :class:`ConfigurationError`
    with descriptions).
    """
    from temporal_reasoner.qa import check_choices, check_question

    question = check_question(question)
    choices = check_choices(choices)
    with _one_off(descriptions, describer, reasoner, fps, num_frames, max_frames, max_side, cache, progress,
                  describer_options, reasoner_options, skip_unchanged=skip_unchanged, motion=motion,
                  given=video_or_descriptions) as session:
        return session.answer(video_or_descriptions, question, choices, descriptions=descriptions,
                              descriptions_format=descriptions_format, clip_seconds=clip_seconds, duration=duration)


def events(
    video_or_descriptions: PathLike | DescribedVideo | Sequence[FrameDescription] | None = None,
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
    cache: Any = None,
    progress: bool = False,
    describer_options: dict[str, Any] | None = None,
    reasoner_options: dict[str, Any] | None = None,
    skip_unchanged: float | None = None,
    motion: bool = False,
    **options: Any,
) -> Events:
    """The video's events (dense video captioning): ``Events.events`` are scored ``(start, end, caption)``
    in order of start, possibly overlapping.

    ``video_or_descriptions`` is as for :func:`answer`. A chat reasoner (``openai:MODEL``, ``hf:MODEL``,
    ``llamacpp:PATH``) writes the events and their captions (options ``max_events``, ``chunk_entries``: a long
    transcript is sent in overlapping chunks); the default ``embedding`` reasoner finds them offline as change
    points in the descriptions and picks a representative description as each caption (options
    ``window_seconds``, ``min_event_seconds``, ``threshold``, ``max_events``, and ``nested=True`` for
    overlapping events at two scales; see :mod:`temporal_reasoner.events`). ``skip_unchanged`` and ``motion``
    describe the video as for :func:`ground` (a :class:`ConfigurationError` with descriptions).
    """
    with _one_off(descriptions, describer, reasoner, fps, num_frames, max_frames, max_side, cache, progress,
                  describer_options, reasoner_options, skip_unchanged=skip_unchanged, motion=motion,
                  given=video_or_descriptions) as session:
        return session.events(video_or_descriptions, descriptions=descriptions, descriptions_format=descriptions_format,
                              clip_seconds=clip_seconds, duration=duration, **options)


__all__ = ["answer", "describe", "events", "ground", "load_descriptions", "DescribedVideo", "Session"]
