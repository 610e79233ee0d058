"""Coarse-to-fine describing: find a moment in a long video for a fraction of the describer calls.

Describing every frame of an hour-long video is thousands of model calls before the first query, yet
most of that video is far from any moment a query asks about. :func:`coarse_to_fine` describes a sparse
pass first (every ``coarse`` frames of the dense grid), lets the reasoner name its candidate regions
(its intervals, best first, with their scores; with a reasoner that scores single frames, also the frames that
match best outside them, ``explore``), describes the grid around them (sparser first, denser
each round), grounds again on everything described so far (each description held at the grid times
nearest its frame, :func:`held_transcript`, so the reasoner sees the grid's time base), and repeats
while that adds frames: it stops when the candidates are already dense (``converged``), when the
reasoner names none (``no-candidate``), when the budget in calls or seconds is spent (``budget``) or
after ``rounds`` refinements (``rounds``). A search given a budget spends it while the reasoner names
something not yet described: past the planned rounds, and on the next-best candidates once the best
ones are dense (each such frame says ``(budget left)``); without a budget the planned rounds are its cost.
A calls budget caps the frames the search uses, wherever their descriptions come from (describer calls,
description-cache hits, frames an earlier query described), all but skip-unchanged's reuses: so a rerun with a
warm cache, or after other queries, asks for the same frames and answers the same, paying only for the frames
nothing held (with a calls budget alone: a seconds budget depends on how fast the calls are; and where ``describe``
answers each frame alone: a describer comparing each frame with the previous one, ``cv``, is given no earlier
query's frames by a session, but a cache gives back frames as an earlier query's search saw them). The budget counts
requests (grid times asked for), each answered by the decoded frame nearest it, so one frame that answers several
grid times (a video with fewer frames than the grid) counts once per time, as a rerun that knows each of those
answers counts them. A round past the planned ones that counts no frame against the budget (only skip-unchanged's
reuses) is the last (``rounds``): it would only buy more reasoner calls.

The loop knows nothing about decoding: it asks a ``describe(times)`` callable for descriptions at grid
times, so the same loop runs on a real video (:meth:`pipelines.session.Session.ground` decodes only the
frames asked for, through the description cache) and on captions already written (the ``replay``
describer, which is how ``benchmarks/long_videos.py`` measures it with exact call counts). Every frame
it describes is logged with the pass that asked for it and why.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from temporal_reasoner import Transcript
from vidground import interrupts
from vidground.errors import ConfigurationError, InputError, VidgroundError, keep_paid
from vidground.types import FrameDescription, GroundingResult, Interval, Usage

STRATEGIES = ("uniform", "coarse-to-fine")

log = logging.getLogger(__name__)

#: the share of the grid a search without a budget may use before it warns that it cost about as much as dense
MOST_OF_THE_GRID = 0.5
MOST_OF_THE_GRID_FROM = 600  # grid frames: 10 min at the default 1 fps


class Search(BaseModel):
    """Which frames get described: all of the sampling grid (``uniform``) or ``coarse-to-fine``.

    ``budget`` caps the frames one coarse-to-fine search uses, counted per grid time asked for: describer calls,
    description-cache hits and frames an earlier query of the session described all count (only skip-unchanged's
    reuses do not; a decoded frame nearest two grid times counts twice, described once), so a rerun with a
    warm cache or after other queries uses the same frames, answers the same and pays only for what nothing held
    (the calls are at most ``budget``); ``budget_seconds`` caps the seconds spent describing: frames
    go to the describer in chunks, each read to its end so that every call begun is kept, and a chunk is not
    begun, or is cut, where, its calls as slow as the slowest so far, it would end past them (see
    :func:`coarse_to_fine`'s ``in_flight``). A budget is spent while the reasoner names frames worth
    describing: refinement goes on past ``rounds``, and once the ``regions`` best candidates are dense it
    takes the next ones by rank; it is left unspent when every candidate named is dense (``converged``) or
    none is named, and when a round past ``rounds`` counts no frame against the budget (only skip-unchanged's
    reuses: more rounds would buy only reasoner calls). At most
    ``ceil(budget / regions)`` rounds past ``rounds`` ground again (the grid's frame count in place of
    ``budget`` for a seconds budget alone). The sparse pass is thinned (and its stride widened) to fit the
    calls budget whatever a cache or an earlier query holds. With skip-unchanged (whose reuses the budget does not
    count) a budget only caps: the usual sparse pass where the budget covers it even were no frame reused, and only
    the planned ``rounds``, so it never spends past what the search without a budget does. A seconds budget depends on how fast the calls
    are (and spends no seconds on cache hits), so only a calls budget alone gives reproducible reruns. With
    ``budget_seconds`` the sparse pass is described spread out (the first frame, the middle one,
    the quarters, ...: chunks taken from the head of that order, each in time order, as large as keep the
    describer's ``in_flight`` calls going), so a budget that runs out during it leaves the whole video seen evenly, and a refinement round's frames are described best first (the chunks taken from the head of
    the list a calls budget cuts, each in time order), so a budget that runs out during one keeps the best
    candidate's frames; frames it left undescribed are not listed in ``frames``.
    ``coarse`` is the sparse pass's stride in grid frames (``None``: adaptive, see :func:`coarse_stride`);
    ``regions`` how many candidates are refined per round, of which ``explore`` (at most ``regions - 1``) are the
    single frames described so far that match the query best outside the reasoner's own candidates
    (:func:`best_frames`; with a reasoner that scores frames, ``entry_scores``, as the ``embedding`` reasoner does;
    others give all ``regions`` to their own candidates), ``margin`` how far around
    each (seconds; ``None``: half the coarse pass's spacing, the furthest a moment's edge can lie from the
    nearest sparse frame), ``rounds`` the most refinement rounds. ``zoom`` refines round by round: each
    round describes the candidates at ``zoom`` times the previous round's density (every 4th grid frame,
    then every 2nd, then all), so a candidate the reasoner drops after a look costs a fraction of a dense
    fill; ``None`` fills every candidate densely at once. Defaults chosen on the dev half of
    ``benchmarks/long_videos.py``.

    ``keyframe_tolerance`` lets the sparse pass on a real video take a keyframe within that fraction of
    its spacing instead of the frame at the grid time (decoded alone, where the exact frame costs the
    frames from the keyframe before it; ``0``: exact frames). A quarter keeps each sparse frame nearer
    its own grid time than any other (no two share a keyframe, each still stands for its stretch) and
    the gaps between sparse frames within 1.5 spacings; the default margin widens by the furthest a
    sparse frame actually snapped (nothing on a video whose keyframes never fall that near), so a
    refined candidate still reaches the next sparse frame's stretch. A grid time answered by a frame
    that far off stays open: a refinement around it describes its exact frame.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: Literal["uniform", "coarse-to-fine"] = "uniform"
    budget: int | None = Field(default=None, ge=1)
    budget_seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    coarse: int | None = Field(default=None, ge=1)
    regions: int = Field(default=5, ge=1)
    explore: int = Field(default=2, ge=0)
    margin: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    rounds: int = Field(default=4, ge=0)
    zoom: int | None = Field(default=2, ge=2)
    keyframe_tolerance: float = Field(default=0.25, ge=0, lt=0.5, allow_inf_nan=False)

    @model_validator(mode="after")
    def _budgets_need_the_search(self) -> "Search":
        """A budget of a uniform run would be ignored, every frame described and paid for: refused, as
        ``--budget`` without ``--strategy coarse-to-fine`` is on the command line."""
        given = [k for k in ("budget", "budget_seconds") if getattr(self, k) is not None]
        if given and not self.refines:
            verb = "apply" if len(given) > 1 else "applies"
            raise ValueError(f"{' and '.join(given)} {verb} to strategy 'coarse-to-fine' (a uniform run describes "
                             f"every frame of the grid): give {{'strategy': 'coarse-to-fine', '{given[0]}': ...}}")
        return self

    @classmethod
    def of(cls, value: "Search | dict[str, Any] | str | None" = None, **settings: Any) -> "Search":
        """A checked :class:`Search` from an instance, a dict, a strategy name and/or keyword settings;
        a bad value is a :class:`~vidground.errors.ConfigurationError` naming it."""
        if isinstance(value, Search) and not settings:
            return value
        if isinstance(value, str):
            value = {"strategy": value}
        if value is not None and not isinstance(value, (Search, dict)):
            raise ConfigurationError(f"search must be a Search, a dict or a strategy name, got {type(value).__name__}")
        merged = {**(value.model_dump() if isinstance(value, Search) else dict(value or {})), **settings}
        try:
            return cls.model_validate(merged, strict=True)
        except ValueError as exc:
            errors = getattr(exc, "errors", lambda: [])()
            if not errors:
                raise ConfigurationError(str(exc)) from None
            first = errors[0]
            if not first.get("loc") and first.get("type") == "value_error":  # a rule across settings: its own words
                raise ConfigurationError(f"search: {str(first.get('msg')).removeprefix('Value error, ')}") from None
            where = ".".join(str(x) for x in first.get("loc", ())) or "search"
            if where == "strategy":
                raise ConfigurationError(f"unknown strategy {first.get('input')!r}; choose one of: "
                                         f"{', '.join(STRATEGIES)}") from None
            raise ConfigurationError(f"search {where}: {first.get('msg')}, got {first.get('input')!r}") from None

    @property
    def refines(self) -> bool:
        return self.strategy == "coarse-to-fine"


def coarse_stride(n: int, budget: int | None = None) -> int:
    """The sparse pass's stride in grid frames: every 8th frame on a grid of 10 minutes' worth of 1-s
    frames or more (so 8-16 s apart on the usual 1-2 s grids), every 4th on shorter ones, every 2nd under
    60 frames, and wider only when a budget would otherwise go almost all to the sparse pass (it keeps a
    sixth of the budget for refining). Frames known or cached count as any other: the stride is the same whatever
    earlier runs described, so a rerun looks where the first run looked.
    Most misses of a budgeted search on long videos were moments the sparse pass never surfaced
    (``benchmarks/long_videos.py``, dev half, 2 h with 15% of the calls: 10 of the 11 queries dense
    answered and the search did not, when the sparse pass kept half the budget for refining and so looked
    every 28 s instead of every 16 s; on the 3 timelines of 2 h it used then), so the sparse pass comes first.
    On the whole dev half (8 timelines of 2 h), a sparser pass leaving more for refining (every 20 or 24 s
    instead of 16 s) kept 236 and 230 of two assemblies' 263 dense hits against 239."""
    stride = 8 if n >= 600 else 4 if n >= 60 else 2
    if budget is not None:
        stride = max(stride, math.ceil(n / max(1, budget * 5 // 6)))
    return stride


@dataclass
class SearchOutcome:
    """What a search described and found: ``descriptions`` (all frames described, in time order),
    ``result`` (the last grounding, over all of them), ``frames`` (``[t, pass, reason]`` per requested
    time: pass 0 is the sparse pass), ``calls`` (sent to the describer), ``cached`` (answered by a cache),
    ``skipped`` (answered by skip-unchanged with the last description sent: free, not counted against a
    budget), ``known`` (requests answered by frames described before this search), ``stop`` (why it stopped).
    ``used`` counts the requests a calls budget counts: every grid time asked for and answered but those
    skip-unchanged's reuses answered, whether by a call, a cache hit, a known frame or a frame this search had
    already described (one decoded frame can answer several grid times; it is described once), so ``calls <=
    used``. ``answers`` maps each request (grid time and the tolerance it was asked with, :func:`request`) to the
    description that answered it (its nearest decoded frame): what a later search's ``known`` takes."""

    descriptions: list[FrameDescription]
    result: GroundingResult
    frames: list[list[Any]] = field(default_factory=list)
    calls: int = 0
    cached: int = 0
    skipped: int = 0
    known: int = 0
    used: int = 0
    rounds: int = 0
    stop: str = ""
    usage: Usage = field(default_factory=Usage)
    reason_usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    answers: dict[tuple[float, float], FrameDescription] = field(default_factory=dict)

    def record(self, search: Search, coarse: int) -> dict[str, Any]:
        """The search's provenance for a result's ``settings``: its settings (``rounds`` the most refinement rounds
        planned, as set) and what it did (``rounds_done`` the refinement rounds it ran)."""
        return {**search.model_dump(), "coarse": coarse, "calls": self.calls, "cached": self.cached,
                "skipped": self.skipped, "known": self.known, "used": self.used, "rounds_done": self.rounds,
                "stop": self.stop, "frames": self.frames}


@contextmanager
def counted_on_error(out: SearchOutcome, *, stream: bool = False) -> Iterator[None]:
    """An error or a Ctrl-C's ``KeyboardInterrupt`` leaving the block carries ``described``, ``{"calls": n,
    "cached": m}``: the describer calls the search made and the frames the description cache gave so far, which its
    ``usage`` (:func:`~vidground.errors.keep_paid`) sums with its reasoner's rounds; an eval counts them as the
    stopped or failed query's describer calls (:mod:`pipelines.executors`; they were 0, though paid). From a frame
    stream (``stream``), the requests its describer paid and never handed over (the error's own ``usage``: answers
    in flight as it stopped) are calls too; enter it inside ``keep_paid``, which adds the search's own after it."""
    try:
        yield
    except (VidgroundError, KeyboardInterrupt) as exc:
        own = getattr(exc, "usage", None) if stream else None
        own = own if isinstance(own, Usage) else Usage()
        exc.described = {"calls": out.calls + own.requests, "cached": out.cached + own.cached}  # type: ignore[union-attr]
        raise


def request(t: float, tolerance: float = 0.0) -> tuple[float, float]:
    """The key of a frame asked for at grid time ``t`` with ``tolerance`` (seconds a keyframe may lie from it), as
    :attr:`SearchOutcome.answers` and ``known`` hold it."""
    return round(float(t), 6), round(float(tolerance), 6)


def coarse_to_fine(
    query: str,
    reasoner: Any,
    describe: Callable[[list[float]], Iterable[FrameDescription]],
    grid: Sequence[float],
    duration: float,
    search: Search | None = None,
    *,
    known: dict[tuple[float, float], FrameDescription] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    tolerant: bool = False,
    in_flight: int = 1,
    progress: Callable[[str, int], Any] | None = None,
    reuses: bool = False,
) -> tuple[SearchOutcome, int]:
    """Ground ``query`` describing as few frames of ``grid`` (the dense sampling times, increasing) as the
    search allows. ``describe(times)`` yields descriptions for those times (a describer behind a cache;
    the frames it yields may carry the real times of the nearest decoded frames). ``known`` maps requests already
    answered (by an earlier query: its :attr:`SearchOutcome.answers`) to their descriptions: the same request
    (grid time and tolerance) costs no call and is answered as it was, so the search asks for the frames a search
    without ``known`` asks for and answers the same; only when ``describe``'s answer to a frame depends on the
    frames asked for with it (skip-unchanged, a describer comparing each frame with the previous one) can it
    differ, so give none then where it must not (a session gives such a describer none, nor skip-unchanged under a
    calls budget). A calls budget counts requests: a frame ``describe`` gives again that this search already took, or
    that ``known`` holds (the same object, :func:`describe_once`), is no call. ``tolerant``: ``describe`` also takes
    ``tolerance=``
    (seconds; a frame that close to a time may answer it), and the sparse pass gives it
    ``search.keyframe_tolerance`` of its spacing. ``in_flight``: how many calls the describer runs at once (an
    API describer's ``concurrency``, a local model's batch; see :func:`in_flight_of`). Under a seconds budget
    ``describe`` gets the times in chunks and each stream is read to its end, so no call begun is thrown away
    (breaking out of it would close it: an API describer's requests in flight were paid and their answers
    dropped). A chunk is predicted to take a wave (the slowest so far) per ``in_flight`` calls, its frames
    calls at the share seen so far (cache hits and skip-unchanged's reuses are not); it is as long as takes at
    most half the seconds left, else up to ``2 * in_flight`` frames (what an API describer begins at once), and
    never longer than would end within the seconds left were every frame a call; else none. So with calls no
    slower than the slowest wave so far (a wave's time includes decoding its frames: where decoding is slow
    against the calls, the estimate from the first small chunks is loose) nothing is begun after the budget ran
    out, nor ends past it; calls that slow down can send part of the last chunk after it (of a chunk of
    ``2 * in_flight``, its second wave: at most ``in_flight`` calls), each still taken. ``progress(stage, planned)``,
    when given, makes a bar (``update(n)``, ``close()``, as tqdm's) for each stage: the sparse pass (``"sparse
    pass"``, its planned frames) and each refinement round (``"round k"``, the frames it asks for), advanced as
    each frame is answered (see :func:`frame_progress`). ``reuses``: ``describe`` may answer a frame with the
    description of the last frame it sent (skip-unchanged, ``reused_from``), free and not counted against a calls
    budget; a budget then caps what the search without one does and never spends: the usual sparse pass where the
    budget covers it whatever it reuses (else widened as for any budget), and only the planned rounds (rounds past
    them were mostly reuses, each sending a frame or two and decoding and grounding again). Returns the outcome
    and the coarse stride used."""
    search = search or Search(strategy="coarse-to-fine")
    if isinstance(in_flight, bool) or not isinstance(in_flight, int) or in_flight < 1:
        raise ConfigurationError(f"in_flight must be a positive integer (calls a describer runs at once), "
                                 f"got {in_flight!r}")
    grid = [float(t) for t in grid]
    if not grid:
        raise InputError("nothing to describe: the video has no frame times")
    if any(b <= a for a, b in zip(grid, grid[1:])):
        raise ConfigurationError("the grid of frame times must be strictly increasing")
    n = len(grid)
    half = _spacing(grid, 1) / 2
    if any(not (isinstance(k, tuple) and len(k) == 2) for k in (known or {})):
        raise ConfigurationError("known maps requests (grid time, tolerance) to descriptions, as an earlier "
                                 "search's SearchOutcome.answers does; got a key that is not such a pair")
    known = {request(t, tol): d for (t, tol), d in (known or {}).items()}
    known_frames = {d.t: d for d in known.values()}  # a known frame ``describe`` gives again was paid before
    stride = search.coarse or coarse_stride(n, search.budget)
    if reuses and search.budget is not None and not search.coarse:
        # skip-unchanged's reuses are free: the usual sparse pass, as without a budget, where the budget covers it
        # whatever it reuses (else widened as for any budget: what the reuses will save is not known before)
        usual = coarse_stride(n)
        if len(range(min(usual // 2, n - 1), n, usual)) <= search.budget:
            stride = usual
    out = SearchOutcome(descriptions=[], result=GroundingResult(query=query, duration=duration))

    def paid_so_far() -> Usage:
        """What the search paid so far: the frames described and the reasoner's rounds (an error on the way carries
        it, and an eval counts a failed query's)."""
        return out.usage + out.reason_usage

    def paid_on_error(descriptions: Iterable[FrameDescription]) -> Iterator[FrameDescription]:
        """``descriptions``, whose error (a frame's request failed) carries what was :func:`paid_so_far` before it."""
        with keep_paid(paid_so_far), counted_on_error(out, stream=True):
            yield from descriptions

    described: dict[float, FrameDescription] = {}  # by the time each description carries
    asked: set[int] = set()  # grid indices requested (or known) so far
    started = clock()
    spent = 0.0  # seconds spent describing
    wave = 0.0  # the longest a wave of calls (up to in_flight at once) has taken: a chunk's seconds over its waves
    snapped = 0.0  # the furthest a frame answering a grid time lay from it (a keyframe, a known frame)

    handed = 0  # frames handed to the describer: with out.calls, the share of them that were calls

    def fits(k: int, share: float = 1.0, every: bool = False) -> int:
        """How many of ``k`` frames can be begun: as many as end within ``share`` of the seconds left, a wave as
        slow as the slowest so far per ``in_flight`` calls, at the share of calls among the frames handed over so
        far (cache hits and skip-unchanged's reuses are not calls; ``every``: each frame a call). All of them when
        there is no seconds budget or no call was timed yet."""
        if search.budget_seconds is None or not wave:
            return k
        calls = max(0, math.floor(share * (search.budget_seconds - spent) / wave)) * in_flight
        rate = 1.0 if every else (out.calls + 1) / (handed + 1)  # never 0: a frame not seen yet may be a call
        return min(k, math.floor(calls / rate + 1e-9))

    def next_chunk(rest: int) -> int:
        """How many of a pass's ``rest`` frames to hand the describer next (0: none fits): all without a
        seconds budget; under one, as many as take at most half the seconds left at the share of calls seen so
        far (few cuts in the stream while the budget is far from spent; more frames a chunk where most are cache
        hits or unchanged), else up to ``2 * in_flight``; never more than end within the seconds left were every
        one a call, so a stretch where more frames need a call than before cannot run past the budget."""
        if search.budget_seconds is None:
            return rest
        if not wave:
            return min(2 * in_flight, rest)
        safe = fits(rest, every=True)
        return max(min(fits(rest, 0.5), safe), min(2 * in_flight, safe))

    def stage(name: str, planned: int) -> Any:
        """The progress bar of one stage (the sparse pass, a refinement round) of ``planned`` frames."""
        return progress(name, planned) if progress is not None and planned else _NoBar()

    def run(indices: list[int], pass_no: int, reasons: dict[int, tuple[int, str]], tolerance: float = 0.0,
            bar: Any = None) -> int:
        """Describe the grid frames ``indices`` (best first: a seconds budget that runs out keeps the head of the
        list), listing each in time order; returns how many of them the seconds budget left undescribed (taken off
        the list and off ``asked``; no round follows: the next one finds that no call fits either). ``bar`` (the
        stage's progress) advances a frame as each is answered: a known one at once, the others as the describer
        gives their descriptions (a chunk's frames all counted once it is read to its end).

        Under a seconds budget they go to the describer in chunks (:func:`next_chunk`) taken from the head of
        ``indices``, each chunk in time order (as a video's frames are decoded, and as skip-unchanged compares
        them) and read to its end, so every call begun is taken, counted and cached. Without one they go in one
        request, in time order."""
        nonlocal spent, wave, handed
        entry: dict[int, list[Any]] = {}  # each frame to describe: its line in the list
        for i in sorted(indices):
            asked.add(i)
            entry[i] = [round(grid[i], 3), pass_no, reasons[i][1]]
            out.frames.append(entry[i])

        def take(i: int, d: FrameDescription) -> None:
            """Grid time ``i`` answered by ``d`` (described now or known): the same whichever it was, and counted
            against a calls budget unless a skip-unchanged reuse answered it."""
            nonlocal snapped
            described[d.t] = d
            out.answers[request(grid[i], tolerance)] = d
            if (d.model_extra or {}).get("reused_from") is None:
                out.used += 1
            if abs(d.t - grid[i]) > half:  # a frame off the grid (a keyframe): its own grid time is taken
                entry[i][2] += f" (answered by the frame at {d.t:.2f}s)"
                asked.update(_between(grid, d.t - half, d.t + half))
                snapped = max(snapped, abs(d.t - grid[i]))

        fresh = []  # best first
        for i in indices:
            d = known.get(request(grid[i], tolerance))
            if d is None:
                fresh.append(i)
            else:
                take(i, d)
                out.known += 1
                if bar is not None:
                    bar.update(1)
        done = 0  # how many of ``fresh`` were handed to the describer
        while done < len(fresh):
            size = next_chunk(len(fresh) - done)
            if not size:
                break
            chunk = sorted(fresh[done:done + size])
            part = [grid[i] for i in chunk]
            begun, calls = clock(), out.calls
            got: list[FrameDescription] = []
            shown = 0  # the chunk's frames the bar was advanced for
            for d in paid_on_error(describe(part, tolerance=tolerance) if tolerance else describe(part)):
                got.append(d)
                if bar is not None and shown < len(chunk):  # as it comes: a slow describer's progress is seen
                    bar.update(1)
                    shown += 1
                if d is described.get(d.t) or d is known_frames.get(d.t):
                    continue  # a frame this search already took, given again (describe_once): nothing paid
                u = d.usage or Usage()
                out.usage += u
                if u.cached:
                    out.cached += 1
                elif (d.model_extra or {}).get("reused_from") is None:  # skip-unchanged's reuses cost nothing
                    out.calls += 1
                else:
                    out.skipped += 1
            # a decoded frame comes once however many of the times it is nearest to: each time gets the frame
            # nearest it (the tolerance is under half the sparse pass's spacing), so every request has its answer
            got.sort(key=lambda d: d.t)
            at = [d.t for d in got]
            for i in chunk if got else ():
                take(i, got[_closest(at, grid[i])])
            if bar is not None and shown < len(chunk):  # one decoded frame answered several times: all are done
                bar.update(len(chunk) - shown)
            seconds = clock() - begun
            spent += seconds
            if out.calls > calls:  # cache hits and reuses alone say nothing of how long a call takes
                wave = max(wave, seconds / math.ceil((out.calls - calls) / in_flight))
            done += size
            handed += size
        cut = {id(entry[i]) for i in fresh[done:]}
        if cut:  # the times no chunk was begun for were never described: they are not listed as described
            out.frames[:] = [e for e in out.frames if id(e) not in cut]
            asked.difference_update(fresh[done:])
        return len(cut)

    def ran_out(pass_no: int, undescribed: int) -> None:
        where = "the sparse pass" if pass_no == 0 else f"round {pass_no}"  # the names the docs and the bars use
        out.warnings.append(f"the describing budget of {search.budget_seconds:g} s ran out in {where}: "
                            f"{undescribed} of its frames were not described")

    def used() -> int:
        """The requests a calls budget counts: every grid time this search asked for and had answered (by a call, a
        cache hit, a known frame, a frame it described before) but by skip-unchanged's reuses, so that a warm cache
        or an earlier query changes what is paid, not what is used."""
        return out.used

    def left() -> int | None:
        return None if search.budget is None else search.budget - used()

    def out_of_budget() -> bool:
        """No frame is left to the calls budget, or the next call would likely end past the seconds budget."""
        return (search.budget is not None and used() >= search.budget) or not fits(1)

    def wanted_around(ranked: list[tuple[int, Any]], step: int, note: str) -> dict[int, tuple[int, str]]:
        """The grid frames not yet asked for, on this round's ``step``, within the margin of each ranked candidate,
        each with the best rank whose margin holds it and why it is described."""
        reasons: dict[int, tuple[int, str]] = {}
        for rank, iv in ranked:
            score = "" if iv.score is None else f" score {iv.score:.3g}"
            name = kinds[rank]  # the reasoner's own rank, or the best frame's
            for i in _between(grid, iv.start - margin, iv.end + margin):
                if (i - first) % step == 0 and i not in asked and i not in reasons:
                    reasons[i] = (rank, f"{name} [{iv.start:.1f}-{iv.end:.1f}]{score}{note}")
        return reasons

    def ground() -> GroundingResult:
        descs = sorted(described.values(), key=lambda d: d.t)
        if not descs:
            raise InputError("the describer returned no description for any frame asked for")
        # the reasoner failed: the frames described and its rounds before were paid
        with keep_paid(paid_so_far), counted_on_error(out), interrupts.doing("reasoning"):  # for a Ctrl-C's message
            result = reasoner.ground(query, held_transcript(descs, grid, max(duration, descs[-1].t)))
        for u in result.usage.values():
            out.reason_usage += u
        return result

    # the sparse pass: every stride-th grid frame, centred in its share, thinned evenly to fit a small budget (where
    # its descriptions come from does not matter: a budget counts the frames used)
    first = min(stride // 2, n - 1)
    coarse = list(range(first, n, stride))
    tolerance = search.keyframe_tolerance * _spacing(grid, stride) if tolerant else 0.0
    budget = left()
    usual = coarse_stride(n)  # the sparse pass a search without a budget makes, which a small budget widened
    sparse = coarse
    if budget is not None and len(coarse) > budget:
        out.warnings.append(f"the budget of {search.budget} frame(s) is smaller than the sparse pass "
                            f"({len(coarse)} frames): it used {budget} evenly spaced frames, none refined")
        sparse = [coarse[int(k * len(coarse) / budget)] for k in range(budget)]  # increasing: len(coarse) > budget
    elif budget is not None and not reuses and not search.coarse and stride > usual and budget < (
            usual_n := len(range(min(usual // 2, n - 1), n, usual))):
        out.warnings.append(f"the budget of {search.budget} frame(s) is smaller than the sparse pass ({usual_n} "
                            f"frames {_spacing(grid, usual):g} s apart): it looked every {_spacing(grid, stride):g} s "
                            f"({len(sparse)} frames), {budget - len(sparse)} frame(s) left to refine")
    widened = budget is not None and reuses and not search.coarse and stride > usual
    reasons = {i: (0, "coarse") for i in coarse}
    known_sparse = [i for i in sparse if request(grid[i], tolerance) in known]
    paid = [i for i in sparse if request(grid[i], tolerance) not in known]
    # the known frames, then the others; under a seconds budget in spread order (first, middle, quarters, ...: one
    # list, so its chunks keep in_flight calls going), so that one running out leaves the whole video seen evenly
    undescribed = 0
    with closing(stage("sparse pass", len(sparse))) as bar:
        run(known_sparse, 0, reasons, tolerance, bar)
        if search.budget_seconds is not None:
            if out_of_budget():
                undescribed += len(paid)
            else:
                undescribed += run([i for batch in _spread(paid) for i in batch], 0, reasons, tolerance, bar)
        else:
            undescribed += run(paid, 0, reasons, tolerance, bar)
    if undescribed:
        ran_out(0, undescribed)
    if widened:  # said once the pass is described: what its reuses left of the budget
        out.warnings.append(f"the budget of {search.budget} frame(s) is smaller than the sparse pass "
                            f"({len(range(min(usual // 2, n - 1), n, usual))} frames {_spacing(grid, usual):g} s "
                            f"apart), which skip-unchanged's free reuses could have made cheaper, but not knowably "
                            f"before: it looked every {_spacing(grid, stride):g} s ({len(sparse)} frames, "
                            f"{used()} counted), {search.budget - used()} frame(s) left to refine")
    out.frames.sort(key=lambda e: e[0])
    # a grid time answered from further than half a grid step (a keyframe or a known frame up to the
    # tolerance away) is not described: the refinements may ask for its exact frame
    answered = sorted(described)
    asked.difference_update([i for i in asked if _nearest(answered, grid[i], half) is None])
    out.result = ground()
    margin = search.margin if search.margin is not None else _spacing(grid, stride) / 2 + snapped
    # a budget is spent while the reasoner names something to look at: past the planned rounds, and on its
    # next-best candidates once the best ones are dense; without a budget the planned rounds are the cost
    # (not with skip-unchanged's reuses, which a budget does not count: rounds spending it there were mostly reuses,
    # frames decoded and grounded again for a call or two each; the budget only caps the planned rounds then)
    budgeted = (search.budget is not None or search.budget_seconds is not None) and not reuses
    # rounds past the planned ones go on only while each counts a frame against the budget (not only skip-unchanged
    # reuses), and at most this many ground again
    extra_left = math.ceil((search.budget if search.budget is not None else n) / search.regions)
    kinds: dict[int, str] = {}  # what each rank of a round's list is: "candidate k" (the reasoner's k-th), "best frame k"
    widest = 0.0  # the widest candidate a round refined (seconds)
    round_no = 0
    while True:
        round_no += 1
        if out_of_budget():
            out.stop = "budget"
            break
        extra = round_no > search.rounds
        if extra and (not budgeted or not extra_left):
            out.stop = "rounds"
            break
        candidates = out.result.intervals
        if not candidates:
            out.stop = "no-candidate"
            out.warnings.append("the reasoner named no candidate region; the answer rests on the sparse pass")
            break
        step = 1 if search.zoom is None else max(1, stride // search.zoom ** round_no)
        explore = min(search.explore, search.regions - 1)  # the reasoner's best candidate is always refined
        own = search.regions - explore
        frames = best_frames(reasoner, query, described.values(), candidates[:own], explore, margin, half, duration)
        names = {id(iv): f"candidate {k}" for k, iv in enumerate(candidates, 1)}
        names.update({id(iv): f"best frame {k}" for k, iv in enumerate(frames, 1)})
        candidates = _with_frames(candidates, frames, own)
        ranked = list(enumerate(candidates, 1))
        kinds = {rank: names[id(iv)] for rank, iv in ranked}
        widest = max([widest, *(iv.end - iv.start for _, iv in ranked[:search.regions])])
        reasons = wanted_around(ranked[:search.regions], step, " (budget left)" if extra else "")
        if not reasons and step == 1 and budgeted:  # the best candidates are dense: on to the next-best ones
            taken = 0
            for rank, iv in ranked[search.regions:]:  # the first `regions` with frames left; a better rank wins a frame
                more = wanted_around([(rank, iv)], 1, " (budget left)")
                if more:
                    reasons = {**more, **reasons}
                    taken += 1
                    if taken == search.regions:
                        break
        if not reasons and step == 1:
            out.stop = "converged"
            break
        if not reasons:  # nothing new at this round's spacing: the next round's is finer
            continue
        # the best candidate's frames first, and within one the frames inside it before its margins, from
        # its centre out: a budget that cuts the list keeps what matters most (a calls budget its head, a seconds
        # budget the chunks taken from its head until the seconds run out)
        spans = dict(ranked)

        def order(i: int) -> tuple[int, float, float]:
            iv = spans[reasons[i][0]]
            t = grid[i]
            return reasons[i][0], max(iv.start - t, t - iv.end, 0.0), abs(t - (iv.start + iv.end) / 2)

        wanted = sorted(reasons, key=order)
        budget = left()
        if budget is not None and len(wanted) > budget:
            wanted = wanted[:budget]
        before = used()
        with closing(stage(f"round {round_no}", len(wanted))) as bar:
            undescribed = run(wanted, round_no, reasons, bar=bar)
        if undescribed:
            ran_out(round_no, undescribed)
        out.rounds = round_no
        out.result = ground()
        if extra:
            extra_left -= 1
            if used() == before:  # only skip-unchanged's reuses (or nothing) came: the budget buys nothing here
                out.stop = "rounds"
                break
    out.descriptions = sorted(described.values(), key=lambda d: d.t)
    out.seconds = clock() - started
    # on what this search paid (describer calls), not on the frames it used: a rerun from the cache, or a query after
    # others of the session, costs nothing and is not warned of (RV-Q); and on grids long enough for the cost to
    # matter (a short video described whole is no surprise: 60 of 60 frames warned before)
    if search.budget is None and search.budget_seconds is None and n >= MOST_OF_THE_GRID_FROM \
            and out.calls > MOST_OF_THE_GRID * n:
        _warn_most_of_the_grid(out, n, widest, duration, reuses)
    return out, stride


def _warn_most_of_the_grid(out: SearchOutcome, n: int, widest: float, duration: float, reuses: bool) -> None:
    """Say (in the outcome's warnings and logged) that a search without a budget used most of the grid: on footage
    that looks alike throughout (a static video, plain colours) the reasoner's candidates span most of the video and
    each round describes them denser, so the search costs about what dense describing does (a 30-min 1-fps video of
    plain colours, 1,435 calls of 1,800). The candidate rules stay as measured on ``benchmarks/long_videos.py``; a
    budget caps the cost, skip-unchanged makes unchanged frames free."""
    fix = "give a budget (--budget N; search={'budget': N})"
    if not reuses:
        fix += " or, on static footage, skip unchanged frames (--skip-unchanged 2; skip_unchanged=2)"
    text = (f"the coarse-to-fine search made {out.calls} describer call(s) for the grid's {n} frames "
            f"({100 * out.calls / n:.0f}% of describing every frame): its candidate regions spanned up "
            f"to {widest:.0f} s of the {duration:.0f}-s video (footage that looks alike throughout?); to cap what a "
            f"query costs, {fix}")
    out.warnings.append(text)
    log.warning("%s", text)


class _NoBar:
    """The progress of a stage nobody watches."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def frame_progress(desc: str, enabled: bool = True) -> Callable[[str, int], Any] | None:
    """``coarse_to_fine``'s ``progress`` as a session's dense describing shows it (``pipelines.session._progress``):
    on a terminal (stderr) and ``enabled``, a tqdm bar per stage, ``DESC, sparse pass`` then ``DESC, round k``,
    counting frames of the stage's planned count and cleared when the stage ends; else ``None`` (nothing drawn)."""
    if not enabled or not sys.stderr.isatty():
        return None

    def bar(stage: str, planned: int) -> Any:
        from tqdm.auto import tqdm

        return tqdm(total=planned, desc=f"{desc}, {stage}", unit="frame", leave=False)

    return bar


def describe_once(frames: Iterable[Any], describe: Callable[[Iterable[Any]], Iterable[FrameDescription]],
                  seen: dict[float, FrameDescription]) -> Iterator[FrameDescription]:
    """``describe(frames)``, each decoded frame described at most once per search: a frame whose time ``seen`` holds
    (a frame this search, or an earlier query it was given as ``known``, described) is not sent again, its
    description is given again (the same object, which :func:`coarse_to_fine` counts as no call), after the others;
    each new description goes into ``seen``. A later round's grid time whose nearest decoded frame an earlier round
    described (a video with fewer frames than the grid) sent it to the describer again (18 of 58 calls on a 0.5-fps
    slideshow sampled at 1 fps)."""
    again: list[FrameDescription] = []

    def new() -> Iterator[Any]:
        for frame in frames:
            d = seen.get(frame.t)
            if d is None:
                yield frame
            else:
                again.append(d)

    for d in describe(new()):
        seen[d.t] = d
        yield d
    yield from again


def best_frames(reasoner: Any, query: str, descriptions: Iterable[FrameDescription], taken: Sequence[Interval],
                k: int, margin: float, half: float, duration: float) -> list[Interval]:
    """Up to ``k`` single frames among ``descriptions`` that match ``query`` best by the reasoner's own score of each
    frame (``entry_scores``), each outside the ``taken`` candidates and the frames picked before it by more than
    ``margin``, as intervals ``half`` either side of the frame, best first; none when the reasoner does not score
    frames (a chat reasoner).

    A reasoner's candidates are its answers: segments ranked by their area above a level, so a distractor where
    several sparse frames match fairly well outranks the moment whose one sparse frame matches best. On the dev half
    of ``benchmarks/long_videos.py`` (2 h, 15% of the calls, two assemblies, 263 queries dense answers), a sparse
    frame within 8 s of the moment was among the 3 best-scoring frames for 219 of them and among the reasoner's 3
    best candidates for 200; refining 2 such frames a round besides 3 of the reasoner's candidates found 249 of
    the queries against 239."""
    scores_of = getattr(reasoner, "entry_scores", None)
    descs = sorted(descriptions, key=lambda d: d.t)
    if k <= 0 or half <= 0 or not callable(scores_of) or not descs:  # half 0: a grid of one frame, nothing to refine
        return []
    transcript = Transcript.from_descriptions(descs, duration=max(duration, descs[-1].t))
    scores = scores_of(query, transcript)
    frames = sorted(((float(scores[j]), t) for j, e in enumerate(transcript.entries) for t in e.times),
                    key=lambda st: (-st[0], st[1]))
    chosen: list[Interval] = []
    for score, t in frames:
        if len(chosen) == k:
            break
        if any(iv.start - margin <= t <= iv.end + margin for iv in (*taken, *chosen)):
            continue
        chosen.append(Interval(start=round(max(0.0, t - half), 3), end=round(t + half, 3), score=round(score, 5)))
    return chosen


def _with_frames(candidates: Sequence[Interval], frames: Sequence[Interval], own: int) -> list[Interval]:
    """The reasoner's first ``own`` candidates and the best ``frames`` in turn (the reasoner's best first), then the
    reasoner's other candidates, each once."""
    head = list(candidates[:own])
    mixed = [iv for k in range(max(len(head), len(frames))) for iv in (head[k:k + 1] + list(frames[k:k + 1]))]
    return mixed + list(candidates[own:])


def in_flight_of(describer: Any) -> int:
    """How many calls ``describer`` (or the describer it wraps: ``inner``) runs at once: an API describer's
    ``concurrency``, a local model's ``batch_size``, else 1."""
    seen = 0
    while describer is not None and seen < 16:
        for name in ("concurrency", "batch_size"):
            value = getattr(describer, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
                return value
        describer, seen = getattr(describer, "inner", None), seen + 1
    return 1


def held_transcript(descriptions: Sequence[FrameDescription], grid: Sequence[float], duration: float) -> Transcript:
    """The transcript of a partly described grid: each description holds, as always, over the part of the video
    nearer to its frame than to any other described frame, and is sampled at every grid time of that part.

    A reasoner samples a transcript at its frames' instants. Built from the described frames alone, a search's
    transcript has one sample per sparse spacing away from the candidates and one per grid step inside them,
    so a score curve smoothed over a number of samples, and levels set from percentiles of the samples, would
    weigh the refined candidates many times over the rest of the video (their segments cut narrower, a
    candidate's rank set by how densely it was described). Held at the grid times, every stretch of the video
    weighs by its length, as in the dense transcript; the spans and their texts are unchanged. Each entry
    takes the grid times from its start up to its end, the last one its end too (nothing else samples it)."""
    import bisect

    plain = Transcript.from_descriptions(descriptions, duration=duration, step=_spacing(grid, 1) or None)
    last = len(plain.entries) - 1
    entries = [e.model_copy(update={"times": [grid[k] for k in range(
                   bisect.bisect_left(grid, e.start),
                   (bisect.bisect_right if j == last else bisect.bisect_left)(grid, e.end))] or e.times})
               for j, e in enumerate(plain.entries)]
    return plain.model_copy(update={"entries": entries})


def _spread(items: Sequence[int]) -> list[list[int]]:
    """``items`` in batches, each in their order, each halving the gaps the ones before left: the first item, the
    one half way, those at the quarters, and so on (a van der Corput order, batched by level)."""
    size = 1 << max(0, len(items) - 1).bit_length()  # the power of two at or above the count
    batches = [list(items[:1])]
    step = size // 2
    while step:
        batches.append([items[j] for j in range(step, len(items), 2 * step)])
        step //= 2
    return [b for b in batches if b]


def _spacing(grid: Sequence[float], stride: int) -> float:
    """The sparse pass's spacing in seconds: ``stride`` grid steps (the grid's median step)."""
    if len(grid) < 2:
        return 0.0
    steps = sorted(b - a for a, b in zip(grid, grid[1:]))
    return stride * steps[len(steps) // 2]


def _nearest(times: Sequence[float], t: float, tolerance: float) -> float | None:
    """The time in ``times`` (sorted) nearest ``t`` when it is within ``tolerance``, else ``None``."""
    import bisect

    i = bisect.bisect_left(times, t)
    best = min((times[j] for j in (i - 1, i) if 0 <= j < len(times)), key=lambda x: abs(x - t), default=None)
    return best if best is not None and abs(best - t) <= tolerance else None


def _closest(times: Sequence[float], t: float) -> int:
    """The index of the time in ``times`` (sorted, not empty) nearest ``t``."""
    import bisect

    i = bisect.bisect_left(times, t)
    return min((j for j in (i - 1, i) if 0 <= j < len(times)), key=lambda j: abs(times[j] - t))


def _between(grid: Sequence[float], lo: float, hi: float) -> range:
    import bisect

    return range(bisect.bisect_left(grid, lo), bisect.bisect_right(grid, hi))


def rate_grid(duration: float, fps: float) -> list[float]:
    """The dense grid of a video sampled at ``fps``: ``0, 1/fps, ...`` before ``duration``."""
    if not duration > 0:
        return [0.0]
    n = max(1, math.ceil(duration * fps - 1e-9))
    return [k / fps for k in range(n)]


def count_grid(duration: float, n: int) -> list[float]:
    """The dense grid of ``n`` frames sampled by count: each at the centre of its equal share."""
    if not duration > 0:
        return [0.0]
    return [(k + 0.5) * duration / n for k in range(n)]


def add_search_arguments(g: Any, *, only: str, run_setting: bool = False) -> None:
    """Add ``--strategy``, ``--budget``, ``--budget-seconds``, ``--keyframe-tolerance`` and ``--skip-unchanged``
    to the argparse parser or group ``g`` (read back by :func:`search_options` and ``args.skip_unchanged``);
    ``only`` names the input they apply to (in the help), ``run_setting`` says they are part of an eval run's
    settings."""
    setting = "; part of the run's settings" if run_setting else ""
    g.add_argument("--strategy", default="uniform", choices=STRATEGIES,
                   help="uniform: every frame of the sampling grid (default); coarse-to-fine: a sparse pass, then the "
                        f"grid densely only around the reasoner's candidate regions ({only}){setting}")
    g.add_argument("--budget", type=int, default=None, metavar="N",
                   help="coarse-to-fine: at most N frames used per query, so at most N describer calls (frames from the "
                        "cache count too, so a rerun answers the same and pays nothing; not so with --budget-seconds too, "
                        "which depends on how fast the calls are, nor, after other queries, always for a describer "
                        "that compares each frame with the previous one, cv); a budget is also spent: the search goes "
                        "on to the next-best candidates while the reasoner names any, so one above what it needs costs "
                        "more than none")
    g.add_argument("--budget-seconds", type=float, default=None, metavar="S",
                   help="coarse-to-fine: at most S seconds of describing per query")
    g.add_argument("--keyframe-tolerance", type=float, default=None, metavar="F",
                   help="coarse-to-fine: the sparse pass may take a keyframe within F of its spacing instead of the "
                        "exact frame, decoding far less (default 0.25; 0: exact frames; under 0.5)")
    add_skip_unchanged_argument(g, only=only)


def add_skip_unchanged_argument(g: Any, *, only: str | None = None) -> None:
    """Add ``--skip-unchanged LEVELS`` (read back as ``args.skip_unchanged``, checked by the session) to the argparse
    parser or group ``g``: the same option, with the same help, for every command that describes a video; ``only``
    names the input it applies to (in the help)."""
    g.add_argument("--skip-unchanged", type=float, default=None, metavar="LEVELS",
                   help="do not send a frame whose 32x32 grey thumbnail differs from the last one sent by at most "
                        f"LEVELS grey levels on average (2 suits static footage); it reuses that frame's description"
                        + (f" ({only})" if only else ""))


def search_options(args: Any) -> dict[str, Any] | None:
    """The ``search`` settings from the command line's ``--strategy``/``--budget``/``--budget-seconds``/
    ``--keyframe-tolerance`` (``None`` for uniform); any of the others without ``coarse-to-fine`` is a
    :class:`ConfigurationError`."""
    strategy = getattr(args, "strategy", "uniform")
    budgets = {k: v for k, v in (("budget", getattr(args, "budget", None)),
                                 ("budget_seconds", getattr(args, "budget_seconds", None)),
                                 ("keyframe_tolerance", getattr(args, "keyframe_tolerance", None))) if v is not None}
    if strategy == "uniform":
        if budgets:
            raise ConfigurationError("--budget, --budget-seconds and --keyframe-tolerance apply to --strategy "
                                     "coarse-to-fine")
        return None
    return dict(Search.of({"strategy": strategy, **budgets}).model_dump(exclude_defaults=True), strategy=strategy)


def check_skip_unchanged(value: Any) -> float | None:
    """The skip-unchanged threshold (mean absolute grey-level difference, 0-255, of small thumbnails), or
    ``None`` for off; anything else than a number >= 0 is a :class:`ConfigurationError`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"skip_unchanged must be a grey-level difference >= 0 (0-255) or None, got {value!r}")
    return float(value)


__all__ = ["Search", "SearchOutcome", "coarse_to_fine", "coarse_stride", "held_transcript", "in_flight_of", "rate_grid",
           "count_grid", "check_skip_unchanged", "add_skip_unchanged_argument", "describe_once", "frame_progress", "search_options", "request",
           "STRATEGIES"]
