"""The vidground error tree.

Every error raised on purpose by vidground derives from :class:`VidgroundError` and carries
its diagnosis in attributes, not only in the message. The message itself is one line that
names what is wrong (the CLI prints it as is).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class VidgroundError(Exception):
    """Root of every error vidground raises on purpose.

    ``usage`` (a :class:`~vidground.types.Usage`) is what was paid on the way to the error, where anything was:
    the requests answered before it (an unusable reply re-asked, then an HTTP error; the parts of a transcript
    answered before one failed); ``None`` when nothing was paid.
    """

    usage: Any = None

    def __reduce__(self) -> Any:
        """Pickled with its ``args`` and attributes (``usage`` among them) and rebuilt without calling ``__init__``:
        a subclass whose ``__init__`` takes other arguments than its message (:class:`VideoDecodeError`,
        :class:`MissingDependencyError`) unpickles too, so it crosses a process pool (a ``ProcessPoolExecutor``
        worker's error reached its caller as ``BrokenProcessPool``) or Ray as itself."""
        import copyreg

        return copyreg.__newobj__, (type(self), *self.args), dict(self.__dict__)


@contextmanager
def keep_paid(paid: Callable[[], Any]) -> Iterator[None]:
    """A :class:`VidgroundError` escaping the block (a :class:`ProviderError` on a re-ask, on a chunk after others
    answered, from a fallback, on a frame while others were in flight) carries the usage ``paid()`` gives then (a
    :class:`~vidground.types.Usage`), the requests answered before it that its raiser did not count, added to any it
    carries: what was paid on the way to an error is not lost (an eval counts a failed query's,
    :mod:`pipelines.executors`). Wrap only what does not itself raise with ``paid()``'s usage. Here, in the core,
    because both stages use it (the describers' streams, the reasoners' re-asks) and neither imports the other.
    A ``KeyboardInterrupt`` (a Ctrl-C that stopped a frame stream) carries it as ``usage`` too: an eval keeps what
    the query or describe it stopped had paid."""
    try:
        yield
    except (VidgroundError, KeyboardInterrupt) as exc:
        spent = paid()
        if not spent.is_empty():  # a Usage: added to the error's own (vidground.types imports this module)
            had = getattr(exc, "usage", None)
            exc.usage = spent + had if isinstance(had, type(spent)) else spent  # type: ignore[union-attr]
        raise


class ConfigurationError(VidgroundError, ValueError):
    """A setting, spec string or argument is invalid; the message lists the valid choices."""


class NoCacheFolderError(ConfigurationError):
    """There is no folder for vidground's caches: no ``$XDG_CACHE_HOME``, no ``$HOME``, and the user has no home
    directory (a container run as ``--user N``). A cache nobody asked for is then left off, with a warning."""


class SessionClosedError(VidgroundError, RuntimeError):
    """The :class:`~pipelines.Session` was closed: a call made after :meth:`~pipelines.Session.close`, or one
    stopped by it while it described frames (its ``usage`` says what the frames described before the stop cost).
    Not a :class:`ConfigurationError`: nothing the caller gave was wrong (a service shutting down is not a bad
    request); like Python's own errors for an object used past its end, it is a ``RuntimeError``."""


class PluginError(VidgroundError):
    """A describer or reasoner given as an object (or a plug-in's spec) broke its protocol: ``describe()`` yielded
    something else than a :class:`~vidground.types.FrameDescription` or a description of a time it was not given,
    ``ground()`` (``answer()``, ``events()``) returned something else than a :class:`~vidground.types.GroundingResult`
    (:class:`~vidground.types.Answer`, :class:`~vidground.types.Events`) or spans outside the transcript. ``plugin`` is
    its name, ``protocol`` the method (``"describe"``, ``"ground"``, ``"answer"``, ``"events"``)."""

    def __init__(self, message: str, *, plugin: str | None = None, protocol: str | None = None):
        self.plugin = plugin
        self.protocol = protocol
        super().__init__(message)


class MissingDependencyError(ConfigurationError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, extra: str, feature: str):
        self.package = package
        self.extra = extra
        super().__init__(
            f"{feature} needs the '{package}' package: pip install 'vidground[{extra}]'"
        )


class InputError(VidgroundError, ValueError):
    """User input is unusable: an empty query, a bad descriptions file, a bad dataset file."""

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(where + message)


class EvaluationError(InputError):
    """An evaluation would give numbers nobody should trust: it selected nothing, most of its inputs
    are missing, or (``--strict``) some predictions are missing, failed, unparseable, reversed or out
    of range. ``counts`` holds how many of each kind; the message names the likely cause."""

    def __init__(self, message: str, *, path: str | Path | None = None, counts: dict[str, int] | None = None):
        self.counts = dict(counts or {})
        super().__init__(message, path=path)


class VideoDecodeError(VidgroundError):
    """A video could not be opened or decoded. ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ProviderError(VidgroundError):
    """A model provider (HTTP API, local model) failed.

    ``status`` is the HTTP status where there is one; ``retryable`` says whether the same
    request may succeed later (429, 5xx, timeouts, dropped connections). Once the retries of a
    retryable failure are spent, ``url`` (the endpoint, without credentials), ``attempts`` and
    ``elapsed`` (seconds from the first attempt to giving up) say where and how long it was tried.
    ``usage``: the requests paid before it (see :class:`VidgroundError`), the failed request not among them unless
    it was answered (a completion without a usable choice is billed: :func:`vidground.chat.first_choice`).
    """

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False,
                 provider: str | None = None, url: str | None = None, attempts: int | None = None,
                 elapsed: float | None = None, usage: Any = None):
        self.usage = usage
        self.status = status
        self.retryable = retryable
        self.provider = provider
        self.url = url
        self.attempts = attempts
        self.elapsed = elapsed
        super().__init__(message)


class OutputValidationError(VidgroundError):
    """A model's output did not validate after every attempt.

    Carries the raw outputs of every attempt, the validation errors, the number of
    attempts and the usage summed over all of them.
    """

    def __init__(self, message: str, *, raw_outputs: list[str] | None = None,
                 errors: list[str] | None = None, attempts: int = 0, usage: Any = None):
        self.raw_outputs = list(raw_outputs or [])
        self.errors = list(errors or [])
        self.attempts = attempts
        self.usage = usage
        super().__init__(message)


class IncompleteOutputError(OutputValidationError):
    """The model stopped before finishing its answer (``finish_reason == "length"``)."""


def did_you_mean(given: str, choices: Iterable[str], normalize: Callable[[str], str] = str.lower) -> str | None:
    """The choice ``given`` was most likely meant to be, or ``None``: an exact match once both are
    normalised (``charades_sta`` -> ``charades-sta``), else the closest by spelling."""
    import difflib

    by_norm = {normalize(c): c for c in choices}
    key = normalize(given)
    if key in by_norm:
        return by_norm[key]
    close = difflib.get_close_matches(key, list(by_norm), n=1, cutoff=0.6)
    return by_norm[close[0]] if close else None


__all__ = [
    "VidgroundError",
    "ConfigurationError",
    "MissingDependencyError",
    "SessionClosedError",
    "PluginError",
    "InputError",
    "EvaluationError",
    "VideoDecodeError",
    "ProviderError",
    "OutputValidationError",
    "IncompleteOutputError",
    "did_you_mean",
    "keep_paid",
]
