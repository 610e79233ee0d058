"""Query-blind baselines that never see the labels they are scored on.

Every report shows two beside a method's numbers, with the same metrics on the same queries:

* **whole video**: ``[0, duration]`` for every query;
* **prior span**: ``[a * duration, b * duration]`` for every query, where ``(a, b)`` is a
  :class:`SpanPrior` made without the evaluated queries' labels:

  - learned on the dataset's *train* split where the loader has one (:data:`TRAIN_SPLITS`:
    Charades-STA), as the mean normalised start and end of its GT moments; it is the same
    whatever subset of the test split is scored;
  - else the documented fixed prior :data:`FIXED_PRIOR`, the middle half of the video;
  - or a prior the caller gives (a benchmark that fits one on a development half).

A baseline needs each video's duration: the annotated one, else the one the run knows (from
the descriptions, for a generic ``jsonl`` dataset without durations). Queries whose video has no
known duration are left out of the baselines, and the report says on how many they were scored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np
from pydantic import BaseModel, Field

from vidground.errors import ConfigurationError, VidgroundError

from .datasets import Query, data_root, load_dataset

log = logging.getLogger("vidground")

#: The split each dataset's prior is learned on, where the loader has one.
TRAIN_SPLITS: dict[str, str] = {"charades-sta": "train"}


class SpanPrior(BaseModel):
    """A query-blind span, ``[start * duration, end * duration]``; ``source`` says how it was made."""

    start: float = Field(ge=0, le=1)
    end: float = Field(ge=0, le=1)
    source: str

    def as_tuple(self) -> tuple[float, float]:
        return (self.start, self.end)


#: The prior where no train split is at hand: the middle half of the video.
FIXED_PRIOR = SpanPrior(start=0.25, end=0.75, source="fixed: the middle half of the video (no train split to learn from)")


def _fixed(why: str) -> SpanPrior:
    return FIXED_PRIOR.model_copy(update={"source": f"fixed: the middle half of the video ({why})"})

WHOLE_VIDEO_NOTE = "[0, duration] for every query"


def mean_prior(queries: Sequence[Query]) -> tuple[float, float]:
    """Mean GT start and end as fractions of the duration (first window, clipped to [0, 1])."""
    fr = [(min(1.0, max(0.0, q.windows[0][0] / q.duration)), min(1.0, max(0.0, q.windows[0][1] / q.duration)))
          for q in queries if q.duration and q.windows]
    if not fr:
        return (0.0, 1.0)
    return (float(np.mean([f[0] for f in fr])), float(np.mean([f[1] for f in fr])))


def as_prior(prior: SpanPrior | tuple[float, float] | Sequence[float] | None) -> SpanPrior:
    """``None`` -> :data:`FIXED_PRIOR`; a ``(start, end)`` pair -> a prior given by the caller. The span must
    satisfy ``0 <= start < end <= 1`` (fractions of the duration): a reversed or empty one is a
    :class:`ConfigurationError`, not a baseline that silently scores 0."""
    if prior is None:
        return FIXED_PRIOR
    if isinstance(prior, SpanPrior):
        a, b = prior.start, prior.end
    else:
        try:
            a, b = (float(x) for x in prior)
        except (TypeError, ValueError):
            raise ConfigurationError(f"a prior span is a (start, end) pair of fractions of the duration, "
                                     f"got {prior!r}") from None
    if not 0 <= a < b <= 1:
        raise ConfigurationError(f"prior span ({a:g}, {b:g}) must satisfy 0 <= start < end <= 1, as fractions of "
                                 "the duration" + (" (start and end swapped?)" if 0 <= b < a <= 1 else ""))
    return prior if isinstance(prior, SpanPrior) else SpanPrior(start=a, end=b, source="given by the caller")


def dataset_prior(name: str, split: str | None = None, root: str | None = None) -> SpanPrior:
    """The prior-span baseline for a dataset: learned on its train split (see :data:`TRAIN_SPLITS`),
    else :data:`FIXED_PRIOR`. It depends on the dataset alone, never on the evaluated queries. When the
    train annotations cannot be read, the fixed prior is used and its ``source`` says why."""
    train = TRAIN_SPLITS.get(name)
    if train is None:
        return _fixed(f"{name} has no train split to learn from")
    try:
        base = str(data_root(root))
    except ConfigurationError as exc:
        log.warning("prior-span baseline: %s; using the fixed prior", exc)
        return _fixed("no data folder to learn from")
    return _train_prior(name, train, base, split == train)


@lru_cache(maxsize=16)
def _train_prior(name: str, train: str, root: str, same_split: bool) -> SpanPrior:
    try:
        ds = load_dataset(name, train, root)
    except VidgroundError as exc:
        log.warning("prior-span baseline: %s/%s unreadable (%s); using the fixed prior", name, train, exc)
        return _fixed(f"{name}/{train} could not be read")
    used = sum(1 for q in ds.queries if q.duration and q.windows)
    a, b = mean_prior(ds.queries)
    note = "; the evaluated split itself, so not held out" if same_split else ""
    return SpanPrior(start=a, end=b, source=f"learned on {name}/{train}: mean normalised GT span of {used} queries{note}")


def known_duration(query: Query, durations: Mapping[str, float] | None = None) -> float | None:
    """The query's annotated duration, else the one ``durations`` (video id -> seconds) knows."""
    if query.duration:
        return query.duration
    d = (durations or {}).get(query.video)
    return float(d) if d else None


def baseline_predictions(queries: Sequence[Query], kind: str, prior: SpanPrior | tuple[float, float] | None = None,
                         durations: Mapping[str, float] | None = None) -> dict[str, list[list[float]] | None]:
    """Query-blind predictions: ``"whole"`` = ``[0, duration]``; ``"prior"`` = ``[a*duration, b*duration]``
    with the prior's fractions (default :data:`FIXED_PRIOR`, never fitted on ``queries``). A query
    whose duration is unknown (see :func:`known_duration`) gets no prediction."""
    if kind == "whole":
        a, b = 0.0, 1.0
    elif kind == "prior":
        a, b = as_prior(prior).as_tuple()
    else:
        raise ConfigurationError(f"unknown baseline {kind!r}; choose 'whole' or 'prior'")
    out: dict[str, list[list[float]] | None] = {}
    for q in queries:
        d = known_duration(q, durations)
        out[q.qid] = [[a * d, b * d]] if d else None
    return out


__all__ = ["SpanPrior", "FIXED_PRIOR", "TRAIN_SPLITS", "mean_prior", "as_prior", "dataset_prior", "known_duration",
           "baseline_predictions"]
