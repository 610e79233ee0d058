"""A lazy source of times or frames that its consumer can stop without losing work already begun.

A search with a seconds budget decides, after each description, whether to go on. Breaking out of a
describer's stream there closes it: a describer that works ahead (the OpenAI describer keeps
``concurrency`` requests in flight) has sent, and been billed for, requests whose answers are then
dropped: not yielded, not cached, not counted. A :class:`Feed` lets the consumer say *start nothing more*
instead: once :meth:`Feed.stop` is called it hands out no more items, so a describer pulling frames from it
lazily runs out of frames, yields the descriptions of those it began, and ends; the consumer keeps
reading to the end and so takes every description it paid for.

A describer that pulls frames ahead of the requests it starts (the OpenAI describer decodes up to twice
its concurrency ahead) learns of the stop through :func:`stop_of` and starts none of the frames it pulled
but had not sent. A wrapper that makes a new iterable of frames from the one it was given passes the stop
on with :func:`relay` (:class:`~frame_describer.cache.CachedDescriber` does).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Stop:
    """A one-way signal: :meth:`set` once, and every event :meth:`link`-ed to it is set too (at once when it
    was set before), so a describer can wait on one event of its own for this and other reasons."""

    def __init__(self) -> None:
        self._set = threading.Event()
        self._lock = threading.Lock()
        self._linked: list[threading.Event] = []

    def set(self) -> None:
        with self._lock:
            self._set.set()
            linked, self._linked = self._linked, []
        for event in linked:
            event.set()

    def is_set(self) -> bool:
        return self._set.is_set()

    def link(self, event: threading.Event) -> None:
        """Set ``event`` when this is set (now, if it already is)."""
        with self._lock:
            if not self._set.is_set():
                self._linked.append(event)
                return
        event.set()


class Feed(Generic[T]):
    """``items``, handed out one at a time until they run out or :meth:`stop` is called (an item being pulled
    when it is called still comes). Over a list it can be read more than once and has ``len`` and indexing
    (a plain sequence of times to a ``describe(times)`` callable); over an iterator, once. ``signal``: share
    the stop of another feed (see :func:`relay`)."""

    def __init__(self, items: Iterable[T], signal: Stop | None = None):
        self.items = items
        self.signal = signal if signal is not None else Stop()

    def __iter__(self) -> Iterator[T]:
        if self.signal.is_set():
            return
        for item in self.items:
            yield item
            if self.signal.is_set():
                return

    def __len__(self) -> int:
        return len(self.items)  # type: ignore[arg-type]

    def __getitem__(self, index: Any) -> Any:
        return self.items[index]  # type: ignore[index]

    def stop(self) -> None:
        """Hand out nothing more."""
        self.signal.set()

    @property
    def stopped(self) -> bool:
        return self.signal.is_set()

    def __repr__(self) -> str:
        return f"Feed({self.items!r}{', stopped' if self.stopped else ''})"


def stop_of(items: Any) -> Stop | None:
    """The stop signal of ``items`` when it is a :class:`Feed`, else ``None`` (nobody will stop it)."""
    return items.signal if isinstance(items, Feed) else None


def relay(items: Iterable[T], source: Any) -> Iterable[T]:
    """``items`` (an iterable a wrapper made from ``source``) as a :class:`Feed` that stops with ``source``
    when that is one; ``items`` as they are otherwise."""
    signal = stop_of(source)
    return items if signal is None else Feed(items, signal)


__all__ = ["Feed", "Stop", "relay", "stop_of"]
