"""The reasoner protocol, a base class with its defaults, and the query check."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from vidground.errors import InputError

from .transcript import Transcript
from vidground.types import GroundingResult


def check_query(query: Any) -> str:
    """Return the stripped query, or raise :class:`InputError` for an empty or non-text one."""
    if not isinstance(query, str):
        raise InputError(f"the query must be text, got {type(query).__name__}")
    q = " ".join(query.split())
    if not q:
        raise InputError("the query is empty")
    try:
        q.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: bytes that were not UTF-8 on the command line
        raise InputError("the query is not valid text (bytes that are not UTF-8?)") from None
    return q


@runtime_checkable
class Reasoner(Protocol):
    """Grounds a natural-language query in a transcript: returns intervals, best first.

    ``ground`` returns a :class:`GroundingResult` (``answer``/``events``, where a reasoner has them, an
    ``Answer``/``Events``); a plug-in's is validated again as if built anew, its spans checked against the
    transcript, and an exception it raises named (a :class:`~vidground.errors.PluginError`, the original as its
    cause). ``settings()`` returns everything that changes the output (recorded in each result; numpy values are
    written as numbers). One instance is called from several threads at once (an eval's ``--concurrency``):
    ``ground`` must be thread-safe. Registered, the class is built as ``Cls(arg, **options)``
    (``Cls(**options)`` for a spec with no argument): take ``def __init__(self, arg=None, **options)``.
    """

    name: str

    def settings(self) -> dict[str, Any]: ...

    def ground(self, query: str, transcript: Transcript) -> GroundingResult: ...


class BaseReasoner:
    name: str = "base"

    def settings(self) -> dict[str, Any]:
        return {"name": self.name}

    def ground(self, query: str, transcript: Transcript) -> GroundingResult:
        raise NotImplementedError
