"""The describer protocol and a small base class with its defaults."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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


class BaseDescriber:
    """Defaults shared by describers: a name, a mode and their settings."""

    name: str = "base"
    mode: PromptMode = "agnostic"

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode}

    def describe(self, frames: Iterable[Frame], *, query: str | None = None) -> Iterator[FrameDescription]:
        raise NotImplementedError
