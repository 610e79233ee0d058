"""Where a run's videos are processed: threads on this machine, or a Ray cluster.

The unit of work is a whole video (:class:`~pipelines.runs.VideoTask`): describe it once
(through the description cache), then ground each of its queries. Workers share nothing but
the result sink, which only the driver writes. An executor's ``run(tasks, config)`` yields
``("video", record)`` and ``("result", record)`` pairs as work finishes; at a Ctrl-C (its ``stop`` event set by the
caller's signal handler, a ``KeyboardInterrupt`` where it waits, or one thrown into it by the caller) it still yields
the records finished, then raises ``KeyboardInterrupt``.

Running on a real Ray cluster::

    ray start --head                                   # on the head node
    ray start --address HEAD_IP:6379                   # on every worker node
    vidground eval charades-sta --videos /shared/charades --executor ray --address HEAD_IP:6379 \\
        --out runs/full

Backends installed as entry points are found on every node; others can be registered by
``VIDGROUND_RAY_SETUP=module:function`` in the runtime environment. Every node needs vidground installed and the videos at the same path (a shared filesystem,
or the same copy on each node). Each node keeps its own description cache (``--cache`` names
a local path; do not put SQLite on NFS). The driver writes ``runs/NAME`` on its own disk.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from temporal_reasoner.context import progress_to
from vidground import interrupts
from vidground.errors import ConfigurationError, MissingDependencyError, ProviderError
from vidground.types import Usage

from .datasets import Query
from .metrics import reaches, score_query
from .provenance import backend_settings
from .topk import kept_top_k

Emit = Callable[[tuple[str, dict[str, Any]]], None]
_sessions: dict[tuple[Any, ...], Any] = {}
_sessions_lock = threading.Lock()


def _session_key(config: Any) -> tuple[Any, ...]:
    return (config.mode, config.describer, config.reasoner, repr(config.describer_options),
            repr(config.reasoner_options), config.fps, config.num_frames, config.max_frames, config.max_side,
            config.cache, getattr(config, "motion", False), repr(getattr(config, "search", None)),
            getattr(config, "skip_unchanged", None))


def session_for(config: Any) -> Any:
    """A :class:`~pipelines.session.Session` with ``config``'s backends, sampling and cache."""
    from .session import Session

    videos = config.mode == "videos"
    return Session(describer=config.describer if videos else None, reasoner=config.reasoner,
                   sampling=config.sampling, cache=config.cache or False,
                   describer_options=config.describer_options if videos else None,
                   reasoner_options=config.reasoner_options, motion=bool(getattr(config, "motion", False)) and videos,
                   search=getattr(config, "search", None) if videos else None,
                   skip_unchanged=getattr(config, "skip_unchanged", None) if videos else None)


def worker_session(config: Any) -> Any:
    """This worker process's session for ``config`` (Ray workers: one per process, kept while it lives)."""
    key = _session_key(config)
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            session = _sessions[key] = session_for(config)
        return session


def _error(exc: BaseException) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc)[:1000], "retryable": getattr(exc, "retryable", None)}


#: A failed query's ``usage`` key for what its error carried when the query described its own frames (a query-aware
#: describer, a coarse-to-fine search): the error's usage sums the describe and the reasoning, which it does not split.
#: A reader of the stages counts it as any stage (:func:`paid_requests`); it is neither "describe" nor "reason".
PAID_ACROSS_STAGES = "paid"


def _paid(exc: BaseException) -> Usage | None:
    """The requests paid for on the way to ``exc`` (the usage it carries), if any."""
    paid = getattr(exc, "usage", None)
    return paid if isinstance(paid, Usage) and not paid.is_empty() else None


def _failed(q: Query, exc: BaseException, *, paid_here: bool = True, stage: str = "reason") -> dict[str, Any]:
    """A failed query's record; the requests paid for on the way (e.g. every attempt of an answer that never
    validated: an :class:`~vidground.errors.OutputValidationError` carries their usage) are in ``usage``, under
    ``stage``, unless ``paid_here`` is false (the video's describe failed: its record holds them, once for all its
    queries). ``stage`` is ``"reason"`` where the query paid for nothing else (its video described before it), else
    ``"paid"`` (:data:`PAID_ACROSS_STAGES`): the error carries one sum, its describe and its reasoning together."""
    rec: dict[str, Any] = {"qid": q.qid, "video": q.video, "query": q.query, "status": "failed", "error": _error(exc),
                           **(_error_counts(exc) if paid_here else {})}  # else on the video's record, once
    paid = _paid(exc) if paid_here else None
    if paid is not None:
        rec["usage"] = {stage: paid.model_dump(mode="json", exclude_none=True)}
        rec["cost_usd"] = round(paid.cost_usd or 0.0, 8)
    return rec | {"finished": round(time.time(), 3)}


def _described_counts(described: Any) -> dict[str, int]:
    """A described video's ``describe_calls`` (frames sent to the describer) and ``describe_saved`` (frames the
    description cache gave): a frame skip-unchanged answered with the last sent one's description (``reused_from``)
    is neither (it was counted as a call: 72 made where 27 were sent, at --fps 2 --skip-unchanged 2)."""
    from .session import _frame_counts  # the session's rule, one place (imported here as session_for does)

    counts = _frame_counts(described.descriptions, cached=described.usage.cached)  # cache hits carry cached=1
    return {"describe_calls": counts["calls"], "describe_saved": counts["cached"]}


def _searched_counts(settings: dict[str, Any], key: str = "search") -> dict[str, int]:
    """A coarse-to-fine search's ``describe_calls`` and ``describe_saved`` (its ``calls`` and ``cached``: per request
    made, so frames an earlier query of the video described, ``known``, are not counted again), for its result:
    such a video is described per query, its video record counts none. ``key="described"``: a query-aware
    describer's, the frames its describe sent and the cache gave (:class:`~pipelines.session.Session` records them,
    free ones too)."""
    search = settings.get(key)
    if not isinstance(search, dict) or "calls" not in search:
        return {}
    return {"describe_calls": int(search.get("calls") or 0), "describe_saved": int(search.get("cached") or 0)}


def _query_counts(res: Any, per_query: bool) -> dict[str, int]:
    """A result's ``describe_calls`` and ``describe_saved`` where its query described the video itself
    (``per_query``): a search's (:func:`_searched_counts`); a query-aware describer's, the frames its describe sent
    and the cache hits (``settings["described"]``: skip-unchanged's reuses are neither), as the agnostic describe
    counts them, also for a describer that reports no usage (``cv``, a plug-in: their frames counted 0), else the
    requests and cache hits of its ``describe`` usage. Such a video's record counts none; each result said 0."""
    counts = _searched_counts(res.settings)
    if counts or not per_query:
        return counts
    counts = _searched_counts(res.settings, "described")  # counted as the agnostic describe is (frames sent)
    if counts:
        return counts
    described = res.usage.get("describe")
    if described is None:  # no describe usage: a describer that reports none (free, as ``cv``) counts no call
        return {"describe_calls": 0, "describe_saved": 0}
    return {"describe_calls": described.requests, "describe_saved": described.cached}


def _error_counts(exc: BaseException) -> dict[str, int]:
    """The describer calls and cache hits of a search that ``exc`` (a failure or a Ctrl-C) stopped, which it
    carries as ``described`` (:func:`pipelines.search.counted_on_error`), as a record's ``describe_calls`` and
    ``describe_saved``; none where it carries none."""
    described = getattr(exc, "described", None)
    if not isinstance(described, dict):
        return {}
    return {"describe_calls": int(described.get("calls") or 0), "describe_saved": int(described.get("cached") or 0)}


def _unfinished(task: Any, exc: BaseException, query: Query | None, started: float,
                searched: bool = False) -> dict[str, Any] | None:
    """The record of what a Ctrl-C stopped on the way (the video's describe, or ``query``, dropped: the resumed run
    asks it again) when it had paid for requests (the usage the interrupt carries: :func:`vidground.errors.keep_paid`),
    so that the run folder's cost and describer calls are what was paid; ``None`` when nothing was paid. A
    ``"video"`` record marked ``unfinished``, which says nothing of the video's description
    (:func:`pipelines.runs.run_totals`). A video's describe paid only describer requests, one a frame sent: they are
    its ``describe_calls`` (and the cache hits it had, ``describe_saved``); so did a query's (``unfinished_query``
    names it) with a query-aware describer, stopped while it described. A query's search (``searched``) sums the
    frames it described and its reasoner's rounds in ``usage``: its calls and cache hits are those the interrupt
    carries (:func:`_error_counts`; they were left 0, and a resumed run, taking those frames from the cache, never
    counted them)."""
    paid, counts = _paid(exc), _error_counts(exc)  # counts: the frames sent, free ones too (the session's)
    if not counts.get("describe_calls") and (paid is None or not (paid.requests or paid.retried or paid.cost_usd)):
        return None  # e.g. cache hits alone: nothing paid, no frame sent
    paid = paid or Usage()
    rec: dict[str, Any] = {"video": task.video, "source": task.source, "describe_calls": 0, "describe_saved": 0,
                           "cost_usd": paid.cost_usd or 0.0, "usage": paid.model_dump(mode="json", exclude_none=True),
                           "error": None, "unfinished": True}
    if query is not None:
        rec["unfinished_query"] = query.qid
    if searched or counts:
        rec.update(counts)
    else:  # describer requests alone: the video's describe, or a query-aware describer's for its query
        rec.update(describe_calls=paid.requests, describe_saved=paid.cached)
    return rec | {"seconds": round(time.perf_counter() - started, 3)}


def process_video(task: Any, config: Any, emit: Emit, session: Any = None, stop: threading.Event | None = None) -> None:
    """Describe ``task.video`` once and ground each of its queries in ``session`` (default: this process's
    :func:`worker_session`), emitting records. Once ``stop`` is set (a Ctrl-C) no video or query is begun: what
    is under way finishes and is emitted, and the queries not begun are left for the resumed run; the frame and
    describer streams opened here stop with it, as at a Ctrl-C (:func:`vidground.interrupts.scope`), also once the
    run has ended (a second Ctrl-C returns while a worker still gets ready: it opens nothing that runs)."""
    if stop is not None and stop.is_set():
        return
    with interrupts.scope(stop):
        _process_video(task, config, emit, session, stop)


def _process_video(task: Any, config: Any, emit: Emit, session: Any, stop: threading.Event | None) -> None:
    started = time.perf_counter()
    top_k = kept_top_k(config.top_k)  # not given: DEFAULT_TOP_K (run_eval resolves it; an executor run directly)
    video_rec: dict[str, Any] = {"video": task.video, "source": task.source, "describe_calls": 0,
                                 "describe_saved": 0, "cost_usd": 0.0, "error": None}
    try:
        session = session or worker_session(config)
        describer = session.describer if config.mode == "videos" else None
        if stop is not None and stop.is_set():  # a Ctrl-C while the describer was built (a local model loads)
            return
        video_rec["settings"] = backend_settings(describer, session.reasoner)
        aware = describer is not None and getattr(describer, "mode", "agnostic") == "aware"
        # a coarse-to-fine search describes per query what that query needs (frames shared through the session)
        searching = describer is not None and session.search.refines
        aware = aware or searching
        described = None
        if config.mode == "descriptions":
            described = session.load(task.source, format=config.descriptions_format, clip_seconds=config.clip_seconds)
        elif not aware:
            described = session.describe(task.source)
            video_rec.update(_described_counts(described))
            video_rec["cost_usd"] = described.usage.cost_usd or 0.0
            video_rec["usage"] = described.usage.model_dump(mode="json", exclude_none=True)
        if described is not None:
            video_rec.update(duration=described.duration, step=described.step, describer=described.describer,
                             descriptions=list(described.descriptions))
    except KeyboardInterrupt as exc:  # a Ctrl-C stopped the describe: the video is the resumed run's, its cost kept
        unfinished = _unfinished(task, exc, None, started)
        if unfinished is not None:
            emit(("video", unfinished))
        raise
    except Exception as exc:  # the video failed: so do its queries, and the run goes on
        video_rec["error"] = _error(exc)
        video_rec.update(_error_counts(exc))  # the frames sent before it failed (free ones too), as paid below
        paid = _paid(exc)  # e.g. a describe reply cut off at max_tokens: paid once for the video, not per query
        if paid is not None or video_rec["describe_calls"] or video_rec["describe_saved"]:
            # usage even when none was paid (a free describer's calls): a record with calls and no usage is read as
            # written before videos.jsonl held usage, one request a call (pipelines.runs.run_totals)
            video_rec["cost_usd"] = (paid or Usage()).cost_usd or 0.0
            video_rec["usage"] = (paid or Usage()).model_dump(mode="json", exclude_none=True)
        emit(("video", video_rec | {"seconds": round(time.perf_counter() - started, 3)}))
        for q in task.queries:
            emit(("result", _failed(q, exc, paid_here=False)))
        return
    # a query-aware describer describes per query (its calls and cost are on each result); the record
    # still says which backends, with which settings, ran
    emit(("video", video_rec | {"seconds": round(time.perf_counter() - started, 3)}))

    def one(q: Query) -> dict[str, Any] | None:
        if stop is not None and stop.is_set():  # interrupted: not begun (None), the resumed run asks it
            return None
        with progress_to(), interrupts.scope(stop):  # a query in a thread of its own: the run's stop again  # the run's own bar counts queries: no bar per long transcript beside it
            return grounded(q)

    def grounded(q: Query) -> dict[str, Any]:
        qa: dict[str, Any] = {}
        begun = time.perf_counter()
        try:
            dur = q.duration if not aware and described.duration_inferred and q.duration else None
            source = dict(video=task.source) if aware else dict(descriptions=described, duration=dur)
            if q.is_question:  # grounded QA: the answer and the spans that support it
                # an option written twice is offered once; the result keeps the dataset's indices (Query.official)
                res = session.answer(question=q.query, choices=list(q.offered), **source)
                choice, scores = q.official(res.choice, res.choice_scores)
                qa = {"answer": res.answer, "choice": choice, "choice_scores": scores}
                res = res.model_copy(update={"intervals": res.intervals[:top_k or None]})
            else:
                res = session.ground(query=q.query, top_k=top_k, **source)
        except KeyboardInterrupt as exc:  # a Ctrl-C stopped its describing: the query is dropped (the resumed run
            # asks it; its frames are in the cache), what it paid is kept
            unfinished = _unfinished(task, exc, q, begun, searched=searching)
            if unfinished is not None:
                emit(("video", unfinished))
            raise
        except Exception as exc:  # the frames described for this query alone are in its error's usage too
            return _failed(q, exc, stage=PAID_ACROSS_STAGES if aware else "reason")
        usage = {k: v.model_dump(mode="json", exclude_none=True) for k, v in res.usage.items()}
        stages = [k for k in res.usage if aware or k != "describe"]  # agnostic describe cost is per video
        cost = sum(res.usage[k].cost_usd or 0.0 for k in stages)
        search = {"search": res.settings["search"]} if "search" in res.settings else {}
        return {"qid": q.qid, "video": q.video, "query": q.query, "status": "ok", **qa, **search,
                **_query_counts(res, aware),
                "intervals": [i.as_list() for i in res.intervals], "duration": res.duration,
                "duration_inferred": res.duration_inferred, "reasoner": res.reasoner, "describer": res.describer,
                "curve": [list(p) for p in res.curve] if getattr(res, "curve", None) else None, "usage": usage,
                "cost_usd": round(cost, 8), "timings": res.timings, "warnings": res.warnings,
                "raw": res.raw if isinstance(res.raw, (str, dict, list, type(None))) else str(res.raw),
                "finished": round(time.time(), 3)}

    if config.query_concurrency > 1 and len(task.queries) > 1:
        failure: BaseException | None = None
        # each query's result in query order; a query stopped by a Ctrl-C (its frame stream raises
        # KeyboardInterrupt) no longer drops the results of the queries after it that finished
        for rec, exc in _in_daemon_threads(one, task.queries, config.query_concurrency):
            if exc is not None:
                failure = failure or exc
            elif rec is not None:
                emit(("result", rec))
        if failure is not None:
            raise failure
    else:
        for q in task.queries:
            rec = one(q)
            if rec is None:
                break
            emit(("result", rec))


def _failed_video(task: Any, exc: BaseException) -> list[tuple[str, dict[str, Any]]]:
    """The records of a video whose task failed as a whole (``exc``), its queries with it."""
    rec = {"video": task.video, "source": task.source, "describe_calls": 0, "describe_saved": 0, "cost_usd": 0.0,
           "error": _error(exc), "seconds": 0.0}
    return [("video", rec), *(("result", _failed(q, exc, paid_here=False)) for q in task.queries)]


def _in_daemon_threads(fn: Callable[[Any], Any], items: Sequence[Any], n: int) -> Iterator[tuple[Any, BaseException | None]]:
    """``(fn(item), None)`` or ``(None, the exception)`` for each item, in order, each as soon as it and those before
    it ended, from ``n`` daemon threads: unlike a ThreadPoolExecutor's, the interpreter does not wait for them at exit,
    so a second Ctrl-C ends the process while a query's call is under way (that call is lost: the resumed run asks it
    again)."""
    out: list[tuple[Any, BaseException | None]] = [(None, None)] * len(items)
    # one SimpleQueue per item, not an Event: its get() is C code, which a Ctrl-C interrupts with a KeyboardInterrupt
    # alone (an Event's wait could end in "RuntimeError: release unlocked lock", see interrupts.wait_all)
    ended: list[queue.SimpleQueue[None]] = [queue.SimpleQueue() for _ in items]
    todo, lock = iter(range(len(items))), threading.Lock()

    def work() -> None:
        while True:
            with lock:
                k = next(todo, None)
            if k is None:
                return
            try:
                out[k] = (fn(items[k]), None)
            except BaseException as exc:
                out[k] = (None, exc)
            finally:
                ended[k].put(None)

    for _ in range(min(n, len(items))):
        threading.Thread(target=work, name="vidground-query", daemon=True).start()
    for k in range(len(items)):
        ended[k].get()
        yield out[k]


#: the queue a local run's workers put their records in (a name of its own: a test replaces it alone)
_RecordQueue = queue.SimpleQueue


class LocalExecutor:
    """Videos in parallel on ``concurrency`` threads of this process (model calls release the GIL), all
    in one session that the run opens and closes: one describer, one reasoner, one cache.

    A Ctrl-C (``stop`` set by the caller's SIGINT handler, a ``KeyboardInterrupt`` in the thread reading :meth:`run`,
    or one thrown into it by the caller while it handled a record) stops the run without losing what finished: no
    worker begins another video or query, and the records already finished, and those of the queries under way when
    they finish, are still yielded; then ``KeyboardInterrupt`` is raised. A second one (a ``KeyboardInterrupt`` once
    ``stop`` is set) stops at once: the records already finished are yielded, the calls under way are not waited for
    and their results are lost (the resumed run asks those queries again). The workers are daemon threads, so the
    process can exit while they are in a call; each begins nothing more, and the last to end closes the session."""

    def __init__(self, concurrency: int = 2):
        if concurrency < 1:
            raise ConfigurationError(f"concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self._runs: list[_RunSession] = []  # runs whose sessions are not closed yet

    def run(self, tasks: Sequence[Any], config: Any,
            stop: threading.Event | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """``stop``: an event the caller sets at a Ctrl-C instead of raising (its SIGINT handler); the run sets it
        too, when it ends."""
        if not tasks:
            return
        # a SimpleQueue: its get() is C code, which a Ctrl-C interrupts with a KeyboardInterrupt alone (a Queue's
        # Condition wait, every 0.25 s here, could end a second Ctrl-C in "release unlocked lock", the run then
        # waiting for the queries under way)
        q: queue.SimpleQueue[Any] = _RecordQueue()
        done = object()  # a worker's last item
        stop = stop or interrupts.Flag()  # set by a Ctrl-C: the workers begin no other video or query
        owner = _RunSession(session_for(config))
        self._runs.append(owner)
        session = owner.session
        todo, todo_lock = enumerate(list(tasks)), threading.Lock()
        failures: dict[int, BaseException] = {}  # by task: the first (in task order) is raised at the end

        def work() -> None:
            owner.enter()
            try:
                while not stop.is_set() and not owner.handed_over:  # handed over: the session may be closed
                    with todo_lock:
                        k, task = next(todo, (-1, None))
                    if task is None:
                        return
                    try:
                        process_video(task, config, q.put, session, stop)
                    except BaseException as exc:  # a bug in the worker, or a frame stream a Ctrl-C stopped
                        failures[k] = exc
            finally:
                q.put(done)
                owner.leave()

        # the workers pull the videos; a Ctrl-C can come at any instruction of this thread, so nothing here counts on
        # knowing which of them began: the run is over once every worker that began has put its last item
        workers = [threading.Thread(target=work, name=f"vidground-video_{j}", daemon=True)
                   for j in range(min(self.concurrency, len(tasks)))]
        finished = 0
        began = False
        interrupted: BaseException | None = None
        wait = True  # for the workers, when the run ends

        def interrupt(exc: BaseException) -> None:
            """The first Ctrl-C: begin nothing more, and go on taking what finishes; the second (``stop`` was set, here
            or by the caller's handler): yield what is finished already, then stop without waiting for the workers."""
            nonlocal interrupted, wait
            if stop.is_set():
                wait = False
                raise exc
            stop.set()
            interrupted = exc

        def finished_now() -> Iterator[Any]:  # after a second Ctrl-C: what the workers had put already
            while True:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    return
                if item is not done:
                    yield item

        try:
            while True:
                try:
                    if interrupted is None and stop.is_set():  # the caller's handler saw a Ctrl-C
                        interrupted = KeyboardInterrupt()
                    if not began:
                        began = True
                        for t in workers:
                            if not stop.is_set():
                                t.start()
                    if finished == len(workers):
                        break
                    try:  # timed: a Ctrl-C the kernel hands a worker thread is run by this one only when it wakes
                        item = q.get(timeout=0.25)
                    except queue.Empty:  # every worker that began has ended, and put everything: the run is over
                        if not any(t.is_alive() for t in workers) and q.empty():
                            break
                        continue
                    if item is done:
                        finished += 1
                        continue
                    try:
                        yield item
                    except KeyboardInterrupt as exc:  # thrown in by the caller: a Ctrl-C while it handled a record
                        interrupt(exc)
                except KeyboardInterrupt as exc:
                    interrupt(exc)
            if interrupted is not None:
                raise interrupted
            if failures:
                raise failures[min(failures)]  # surface a bug in the worker itself
        except KeyboardInterrupt:
            if wait:
                raise
            try:  # a second Ctrl-C: the records finished already are still yielded (a third one ends this too)
                for item in finished_now():
                    yield item
            except KeyboardInterrupt:
                pass
            raise
        finally:  # also when the caller stops early: no other video or query is begun for nothing, and the run's
            # session never outlives it: closed now, or by the last worker to end its call. Handed over first (a
            # plain store, no call: a Ctrl-C cannot come before it), so a second Ctrl-C anywhere below still leaves
            # the session to the last worker, or to close_sessions() (run_eval's end)
            owner.handed_over = True
            try:
                stop.set()
                for t in workers if wait else ():
                    if t.is_alive():
                        t.join()
            finally:  # a Ctrl-C that ends the wait above (e.g. the caller's code raised, and the run closes us) ends
                owner.hand_over()  # it before the workers did: the session is then the last one's to close

    def close_sessions(self) -> None:
        """Close the session of every run of this executor that has ended and whose workers have all ended (each
        once); idempotent. ``run_eval`` calls it as it ends: a second Ctrl-C inside the run's own end can stop it
        before it closed its session."""
        for owner in list(self._runs):
            if owner.handed_over:
                owner.hand_over()
            if owner.closed:
                with contextlib.suppress(ValueError):
                    self._runs.remove(owner)


class _RunSession:
    """A :class:`LocalExecutor` run's session, closed once: by the run as it ends, or, when workers are still in a
    call then (a second Ctrl-C), by the last of them to end."""

    def __init__(self, session: Any):
        self.session, self.running, self.handed_over, self.closed = session, 0, False, False
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            self.running += 1

    def leave(self) -> None:
        with self._lock:
            self.running -= 1
            last = self.handed_over and self.running == 0
        if last:
            self.close()

    def hand_over(self) -> None:
        """The run has ended: the session is closed now if no worker is in a call, else by the last to end."""
        self.handed_over = True
        with self._lock:
            now = self.running == 0
        if now:
            self.close()

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self.session.close()


_setup_done = False


def _worker_setup() -> None:
    """Run ``$VIDGROUND_RAY_SETUP`` (``"module:function"``) once per worker process, e.g. to
    register backends that are not installed as entry points."""
    global _setup_done
    spec = os.environ.get("VIDGROUND_RAY_SETUP")
    if _setup_done or not spec:
        return
    module, _, attr = spec.partition(":")
    if not attr:
        raise ConfigurationError(f"VIDGROUND_RAY_SETUP must look like 'module:function', got {spec!r}")
    getattr(importlib.import_module(module), attr)()
    _setup_done = True


def _collect(task: Any, config: Any) -> list[tuple[str, dict[str, Any]]]:
    _worker_setup()
    out: list[tuple[str, dict[str, Any]]] = []
    process_video(task, config, out.append)
    return out


class RayExecutor:
    """Videos spread over a Ray cluster, one task per video; ``address=None`` starts a local Ray."""

    def __init__(self, address: str | None = None, *, num_cpus_per_task: float = 1.0,
                 runtime_env: dict[str, Any] | None = None, init: bool = True):
        try:
            import ray
        except ImportError:
            raise MissingDependencyError("ray", "ray", "the Ray executor") from None
        self.ray = ray
        self.num_cpus = num_cpus_per_task
        if init and not ray.is_initialized():
            try:
                ray.init(address=address, runtime_env=runtime_env, include_dashboard=False,
                         log_to_driver=False, configure_logging=False)
            except (ConnectionError, TimeoutError) as exc:  # an unreachable head: the CLI's "internal error" before
                raise ProviderError(f"could not connect to the Ray cluster at {address or 'a local Ray'}: {exc}; "
                                    "check --address (ray://HOST:10001 for a Ray client, HOST:6379 on a node of the "
                                    "cluster) and that the head is running", provider="ray", url=address,
                                    retryable=True) from exc

    def run(self, tasks: Sequence[Any], config: Any,
            stop: threading.Event | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """Each video's records once its task ends. A Ctrl-C (``stop`` set by the caller's SIGINT handler, a
        ``KeyboardInterrupt`` in this thread, or one thrown in by the caller while it handled a record) cancels the
        videos under way (their finished queries are lost: the resumed run asks them again) and yields the records
        of those that had ended, then raises ``KeyboardInterrupt``; a second one stops at once."""
        ray = self.ray
        remote = ray.remote(num_cpus=self.num_cpus, max_retries=2)(_collect)
        cfg = ray.put(config)
        pending = [remote.remote(t, cfg) for t in tasks]
        task_of = {id(ref): task for ref, task in zip(pending, tasks)}
        ended: list[Any] = []  # tasks that ended, their records not yet taken
        records: collections.deque[tuple[str, dict[str, Any]]] = collections.deque()
        interrupted: BaseException | None = None
        try:
            while pending or ended or records:
                try:
                    if interrupted is None and stop is not None and stop.is_set():  # the caller's handler
                        interrupted = KeyboardInterrupt()
                    if records:
                        item = records.popleft()
                        try:
                            yield item
                        except KeyboardInterrupt as exc:  # thrown in by the caller: a Ctrl-C while it wrote a record
                            if interrupted is not None or (stop is not None and stop.is_set()):  # the second
                                raise
                            interrupted = exc
                    elif ended:
                        ref, before = None, len(records)
                        try:
                            ref = ended.pop(0)  # first: a Ctrl-C after the get must not take (yield) this video again
                            records.extend(ray.get(ref))
                        except KeyboardInterrupt as exc:
                            if isinstance(exc, Exception):  # the task's own (a RayTaskError), not a Ctrl-C: the
                                if interrupted is None and ref is not None:  # video's failure, and the run goes on
                                    records.extend(_failed_video(task_of[id(ref)], exc))
                                continue
                            if ref is not None and len(records) == before:  # a Ctrl-C inside the get: the video
                                ended.insert(0, ref)  # is read again once it is handled, its records not lost
                            raise
                        except Exception:
                            if interrupted is None:
                                raise
                            # after a Ctrl-C a failed (or cancelled) video is the resumed run's
                    elif interrupted is None:  # timed when the caller's handler may set ``stop``: it raises nothing
                        ended, pending = ray.wait(pending, num_returns=1, timeout=None if stop is None else 0.25)
                    else:  # after a Ctrl-C: the videos that ended already, without waiting for the others
                        ended, pending = ray.wait(pending, num_returns=len(pending), timeout=0)
                        for ref in pending:
                            ray.cancel(ref)
                        pending = []
                except KeyboardInterrupt as exc:
                    if interrupted is not None or (stop is not None and stop.is_set()):  # the second
                        raise
                    interrupted = exc
            if interrupted is not None:
                raise interrupted
        finally:
            for ref in pending:
                ray.cancel(ref)


def paid_requests(record: dict[str, Any], skip: Sequence[str] = ()) -> tuple[int, int, int]:
    """``(requests, of them without a price, of them for a query that failed)`` in a record's ``usage`` (one
    stage's usage for a video record, stage -> usage for a result, less the stages in ``skip``); a stage with
    requests and no ``cost_usd`` was priced by nobody (a model missing from the price table, a local server), one
    with a cost leaves out its ``unpriced`` ones (:class:`~vidground.types.Usage` sums of priced and unpriced).
    A failed video's requests were paid for its queries, which failed with it."""
    usage = record.get("usage")
    if not isinstance(usage, dict):
        return 0, 0, 0
    stages = [usage] if "requests" in usage else [u for k, u in usage.items() if isinstance(u, dict) and k not in skip]
    requests = unpriced = 0
    for u in stages:
        n = u.get("requests") if isinstance(u.get("requests"), int) else 0
        requests += n
        part = u.get("unpriced") if isinstance(u.get("unpriced"), int) else 0
        unpriced += n if u.get("cost_usd") is None else min(part, n)
    failed = requests if (record.get("status") != "ok" if "qid" in record else record.get("error")) else 0
    return requests, unpriced, failed


def make_executor(kind: str, *, concurrency: int = 2, address: str | None = None) -> Any:
    if kind == "local":
        return LocalExecutor(concurrency)
    if kind == "ray":
        return RayExecutor(address)
    raise ConfigurationError(f"unknown executor {kind!r}; choose 'local' or 'ray'")


class RunProgress:
    """A progress bar with ETA, running R1@0.5 / mIoU over this session's results (and the answers'
    accuracy for grounded-QA questions), and cost."""

    def __init__(self, total: int, *, enabled: bool = True):
        self.n = self.hits = self.failed = self.asked = self.right = 0
        self.iou_sum = self.cost = 0.0
        self.unpriced = 0  # requests without a price: the cost shown leaves them out
        self.bar = None
        if enabled and total:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="query", desc="eval", mininterval=1.0, dynamic_ncols=True)

    def update(self, record: dict[str, Any], query: Query) -> None:
        s = score_query(query, record if record.get("status") == "ok" else {"error": True})
        self.n += 1
        self.hits += reaches(s.iou, 0.5)
        self.iou_sum += s.iou
        self.failed += s.failure is not None
        self.cost += record.get("cost_usd") or 0.0
        self.unpriced += paid_requests(record)[1]
        if query.answer is not None:  # a grounded-QA question: what matters first is the answer
            self.asked += 1
            self.right += record.get("status") == "ok" and record.get("choice") == query.answer
        if self.bar is not None:
            acc = f"Acc@QA={100 * self.right / self.asked:.1f} " if self.asked else ""
            self.bar.set_postfix_str(f"{acc}R1@0.5={100 * self.hits / self.n:.1f} mIoU={100 * self.iou_sum / self.n:.1f} "
                                     f"fail={self.failed} ${self.cost:.4f}{'+?' if self.unpriced else ''}", refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    @property
    def miou(self) -> float:
        return 100 * self.iou_sum / self.n if self.n else math.nan
