"""The describer protocol and a small base class with its defaults."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any, Literal, Protocol, runtime_checkable

from vidground.types import Frame, FrameDescription

PromptMode = Literal["agnostic", "aware"]
PROMPT_MODES: tuple[str, ...] = ("agnostic", "aware")


@runtime_checkable
class Describer(Protocol):
    """Turns frames into activity-focused text, one description per frame, in time order.

    ``describe`` consumes a (possibly lazy) iterable of frames and yields descriptions as
    they are ready, so a caller can stream a long video: one :class:`FrameDescription` for each
    frame it is given, at that frame's ``t``, in the frames' order (a plug-in's stream is
    checked: a time that is no frame given, a second description of a frame, or none at all is a
    :class:`~vidground.errors.PluginError`; a frame left out is kept with no text and warned of).
    ``query`` is given to describers in ``"aware"`` mode and ignored in ``"agnostic"`` mode
    (whose output is reusable across queries and therefore cacheable). ``settings()`` returns
    everything that changes the output, as JSON data; it goes into cache keys (a plug-in's with
    its class, spec argument and options).

    One instance is called from several threads at once (an eval's ``--concurrency``, a session
    shared between threads): ``describe`` must be thread-safe (state of one stream in locals).
    Registered (``describers.register`` or an entry point), the class is built as
    ``Cls(arg, **options)`` (``Cls(**options)`` for a spec with no argument): take
    ``def __init__(self, arg=None, **options)``.
    """

    name: str
    mode: PromptMode

    def settings(self) -> dict[str, Any]: ...

    def describe(self, frames: Iterable[Frame], *, query: str | None = None) -> Iterator[FrameDescription]: ...


class BaseDescriber:
    """Defaults shared by describers: a name, a mode and their settings."""

    name: str = "base"
    mode: PromptMode = "agnostic"

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode}

    def describe(self, frames: Iterable[Frame], *, query: str | None = None) -> Iterator[FrameDescription]:
        raise NotImplementedError


class StreamState:
    """What a :class:`DescriptionStream`'s generator finished and did not hand over (``unread``) and the last
    description it handed over (``handed``); kept apart from the stream so that the generator, which writes
    them, does not keep the stream alive."""

    __slots__ = ("unread", "handed")

    def __init__(self) -> None:
        self.unread: list[FrameDescription] = []
        self.handed: FrameDescription | None = None


class DescriptionStream(Iterator[FrameDescription]):
    """A describer's stream that says what it finished and did not hand over when it ended early.

    A Ctrl-C (a ``KeyboardInterrupt`` raised in the stream while it waits, or its reader closing it) does not
    cancel the requests in flight to an API (paid once begun) nor undo a batch the model has written: the
    stream waits for them and keeps their descriptions in :attr:`unread`, each with its frame's time, for the
    reader to store (:class:`~frame_describer.cache.CachedDescriber` puts them in the description cache, so a
    rerun pays for none of them again). :attr:`handed` is the last description handed over, set before it is,
    so that a Ctrl-C between its arrival and its storing loses it neither.

    ``body(out)`` is the generator of descriptions; it appends to ``out.unread`` as it ends and sets
    ``out.handed`` before each ``yield``. ``out`` is a :class:`StreamState`, not the stream: the generator holds
    no reference back to the stream, so a stream its reader drops unclosed (a ``break``, an exception) is closed
    at once by reference counting, as a plain generator is, and not later by the cyclic GC in whatever thread
    runs it (one of its own request threads, which then waits for itself). Closing the stream closes the
    generator (which waits for what is in flight); a plain iterator of descriptions needs none of this (see
    :func:`leftovers`).
    """

    def __init__(self, body: Callable[[StreamState], Generator[FrameDescription, None, None]]):
        self._state = StreamState()
        self._gen = body(self._state)

    @property
    def unread(self) -> list[FrameDescription]:
        return self._state.unread

    @property
    def handed(self) -> FrameDescription | None:
        return self._state.handed

    def __iter__(self) -> "DescriptionStream":
        return self

    def __next__(self) -> FrameDescription:
        return next(self._gen)

    def throw(self, exc: BaseException) -> FrameDescription:
        """Raise ``exc`` in the stream where it waits (as a Ctrl-C there would be)."""
        return self._gen.throw(exc)

    def close(self) -> None:
        self._gen.close()


def leftovers(stream: Iterator[FrameDescription]) -> list[FrameDescription]:
    """The descriptions a describer's stream finished that may not have reached its reader, once it ended or was
    closed: a :class:`DescriptionStream`'s :attr:`~DescriptionStream.unread` and the last one it handed over;
    none for a plain iterator. Close the stream first (that waits for the requests in flight); a second Ctrl-C
    during that wait ends it at once, and what arrived before it is here still, so read this in a ``finally``."""
    handed = getattr(stream, "handed", None)
    return [*getattr(stream, "unread", ()), *([handed] if handed is not None else [])]
