"""A seconds budget that runs out while a describer has requests in flight keeps their descriptions
(pipelines/search.py, frame_describer/feed.py): the search stops feeding frames and reads what was begun.

It used to break out of the describer's stream: an API describer's requests in flight were sent (and billed),
their answers dropped - not yielded, cached, counted nor listed."""

from __future__ import annotations

import base64
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import cv2
import numpy as np
import pytest

from frame_describer.base import BaseDescriber
from frame_describer.cache import CachedDescriber, DescriptionCache
from frame_describer.feed import Feed, Stop, relay, stop_of
from frame_describer.openai_describer import OpenAIDescriber
from frame_describer.replay import ReplayDescriber, timeline_frames
from pipelines.search import Search, coarse_to_fine
from vidground import ratelimit
from vidground.types import Frame, FrameDescription, Usage

from _helpers_openai_server import FakeOpenAIServer, Reply, openai_server  # noqa: F401
from test_search import Keyword, events


class InFlight(BaseDescriber):
    """A describer that keeps ``n`` requests in flight, as an API describer does: it starts ``n`` frames (pulls them
    from its input) before the first description comes back, and starts one more as each is taken. Each
    description moves the fake clock ``now`` by ``seconds``. ``starts`` records every frame started, with whether
    the search's feed of times was stopped by then."""

    name = "in-flight"

    def __init__(self, n: int, now: list[float], feeds: list[Feed] | None = None, seconds: float = 1.0) -> None:
        self.n, self.now, self.feeds, self.seconds = n, now, feeds, seconds
        self.captions = ReplayDescriber(events(), duration=600)
        self.starts: list[tuple[float, bool]] = []

    def describe(self, frames: Iterable[Frame], *, query: str | None = None) -> Iterator[FrameDescription]:
        source = iter(frames)
        flight: deque[Frame] = deque()
        while True:
            while len(flight) < self.n:
                frame = next(source, None)
                if frame is None:
                    break
                self.starts.append((frame.t, bool(self.feeds) and getattr(self.feeds[-1], "stopped", False)))
                flight.append(frame)
            if not flight:
                return
            frame = flight.popleft()
            self.now[0] += self.seconds
            yield FrameDescription(t=frame.t, text=self.captions.caption_at(frame.t), usage=Usage(requests=1))


def in_flight_search(tmp_path, n: int, search: Search, cache: DescriptionCache | None = None):
    captions = events()
    now, feeds = [0.0], []
    inner = InFlight(n, now, feeds)
    cache = cache or DescriptionCache(tmp_path / "c.sqlite")
    cached = CachedDescriber(inner, cache, fingerprint="v")

    def describe(times: Feed) -> Any:
        feeds.append(times)
        return cached.describe(timeline_frames(times))

    out, _ = coarse_to_fine("dog", Keyword(), describe, [d.t for d in captions], 600.0, search, clock=lambda: now[0])
    return out, inner, cached


def test_a_seconds_budget_takes_every_description_in_flight(tmp_path):
    """1 s a description, 4 in flight, 12.5 s: the 12th description leaves no room for a 13th, so the search stops
    feeding; the 3 frames begun after the 12th were sent and are taken (the old break dropped them: 12 calls, 15
    started), counted, listed, cached, and nothing is begun once the budget ran out."""
    out, inner, cached = in_flight_search(tmp_path, 4, Search(strategy="coarse-to-fine", budget_seconds=12.5))
    started = [t for t, _ in inner.starts]
    assert not any(after for _, after in inner.starts)  # nothing began after the feed was stopped
    assert out.calls == len(started) == 12 + 3 and out.usage.requests == out.calls
    assert sorted(d.t for d in out.descriptions) == sorted(started)
    assert sorted(t for t, _, _ in out.frames) == sorted(round(t, 3) for t in started)
    assert out.stop == "budget" and any("12.5 s ran out in pass 0" in w for w in out.warnings)
    assert set(cached.cache.lookup("v", cached.key, started)) == set(started)
    # a second search of the video asks the describer for none of those frames: the cache answers them
    again, inner2, _ = in_flight_search(tmp_path, 4, Search(strategy="coarse-to-fine", budget_seconds=12.5),
                                        cache=cached.cache)
    assert not {t for t, _ in inner2.starts} & set(started)
    assert again.cached >= len(started) and again.calls == len(inner2.starts)


def test_a_budget_that_runs_out_while_refining_keeps_the_frames_in_flight(tmp_path):
    """The sparse pass fits in 100.5 s and the budget runs out in a refinement: there too every frame begun is
    taken, and the frames of the cut round that were never begun are not listed."""
    out, inner, _ = in_flight_search(tmp_path, 3, Search(strategy="coarse-to-fine", budget_seconds=100.5))
    started = sorted(t for t, _ in inner.starts)
    assert not any(after for _, after in inner.starts)
    assert out.calls == len(started) and sorted(d.t for d in out.descriptions) == started
    assert sorted(t for t, _, _ in out.frames) == [round(t, 3) for t in started]
    assert max(p for _, p, _ in out.frames) >= 1 and out.stop == "budget"


def test_a_calls_budget_never_begins_more_than_it_pays_for(tmp_path):
    """A budget in calls asks only for the frames it can pay for, so a describer working ahead cannot overshoot."""
    for budget in (7, 40):
        out, inner, _ = in_flight_search(tmp_path / str(budget), 4, Search(strategy="coarse-to-fine", budget=budget))
        assert out.calls == len(inner.starts) <= budget


def test_a_session_search_passes_the_stop_to_the_describer_behind_its_cache(tmp_path, monkeypatch):
    """Through a Session on a real video (a 1-fps grid of 20 frames: a sparse pass of 10, in batches of 1, 1, 1, 2
    and 5), 1 s a description on a fake clock, 3 in flight, 6.5 s: the first frame of the last batch leaves no
    room for another, so 6 descriptions, then the 2 in flight; the session's decoded frames stop with the search's
    feed, so the describer behind the cache begins none of the other 4 (it began and was paid for all 10 when the
    frames did not stop). A second query answers those 8 frames from the cache."""
    import pipelines.search as search_module
    from frame_describer.synthetic import _write
    from pipelines import Session

    video = _write(tmp_path / "v.mp4", lambda i: np.full((48, 64, 3), 40 + 2 * i, np.uint8),
                   [i / 5 for i in range(100)], fps=5, codec=None, rotation=None)
    now = [0.0]
    monkeypatch.setitem(search_module.coarse_to_fine.__kwdefaults__, "clock", lambda: now[0])
    inner = InFlight(3, now)
    settings = {"strategy": "coarse-to-fine", "budget_seconds": 6.5}
    with Session(describer=inner, reasoner=Keyword(), cache=tmp_path / "c.sqlite", search=settings) as s:
        first = s.ground(video, "dog").settings["search"]
    started = [t for t, _ in inner.starts]
    assert first["calls"] == len(started) == 6 + 2 and len(first["frames"]) == 8
    inner.starts.clear()
    with Session(describer=inner, reasoner=Keyword(), cache=tmp_path / "c.sqlite", search=settings) as s:
        again = s.ground(video, "dog").settings["search"]
    assert again["cached"] >= 8 and not {t for t, _ in inner.starts} & set(started)


# -- the feed --------------------------------------------------------------------------------------------------

def test_a_feed_ends_once_stopped_and_is_a_sequence_over_a_list():
    feed = Feed([1.0, 2.0, 3.0, 4.0])
    assert list(feed) == [1.0, 2.0, 3.0, 4.0] and len(feed) == 4 and feed[1] == 2.0  # read twice: a list
    taken = []
    for t in feed:
        taken.append(t)
        if t == 2.0:
            feed.stop()
    assert taken == [1.0, 2.0] and list(feed) == [] and feed.stopped
    frames = relay(iter(range(10)), feed)  # a wrapper's own iterable stops with the feed it came from
    assert stop_of(frames) is feed.signal and list(frames) == []
    assert relay([1, 2], [3, 4]) == [1, 2] and stop_of([1]) is None


def test_a_stop_sets_the_events_linked_to_it():
    stop, before, after = Stop(), threading.Event(), threading.Event()
    stop.link(before)
    assert not before.is_set()
    stop.set()
    stop.link(after)
    assert before.is_set() and after.is_set()


def test_the_cache_stores_each_description_at_its_own_time_when_the_describer_drops_frames(tmp_path):
    """After its feed is stopped a describer may drop frames it had pulled but not begun, not only the last ones:
    the cache matched descriptions to frames by order, and would have stored the frame at 3 s as the one at 2 s."""
    class Dropping(BaseDescriber):
        name = "dropping"

        def describe(self, frames, *, query=None):
            pulled = [f for _, f in zip(range(4), frames)]  # 4 frames pulled ahead
            yield FrameDescription(t=pulled[0].t, text=f"frame {pulled[0].t:g}")
            assert frames.stopped  # the consumer stopped the feed
            for f in (pulled[2], pulled[3]):  # the frame at 2 s was never begun
                yield FrameDescription(t=f.t, text=f"frame {f.t:g}")

    cache = DescriptionCache(tmp_path / "c.sqlite")
    cached = CachedDescriber(Dropping(), cache, fingerprint="v")
    cache.store("v", cached.key, [FrameDescription(t=0.5, text="frame 0.5")])  # a hit among the frames
    feed = Feed(timeline_frames([0.5, 1.0, 2.0, 3.0, 4.0, 5.0]))
    out = []
    for d in cached.describe(feed):
        out.append(d)
        feed.stop()
    assert [(d.t, d.text) for d in out] == [(0.5, "frame 0.5"), (1.0, "frame 1"), (3.0, "frame 3"), (4.0, "frame 4")]
    stored = cache.lookup("v", cached.key, [1.0, 2.0, 3.0, 4.0, 5.0])
    assert {t: d.text for t, d in stored.items()} == {1.0: "frame 1", 3.0: "frame 3", 4.0: "frame 4"}
    assert cached.calls == 3 and cached.saved == 1  # the dropped frame was never sent


# -- through the OpenAI describer and a local server ---------------------------------------------------------------

@pytest.fixture(autouse=True)
def fresh_shared_limiters(monkeypatch):
    monkeypatch.setattr(ratelimit, "_SHARED", {})


def grey(t: float) -> Frame:
    return Frame(t=t, index=0, image=np.full((48, 64, 3), 2 * int(t) % 250, np.uint8))


def level(req) -> int:
    """The grey level of the frame a request sent (2 per second of ``grey``)."""
    url = req.json["messages"][0]["content"][1]["image_url"]["url"]
    image = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_GRAYSCALE)
    return round(float(image.mean()))


def test_a_stopped_feed_sends_no_frame_it_had_not_sent_and_yields_every_one_it_sent(openai_server):
    """Stopping the frames' feed after the first description: the requests already sent are answered and yielded,
    the frames pulled ahead but not sent are dropped, and no request follows (closing the stream dropped the
    answers of the requests in flight). Replies after the first are held until the feed is stopped, so the two
    workers have at most the first and two more sent by then."""
    pulled, released = [], threading.Event()

    def answer(req):
        if level(req):  # not the first frame (black)
            assert released.wait(30)
        return Reply.chat("a frame")
    openai_server.responder = answer
    desc = OpenAIDescriber("gpt-4o-mini", base_url=openai_server.base_url, api_key="sk-test", concurrency=2,
                           prices=False)

    def decode():
        for i in range(100):
            pulled.append(i)
            yield grey(float(i))

    feed = Feed(decode())
    feed.signal.link(released)
    out = []
    for d in desc.describe(feed):
        out.append(d)
        feed.stop()
    assert 2 <= len(out) == len(openai_server.requests) <= 1 + 2  # the first, and those in flight when it came
    assert len(pulled) > len(out)  # frames pulled ahead were never sent
    assert [d.t for d in out] == [float(i) for i in range(len(out))]
    assert not [t for t in threading.enumerate() if t.name == "vidground-decode"]


def test_a_seconds_budget_reads_every_request_the_server_received(tmp_path, openai_server):
    """The search through the cache and the OpenAI describer (4 in flight): every request the server received
    is a description the search took, counted and cached; a second search sends none of them again."""
    openai_server.responder = lambda req: Reply.chat("a quiet street", delay=0.05)
    desc = OpenAIDescriber("gpt-4o-mini", base_url=openai_server.base_url, api_key="sk-test", concurrency=4,
                           prices=False)
    cache = DescriptionCache(tmp_path / "c.sqlite")
    cached = CachedDescriber(desc, cache, fingerprint="v")
    grid = [d.t for d in events()]

    def describe(times: Feed) -> Any:
        return cached.describe(relay((grey(t) for t in times), times))

    def search(seconds: float):
        ticks = iter(range(100_000))  # each reading of the clock is 1 s later: one second a description
        return coarse_to_fine("dog", Keyword(), describe, grid, 600.0,
                              Search(strategy="coarse-to-fine", budget_seconds=seconds),
                              clock=lambda: float(next(ticks)))[0]

    # the sparse pass's batches of 1, 1, 1, 2, 5 and 9 frames cost 25 s (a batch of n: n + 1 readings); the 5th
    # frame of the next batch leaves no room for a 6th: 24 descriptions, then those in flight
    out = search(30.5)
    sent = len(openai_server.requests)
    assert out.calls == sent == len(out.descriptions) == len(out.frames) > 24
    assert out.usage.requests == sent and any("ran out in pass 0" in w for w in out.warnings)
    times = [d.t for d in out.descriptions]
    assert set(cache.lookup("v", cached.key, times)) == set(times)
    again = search(30.5)
    assert again.cached >= sent and len(openai_server.requests) - sent == again.calls


def test_a_request_sent_before_the_stop_is_retried_and_read(openai_server):
    """The feed is stopped while the first frame's request fails (a 500): that frame was sent, so its retry goes
    out and its answer is yielded; the frames pulled behind it are not sent."""
    feed = Feed(grey(float(i)) for i in range(10))

    def answer(req):
        if len(openai_server.requests) == 1:
            feed.stop()
            return Reply.error(500, "oops")
        return Reply.chat("a frame")
    openai_server.responder = answer
    desc = OpenAIDescriber("gpt-4o-mini", base_url=openai_server.base_url, api_key="sk-test", concurrency=1,
                           prices=False, retry_base_delay=0.01)
    out = list(desc.describe(feed))
    assert [(d.t, d.text) for d in out] == [(0.0, "a frame")] and len(openai_server.requests) == 2
