"""The describer protocol and a small base class that gives every describer an async twin."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, Literal, Protocol, runtime_checkable

from vidground.types import Frame, FrameDescription

PromptMode = Literal["agnostic", "aware"]
PROMPT_MODES: tuple[str, ...] = ("agnostic", "aware")


@runtime_checkable
class Describer(Protocol):
    """Turns frames into activity-focused text, one description per frame, in time order.

    ``describe`` consumes a (possibly lazy) iterable of frames and yields descriptions as
    they are ready, so a caller can stream a long video. ``query`` is given to describers
    in ``"aware"`` mode and ignored in ``"agnostic"`` mode (whose output is reusable across
    queries and therefore cacheable). ``settings()`` returns everything that changes the
    output; it goes into cache keys.
    """

    name: str
    mode: PromptMode

    def settings(self) -> dict[str, Any]: ...

    def describe(self, frames: Iterable[Frame], *, query: str | None = None) -> Iterator[FrameDescription]: ...

    def adescribe(self, frames: Iterable[Frame], *, query: str | None = None) -> AsyncIterator[FrameDescription]: ...


class BaseDescriber:
    """Defaults shared by describers: mode checking and an async twin that runs ``describe``
    in a worker thread and hands descriptions over as they are produced."""

    name: str = "base"
    mode: PromptMode = "agnostic"

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode}

    def describe(self, frames: Iterable[Frame], *, query: str | None = None) -> Iterator[FrameDescription]:
        raise NotImplementedError

    async def adescribe(self, frames: Iterable[Frame], *, query: str | None = None) -> AsyncIterator[FrameDescription]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=64)
        done = object()
        stop = threading.Event()

        def work() -> None:
            try:
                for d in self.describe(frames, query=query):
                    if stop.is_set():
                        return
                    asyncio.run_coroutine_threadsafe(queue.put(d), loop).result()
            except BaseException as exc:  # handed to the consumer, re-raised there
                asyncio.run_coroutine_threadsafe(queue.put(exc), loop).result()
            finally:
                asyncio.run_coroutine_threadsafe(queue.put(done), loop).result()

        task = loop.run_in_executor(None, work)
        try:
            while True:
                item = await queue.get()
                if item is done:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while not task.done():  # unblock a producer waiting on a full queue
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    await asyncio.sleep(0.01)
            await task
