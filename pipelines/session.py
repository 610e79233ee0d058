"""The session: one owner for the backends of a series of calls.

    from pipelines import Session

    with Session(describer="openai:gpt-4o-mini") as s:  # kept in ~/.cache/vidground/descriptions.sqlite
        video = s.describe("kitchen.mp4")          # described once...
        for query in queries:
            print(s.ground(video, query).best)     # ...grounded many times

A session builds its describer and reasoner once (on first use), opens the description cache once,
remembers the videos it described and the descriptions files it read (so a repeat query costs only
the query), and closes what it opened when it is closed. Backends given as instances, and a
:class:`~frame_describer.cache.DescriptionCache` given as an object, belong to the caller and are left
open. Loaded model weights are shared process-wide (:mod:`vidground.models`) and outlive the session;
rate limits are shared by every backend in the process that talks to the same endpoint with the same
key (:mod:`vidground.ratelimit`). A session may be used from several threads at once, and closed from one while
others are in its calls (:meth:`Session.close`: each of them ends with a
:class:`~vidground.errors.SessionClosedError`).
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from frame_describer import (DEFAULT_DESCRIBER, Describer, FrameDescription, Usage, describers, get_describer,
                             read_descriptions)
from frame_describer.descriptions_io import description_metadata, write_descriptions
from temporal_reasoner import GroundingResult, Reasoner, Transcript, check_query, get_reasoner, infer_step
from vidground.errors import (ConfigurationError, InputError, NoCacheFolderError, PluginError, SessionClosedError,
                              VideoDecodeError, VidgroundError, keep_paid)
from vidground import interrupts
from vidground.registry import split_spec
from vidground.files import printable, refuse_url
from vidground.types import Answer, Events, Sampling, jsonable
from vidground.types import DEFAULT_FPS, MAX_SECONDS, check_seconds

from .backends import check_backends

log = logging.getLogger("vidground")

PathLike = str | Path
#: how many described videos / read descriptions files a session keeps for repeat queries
REMEMBERED = 8


def _sampled(sampling: Sampling) -> dict[str, Any]:
    """The sampling settings a describer that compares each frame with the one before is keyed by, the default
    rate resolved: no ``fps`` samples at :data:`DEFAULT_FPS`, the frames ``fps=1`` samples, so both key alike
    (they were two keys: ``--fps 1`` after a run without it described every frame again)."""
    out = sampling.model_dump(include={"fps", "num_frames", "max_frames"})
    if out["num_frames"] is None:
        out["fps"] = float(out["fps"] if out["fps"] is not None else DEFAULT_FPS)
    return out


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
    #: how the frames were sampled (the rate actually used), when this session decoded the video;
    #: ``None`` for descriptions read from a file or given as a list, where sampling did not apply
    sampling: dict[str, Any] | None = None
    #: what the results built from this video must tell their reader about it (a damaged or truncated file)
    warnings: list[str] = Field(default_factory=list)

    #: the merged transcript already built (building one validates every line), with what it was
    #: built from: the descriptions' times and texts (:func:`_content`), duration and step
    _built: tuple[Transcript, Any, float, float] | None = PrivateAttr(default=None)

    def transcript(self, *, merge: bool = True) -> Transcript:
        """The descriptions as a transcript (runs of equal texts merged, unless ``merge=False``). The merged one is
        built once and reused while the descriptions' times and texts, the duration and the step are the same: a
        description edited in place (``dv.descriptions[3].text = ...``) builds it anew."""
        built, content = self._built, _content(self.descriptions)
        if merge and built is not None and built[1:] == (content, self.duration, self.step):
            t = built[0]
        else:
            t = Transcript.from_descriptions(self.descriptions, duration=self.duration, step=self.step, merge=merge)
            if merge:
                self._built = (t, content, self.duration, self.step)
        return t if t.duration_inferred == self.duration_inferred else \
            t.model_copy(update={"duration_inferred": self.duration_inferred})

    def with_duration(self, duration: float | None) -> "DescribedVideo":
        """This video with a known ``duration`` (seconds) in place of its own; itself when ``None``."""
        duration = check_duration(duration)
        if duration is None:
            return self
        return self.model_copy(update={"duration": duration, "duration_inferred": False})

    def write(self, path: PathLike) -> int:
        """Write the descriptions file (JSONL, atomic); every line carries this video's metadata."""
        return write_descriptions(path, self.descriptions, video=self.video, duration=round(self.duration, 3),
                                  step=self.step, describer=self.describer)


def _content(descriptions: Sequence[FrameDescription]) -> tuple[tuple[float, ...], tuple[str, ...]]:
    """What a transcript is built from: the descriptions' times and texts, in order (about 1.5 ms for 7,200)."""
    return tuple(d.t for d in descriptions), tuple(d.text for d in descriptions)


def _own_copy(described: DescribedVideo) -> DescribedVideo:
    """``described`` as the caller's own: a copy whose lists, dicts and descriptions (each a copy, its extra keys
    with the dicts and lists in them, and usage too) are new, so that editing it (``dv.descriptions[:] = ...``,
    ``dv.descriptions[0].text = ...``, ``dv.descriptions[0].model_extra["meta"]["k"] = ...``, ``dv.video = ...``)
    changes nothing a session keeps for its later calls. Its built transcript is shared (a transcript is rebuilt once
    its descriptions' content differs)."""
    def own(d: FrameDescription) -> FrameDescription:
        copy = d.model_copy(update=None if d.usage is None else {"usage": d.usage.model_copy()})
        if copy.__pydantic_extra__:  # model_copy copies the extras' dict, not the dicts and lists in it
            object.__setattr__(copy, "__pydantic_extra__", _plain_copy(copy.__pydantic_extra__))
        return copy

    return described.model_copy(update={
        "descriptions": [own(d) for d in described.descriptions], "settings": _plain_copy(described.settings),
        "usage": described.usage.model_copy(), "warnings": list(described.warnings),
        "sampling": _plain_copy(described.sampling)})


def _plain_copy(value: Any) -> Any:
    """``value``'s dicts and lists copied, all the way down; anything else shared (a describer's settings may hold an
    object, a loaded model's: never deep-copied)."""
    if isinstance(value, dict):
        return {k: _plain_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_copy(v) for v in value]
    return value


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
    _check_path(descriptions, "a descriptions path")
    duration = check_duration(duration)
    if not isinstance(descriptions, (str, Path)) and (format != "auto" or clip_seconds is not None):
        raise ConfigurationError("format= and clip_seconds= apply to a descriptions file, not to loaded descriptions")
    if isinstance(descriptions, DescribedVideo):
        return descriptions.with_duration(duration)
    source = "<descriptions>"
    notes: list[str] = []  # how a caption file was read (subtitles as timed captions, clips from after 0)
    if isinstance(descriptions, (str, Path)):
        source = str(descriptions)
        items = read_descriptions(descriptions, format=format, clip_seconds=clip_seconds, notes=notes)
    else:
        items = []
        for i, d in enumerate(descriptions):
            try:
                items.append(d if isinstance(d, FrameDescription) else FrameDescription.model_validate(d))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(map(str, first["loc"]))
                raise InputError(f"descriptions[{i}]{'.' + where if where else ''}: {first['msg']}") from None
        if not items:
            raise InputError("no descriptions given")
        index_of: dict[float, int] = {}  # as a file's 't' already on line N: one description a frame time
        for i, d in enumerate(items):
            if (first := index_of.setdefault(d.t, i)) != i:
                raise InputError(f"descriptions[{i}]: 't' {d.t:g} is already at descriptions[{first}]: one description "
                                 "a frame time (two lists joined, or one given twice?)")
        items.sort(key=lambda d: d.t)
    meta_duration = description_metadata(items, "duration")
    if meta_duration is not None and (isinstance(meta_duration, bool) or not isinstance(meta_duration, (int, float))):
        raise InputError(f"the 'duration' metadata must be a number of seconds, got {meta_duration!r}", path=source)
    meta_step = description_metadata(items, "step")
    step = float(meta_step) if isinstance(meta_step, (int, float)) and meta_step > 0 else None
    if step is not None and step > MAX_SECONDS:
        raise InputError(f"the 'step' metadata ({step:g} s) is past any video's length", path=source)
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
        warnings=notes,
    )
    described._built = (transcript, _content(items), described.duration, described.step)
    return described


def check_duration(duration: Any) -> float | None:
    """``duration`` as seconds (``None`` stays ``None``), or an :class:`InputError` for anything else
    than a finite positive number."""
    if duration is None:
        return None
    if isinstance(duration, bool) or not isinstance(duration, (int, float)):
        raise InputError(f"duration must be a number of seconds, got {type(duration).__name__} {duration!r}")
    if not math.isfinite(duration) or duration <= 0:
        raise InputError(f"duration must be a finite positive number of seconds, got {duration}")
    try:
        return check_seconds(float(duration), "duration")
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _stage2_args(video: Any, descriptions: Any, duration: Any) -> tuple[Any, Any, float | None]:
    """``(video, descriptions, duration)`` checked: one input (a :class:`DescribedVideo` or a list of descriptions
    given as the video is the descriptions), a video path (str or Path), a valid duration, and none with a video path: a video's
    duration is the one decoded (the command line refuses ``--duration`` with a video alike)."""
    duration = check_duration(duration)
    if isinstance(video, (DescribedVideo, list, tuple)) and descriptions is None:  # the descriptions, given first
        video, descriptions = None, video
    if video is not None:
        _check_video(video, "a video path (str or Path), describe()'s output, or None with descriptions=")
    if (video is None) == (descriptions is None):
        raise ConfigurationError("give exactly one of video= or descriptions=")
    if video is not None and duration is not None:  # it replaced the decoded duration, silently
        raise ConfigurationError("duration= applies to descriptions=: a video's duration is read from the video "
                                 "(to set one anyway, give describe(video).with_duration(seconds) as the video)")
    return video, descriptions, duration


def _paid_now(video: Any, described: DescribedVideo) -> Usage:
    """What describing ``video`` cost in this call, for an error raised after it (the reasoner failed): the
    describe's paid requests when a video path was described now; nothing when it was given descriptions, or
    this session had described the video before (their cost was the calls' that made them: an eval counts an
    agnostic describe once, on the video's record)."""
    return described.usage if video is not None and described.usage.requests else Usage()


def _frame_counts(descriptions: Sequence[FrameDescription], own: Any = None,
                  cached: int | None = None) -> dict[str, int]:
    """``{"calls": n, "cached": m}`` of a describe: the frames sent to the describer (each description but those the
    description cache gave, ``cached``, by default the descriptions' ``usage.cached``, and skip-unchanged's reuses,
    ``reused_from``) and the cache hits, whether or not the describer reports usage (``cv`` reports none); ``own``,
    an error's own usage, adds the requests its describer paid and never handed over (answers in flight as it
    failed)."""
    if cached is None:
        cached = sum(d.usage.cached for d in descriptions if d.usage is not None)
    reused = sum((d.model_extra or {}).get("reused_from") is not None for d in descriptions)
    own = own if isinstance(own, Usage) else Usage()
    return {"calls": len(descriptions) - cached - reused + own.requests, "cached": cached + own.cached}


@contextmanager
def _counted(counts: Callable[[Any], dict[str, int]], stream: bool = False) -> Iterator[None]:
    """An error or a Ctrl-C leaving the block carries ``described``, ``counts(own)`` (:func:`_frame_counts`), as
    a search's does (:func:`pipelines.search.counted_on_error`): an eval counts the frames a failed describe, or a
    query whose reasoner failed after its video was described, sent (they were 0, though paid). From a frame stream
    (``stream``: enter it inside ``keep_paid``) the error's own usage is what its describer paid and never handed
    over. One a search set is kept."""
    try:
        yield
    except (VidgroundError, KeyboardInterrupt) as exc:
        if not isinstance(getattr(exc, "described", None), dict):
            own = getattr(exc, "usage", None) if stream else None
            exc.described = counts(own)  # type: ignore[union-attr]
        raise


@contextmanager
def _paid_and_counted(video: Any, described: DescribedVideo) -> Iterator[None]:
    """:func:`keep_paid` with :func:`_paid_now` for an error raised after ``video`` was described (the reasoner
    failed), and the frames describing it sent in this call (:func:`_counted`; none where it was described before
    or given as descriptions)."""
    now = video is not None and bool(described.seconds)  # recalled (seconds 0) or given: nothing described now
    frames = described.descriptions if now else []
    with keep_paid(lambda: _paid_now(video, described)), \
            _counted(lambda _: _frame_counts(frames, cached=described.usage.cached if now else 0)):
        yield


def _describer_warnings(describer: Any) -> list[str]:
    """What a describer says a result built from its descriptions should tell its reader (its ``warnings``, as the
    replay's captions ending before the video does); none for one that says nothing."""
    said = getattr(describer, "warnings", None)
    return [w for w in said if isinstance(w, str)] if isinstance(said, list) else []


def _no_text(descriptions: Sequence[FrameDescription]) -> list[str]:
    """A warning naming the frames whose description has no text (a reply a content filter refused, or an empty
    one), with their times and the reasons the replies gave; none when every frame has words. Such a description
    is in no cache (:meth:`~frame_describer.cache.DescriptionCache.store`), so describing the video again asks
    for those frames again."""
    empty = [d for d in descriptions if not d.text.strip() or (d.model_extra or {}).get("empty_reply")]
    if not empty:
        return []
    reasons = sorted({str((d.model_extra or {}).get("empty_reply") or "empty") for d in empty})
    times = ", ".join(f"{d.t:g}" for d in empty[:12]) + (f", ... ({len(empty) - 12} more)" if len(empty) > 12 else "")
    return [f"{len(empty)} of {len(descriptions)} frames have no description (the describer's reply had no text: "
            f"{', '.join(reasons)}) at {times} s: nothing is known of those times; they are not cached, so "
            f"describing the video again asks for them again"]


def _check_path(value: Any, what: str) -> None:
    if isinstance(value, (bytes, bytearray)):
        raise InputError(f"{what} must be a str or Path, got {type(value).__name__}")


def _check_video(video: Any, accepted: str) -> None:
    """An :class:`InputError` naming ``video=`` and what is ``accepted`` when it is none of them."""
    _check_path(video, "a video path")
    if not isinstance(video, (str, os.PathLike)):
        raise InputError(f"video must be {accepted}, got {type(video).__name__} {video!r:.60}")
    refuse_url(video)


#: what a backend given as an object needs (the protocols of frame_describer and temporal_reasoner), and specs
_BACKEND_NEEDS = {"describer": (("name", "settings"), ("describe",), "describe(frames, query=None)", "cv, openai:MODEL"),
                  # one of ground/answer/events/chat: a reasoner used only for questions or events needs no ground()
                  "reasoner": (("name", "settings"), ("ground", "answer", "events", "chat"),
                               "ground(query, transcript) (or answer/events/chat)", "embedding, openai:MODEL")}


def _check_backend(kind: str, backend: Any) -> None:
    """A :class:`ConfigurationError` naming ``describer=``/``reasoner=`` when it is neither ``None``, a spec
    string, nor an object with the protocol's members (it was an ``AttributeError`` at first use)."""
    if backend is None or isinstance(backend, str):
        return
    members, any_of, call, specs = _BACKEND_NEEDS[kind]
    lacks = [m for m in members if not hasattr(backend, m)]
    if not any(hasattr(backend, m) for m in any_of):
        lacks.append(" or ".join(any_of))
    if lacks:
        raise ConfigurationError(f"{kind}= must be a spec string ({specs}...) or an object with name, settings() "
                                 f"and {call}; got an instance of {type(backend).__name__}, which has no "
                                 + ", ".join(lacks))


def implied_cache(describer: Any, options: dict[str, Any] | None = None) -> tuple[Path | None, bool]:
    """The description cache a session given no ``cache=`` uses, and whether it is the default one: the file
    ``$VIDGROUND_CACHE`` names when set (the user's choice, for any describer); else the default file
    (:func:`frame_describer.cache.default_cache_path`, as an eval's) for a describer given as a spec string of one of the
    project's own describers, ``None`` for the default (:meth:`~vidground.registry.Registry.builtin`); else none.
    A describer given as an object (or a plug-in's spec) is keyed by its name and ``settings()`` alone, and two
    different ones can share both (a subclass of ``BaseDescriber`` that keeps the default ``settings()``): such a
    describer is cached only in a cache the user names, never in the shared default one. So is one of the project's
    own whose class's ``cache_by_default(options)`` says its ``options`` (``describer_options``) leave its key
    incomplete (``hf:`` given a loaded ``hf_model``)."""
    from frame_describer.cache import default_cache_path

    if os.environ.get("VIDGROUND_CACHE"):
        return default_cache_path(), False
    if describer is None:
        return default_cache_path(), True
    if isinstance(describer, str) and describers.builtin(describer):
        by_default = getattr(describers.target(split_spec(describer)[0], spec=describer), "cache_by_default", None)
        if by_default is None or by_default(dict(options or {})):
            return default_cache_path(), True
    return None, False


def check_cache(cache: Any) -> Any:
    """A session's ``cache=`` checked: a :class:`~frame_describer.cache.DescriptionCache`, the path of its file (str or
    ``os.PathLike``), ``False`` (none) or ``None`` (:func:`implied_cache`'s); ``True`` is taken as ``None`` (the cache
    a session uses when given none). Anything else is a :class:`ConfigurationError` now (it was a ``TypeError`` at the
    first call that used the cache)."""
    if cache is True:
        return None
    if cache is None or cache is False or isinstance(cache, (str, os.PathLike)):
        return cache
    from frame_describer.cache import DescriptionCache  # imported only for an object (76 ms)

    if isinstance(cache, DescriptionCache):
        return cache
    raise ConfigurationError(f"cache= must be the path of a description cache file (str or Path), a DescriptionCache, "
                             f"True or None for the default one, or False for none; got {type(cache).__name__} "
                             f"{cache!r:.60}")


def eval_cache(describer: Any, options: dict[str, Any] | None = None) -> Path | None:
    """The description cache an eval given no cache uses: :func:`implied_cache`'s, checked to open before the run
    starts (an eval's reruns and resumes count on it, so one that cannot be used is an error, not a session's
    warning); ``None``, with a warning that says so and how to keep them, for a describer cached only in a cache
    the user names (a plug-in, an object, ``hf:`` given a loaded ``hf_model``)."""
    from frame_describer.cache import DescriptionCache

    cache = implied_cache(describer, options)[0]
    if cache is None:
        name = describer if isinstance(describer, str) else type(describer).__name__
        log.warning("describer %s: its descriptions are kept only in a cache you name (it is keyed by its name and "
                    "settings alone, which another describer can share), so this run keeps none and a rerun or a "
                    "resumed run describes its videos again; name one to keep them: --cache FILE (cache= in Python, "
                    "or $VIDGROUND_CACHE)", printable(str(name)))
        return None
    DescriptionCache(cache).close()
    return cache


def open_default_cache(path: Path) -> Any:
    """The default description cache at ``path``, or ``None`` (and a warning, once per process and path) when it
    cannot be opened (a read-only home, a folder in its place): nobody asked for it, so the command goes on
    without it. It is opened ``optional``: one that fails later (a full disk, a damaged file) warns and goes off."""
    from frame_describer.cache import DescriptionCache, default_cache_failed

    try:
        return DescriptionCache(path, optional=True)
    except (ConfigurationError, OSError) as exc:
        default_cache_failed(path, exc)
        return None


def _progress(iterable: Iterable[Any], total: int | None, enabled: bool, desc: str) -> Iterable[Any]:
    if not enabled or not sys.stderr.isatty():
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="frame", leave=False)


def _for_video(describer: Any, path: Path) -> Any:
    """The describer to describe the video at ``path`` with: ``describer.for_video(path)`` where it has one (a
    ``replay:`` describer refuses a video its captions are not of), else ``describer``."""
    hook = getattr(describer, "for_video", None)
    return describer if hook is None else hook(path)


#: the packages whose describers and reasoners are the project's own: their outputs are not checked again
_OWN_PACKAGES = frozenset({"frame_describer", "temporal_reasoner", "pipelines", "vidground"})


def _plugin(backend: Any) -> str | None:
    """How a describer or reasoner that is not the project's own is named in an error (``'mine' (my_pkg.Mine)``),
    else ``None``: only a plug-in's outputs are checked against its protocol."""
    kind = type(backend)
    if kind.__module__.partition(".")[0] in _OWN_PACKAGES:
        return None
    return f"{getattr(backend, 'name', kind.__name__)!r} ({kind.__module__}.{kind.__qualname__})"


def _identity(backend: Any, kind: str = "describer") -> dict[str, Any]:
    """A backend's ``name`` and ``settings()`` as a result records them (as JSON data: numpy values as numbers, so
    ``--json`` and an eval's records can write them); a plug-in's that is no text, or no dict, is a
    :class:`PluginError` naming the member (a raw pydantic ``ValidationError`` before)."""
    name = getattr(backend, "name", None)
    named = _plugin(backend)
    if named is None:
        return {kind: name, "settings": jsonable(backend.settings())}
    plugin = str(name if isinstance(name, str) else type(backend).__name__)
    if not isinstance(name, str) or not name:
        raise PluginError(f"{kind} {named} broke the {kind} protocol: its name must be a non-empty str, got "
                          f"{type(name).__name__} {name!r:.60}", plugin=plugin, protocol="name")
    with _calling(named, kind, "settings", plugin):
        settings = backend.settings()
    if not isinstance(settings, dict):
        raise PluginError(f"{kind} {named} broke the {kind} protocol: settings() must return a dict (everything "
                          f"that changes its output), got {type(settings).__name__} {settings!r:.60}", plugin=plugin,
                          protocol="settings")
    return {kind: name, "settings": _plain(settings)}


def _plain(value: Any) -> Any:
    """A plug-in's ``value`` as JSON data: numpy values as numbers, anything else JSON cannot write (a set, an
    object) by its text, so a result holding it can be written (``--json``, an eval's records)."""
    return json.loads(json.dumps(jsonable(value), default=str))


class _CheckedDescriber:
    """A plug-in describer whose stream is checked as it is read (:class:`_CheckedStream`); everything else is the
    describer's own (``inner``, as :class:`~frame_describer.cache.CachedDescriber`'s, for :func:`pipelines.search.in_flight_of`)."""

    def __init__(self, inner: Any, named: str):
        self.inner = inner
        self.named = named

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def describe(self, frames: Iterable[Any], *, query: str | None = None) -> "_CheckedStream":
        return _CheckedStream(self, frames, query)


@contextmanager
def _calling(named: str, kind: str, call: str, name: str) -> Iterator[None]:
    """A call into a plug-in (``call``: its method): an exception it raises, other than vidground's own typed errors
    (a plug-in may raise a ProviderError to be retried), is a :class:`PluginError` naming the plug-in and the
    method, the original chained (it was "internal error: RuntimeError: my captioner crashed", naming nobody)."""
    try:
        yield
    except (VidgroundError, StopIteration):  # StopIteration: a stream's end
        raise
    except Exception as exc:
        if isinstance(exc, RuntimeError) and str(exc) in interrupts.LOCK_RELEASE_ERRORS:  # a Ctrl-C a lock turned
            raise  # into its error is raised as the Ctrl-C (interrupts.as_interrupt); one with none behind it as it is
        raise PluginError(f"error in {kind} {named}.{call}: {type(exc).__name__}: {exc}", plugin=name,
                          protocol=call) from exc


def _ms(t: float) -> int:
    return round(t * 1000)  # a frame's time as the description cache keys it


class _CheckedStream:
    """A plug-in describer's stream, checked as it is read: each item must be a :class:`FrameDescription` of a frame
    it was given, at that frame's time, one a frame, in the frames' order, else a :class:`PluginError` naming it (an
    untyped ``AttributeError`` before; a time 0.37 s off a frame's, or two descriptions of a frame, were kept, and
    a cached rerun answered other times, or one a frame). A frame it was given and left without a description is
    handed on as a description with no text (``empty_reply``), before the next frame's: the session warns of it, no
    cache stores it, and the description cache, which takes a stream's descriptions in the order of the frames it
    gave, files the others under their own frames. A stream that yields nothing of the frames it was given, or
    ``describe()`` returning no iterable, is a :class:`PluginError` too (it was "no frames could be decoded"). An
    exception the describer raises is one naming it (:func:`_calling`). Closing it closes the describer's stream;
    ``unread``/``handed`` are that stream's (:func:`frame_describer.base.leftovers`)."""

    def __init__(self, checked: _CheckedDescriber, frames: Iterable[Any], query: str | None):
        self._named = checked.named
        self._name = str(getattr(checked.inner, "name", type(checked.inner).__name__))
        self._given: dict[int, float] = {}  # the frames given and not described yet, in order (by ms)
        self._seen: set[int] = set()  # every frame given
        self._order: list[int] = []  # the same, in the order given (the sampler's: by time)
        self._last: tuple[int, float] | None = None  # the frame described last
        self._described: set[int] = set()
        self._yielded = 0
        self._ready: list[FrameDescription] = []  # handed on before the stream's next item
        self._ended = False
        self._from_frames: BaseException | None = None  # what reading the frames raised (not the describer's)
        self._snapped = False  # a description moved to its frame's time was warned of (once a stream)
        with self._calling():
            self._stream = checked.inner.describe(self._frames(frames), query=query)
            try:
                self._items = iter(self._stream)
            except TypeError:
                raise self._broke(f"describe(frames, query=None) must return an iterable of FrameDescription objects "
                                  f"(yield them), got {type(self._stream).__name__} {self._stream!r:.60}") from None

    def _calling(self) -> Any:
        return _calling(self._named, "describer", "describe", self._name)

    def _frames(self, frames: Iterable[Any]) -> Iterable[Any]:
        it = iter(frames)
        while True:
            try:
                f = next(it)
            except StopIteration:
                return
            except BaseException as exc:  # the video's error (or a stop), passed through the describer as it is
                self._from_frames = exc
                raise
            self._given[_ms(f.t)] = f.t
            self._seen.add(_ms(f.t))
            self._order.append(_ms(f.t))
            yield f

    def _broke(self, what: str) -> PluginError:
        return PluginError(f"describer {self._named} broke the describer protocol: {what}", plugin=self._name,
                           protocol="describe")

    def __iter__(self) -> "_CheckedStream":
        return self

    def __next__(self) -> FrameDescription:
        if not self._ready and not self._ended:
            self._ready = self._read()
        if not self._ready:
            raise StopIteration
        return self._ready.pop(0)

    def _read(self) -> list[FrameDescription]:
        """The next description, after the frames given before it and left without one (none at the end)."""
        try:
            with self._calling():
                d = next(self._items)
        except StopIteration:
            self._ended = True
            if not self._yielded and self._given:
                raise self._broke(f"describe() yielded no description of the {len(self._given)} frame(s) it was "
                                  "given: one description a frame") from None
            return self._left(math.inf)
        except PluginError as exc:
            if exc.__cause__ is not None and exc.__cause__ is self._from_frames:
                raise self._from_frames from None  # the video's own error, not the describer's
            raise
        if not isinstance(d, FrameDescription):
            raise self._broke(f"describe(frames, query=None) must yield FrameDescription objects (one a frame given, "
                              f"at its time), got {type(d).__name__} {d!r:.60}")
        ms = _ms(d.t)
        if ms not in self._seen and (near := self._nearest_open(ms)) is not None:
            # a time worked out as index/fps (0.5 for a frame at 0.501 s of a 29.97-fps video): that frame's, moved
            # to its time (refused at first, RV-S: such describers worked before the check)
            if not self._snapped:
                self._snapped = True
                log.warning("describer %s yielded a description at t=%g s for the frame at %g s: taken as that "
                            "frame's (give each description its frame's time, t=frame.t)", self._named, d.t,
                            self._given[near])
            d = d.model_copy(update={"t": self._given[near]})
            ms = near
        if ms not in self._seen:
            last = max(self._seen, default=None)
            where = ("which is no frame it was given (it was given none yet)" if last is None else
                     f"past the last frame it was given ({last / 1000:g} s)" if ms > last else
                     f"which is no frame it was given (the last one given is at {last / 1000:g} s)")
            raise self._broke(f"describe() yielded a description at t={d.t:g} s, {where}: each description is of a "
                              "frame given, at that frame's time")
        if ms in self._described:
            raise self._broke(f"describe() yielded a second description of the frame at t={d.t:g} s: one description "
                              "a frame")
        if self._last is not None and ms < self._last[0]:
            raise self._broke(f"describe() yielded a description of the frame at t={d.t:g} s after one of the frame at "
                              f"{self._last[1]:g} s: descriptions come in the order of the frames given")
        self._last = (ms, d.t)
        self._described.add(ms)
        self._yielded += 1
        out = self._left(ms)
        del self._given[ms]
        return [*out, d]

    def _nearest_open(self, ms: int) -> int | None:
        """The frame given and not yet described nearest ``ms``, where ``ms`` is within half the spacing of the frames
        given around it (a describer's own arithmetic of the frame's time), else None."""
        if not self._given:
            return None
        near = min(self._given, key=lambda m: abs(m - ms))
        at = self._order.index(near, max(len(self._order) - len(self._given) - 1, 0))  # among the last given
        if at == 0:  # the first frame: no spacing before it to go by
            return None
        around = self._order[at - 1:at + 2]  # its neighbours, not a sort of every frame per description
        gaps = [abs(b - a) for a, b in zip(around, around[1:]) if b != a]
        return near if gaps and abs(near - ms) <= min(gaps) / 2 else None

    def _left(self, before: float) -> list[FrameDescription]:
        """The frames given before ``before`` (ms) and not described, as descriptions with no text."""
        skipped = [m for m in self._given if m < before]
        return [FrameDescription(t=self._given.pop(m), text="", empty_reply="describe() yielded no description of it")
                for m in skipped]

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if callable(close):
            with self._calling():
                close()

    @property
    def unread(self) -> Any:
        return getattr(self._stream, "unread", ())

    @property
    def handed(self) -> Any:
        return getattr(self._stream, "handed", None)


def _checked_ground(rsn: Any, query: str, transcript: Transcript) -> GroundingResult:
    """``rsn.ground(query, transcript)``, a plug-in's result checked (:func:`_checked_result`) and an exception it
    raises named (:func:`_calling`)."""
    named = _plugin(rsn)
    if named is None:
        return rsn.ground(query, transcript)
    with _calling(named, "reasoner", "ground", str(getattr(rsn, "name", type(rsn).__name__))):
        result = rsn.ground(query, transcript)
    return _checked_result(rsn, result, transcript)


#: what each of a reasoner's calls must return, and where its spans are
_RETURNS = {GroundingResult: ("ground(query, transcript)", "intervals"),
            Answer: ("answer(question, transcript, choices=None)", "intervals"),
            Events: ("events(transcript, **options)", "events")}


def _checked_result(rsn: Any, result: Any, transcript: Transcript, kind: type = GroundingResult,
                    choices: Sequence[str] | None = None) -> Any:
    """``result`` of a call of ``rsn`` (a :class:`GroundingResult`, :class:`Answer` or :class:`Events`: ``kind``); a
    plug-in's is checked as the chat reasoners check a model's reply
    (:func:`temporal_reasoner.parsing.parse_reply_detailed`): a :class:`PluginError` naming it for another type (an
    ``AttributeError`` later, before), an answer's ``choice`` that is no index of the ``choices`` it was asked about
    (a crash when an eval mapped it, before), or a span ending more than the tolerance (one step, or 2% of the
    duration) past the transcript's end; one within it is clamped to the end, with a warning."""
    named = _plugin(rsn)
    if named is None:
        return result
    call, field = _RETURNS[kind]
    protocol = call.partition("(")[0]
    name = str(getattr(rsn, "name", type(rsn).__name__))
    if not isinstance(result, kind):
        raise PluginError(f"reasoner {named} broke the reasoner protocol: {call} must return "
                          f"{'an' if kind.__name__[0] in 'AEIOU' else 'a'} {kind.__name__}, "
                          f"got {type(result).__name__} {result!r:.60}", plugin=name, protocol=protocol)
    result = _revalidated(result, kind, f"reasoner {named} broke the reasoner protocol: {protocol}() returned", name,
                          protocol)
    if kind is Answer and result.choice is not None and result.choice not in range(len(choices or ())):
        offered = (f"the {len(choices)} choices' indices 0-{len(choices) - 1}" if choices
                   else "None (no choices were given)")
        raise PluginError(f"reasoner {named} broke the reasoner protocol: {protocol}() returned choice "
                          f"{result.choice!r}, which must be {offered}", plugin=name, protocol=protocol)
    spans, warnings = [], []
    if kind is Answer and result.choice is not None and choices and \
            " ".join(result.answer.split()).casefold() != " ".join(str(choices[result.choice]).split()).casefold():
        warnings.append(f"reasoner {name!r}: its answer {result.answer!r:.60} is not the choice it names (choices"
                        f"[{result.choice}] {choices[result.choice]!r:.60}); the choice is what an eval scores")
    duration = transcript.duration
    tolerance = max(transcript.step or 0.0, 0.02 * duration)
    width = transcript.step or max(0.01 * duration, 0.1)
    for i, span in enumerate(getattr(result, field)):
        if span.end > duration + tolerance:
            raise PluginError(f"reasoner {named} broke the reasoner protocol: {protocol}() returned {field}[{i}] "
                              f"[{span.start:g}, {span.end:g}], outside the transcript, which lasts {duration:g} s (the "
                              f"tolerance is {tolerance:g} s, as for a chat model's reply)", plugin=name,
                              protocol=protocol)
        if span.end > duration:
            start, end = min(span.start, duration), float(duration)
            if end <= start:
                start = max(duration - width, 0.0)
            warnings.append(f"reasoner {name!r}: {field}[{i}] [{span.start:g}, {span.end:g}] clamped to "
                            f"[{start:g}, {end:g}], the transcript's {duration:g} s")
            span = span.model_copy(update={"start": start, "end": end})
        spans.append(span)
    if not warnings:
        return result
    return result.model_copy(update={field: spans, "warnings": [*result.warnings, *warnings]})


def _revalidated(result: Any, kind: type, said: str, name: str, protocol: str) -> Any:
    """A plug-in's ``result`` validated again, as a new one would be: one built with ``model_construct``, or changed
    in place or by ``model_copy(update=...)`` (neither validates), held a NaN start (written as a bare ``NaN`` in
    results.jsonl), an interval ending before it starts, a tuple for an interval (an ``AttributeError`` later).
    ``raw`` and ``settings`` become JSON data (numpy values as numbers: an array in ``raw`` stopped an eval's writes).
    A :class:`PluginError` (``said`` first) for what is invalid."""
    try:
        data = result.model_dump(warnings=False)
        data.update(raw=_plain(data.get("raw")), settings=_plain(data.get("settings") or {}))
        return kind.model_validate(data)
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        raise PluginError(f"{said} an invalid {kind.__name__}: {errors}", plugin=name, protocol=protocol) from None
    except Exception as exc:  # a member that is no model at all (a tuple among the intervals)
        raise PluginError(f"{said} an invalid {kind.__name__}: {type(exc).__name__}: {exc}", plugin=name,
                          protocol=protocol) from exc


class _PluginReasoner:
    """A plug-in reasoner as the project's code calls it (a coarse-to-fine search, the evidence baseline, the events
    paths): its ``ground`` checked (:func:`_checked_ground`), everything else its own (``entry_scores``, ``name``...)."""

    def __init__(self, rsn: Any):
        self.rsn = rsn

    def __getattr__(self, name: str) -> Any:
        if name == "rsn":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        found = getattr(self.rsn, name)
        if not inspect.ismethod(found):
            return found

        @wraps(found)
        def call(*args: Any, **kwargs: Any) -> Any:  # an exception it raises names it
            with _calling(_plugin(self.rsn) or "", "reasoner", name, str(getattr(self.rsn, "name", "?"))):
                return found(*args, **kwargs)

        return call

    def ground(self, query: str, transcript: Transcript) -> GroundingResult:
        return _checked_ground(self.rsn, query, transcript)


def _as_called(rsn: Any) -> Any:
    """``rsn`` as the project's code calls it: a plug-in's ``ground`` checked (:class:`_PluginReasoner`)."""
    return rsn if _plugin(rsn) is None else _PluginReasoner(rsn)


#: the suffixes of the descriptions and caption files :func:`load_descriptions` reads, which no video has
_DESCRIPTIONS_SUFFIXES = frozenset({".jsonl", ".json", ".csv", ".tsv", ".txt", ".srt", ".vtt"})


#: how each call takes a descriptions file, for :func:`_video_hint`
_GIVE_DESCRIPTIONS = {"ground": "pass it as descriptions=PATH (ground(descriptions=PATH, query=...))",
                      "answer": "pass it as descriptions=PATH (answer(descriptions=PATH, question=...))",
                      "events": "pass it as descriptions=PATH (events(descriptions=PATH))",
                      "describe": "it needs no describing: load_descriptions(PATH) reads it"}


@contextmanager
def _video_hint(path: Path, call: str = "ground") -> Iterator[None]:
    """A :class:`VideoDecodeError` of a "video" named like a descriptions file (``x.descriptions.jsonl`` given as the
    video, ``ground("x.descriptions.jsonl", q)``) says how ``call`` (ground, answer, events, describe) takes it."""
    try:
        yield
    except VideoDecodeError as exc:
        if path.suffix.lower() not in _DESCRIPTIONS_SUFFIXES:
            raise
        error = VideoDecodeError(exc.path, f"{exc.reason}; a {path.suffix} file looks like descriptions, not a video: "
                                 f"{_GIVE_DESCRIPTIONS[call]}")
        error.usage = exc.usage
        error.descriptions_file = exc.reason  # type: ignore[attr-defined]  # the command line says its own way
        raise error from exc


def _file_key(path: Path) -> tuple[Any, ...] | None:
    """What identifies a file's current content cheaply: its resolved path, device and inode (a file
    replaced by another is a new inode), size, and modification and change times (``ctime`` cannot be
    set back by tools that keep a copy's mtime)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _session_call(method: Callable[..., Any]) -> Callable[..., Any]:
    """A public call of a :class:`Session`, counted while it runs, so :meth:`Session.close` waits for it before it
    closes the backends and cache it uses; refused with a :class:`SessionClosedError` once the session is closed."""
    @wraps(method)
    def call(self: "Session", *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._check_open()
            self._calls += 1
        depth = getattr(self._in_call, "depth", 0)
        self._in_call.depth = depth + 1
        try:
            with interrupts.as_interrupt():  # a Ctrl-C a lock's wait turned into "release unlocked lock" is a Ctrl-C
                return method(self, *args, **kwargs)
        finally:
            self._in_call.depth = depth
            with self._lock:
                self._calls -= 1
                self._idle.notify_all()

    return call


class Session:
    """Owns a describer, a reasoner, the sampling settings and the description cache for many calls.

    ``describer``/``reasoner`` are spec strings (``"cv"``, ``"openai:gpt-4o-mini"``, ``"embedding"``...,
    built on first use with ``describer_options``/``reasoner_options``) or instances. Specs and options are checked
    here (:func:`check_backends`: no model loaded, no server contacted), so a wrong one is a
    :class:`ConfigurationError` before any frame is described, even by :meth:`describe`, which needs no reasoner (an
    ``openai:`` describer without an API key too, in a session only given descriptions: pass ``describer=None``).
    ``sampling`` is a
    :class:`~vidground.types.Sampling` or its settings (``fps``, ``num_frames``, ``max_frames``,
    ``max_side``), checked here. ``cache`` is a :class:`~frame_describer.cache.DescriptionCache`, the path
    of its SQLite file, ``False`` for none, or ``None`` (default; ``True`` is the same): ``$VIDGROUND_CACHE`` when set, else the default
    cache ``~/.cache/vidground/descriptions.sqlite`` (as an eval's) for the project's own describers given as spec
    strings, none for a describer given as an object (:func:`implied_cache`). A default cache that cannot be opened
    is a warning, and the session goes on without it. ``motion=True``
    appends to each description what moved since the previous sample (:mod:`frame_describer.motion`),
    measured outside the cache, which keeps the describer's own descriptions. ``search`` chooses which
    frames :meth:`ground` describes on a video: all of the sampling grid (``"uniform"``, default) or
    ``"coarse-to-fine"`` (a :class:`~pipelines.search.Search` or its settings: ``budget``...), see
    :mod:`pipelines.search` (:meth:`answer` and :meth:`events` describe the whole grid and say so);
    ``skip_unchanged`` (grey levels) does not send a frame nearly the same as
    the last one sent and reuses its description (:mod:`frame_describer.skip`); a result records how many
    frames were sent to the describer, answered by the description cache and reused in
    ``settings["skip_unchanged"]`` (``sent``, ``cached``, ``reused``).
    """

    def __init__(
        self,
        *,
        describer: str | Describer | None = None,
        reasoner: str | Reasoner | None = None,
        sampling: Sampling | dict[str, Any] | None = None,
        cache: Any = None,
        describer_options: dict[str, Any] | None = None,
        reasoner_options: dict[str, Any] | None = None,
        progress: bool = False,
        motion: bool = False,
        search: Any = None,
        skip_unchanged: float | None = None,
    ):
        if sampling is not None and not isinstance(sampling, (Sampling, dict)):
            raise ConfigurationError(f"sampling= must be a Sampling or a dict of its settings (fps, num_frames, "
                                     f"max_frames, max_side), got {type(sampling).__name__} {sampling!r}")
        self.sampling = Sampling.of(sampling)
        if not isinstance(motion, bool):
            raise ConfigurationError(f"motion must be True or False, got {motion!r}")
        self.motion = motion
        from .search import Search, check_skip_unchanged

        self.search = Search.of(search)  # coarse-to-fine describing for ground() on a video (pipelines.search)
        self.skip_unchanged = check_skip_unchanged(skip_unchanged)
        if motion and self.search.refines:  # the passes' frames are far apart: "what moved since" means nothing
            raise ConfigurationError("motion=True (--motion) and a coarse-to-fine search cannot be combined: the "
                                     "motion stream compares each frame with the one sampled just before it")
        self._searched: OrderedDict[tuple[Any, ...], dict[tuple[float, float], FrameDescription]] = OrderedDict()
        for name, spec, options in (("describer", describer, describer_options),
                                     ("reasoner", reasoner, reasoner_options)):
            if options and spec is not None and not isinstance(spec, str):
                raise ConfigurationError(f"{name}_options are only accepted together with a {name} spec string")
            _check_backend(name, spec)
        # every option's name and value now, loading no model and contacting no server: a wrong one failed after a
        # paid describer had described the video (a reasoner's fallback=), or after the reasoner loaded its model
        try:
            check_backends(DEFAULT_DESCRIBER if describer is None and describer_options else describer,
                           describer_options, reasoner, reasoner_options)
        except ConfigurationError as exc:  # kept for a session used with descriptions only: say how to make one
            if not (str(exc).startswith("describer ") and "no API key" in str(exc)):
                raise
            raise ConfigurationError(f"{exc}; to use descriptions only, pass describer=None (command line: "
                                     "--descriptions FILE)") from None
        self._specs = {"describer": (describer, dict(describer_options or {})),
                       "reasoner": (reasoner, dict(reasoner_options or {}))}
        self._built: dict[str, Any] = {}  # backends this session built, and so closes
        self._cache_arg = check_cache(cache)
        self._unkeyable = False  # a describer whose settings cannot key the cache was said to be uncached
        self._cache: Any = None
        self._own_cache = False
        self.progress = progress
        self._lock = threading.RLock()
        self._videos: OrderedDict[tuple[Any, ...], DescribedVideo] = OrderedDict()
        self._describing: dict[tuple[Any, ...], threading.Lock] = {}  # one describe per video at a time
        self._closed = False  # new calls refused (close() began)
        self._closing = False  # a close() is waiting for the calls or closing the backends and cache
        self._shut = False  # the backends and cache are closed
        self._calls = 0  # public calls under way (their threads'), waited for by close()
        self._idle = threading.Condition(self._lock)
        self._in_call = threading.local()  # how deep this thread is in the session's calls

    # -- resources ---------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise SessionClosedError("this session is closed; start a new one")

    def _backend(self, kind: str) -> Any:
        self._check_open()
        spec, options = self._specs[kind]
        if spec is not None and not isinstance(spec, str):
            return spec
        with self._lock:
            if kind not in self._built:
                make = get_describer if kind == "describer" else get_reasoner
                self._built[kind] = make(spec, **options)
            return self._built[kind]

    @property
    def describer(self) -> Describer:
        """The describer, built on first use."""
        return self._backend("describer")

    @property
    def reasoner(self) -> Reasoner:
        """The reasoner, built on first use."""
        return self._backend("reasoner")

    @property
    def cache(self) -> Any:
        """The description cache (``None`` when there is none), opened on first use."""
        self._check_open()
        with self._lock:
            if self._cache is None and self._cache_arg is not False:
                from frame_describer.cache import DescriptionCache, default_cache_failed

                arg, default = self._cache_arg, False
                if arg is None:
                    try:
                        arg, default = implied_cache(*self._specs["describer"])
                    except NoCacheFolderError as exc:  # no home: as unusable a default cache as a read-only one
                        default_cache_failed(None, exc)
                if isinstance(arg, DescriptionCache):
                    self._cache = arg
                elif arg is not None and default:  # asked for by nobody: a cache that cannot be opened is not an error
                    self._cache, self._own_cache = open_default_cache(arg), True
                elif arg is not None:
                    self._cache, self._own_cache = DescriptionCache(Path(arg).expanduser()), True
                if self._cache is None:
                    self._cache_arg = False
            return self._cache

    def close(self) -> None:
        """Close the backends and the cache this session opened; forget the videos it remembered. Idempotent.

        Safe while other threads are in calls of this session (a service shutting down): a new call is refused at
        once with a :class:`~vidground.errors.SessionClosedError`; a call describing a video stops sending frames and
        raises it (its ``usage`` counts what was paid, and the descriptions answered are kept in the description
        cache); a call past its describing (reasoning) ends as it would. ``close()`` returns once every call of
        another thread has ended, then closes the backends and the cache, so no call finds them closed under it. So does
        a second ``close()`` made meanwhile (another thread's, a ``with`` block's end): it returns once the first one
        has closed them and every call has ended; but one made from within a call of this session, which another
        ``close()`` is waiting for, returns at once (it cannot wait for its own call)."""
        with interrupts.as_interrupt():  # a Ctrl-C in a wait below is a KeyboardInterrupt, not the lock's error
            self._close()

    def _close(self) -> None:
        mine = getattr(self._in_call, "depth", 0)  # close() from within a call waits only for the others
        with self._lock:
            self._closed = True  # every new call is refused from now on
            while self._closing or self._shut:  # another close() closes (or closed) the backends: wait for it
                if mine:
                    return
                if self._shut:
                    while self._calls:
                        self._idle.wait()
                    return
                self._idle.wait()
            self._closing = True
            try:
                while self._calls > mine:
                    self._idle.wait()
            except BaseException:  # a Ctrl-C in the wait: another close() may close them
                self._closing = False
                with self._lock:  # held again (an RLock) even where the Ctrl-C came as the wait gave it back
                    self._idle.notify_all()
                raise
            built, self._built = list(self._built.values()), {}
            cache, own, self._cache = self._cache, self._own_cache, None
            self._videos.clear()
            self._searched.clear()
        try:
            for backend in built:
                close = getattr(backend, "close", None)
                if callable(close):
                    try:
                        close()
                    except Exception as exc:  # closing must not hide the caller's own error
                        log.warning("closing %s failed: %s", getattr(backend, "name", backend), exc)
            if cache is not None and own:
                cache.close()
        finally:
            with self._lock:
                self._shut, self._closing = True, False
                self._idle.notify_all()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- stage 1 ---------------------------------------------------------------------------------------
    def _remember(self, key: tuple[Any, ...] | None, described: DescribedVideo) -> DescribedVideo:
        if key is not None:
            with self._lock:
                self._videos[key] = described
                self._videos.move_to_end(key)
                while len(self._videos) > REMEMBERED:
                    self._videos.popitem(last=False)
        return described

    def remembered(self, video: PathLike) -> DescribedVideo | None:
        """What this session's :meth:`describe` made of ``video`` (unchanged since) as it made it, its ``usage``
        included (``usage.cached``: the frames the description cache gave), or ``None`` when it is not remembered
        (not described yet, a query-aware describer, a coarse-to-fine search, a file changed since). Describes
        nothing."""
        key = _file_key(Path(video))
        if key is None:
            return None
        with self._lock:
            found = self._videos.get(key)
        return None if found is None else _own_copy(found)

    def has_remembered(self, video: PathLike) -> bool:
        """Whether :meth:`remembered` would give ``video``'s description, without copying it (a deep copy of a long
        video's descriptions is costly when only its presence matters)."""
        key = _file_key(Path(video))
        if key is None:
            return False
        with self._lock:
            return key in self._videos

    def _recalled(self, key: tuple[Any, ...] | None) -> DescribedVideo | None:
        if key is None:
            return None
        with self._lock:
            found = self._videos.get(key)
            if found is not None:
                self._videos.move_to_end(key)
            return found

    @_session_call
    def describe(self, video: PathLike, *, query: str | None = None) -> DescribedVideo:
        """Stage 1: sample frames from ``video`` with this session's sampling and describe each one.

        Frames stream from the decoder to the describer, so memory does not grow with the video's
        length. ``query`` is passed to query-aware describers and ignored otherwise. A video this session
        described before (same file, unchanged) is answered from memory; frames described before by the
        same describer with the same settings are answered by the description cache
        (``usage.cached`` counts them). Threads asking for the same video wait for one description.
        The result is the caller's own copy: editing it changes nothing this session answers later.
        """
        return _own_copy(self._described(video, query, "describe"))

    def _described(self, video: PathLike, query: str | None, call: str) -> DescribedVideo:
        """:meth:`describe`'s answer as this session keeps it (not a copy: for its own calls, which only read it);
        ``call`` names the method asked (ground, answer, events, describe) for :func:`_video_hint`."""
        self._check_open()
        _check_video(video, "a video path (str or Path)")
        path = Path(video)
        key = _file_key(path)  # only query-agnostic descriptions are remembered
        if key is None or self._known_aware():  # a query-aware describer describes per query
            return self._describe(path, None, query, call)
        with self._lock:
            gate = self._describing.setdefault(key, threading.Lock())
        with gate:  # threads asking for the same video wait for one description of it
            try:
                return self._describe(path, key, query, call)
            finally:
                with self._lock:
                    self._describing.pop(key, None)

    def _stop_if_closed(self, path: Path, described: int) -> None:
        """A :class:`SessionClosedError` when the session was closed while a call described ``path``: no more frames
        are sent (those under way are answered and kept in the description cache)."""
        if self._closed:
            raise SessionClosedError(f"this session was closed while describing {path} ({described} frame(s) "
                                     "described): no more frames are sent; start a new session")

    def _known_aware(self) -> bool:
        spec = self._specs["describer"][0]
        desc = spec if spec is not None and not isinstance(spec, str) else self._built.get("describer")
        return getattr(desc, "mode", "agnostic") == "aware"

    def _describe(self, path: Path, key: tuple[Any, ...] | None, query: str | None, call: str) -> DescribedVideo:
        with _video_hint(path, call), interrupts.doing("describing"):
            return self._describe_now(path, key, query)

    def _describe_now(self, path: Path, key: tuple[Any, ...] | None, query: str | None) -> DescribedVideo:
        self._check_open()  # closed while this thread waited for another's describe of the video
        started = time.perf_counter()
        s = self.sampling
        found = self._recalled(key)
        if found is not None:  # described (and paid for) before: this call costs nothing
            return found.model_copy(update={"usage": Usage(), "seconds": 0.0})
        found = self._all_cached(path, started)
        if found is not None:  # every frame in the description cache: nothing decoded, nothing described
            return self._remember(key, found)
        from frame_describer.sampling import sample_frames  # PyAV is imported only when a frame is decoded

        # opens the file and checks it (missing, folder, empty, not a video...) before any model is loaded
        frames = sample_frames(path, fps=s.fps, num_frames=s.num_frames, max_frames=s.max_frames, max_side=s.max_side)
        with frames:
            desc = said = _for_video(self.describer, path)  # said: the describer's own warnings (replay's)
            aware = getattr(desc, "mode", "agnostic") == "aware"
            if aware:
                if query is None:
                    raise ConfigurationError(f"describer {desc.name!r} is query-aware: give the query")
                query = check_query(query)
            if aware:
                key = None
            source = self._cached(desc, path)
            if self.skip_unchanged is not None:  # outside the cache: it holds only what the describer wrote
                from frame_describer.skip import SkipUnchanged

                source = SkipUnchanged(source, self.skip_unchanged)
            if self.motion:  # outside the cache: it holds the describer's own descriptions
                from frame_describer.motion import MotionDescriber

                source = desc = MotionDescriber(source)
            out: list[FrameDescription] = []
            # a describer that fails at frame k: the error carries what frames 0..k-1 cost (an eval counts them)
            with keep_paid(lambda: sum((d.usage for d in out if d.usage is not None), Usage())), \
                    _counted(lambda own: _frame_counts(out, own), stream=True):  # and the frames sent (free ones too)
                for d in _progress(source.describe(frames, query=query), frames.planned, self.progress,
                                   f"describing {path.name}"):
                    out.append(d)
                    self._stop_if_closed(path, len(out))
            named = _plugin(said)
            if not out and named is not None and next(frames, None) is not None:  # the video has frames
                raise PluginError(f"describer {named} broke the describer protocol: describe() yielded no description "
                                  "and read none of the frames it was given: one description a frame",
                                  plugin=str(getattr(said, "name", type(said).__name__)), protocol="describe")
        info = frames.info
        if not out:
            raise VideoDecodeError(path, "no frames could be decoded")
        times = [d.t for d in out]
        # the real spacing of the frames the sampler returned (a cap or count lowers the rate)
        step = infer_step(times) if len(times) > 1 else 1.0 / (s.fps or DEFAULT_FPS)
        # a truncated file's container claims more than the stream holds: the real end wins
        duration = max(frames.truncated_at or info.extent or 0.0, times[-1])
        seconds = time.perf_counter() - started
        reused = sum((d.model_extra or {}).get("reused_from") is not None for d in out)
        usage = sum((d.usage for d in out if d.usage is not None), Usage())  # cache hits carry Usage(cached=1)
        sent = len(out) - reused - usage.cached  # to the describer: the cache answered the others it was given
        log.info("described %d frames of %s with %s in %.2f s%s", len(out), path, desc.name, seconds,
                 f" ({sent} sent{f', {usage.cached} from the description cache' if usage.cached else ''}, {reused} "
                 "unchanged: the last one's description reused)" if self.skip_unchanged is not None else "")
        # the rate the sampler really used (1 fps when none was given; lowered by max_frames), not None
        sampling = {**s.model_dump(), "fps": frames.fps}
        if self.skip_unchanged is not None:  # frames sent to the describer, answered by the cache, and those given
            sampling["skip_unchanged"] = {"threshold": self.skip_unchanged, "sent": sent,  # the last one's words
                                          "cached": usage.cached, "reused": reused}
        if aware:  # described for this query alone, never remembered: what it sent is its own (an eval counts it)
            sampling["described"] = {"calls": sent, "cached": usage.cached}
        described = DescribedVideo(video=str(path), duration=duration, step=step, **_identity(desc),
                                   descriptions=out, usage=usage, seconds=seconds,
                                   sampling=sampling,
                                   warnings=[*frames.warnings, *_describer_warnings(said), *_no_text(out)])
        # one with frames not described is not remembered: the session's next call asks for them again
        return self._remember(None if _no_text(out) else key, described)

    def _all_cached(self, path: Path, started: float) -> DescribedVideo | None:
        """The video's descriptions when the description cache holds every frame this session's sampling
        would describe, found from the container's packet times without decoding a frame, and after the first
        time from the cache alone (:func:`~frame_describer.cache.sampling_plan`); ``None`` when one is missing (then the video is
        decoded and only the misses are described), or where the cache cannot answer alone: no cache, a
        query-aware describer, the motion stream or skip-unchanged (both work on decoded frames)."""
        if self.cache is None or self.motion or self.skip_unchanged is not None:
            return None
        from frame_describer.cache import CachedDescriber, sampling_plan
        from frame_describer.rates import rate_used

        s = self.sampling  # the times and duration are kept in the cache: a warm run opens no container
        times, duration, video_fps = sampling_plan(self.cache, path, fps=s.fps, num_frames=s.num_frames,
                                                   max_frames=s.max_frames, with_fps=True)
        desc = _for_video(self.describer, path)
        if not times or getattr(desc, "mode", "agnostic") == "aware":
            return None
        source = self._cached(desc, path)
        if not isinstance(source, CachedDescriber):  # settings that cannot key the cache: not cached
            return None
        hits = source.cache.lookup(source.fingerprint, source.key, times, also=source.also)
        if len(hits) < len(set(times)):
            return None
        out = [hits[t] for t in sorted(set(times))]
        rate = None
        if s.num_frames is None:  # the rate sample_frames would use: 1 fps by default, lowered by max_frames,
            rate = rate_used(s.fps or DEFAULT_FPS, video_fps)  # at most the video's own
            if s.max_frames and duration > 0 and math.ceil(duration * rate - 1e-9) > s.max_frames:
                rate = rate_used(s.max_frames / duration, video_fps)
        step = infer_step([d.t for d in out]) if len(out) > 1 else 1.0 / (rate or DEFAULT_FPS)
        if duration and out[-1].t < duration - 1.5 * step:
            return None  # the packets stop well before the container's claimed end: decode to find the real one
        log.info("all %d frames of %s are in the description cache: nothing decoded", len(out), path)
        capped: list[str] = []  # a rate above the video's, said as the decoding path's frames say it (once, here)
        if s.num_frames is None:
            rate_used(s.fps or DEFAULT_FPS, video_fps, warn=path, notes=capped)
        return DescribedVideo(video=str(path), duration=max(duration or 0.0, out[-1].t), step=step,
                              **_identity(desc), descriptions=out,
                              usage=Usage(cached=len(out)), seconds=time.perf_counter() - started,
                              sampling={**s.model_dump(), "fps": rate}, warnings=capped)

    def _cached(self, desc: Any, path: Path, *, searched: bool = False) -> Any:
        """``desc`` behind the description cache when there is one. What changes the image (``max_side``) is
        part of the key, and so, for describers whose output depends on the previous frame they saw, is
        everything that decides which frame that was: the sampling and skip-unchanged (the frames it does not
        send). A coarse-to-fine search (``searched``) does not use the cache for such a describer (``cv``): each of
        its rounds is a stream of its own, whose frames depend on the query, so a frame cached by one query's round
        (compared with a frame of that round) would read otherwise than the same frame described in another's."""
        uses_previous = getattr(desc, "uses_previous_frame", False)
        cache = None if searched and uses_previous else self.cache
        named = _plugin(desc)
        if named is not None:  # checked where it yields, before the cache reads a description's time
            desc = _CheckedDescriber(desc, named)
        if cache is None:
            return desc
        from frame_describer.cache import CachedDescriber, UnkeyableSettings

        extra: dict[str, Any] = {"max_side": self.sampling.max_side}
        if named is not None and (built := self._plugin_key()):  # none given: the keys of existing caches stay
            extra["plugin"] = built
        if uses_previous:
            extra.update(_sampled(self.sampling))
            if self.skip_unchanged is not None:
                extra["skip_unchanged"] = self.skip_unchanged
        # what an older vidground keyed as fps null (the same frames): read where the key misses, nothing copied
        unresolved = [{"fps": None}] if uses_previous and extra["fps"] == DEFAULT_FPS else []
        try:
            return CachedDescriber(desc, cache, path, extra=extra, read_also=unresolved)
        except UnkeyableSettings as exc:  # its key would be another each run: never found, a row a frame each run
            with self._lock:
                said, self._unkeyable = self._unkeyable, True
            if not said:
                log.warning("describer %s: not cached: %s", named or repr(getattr(desc, "name", "?")), exc)
            return desc

    def _plugin_key(self) -> dict[str, Any]:
        """What keys a plug-in's descriptions besides its name and ``settings()``, which need not say how it was
        built (a ``BaseDescriber`` subclass keeps the default ``{"name", "mode"}``): the spec's argument and the
        options it was built with, where given (``--describer-opt style=fancy`` after ``style=plain`` was answered
        ``[plain]`` from the cache). Not its class: a class renamed or moved keeps its descriptions."""
        spec, options = self._specs["describer"]
        arg = split_spec(spec)[1] if isinstance(spec, str) else None
        return {k: v for k, v in (("arg", arg), ("options", options)) if v}

    @_session_call
    def load(self, descriptions: PathLike | Sequence[FrameDescription] | DescribedVideo, *,
             duration: float | None = None, format: str = "auto", clip_seconds: float | None = None) -> DescribedVideo:
        """Stage 2's input, as :func:`load_descriptions` reads it; a file this session read before (unchanged,
        same format) is answered from memory. The result is the caller's own copy, as :meth:`describe`'s."""
        return _own_copy(self._loaded(descriptions, duration, format, clip_seconds))

    def _loaded(self, descriptions: Any, duration: Any, format: str, clip_seconds: float | None) -> DescribedVideo:
        """:meth:`load`'s answer as this session keeps it (not a copy)."""
        self._check_open()
        key = None
        if isinstance(descriptions, (str, Path)):
            file_key = _file_key(Path(descriptions))
            key = None if file_key is None else ("descriptions", file_key, format, clip_seconds)
        found = self._recalled(key)
        if found is None:
            found = self._remember(key, load_descriptions(descriptions, format=format, clip_seconds=clip_seconds))
        return found.with_duration(duration)

    # -- stage 2 -------------------------------------------------------------------------------------
    @_session_call
    def ground(
        self,
        video: PathLike | DescribedVideo | Sequence[FrameDescription] | None = None,
        query: str | None = None,
        *,
        descriptions: PathLike | Sequence[FrameDescription] | DescribedVideo | None = None,
        descriptions_format: str = "auto",
        clip_seconds: float | None = None,
        duration: float | None = None,
        top_k: int | None = None,
    ) -> GroundingResult:
        """Find when ``query`` happens: in ``video`` (described first, once per session) or in
        ``descriptions`` (a file, a list of descriptions, or :meth:`describe`'s output; the last two may also be
        given as ``video``, as for :meth:`answer`). ``top_k`` keeps only the best K intervals. ``duration`` (seconds) is for
        ``descriptions``, in place of the one the file records or the one inferred; with a video path it is a
        :class:`ConfigurationError`, as ``--duration`` is on the command line: a video's duration is the one
        decoded (to override it, give ``describe(video).with_duration(seconds)`` as the video)."""
        query = check_query(query)
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ConfigurationError(f"top_k must be a whole number >= 1, got {top_k!r}")
        video, descriptions, duration = _stage2_args(video, descriptions, duration)
        rsn = self.reasoner
        if not callable(getattr(rsn, "ground", None)):  # before any frame is described (a paid describer's calls)
            raise ConfigurationError(f"reasoner {rsn.name!r} cannot ground queries (it has no ground()); use one that "
                                     "does: embedding, openai:MODEL, hf:MODEL, llamacpp:GGUF, or your own with ground()")
        if video is not None and self.search.refines:
            if descriptions_format != "auto" or clip_seconds is not None:
                raise ConfigurationError("descriptions_format= and clip_seconds= apply to descriptions=, not to a video")
            return self._search_ground(Path(video), query, duration, top_k, rsn)
        described, transcript, timings = self._stage2_input(video, descriptions, query, descriptions_format,
                                                            clip_seconds, duration, "ground")
        started = time.perf_counter()
        with _paid_and_counted(video, described), interrupts.doing("reasoning"):  # failed: describing paid
            result = _checked_ground(rsn, query, transcript)
        timings["reason"] = round(time.perf_counter() - started, 4)
        log.info("grounded %r with %s in %.2f s: %d interval(s)", query, rsn.name, timings["reason"],
                 len(result.intervals))
        return result.model_copy(update={
            "query": query, **self._provenance(described, transcript, timings, rsn, result),
            "intervals": result.intervals[:top_k] if top_k else result.intervals,
        })

    def _reuses_answers(self, desc: Any) -> bool:
        """Whether a search is given the frames earlier queries of this session described (``known``). Not for a
        describer that compares each frame with the previous one (``cv``): the frames sent with a frame decide its
        description, so known frames would change the others' (it is free; a cache gives its frames back anyway). Not
        under skip-unchanged with a calls budget: which frames it reuses depends on the frames sent together, so known
        frames could change the answer, and only a description cache makes reuse happen then. Under skip-unchanged
        without one they are given: the cost falls (gop.mp4, 1-s grid, threshold 3: "grey", "white", "white" 141/145/145
        calls without, 141/31/0 with), but which frames a query reuses can differ after other queries."""
        if getattr(desc, "uses_previous_frame", False):
            return False
        return self.skip_unchanged is None or self.search.budget is None

    def _search_ground(self, path: Path, query: str, duration: float | None, top_k: int | None,
                       rsn: Any) -> GroundingResult:
        """Ground ``query`` in the video at ``path`` describing coarse to fine (:mod:`pipelines.search`): only
        the frames the search asks for are decoded and described, through the cache, each decoded frame once; frames
        an earlier query of this session described are reused (but not for a describer that compares each frame
        with the previous one, nor under skip-unchanged with a calls budget: there a description cache is what makes
        reuse happen; see :meth:`_reuses_answers`). The result's ``settings["search"]`` lists every frame described,
        with its pass and why."""
        from frame_describer.sampling import probe_video, rate_used, sample_frames
        from .search import coarse_to_fine, count_grid, describe_once, frame_progress, in_flight_of, rate_grid

        self._check_open()
        with _video_hint(path):
            info = probe_video(path)  # a missing or broken file fails here, before any model is loaded
        s = self.sampling
        # the video's real length (a truncated file's real end, frames past a short claim), as the dense path's: a
        # grid over the container's claim answered times past a truncated file's end with its last frame
        length = duration or info.extent
        # at most the video's own rate: above it, a denser grid only names each frame several times
        capped: list[str] = []  # the rate capped at the video's: told in the result's warnings too
        rate = rate_used(s.fps or DEFAULT_FPS, info.fps, warn=None if s.num_frames else path, notes=capped)
        grid = count_grid(length, s.num_frames) if s.num_frames else rate_grid(length, rate)
        if s.max_frames and len(grid) > s.max_frames:
            grid = count_grid(length, s.max_frames)
        desc = _for_video(self.describer, path)
        if getattr(desc, "mode", "agnostic") == "aware":
            raise ConfigurationError(f"describer {desc.name!r} is query-aware: each query is described anew, "
                                     "so a coarse-to-fine search cannot reuse frames; use the uniform strategy")
        source = self._cached(desc, path, searched=True)
        if self.skip_unchanged is not None:
            from frame_describer.skip import SkipUnchanged

            source = SkipUnchanged(source, self.skip_unchanged)

        damaged: list[str] = []  # what the passes' decoding found wrong with the file, each said once
        seen: dict[float, FrameDescription] = {}  # each decoded frame is described once a search

        def describe(times: list[float], tolerance: float = 0.0) -> Iterable[FrameDescription]:
            # a keyframe within the tolerance answers a time (the sparse pass): the frames carry their real times
            with sample_frames(path, times=times, max_side=s.max_side, tolerance=tolerance) as frames:
                for d in describe_once(frames, lambda fs: source.describe(fs, query=query), seen):
                    yield d
                    self._stop_if_closed(path, len(seen))
                damaged.extend(w for w in frames.warnings if w not in damaged)

        key = _file_key(path)
        with self._lock:
            known = dict(self._searched.get(key, {})) if key is not None and self._reuses_answers(desc) else {}
        seen.update((d.t, d) for d in known.values())
        with interrupts.doing("describing"):  # its reasoner rounds are marked "reasoning" in it
            outcome, stride = coarse_to_fine(query, _as_called(rsn), describe, grid, length, self.search, known=known,
                                             tolerant=True, in_flight=in_flight_of(desc),
                                             reuses=self.skip_unchanged is not None,
                                             progress=frame_progress(f"describing {path.name}", self.progress))
        if key is not None:
            with self._lock:
                # a frame with no description (a refused reply) is not known: the next query asks for it again
                self._searched.setdefault(key, {}).update((k, d) for k, d in outcome.answers.items() if d.text)
                self._searched.move_to_end(key)
                while len(self._searched) > REMEMBERED:
                    self._searched.popitem(last=False)
        times = [d.t for d in outcome.descriptions]
        step = grid[1] - grid[0] if len(grid) > 1 else infer_step(times)
        sampling = {**s.model_dump(), "fps": rate}
        if self.skip_unchanged is not None:  # as the uniform path records it (and settings["search"]["skipped"])
            sampling["skip_unchanged"] = {"threshold": self.skip_unchanged, "sent": outcome.calls,
                                          "cached": outcome.cached, "reused": outcome.skipped}
        described = DescribedVideo(video=str(path), duration=max(length, times[-1]), step=step, **_identity(desc),
                                   descriptions=outcome.descriptions, usage=outcome.usage,
                                   seconds=outcome.seconds, sampling=sampling,
                                   warnings=[*capped, *damaged, *_describer_warnings(desc),
                                             *_no_text(outcome.descriptions)])
        result = outcome.result
        log.info("searched %s coarse to fine for %r: %d describer call(s), %d round(s), stopped: %s", path, query,
                 outcome.calls, outcome.rounds, outcome.stop)
        prov = self._provenance(described, described.transcript(), {"search": round(outcome.seconds, 4)}, rsn, result)
        prov["usage"] = {**prov["usage"], "reason": outcome.reason_usage} if not outcome.reason_usage.is_empty() \
            else prov["usage"]
        prov["settings"]["search"] = outcome.record(self.search, stride)
        return result.model_copy(update={
            "query": query, **prov, "warnings": [*prov["warnings"], *outcome.warnings],
            "duration_inferred": duration is None and not info.duration,
            "intervals": result.intervals[:top_k] if top_k else result.intervals,
        })

    @_session_call
    def answer(
        self,
        video: PathLike | DescribedVideo | Sequence[FrameDescription] | None = None,
        question: str | None = None,
        choices: Sequence[str] | None = None,
        *,
        descriptions: PathLike | Sequence[FrameDescription] | DescribedVideo | None = None,
        descriptions_format: str = "auto",
        clip_seconds: float | None = None,
        duration: float | None = None,
    ) -> Answer:
        """Answer ``question`` about ``video`` (described first, once per session) or ``descriptions`` (as
        for :meth:`ground`; a list of descriptions or :meth:`describe`'s output may be given as ``video``):
        one of ``choices`` when given, else free text, with the intervals that support it. A chat reasoner
        answers through its model; the similarity reasoners (``embedding``...) answer with the offline
        evidence baseline (:func:`temporal_reasoner.qa.evidence_baseline`), which says so in ``reasoner``."""
        from temporal_reasoner.qa import answer_question, check_choices, check_question

        question = check_question(question)
        choices = check_choices(choices)
        video, descriptions, duration = _stage2_args(video, descriptions, duration)
        rsn = self.reasoner
        described, transcript, timings = self._stage2_input(video, descriptions, question, descriptions_format,
                                                            clip_seconds, duration, "answer")
        started = time.perf_counter()
        with _paid_and_counted(video, described), interrupts.doing("reasoning"):
            result = _checked_result(rsn, answer_question(_as_called(rsn), question, transcript, choices), transcript,
                                     Answer, choices)
        timings["reason"] = round(time.perf_counter() - started, 4)
        log.info("answered %r with %s in %.2f s: %r", question, result.reasoner or rsn.name, timings["reason"],
                 result.answer)
        return self._not_searched(result.model_copy(update=self._provenance(described, transcript, timings, rsn, result)),
                                  video, "answer()")

    @_session_call
    def events(
        self,
        video: PathLike | DescribedVideo | Sequence[FrameDescription] | None = None,
        *,
        descriptions: PathLike | Sequence[FrameDescription] | DescribedVideo | None = None,
        descriptions_format: str = "auto",
        clip_seconds: float | None = None,
        duration: float | None = None,
        **options: Any,
    ) -> Events:
        """The events of ``video`` (described first, once per session) or ``descriptions`` (as for
        :meth:`answer`), each a scored ``(start, end, caption)``. A chat reasoner writes them through its model;
        the similarity reasoners find change points in the descriptions offline
        (:func:`temporal_reasoner.events.find_events`, whose settings ``options`` are)."""
        from temporal_reasoner.events import events_path, find_events

        video, descriptions, duration = _stage2_args(video, descriptions, duration)
        rsn = self.reasoner
        events_path(rsn, options)  # a wrong option fails before the video is described
        described, transcript, timings = self._stage2_input(video, descriptions, None, descriptions_format,
                                                            clip_seconds, duration, "events")
        started = time.perf_counter()
        with _paid_and_counted(video, described), interrupts.doing("reasoning"):
            result = _checked_result(rsn, find_events(_as_called(rsn), transcript, **options), transcript, Events)
        timings["reason"] = round(time.perf_counter() - started, 4)
        log.info("found %d event(s) with %s in %.2f s", len(result.events), result.reasoner or rsn.name,
                 timings["reason"])
        return self._not_searched(result.model_copy(update=self._provenance(described, transcript, timings, rsn, result)),
                                  video, "events()")

    def _not_searched(self, result: Any, video: Any, what: str) -> Any:
        """``result`` with a warning when this session searches coarse to fine but ``what`` described the whole
        grid: the search needs a moment to look for, and neither a question's evidence nor a video's events
        are one moment (docs/architecture.md, "Which calls search")."""
        if video is None or not self.search.refines:
            return result
        note = (f"{what} described every frame of the sampling grid: this session's coarse-to-fine search applies "
                f"to ground() only (a question's evidence and a video's events are not one moment to search for)")
        return result.model_copy(update={"warnings": [*result.warnings, note]})

    def _stage2_input(self, video: Any, descriptions: Any, query: str | None, descriptions_format: str,
                      clip_seconds: float | None, duration: Any,
                      call: str) -> tuple[DescribedVideo, Transcript, dict[str, float]]:
        """The described video and its transcript, from a video (described once per session) or descriptions
        (checked by :func:`_stage2_args`), for the method ``call`` (ground, answer, events)."""
        timings: dict[str, float] = {}
        if video is not None:
            if descriptions_format != "auto" or clip_seconds is not None:
                raise ConfigurationError("descriptions_format= and clip_seconds= apply to descriptions=, not to a video")
            described = self._described(video, query, call).with_duration(duration)
            if described.seconds:  # not when this session described the video before
                timings["describe"] = round(described.seconds, 4)
        else:  # describe()'s output is given: its describing was paid by that call, whose usage says so (each
            # result built from it repeating it counted describing once more per result when they were summed)
            described = self._loaded(descriptions, duration, descriptions_format, clip_seconds)
            if not described.usage.is_empty():
                described = described.model_copy(update={"usage": Usage()})
        transcript = described.transcript()
        if not any(e.text.strip() for e in transcript.entries):  # nothing to ground, answer or find events in
            reasons = sorted({str(r) for d in described.descriptions if (r := (d.model_extra or {}).get("empty_reply"))})
            why = f" (the describer's replies had no text: {', '.join(reasons)}; none was cached)" if reasons else ""
            with _paid_and_counted(video, described):  # described (and paid for) with no words
                raise InputError(f"every description's text is empty{why}: nothing to ground, answer or find events "
                                 "in (describe the video again, or give descriptions that say what is seen)",
                                 path=descriptions if isinstance(descriptions, (str, os.PathLike)) else described.video)
        return described, transcript, timings

    def _provenance(self, described: DescribedVideo, transcript: Transcript, timings: dict[str, float],
                    rsn: Any, result: Any) -> dict[str, Any]:
        """What a result records of its video, backends, usage and timings: ``usage["describe"]`` is what describing
        cost in this call (a video described now), never what an earlier describe() paid."""
        usage = dict(result.usage)
        if not described.usage.is_empty():
            usage["describe"] = described.usage
        # the reasoner's configured settings under "reasoner"; the result's own at the top level, as they were (a
        # key equal to a configured one still says what happened: "fallback" is the one that answered)
        settings = {**(described.sampling or {}), "describer": described.settings,
                    "reasoner": _identity(rsn, "reasoner")["settings"], **jsonable(result.settings)}
        return {"video": described.video, "duration": transcript.duration,
                "duration_inferred": transcript.duration_inferred, "describer": described.describer,
                "reasoner": result.reasoner or rsn.name, "usage": usage,
                "timings": {**result.timings, **timings}, "settings": settings,
                "warnings": [*result.warnings, *(w for w in described.warnings if w not in result.warnings)]}

__all__ = ["Session", "DescribedVideo", "load_descriptions"]
