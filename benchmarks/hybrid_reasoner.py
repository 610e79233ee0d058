"""The hybrid reasoner (an experiment, not a registered backend): an LLM proposes where the query
happens, the similarity curve refines it.

A chat model reads the whole transcript and can reason about order and context ("after putting
the cup down"), but it places boundaries coarsely and a small one often answers the first line.
The embedding reasoner's similarity curve (:mod:`temporal_reasoner.embedding`) places edges well
but cannot tell two similar moments apart. :class:`HybridReasoner` (for example
``HybridReasoner("llamacpp:gemma3-270m")`` or ``HybridReasoner("openai:gpt-4o")``) combines them:

- ``mode="pick"`` (default): the curve proposes candidate spans (its peaks); the LLM's best
  interval chooses among them: the candidate it overlaps most. When it overlaps none, the
  ``no_overlap`` policy decides: keep the LLM's interval (``"llm"``) or answer the curve's best
  span (``"curve"``, the default).
- ``mode="snap"``: keep the LLM's interval but move each edge to where the curve crosses its
  level (between the curve's baseline and its highest point inside the interval), when that
  crossing lies within ``window`` seconds of the proposed edge.

Whenever the LLM gives no usable answer (it raises a :class:`VidgroundError`), the embedding
reasoner's answer is returned with a warning. Every result keeps both raw answers in ``raw``.

It lives in ``benchmarks/`` because no benchmark has shown a gain from it: with Gemma 3 270M (the
only chat model measured) it scores below the embedding reasoner alone (``docs/reasoners.md``;
measured by ``benchmarks/llm_prompts.py``).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from temporal_reasoner import BaseReasoner, Reasoner, Transcript, check_query, get_reasoner
from vidground.errors import ConfigurationError, VidgroundError
from vidground.types import GroundingResult, Interval, Usage

MODES = ("pick", "snap")
NO_OVERLAP = ("curve", "llm")
#: The embedding reasoner's options for candidate proposals: more (and lower) peaks than its defaults.
CANDIDATE_OPTIONS: dict[str, Any] = {"spans": "peaks", "min_prominence": 0.1, "top_k": 8}


def _resolve(spec: Reasoner | str | None, default: str | None, what: str, options: dict[str, Any]) -> Reasoner:
    if spec is None and default is None:
        raise ConfigurationError(f"the hybrid reasoner needs {what}: HybridReasoner(llm=SPEC), e.g. "
                                 "'llamacpp:gemma3-270m' or 'openai:gpt-4o'")
    if isinstance(spec, str) or spec is None:
        return get_reasoner(spec or default, **options)
    if options:
        raise ConfigurationError(f"{what}_options only apply when {what} is given as a spec string")
    if not hasattr(spec, "ground"):
        raise ConfigurationError(f"{what} must be a reasoner or a spec string, got {type(spec).__name__}")
    return spec


def snap_interval(times: np.ndarray, curve: np.ndarray, start: float, end: float, duration: float, *,
                  rel_level: float = 0.5, base_percentile: float = 30.0, window: float = math.inf) -> tuple[float, float]:
    """Move ``[start, end]``'s edges to the curve's level crossings around its best point inside.

    The level lies ``rel_level`` of the way from the curve's baseline (``base_percentile``) to its
    highest sample inside the interval (the nearest sample when none lies inside). The run of samples
    at or above the level through that sample gives the new edges (crossings interpolated between
    samples); an edge further than ``window`` seconds from the proposed one stays where it was.
    """
    n = len(curve)
    if n == 0:
        return start, end
    inside = np.flatnonzero((times >= start) & (times <= end))
    p = int(inside[np.argmax(curve[inside])]) if len(inside) else int(np.argmin(np.abs(times - (start + end) / 2)))
    base = float(np.percentile(curve, base_percentile))
    if curve[p] - base <= 1e-6:
        return start, end
    level = base + rel_level * (float(curve[p]) - base)
    lo = p
    while lo > 0 and curve[lo - 1] >= level:
        lo -= 1
    hi = p
    while hi < n - 1 and curve[hi + 1] >= level:
        hi += 1

    def cross(i: int, j: int) -> float:  # between samples i (above) and j (below)
        v0, v1 = float(curve[i]), float(curve[j])
        return float(times[i] + (level - v0) / (v1 - v0) * (times[j] - times[i])) if v1 != v0 else float(times[i])

    new_start = 0.0 if lo == 0 else cross(lo, lo - 1)
    new_end = duration if hi == n - 1 else cross(hi, hi + 1)
    s = new_start if abs(new_start - start) <= window else start
    e = new_end if abs(new_end - end) <= window else end
    s, e = max(0.0, s), min(duration, e)
    return (s, e) if e > s else (start, end)


def pick_candidate(proposal: Interval, candidates: list[Interval]) -> int | None:
    """Index of the candidate overlapping ``proposal`` the most (seconds of overlap, then its score)."""
    best, key = None, (0.0, -math.inf)
    for i, c in enumerate(candidates):
        overlap = min(c.end, proposal.end) - max(c.start, proposal.start)
        k = (overlap, c.score if c.score is not None else 0.0)
        if overlap > 0 and k > key:
            best, key = i, k
    return best


class HybridReasoner(BaseReasoner):
    """An LLM reasoner proposes, the embedding reasoner's similarity curve refines (see the module doc).

    ``llm``: a reasoner or spec (``"llamacpp:gemma3-270m"``, ``"openai:gpt-4o"``); ``embedding``:
    a reasoner or spec for the curve (default ``"embedding"`` with :data:`CANDIDATE_OPTIONS`);
    ``llm_options`` / ``embedding_options``: options for the specs; ``mode``: ``"pick"`` or ``"snap"``;
    ``no_overlap``: ``"curve"`` or ``"llm"`` (``pick`` only); ``window``, ``rel_level``,
    ``base_percentile``: the ``snap`` settings (see :func:`snap_interval`).
    """

    name = "hybrid"

    def __init__(self, llm: Reasoner | str | None = None, *, embedding: Reasoner | str | None = None,
                 llm_options: dict[str, Any] | None = None, embedding_options: dict[str, Any] | None = None,
                 mode: str = "pick", no_overlap: str = "curve", window: float = math.inf,
                 rel_level: float = 0.5, base_percentile: float = 30.0):
        if mode not in MODES:
            raise ConfigurationError(f"unknown hybrid mode {mode!r}; choose one of: {', '.join(MODES)}")
        if no_overlap not in NO_OVERLAP:
            raise ConfigurationError(f"unknown no_overlap policy {no_overlap!r}; choose one of: {', '.join(NO_OVERLAP)}")
        if not 0 < rel_level < 1 or not 0 <= base_percentile <= 100 or not window > 0:
            raise ConfigurationError("need 0 < rel_level < 1, 0 <= base_percentile <= 100 and window > 0")
        emb_opts = dict(embedding_options or {})
        if embedding is None:
            emb_opts = {**CANDIDATE_OPTIONS, **emb_opts}
        elif isinstance(embedding, str) and embedding.split(":", 1)[0] in ("embedding", "offline", "similarity"):
            # its candidates are one disjoint span per peak (the curve's own answers), unless told otherwise
            emb_opts.setdefault("spans", "peaks")
        self.llm = _resolve(llm, None, "llm", dict(llm_options or {}))
        self.embedding = _resolve(embedding, "embedding", "embedding", emb_opts)
        self.mode, self.no_overlap, self.window = mode, no_overlap, window
        self.rel_level, self.base_percentile = rel_level, base_percentile

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode, "no_overlap": self.no_overlap,
                "window": None if math.isinf(self.window) else self.window, "rel_level": self.rel_level,
                "base_percentile": self.base_percentile, "llm": self.llm.settings(),
                "embedding": self.embedding.settings()}

    def ground(self, query: str, transcript: Transcript) -> GroundingResult:
        started = time.perf_counter()
        query = check_query(query)
        curve_result = self.embedding.ground(query, transcript)
        try:
            llm_result: GroundingResult | None = self.llm.ground(query, transcript)
            error = None
        except VidgroundError as exc:
            llm_result, error = None, exc
        return self.combine(query, transcript, llm_result, curve_result, started=started, error=error)

    def combine(self, query: str, transcript: Transcript, llm_result: GroundingResult | None,
                curve_result: GroundingResult, *, started: float | None = None,
                error: Exception | None = None) -> GroundingResult:
        """The hybrid answer from an LLM's result (``None`` when it failed) and the embedding reasoner's."""
        started = time.perf_counter() if started is None else started
        warnings = [f"embedding: {w}" for w in curve_result.warnings]
        candidates = list(curve_result.intervals)
        if llm_result is None or not llm_result.intervals:
            why = f": {error}" if error is not None else ""
            warnings.append(f"the LLM gave no usable answer{why}; answered with the similarity curve alone")
            intervals, how = candidates, "curve only"
        else:
            warnings += [f"llm: {w}" for w in llm_result.warnings]
            intervals, how = self._refine(llm_result.intervals, candidates, curve_result, transcript)
        usage: dict[str, Usage] = dict(curve_result.usage)
        if llm_result is not None:
            for stage, u in llm_result.usage.items():
                usage[stage] = usage[stage] + u if stage in usage else u
        return GroundingResult(
            query=query, duration=transcript.duration, duration_inferred=transcript.duration_inferred,
            intervals=intervals or candidates, reasoner=f"hybrid:{self.llm.name}", settings=self.settings(),
            usage=usage, timings={"reason": time.perf_counter() - started}, curve=curve_result.curve,
            warnings=warnings,
            raw={"how": how, "llm": [iv.as_list() for iv in llm_result.intervals] if llm_result else None,
                 "curve": [iv.as_list() for iv in candidates]})

    def _refine(self, proposals: list[Interval], candidates: list[Interval], curve_result: GroundingResult,
                transcript: Transcript) -> tuple[list[Interval], str]:
        if self.mode == "snap":
            times = np.array([t for t, _ in curve_result.curve or []], dtype=float)
            curve = np.array([s for _, s in curve_result.curve or []], dtype=float)
            out = []
            for iv in proposals:
                s, e = snap_interval(times, curve, iv.start, iv.end, transcript.duration, rel_level=self.rel_level,
                                     base_percentile=self.base_percentile, window=self.window)
                out.append(Interval(start=round(s, 3), end=round(e, 3), score=iv.score))
            return out, "snapped the LLM's intervals to the curve"
        top = proposals[0]
        i = pick_candidate(top, candidates)
        if i is None:
            if self.no_overlap == "llm" or not candidates:
                return proposals, "the LLM's interval overlaps no curve peak; kept it"
            return candidates, "the LLM's interval overlaps no curve peak; answered with the curve"
        # the chosen candidate first, then the other candidates the LLM's other intervals overlap, then the rest
        order = [i] + [j for p in proposals[1:] if (j := pick_candidate(p, candidates)) is not None]
        order = list(dict.fromkeys(order)) + [j for j in range(len(candidates)) if j not in order]
        return [candidates[j] for j in order], "picked the curve peak the LLM's interval overlaps most"


__all__ = ["HybridReasoner", "MODES", "NO_OVERLAP", "CANDIDATE_OPTIONS", "pick_candidate", "snap_interval"]
