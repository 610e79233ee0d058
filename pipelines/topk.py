"""How many intervals an eval keeps of each answer: the default K and the "not given" marker, in a module of their
own so that :mod:`pipelines.runs` (which resolves the K of a run) and :mod:`pipelines.executors` (which keeps it)
share them without importing each other."""

from __future__ import annotations

from vidground.errors import ConfigurationError

#: Intervals an eval keeps of each answer by default: as many as QVHighlights' mAP ranks (5 before: a run folder
#: started then resumes with its own K, :func:`pipelines.runs.resolve_top_k`).
DEFAULT_TOP_K = 10


class _NotGiven:
    """The type of :data:`TOP_K_NOT_GIVEN`: one instance, kept by copies and pickling (a Ray worker's config)."""

    _one: "_NotGiven | None" = None

    def __new__(cls) -> "_NotGiven":
        if cls._one is None:
            cls._one = super().__new__(cls)
        return cls._one

    def __repr__(self) -> str:
        return "TOP_K_NOT_GIVEN"

    def __reduce__(self) -> str:
        return "TOP_K_NOT_GIVEN"  # unpickled as this module's TOP_K_NOT_GIVEN: the same object


#: ``RunConfig.top_k`` left unset: :func:`pipelines.runs.run_eval` resolves it (``resolve_top_k``). Not ``None``,
#: which keeps every interval, as it always did.
TOP_K_NOT_GIVEN = _NotGiven()


def kept_top_k(top_k: "int | None | _NotGiven") -> int | None:
    """The K kept for a config's ``top_k``: :data:`DEFAULT_TOP_K` when not given (an executor run directly, not
    through ``run_eval``, which resolves it by the run folder), else ``top_k`` (``None``: every interval)."""
    return DEFAULT_TOP_K if top_k is TOP_K_NOT_GIVEN else top_k  # type: ignore[return-value]


def check_top_k(top_k: object) -> None:
    """A ``top_k`` setting: a whole number (not a bool) of at least 1, ``None`` (every interval) or
    :data:`TOP_K_NOT_GIVEN`; a :class:`~vidground.errors.ConfigurationError` otherwise, before anything runs."""
    if top_k is None or top_k is TOP_K_NOT_GIVEN:
        return
    if isinstance(top_k, bool) or not isinstance(top_k, int):
        raise ConfigurationError(f"top_k must be a whole number of intervals (at least 1) or None for all of them, "
                                 f"got {top_k!r} ({type(top_k).__name__})")
    if top_k < 1:
        raise ConfigurationError(f"top_k must be at least 1, got {top_k}")
