"""A seconds budget keeps every describer call it begins (pipelines/search.py, ``in_flight``).

The search used to break out of the describer's stream when the next description would end past
``budget_seconds``. An API describer (OpenAIDescriber, ``concurrency`` N) has then sent up to N requests,
and pulled up to 2N frames: closing the stream waited for the requests sent, paid for them, and dropped their
answers (not yielded, cached, counted nor listed). The search now hands the describer at most ``2 * in_flight``
frames at a time and reads each stream to its end, checking the budget between chunks against a prediction
for the whole next chunk: nothing is ever dropped, and nothing is begun once the budget ran out.

No test here reads a wall clock: the describers move fake clocks, and through the local server the clock is
the count of requests it received (read between chunks, when none is in flight, so threads cannot move it).
"""

from __future__ import annotations

import base64
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import cv2
import numpy as np
import pytest

from frame_describer.base import BaseDescriber
from frame_describer.cache import CachedDescriber, DescriptionCache
from frame_describer.motion import MotionDescriber
from frame_describer.openai_describer import OpenAIDescriber
from frame_describer.replay import ReplayDescriber, timeline_frames
from frame_describer.skip import SkipUnchanged
from pipelines.search import Search, coarse_to_fine, in_flight_of
from vidground import ratelimit
from vidground.errors import ConfigurationError, ProviderError
from vidground.types import Frame, FrameDescription, Usage

from _helpers_openai_server import FakeOpenAIServer, Reply, openai_server  # noqa: F401
from test_search import Keyword, events

GRID = [d.t for d in events()]  # 300 frames, 2 s apart: a sparse pass of 75


class InFlight(BaseDescriber):
    """An API describer on a fake clock: it pulls up to ``2 * n`` frames ahead of the descriptions taken and sends
    each as soon as one of its ``n`` slots is free (a request takes ``latency(k)`` seconds, k counting requests from
    0); descriptions come in frame order, the clock ``now`` moving to each one's end as it is yielded. A request is
    begun (sent, paid) once the clock reaches its start: ``begun`` lists ``(frame time, start)`` of those begun by
    the time each stream ended, whether it was read to its end or closed."""

    name = "in-flight"

    def __init__(self, n: int, now: list[float], latency: Callable[[int], float] = lambda k: 1.0) -> None:
        self.n, self.now, self.latency = n, now, latency
        self.captions = ReplayDescriber(events(), duration=600)
        self.begun: list[tuple[float, float]] = []
        self.requests = 0

    def describe(self, frames: Iterable[Frame], *, query: str | None = None) -> Iterator[FrameDescription]:
        source = iter(frames)
        slots = [self.now[0]] * self.n  # when each slot is free
        window: deque[tuple[Frame, float]] = deque()  # pulled: (frame, end of its request)
        scheduled: list[tuple[float, float]] = []
        try:
            while True:
                while len(window) < 2 * self.n:
                    frame = next(source, None)
                    if frame is None:
                        break
                    j = min(range(self.n), key=lambda s: slots[s])
                    start = max(self.now[0], slots[j])
                    slots[j] = start + self.latency(self.requests)
                    self.requests += 1
                    scheduled.append((frame.t, start))
                    window.append((frame, slots[j]))
                if not window:
                    return
                frame, end = window.popleft()
                self.now[0] = max(self.now[0], end)
                yield FrameDescription(t=frame.t, text=self.captions.caption_at(frame.t), usage=Usage(requests=1))
        finally:  # read to its end or closed: the requests whose start the clock reached were sent
            self.begun.extend((t, start) for t, start in scheduled if start <= self.now[0])


def search_in_flight(tmp_path, describer: InFlight, search: Search, cache: DescriptionCache | None = None):
    cached = CachedDescriber(describer, cache or DescriptionCache(tmp_path / "c.sqlite"), fingerprint="v")
    out, _ = coarse_to_fine("dog", Keyword(), lambda times: cached.describe(timeline_frames(times)), GRID, 600.0,
                            search, clock=lambda: describer.now[0], in_flight=describer.n)
    return out, cached


@pytest.mark.parametrize("n, seconds", [(4, 12.5), (4, 20.0), (4, 27.0), (8, 7.0), (1, 12.5), (1, 100.5)])
def test_every_call_a_seconds_budget_begins_is_counted_listed_and_cached(tmp_path, n, seconds):
    """n requests in flight, 1 s each: every request begun is a description taken, counted in calls and usage,
    listed in frames and stored in the cache, and a second search asks the describer for none of them; none is
    begun once the budget ran out, and with requests as slow as before none ends past it. The budget runs out in
    the sparse pass (12.5 s, 7 s), in the first refinement (20 s) or the second (27 s, 100.5 s). (The old break
    dropped the requests in flight: 28 calls counted of 35 begun at 4 in flight and 12.5 s, 76 of 83 at 25 s,
    96 of 103 at 30 s, 12 of 13 at 1 in flight. The sparse pass then went in chunks no longer than its spread's
    levels, 1, 1, 2, 4, ... frames, so 25 s ran out in the first refinement and 30 s in the second; it now keeps
    n requests in flight, and the whole search converges in 29 s at 4 in flight.)"""
    now = [0.0]
    inner = InFlight(n, now)
    out, cached = search_in_flight(tmp_path, inner, Search(strategy="coarse-to-fine", budget_seconds=seconds))
    times = sorted(t for t, _ in inner.begun)
    assert out.calls == len(inner.begun) == inner.requests == out.usage.requests > 0
    assert sorted(d.t for d in out.descriptions) == times
    assert sorted(t for t, _, _ in out.frames) == [round(t, 3) for t in times]
    assert all(start < seconds for _, start in inner.begun) and now[0] <= seconds
    assert out.stop == "budget" and any(f"{seconds:g} s ran out" in w for w in out.warnings)
    assert max(p for _, p, _ in out.frames) == (0 if seconds < 15 else 1 if seconds < 25 else 2)
    assert set(cached.cache.lookup("v", cached.key, times)) == set(times)
    again = InFlight(n, [0.0])
    second, _ = search_in_flight(tmp_path, again, Search(strategy="coarse-to-fine", budget_seconds=seconds),
                                 cache=cached.cache)
    assert not {t for t, _ in again.begun} & set(times) and second.cached >= len(times)


def test_a_describer_slowing_down_overshoots_by_its_last_chunk_and_loses_nothing(tmp_path):
    """Requests take 1 s, then 5 s from the 37th on. The chunk of 8 (2 * in_flight) begun at 9 s was predicted to
    end at 11 s, within 12.5 s; its requests slow down and it ends at 19 s. Every call begun is still kept. The
    bound: a chunk is begun only while its prediction fits, so calls are sent after the budget ran out only when
    describing slows down, and of a chunk of 2 * in_flight only its second wave (at most in_flight): here 4.
    (Before the sparse pass kept 4 requests in flight, the chunk begun at 9 s was requests 21-28.)"""
    now = [0.0]
    inner = InFlight(4, now, latency=lambda k: 1.0 if k < 36 else 5.0)
    out, _ = search_in_flight(tmp_path, inner, Search(strategy="coarse-to-fine", budget_seconds=12.5))
    assert out.calls == len(inner.begun) == len(out.descriptions) == 44
    late = [start for _, start in inner.begun if start >= 12.5]
    assert len(late) == 4 and now[0] == 19.0 <= 12.5 + 2 * 5.0


def test_a_chunk_is_twice_the_calls_in_flight_unless_half_the_seconds_left_would_cover_it():
    """1 s a request, 3 in flight, 30 s: a chunk longer than 6 frames is begun only where its waves, as slow as
    the slowest so far (1 s), take at most half of the seconds left, so the stream is cut at few points while
    the budget is far from spent; each chunk goes in time order, and nothing is left out or counted twice."""
    chunks: list[tuple[list[float], float]] = []
    now = [0.0]
    inner = InFlight(3, now)

    def describe(times: list[float]) -> Any:
        chunks.append((list(times), now[0]))
        return inner.describe(timeline_frames(times))

    out, _ = coarse_to_fine("dog", Keyword(), describe, GRID, 600.0,
                            Search(strategy="coarse-to-fine", budget_seconds=30.0), clock=lambda: now[0], in_flight=3)
    long = [(c, at) for c, at in chunks if len(c) > 6]
    assert long and all(math.ceil(len(c) / 3) <= (30.0 - at) / 2 for c, at in long)
    assert all(c == sorted(c) for c, _ in chunks) and out.stop == "budget" and now[0] <= 30.0
    assert sum(len(c) for c, _ in chunks) == out.calls == len(inner.begun)
    # without a seconds budget the search hands each pass over whole, as before
    chunks.clear()
    coarse_to_fine("dog", Keyword(), describe, GRID, 600.0, Search(strategy="coarse-to-fine"), in_flight=3)
    assert len(chunks[0][0]) == 75


@pytest.mark.parametrize("budget", [7, 40, 150])
def test_a_calls_budget_never_begins_more_than_it_pays_for(tmp_path, budget):
    """A calls budget asks only for the frames it can pay for, so a describer working ahead cannot overshoot."""
    inner = InFlight(4, [0.0])
    out, _ = search_in_flight(tmp_path, inner, Search(strategy="coarse-to-fine", budget=budget))
    assert out.calls == len(inner.begun) == inner.requests <= budget


def test_in_flight_is_read_through_the_wrappers_and_checked(tmp_path):
    class Batched(BaseDescriber):
        name, batch_size = "batched", 4

        def describe(self, frames, *, query=None):
            return iter(())

    api = OpenAIDescriber("gpt-4o-mini", base_url="http://127.0.0.1:9/v1", api_key="sk-test", concurrency=5)
    chain = MotionDescriber(SkipUnchanged(CachedDescriber(api, DescriptionCache(tmp_path / "c.sqlite"),
                                                          fingerprint="v")))
    assert in_flight_of(chain) == 5 and in_flight_of(Batched()) == 4
    assert in_flight_of(ReplayDescriber(events(), duration=600)) == 1
    for bad in (0, -2, 1.5, True, "4"):
        with pytest.raises(ConfigurationError, match="in_flight must be a positive integer"):
            coarse_to_fine("dog", Keyword(), lambda times: iter(()), GRID, 600.0, in_flight=bad)


# -- through the OpenAI describer and the local server ---------------------------------------------------------

@pytest.fixture(autouse=True)
def fresh_shared_limiters(monkeypatch):
    monkeypatch.setattr(ratelimit, "_SHARED", {})


def grey(t: float) -> Frame:
    return Frame(t=t, index=0, image=np.full((48, 64, 3), int(t) % 250, np.uint8))


def level(req) -> int:
    """The grey level of the frame a request sent (``grey``'s whole seconds, modulo 250)."""
    url = req.json["messages"][0]["content"][1]["image_url"]["url"]
    image = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_GRAYSCALE)
    return round(float(image.mean()))


def test_through_the_openai_describer_every_request_received_is_a_description_kept(tmp_path, openai_server):
    """4 in flight against the local server, each request 1 s on a clock that counts the requests received: the
    server's requests == calls == descriptions == frames listed, all in the cache; a second search sends none of
    them again. (The old break left the answers of the requests in flight uncounted and uncached.)"""
    openai_server.responder = lambda req: Reply.chat("a quiet street")
    desc = OpenAIDescriber("gpt-4o-mini", base_url=openai_server.base_url, api_key="sk-test", concurrency=4,
                           prices=False)
    cached = CachedDescriber(desc, DescriptionCache(tmp_path / "c.sqlite"), fingerprint="v")

    def search(seconds: float):
        base = len(openai_server.requests)
        return coarse_to_fine("dog", Keyword(), lambda times: cached.describe(grey(t) for t in times), GRID, 600.0,
                              Search(strategy="coarse-to-fine", budget_seconds=seconds),
                              clock=lambda: float(len(openai_server.requests) - base), in_flight=in_flight_of(cached))[0]

    out = search(30.5)
    sent = len(openai_server.requests)
    assert out.calls == sent == len(out.descriptions) == len(out.frames) == out.usage.requests == 28
    assert any("30.5 s ran out in the sparse pass" in w for w in out.warnings)
    times = [d.t for d in out.descriptions]
    assert set(cached.cache.lookup("v", cached.key, times)) == set(times)
    again = search(30.5)
    assert again.cached >= sent and len(openai_server.requests) - sent == again.calls


@pytest.mark.parametrize("seconds, last_pass", [(12.5, 0), (24.5, 1)])
def test_a_session_with_skip_unchanged_keeps_every_request_it_sends(tmp_path, monkeypatch, openai_server, seconds,
                                                                   last_pass):
    """Through a Session on a rendered video (60 s, a picture that changes every 10 s, 1 fps), skip-unchanged on,
    3 requests in flight, 1 s a request on the request-counting clock, 12.5 s (it runs out in the sparse pass)
    or 24.5 s (in the first refinement; 30.5 s did before the sparse pass kept 3 requests in flight: now it
    converges): the server received exactly the calls the search counted, every frame listed was described (sent,
    skipped as unchanged or cached), and a second query sends nothing for the frames the first one described."""
    import pipelines.search as search_module
    from frame_describer.synthetic import _write
    from pipelines import Session

    video = _write(tmp_path / "v.mp4", lambda i: np.full((48, 64, 3), 30 + 12 * (i // 50), np.uint8),
                   [i / 5 for i in range(300)], fps=5, codec=None, rotation=None)
    openai_server.responder = lambda req: Reply.chat("a dog runs")
    base = [0]
    monkeypatch.setitem(search_module.coarse_to_fine.__kwdefaults__, "clock",
                        lambda: float(len(openai_server.requests) - base[0]))
    settings = {"strategy": "coarse-to-fine", "budget_seconds": seconds, "coarse": 2}

    def ground() -> dict[str, Any]:
        desc = OpenAIDescriber("gpt-4o-mini", base_url=openai_server.base_url, api_key="sk-test", concurrency=3,
                               prices=False)
        with Session(describer=desc, reasoner=Keyword(), cache=tmp_path / "c.sqlite", search=settings,
                     skip_unchanged=2.0) as s:
            return s.ground(video, "dog").settings["search"]

    first = ground()
    sent = len(openai_server.requests)
    assert first["calls"] == sent and first["skipped"] > 0 and first["stop"] == "budget"
    assert len(first["frames"]) == first["calls"] + first["skipped"] + first["cached"] + first["known"]
    assert max(p for _, p, _ in first["frames"]) == last_pass
    stored = DescriptionCache(tmp_path / "c.sqlite").count()
    assert stored == sent
    base[0] = sent
    again = ground()
    # nothing the first query described is sent again: each of its frames is a cache hit, or reuses the description
    # of the last frame sent (where the second query's chunks begin elsewhere); the cache grows by the new calls only
    assert again["cached"] > 0 and len(openai_server.requests) - sent == again["calls"]
    assert DescriptionCache(tmp_path / "c.sqlite").count() == stored + again["calls"]


def test_a_request_failing_in_a_chunk_fails_the_search_as_before_and_keeps_what_came_before(tmp_path,
                                                                                           openai_server):
    """No request is in flight when the search stops, so none can fail after a stop: a request that fails (here a
    400 for the sparse frame at 21 s, the third in the spread's order: in the second chunk) fails the search as it
    always did, and every description of the chunks before it (the first 8 frames of the spread) is in the cache,
    and so is every other request answered (those in flight beside it, paid: the stream kept them for the cache)."""
    from pipelines.search import _spread

    openai_server.responder = lambda req: Reply.error(400, "bad frame") if level(req) == 21 else Reply.chat("a street")
    desc = OpenAIDescriber("gpt-4o-mini", base_url=openai_server.base_url, api_key="sk-test", concurrency=4,
                           prices=False, max_retries=0)
    cached = CachedDescriber(desc, DescriptionCache(tmp_path / "c.sqlite"), fingerprint="v")
    sparse = GRID[2::4]
    chunks: list[list[float]] = []

    def describe(times: list[float]) -> Iterator[FrameDescription]:
        chunks.append(list(times))
        return cached.describe(grey(t) for t in times)

    with pytest.raises(ProviderError):
        coarse_to_fine("dog", Keyword(), describe, GRID, 600.0, Search(strategy="coarse-to-fine", budget_seconds=1000.0),
                       clock=lambda: float(len(openai_server.requests)), in_flight=4)
    order = [sparse[i] for lv in _spread(list(range(len(sparse)))) for i in lv]
    assert [sorted(c) for c in chunks] == [sorted(order[:8]), sorted(order[8:8 + len(chunks[1])])]
    assert sparse[2] == 21.0 and 21.0 in chunks[1] and 21.0 not in chunks[0]
    kept = cached.cache.lookup("v", cached.key, sparse)
    assert set(chunks[0]) <= set(kept) and 21.0 not in kept
    assert len(kept) == len(openai_server.requests) - 1  # every request answered but the 400


def test_cache_hits_do_not_shrink_the_predicted_cost_of_a_call(tmp_path):
    """A chunk answered from the cache alone takes a millisecond: timed as a wave of calls it made the next chunks
    look nearly free, and a second search of a video the cache half knew (a new session, a smaller budget) began
    dozens of requests past its budget (44 at 1 in flight, 10 s). Only chunks that made calls time a wave."""
    grid = [i + 0.5 for i in range(3600)]  # 1 h at 1 frame a second
    cache = DescriptionCache(tmp_path / "c.sqlite")
    for n, seconds in ((1, 60.0), (1, 10.0)):  # the first search fills the cache with the frames it could pay for
        now, ticks = [0.0], [0]

        def clock() -> float:  # a real clock moves a little at every read, cache hits included
            ticks[0] += 1
            return now[0] + 0.001 * ticks[0]

        inner = InFlight(n, now)
        inner.captions = ReplayDescriber([FrameDescription(t=t, text="a dog runs" if 1800 <= t < 1830 else f"street {t:.0f}")
                                          for t in grid], duration=3600.0)
        cached = CachedDescriber(inner, cache, fingerprint="v")
        out, _ = coarse_to_fine("dog", Keyword(), lambda times: cached.describe(timeline_frames(times)), grid, 3600.0,
                                Search(strategy="coarse-to-fine", budget_seconds=seconds), clock=clock, in_flight=n)
    assert out.cached > 0 and out.calls == inner.requests > 0
    late = [start for _, start in inner.begun if start >= 10.0]
    assert late == [] and now[0] <= 10.0, (len(late), now[0])


def test_chunks_grow_where_most_frames_are_unchanged(tmp_path):
    """Skip-unchanged on static footage (1 h at 1 fps, a picture that changes every 300 s, 8 requests of 2 s in
    flight): most frames reuse the last description and cost no call, so a chunk sized as if each frame were a call
    was mostly idle, and each chunk's first frame is sent whatever it shows. Sized at the share of calls seen so far
    (never past what would end within the budget were all of them calls), the search converges within 50 s; sized
    by frames it stopped in the first refinement round."""
    grid = [i + 0.5 for i in range(3600)]
    now = [0.0]
    inner = InFlight(8, now, latency=lambda k: 2.0)
    inner.captions = ReplayDescriber([FrameDescription(t=t, text="a dog runs" if int(t // 300) == 6 else
                                                       f"scene {int(t // 300)}") for t in grid], duration=3600.0)
    skip = SkipUnchanged(CachedDescriber(inner, DescriptionCache(tmp_path / "c.sqlite"), fingerprint="v"), 2.0)

    def frames(times: list[float]) -> Iterator[Frame]:
        return (Frame(t=t, index=0, image=np.full((48, 64, 3), 20 + 17 * int(t // 300), np.uint8)) for t in times)

    out, _ = coarse_to_fine("dog", Keyword(), lambda times: skip.describe(frames(times)), grid, 3600.0,
                            Search(strategy="coarse-to-fine", budget_seconds=50.0), clock=lambda: now[0], in_flight=8)
    assert out.stop == "converged" and now[0] <= 50.0, (out.stop, out.rounds, now[0])
    assert out.calls == inner.requests and out.skipped > out.calls
    assert out.result.intervals[0].start >= 1790 and out.result.intervals[0].end <= 2110
