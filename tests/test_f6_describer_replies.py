"""openai: describer replies and options found by a user test (F6): a reply with no text (a content filter's
refusal) is asked again, never cached, and reported with its time; numeric options hash alike; options are
checked before any request; a session closed under its threads ends their calls with a typed error.

Every check counts requests at the local fake server (no wall-clock assertion)."""

from __future__ import annotations

import pytest

from frame_describer.cache import CachedDescriber, DescriptionCache
from frame_describer.openai_describer import EMPTY_REPLY, OpenAIDescriber
from vidground import ratelimit
from vidground.errors import InputError

from _helpers_eval import make_frames
from _helpers_openai_server import FakeOpenAIServer, Reply, openai_server  # noqa: F401


@pytest.fixture(autouse=True)
def fresh_shared_limiters(monkeypatch):
    monkeypatch.setattr(ratelimit, "_SHARED", {})
    monkeypatch.setattr(ratelimit, "_RECENT", {})  # nor the windows of closed limiters (24c919f)


def make(server, **kw) -> OpenAIDescriber:
    kw.setdefault("retry_base_delay", 0.01)
    kw.setdefault("concurrency", 1)
    return OpenAIDescriber("m", base_url=server.base_url, api_key="sk-test", **kw)


def refused() -> Reply:
    return Reply.chat("", finish_reason="content_filter")


def test_a_reply_with_no_text_is_asked_again_and_both_are_paid(openai_server):
    openai_server.script(refused(), Reply.chat("a kitchen"))
    (d,) = list(make(openai_server).describe(make_frames([0.0])))
    assert d.text == "a kitchen" and EMPTY_REPLY not in (d.model_extra or {})
    assert d.usage.requests == 2 and len(openai_server.requests) == 2  # the refused reply was paid too


def test_a_reply_still_empty_after_the_retries_says_why(openai_server):
    openai_server.script(refused(), refused())
    (d,) = list(make(openai_server).describe(make_frames([0.0])))
    assert d.text == "" and d.model_extra[EMPTY_REPLY] == "content_filter"
    assert d.usage.requests == 2
    openai_server.script(refused())
    (d,) = list(make(openai_server, empty_retries=0).describe(make_frames([1.0])))
    assert d.model_extra[EMPTY_REPLY] == "content_filter" and d.usage.requests == 1 and len(openai_server.requests) == 3


def test_an_empty_description_is_not_cached_and_is_asked_for_again(openai_server, tmp_path):
    """Before: the 2nd run was served the refused frame's "" from the cache (and every later run too)."""
    cache = DescriptionCache(tmp_path / "c.sqlite")
    frames = make_frames([0.0, 1.0, 2.0])
    openai_server.script(Reply.chat("one"), refused(), refused(), Reply.chat("three"))
    first = list(CachedDescriber(make(openai_server), cache, fingerprint="v").describe(frames))
    assert [d.text for d in first] == ["one", "", "three"] and cache.count() == 2
    openai_server.script(Reply.chat("two"))
    second = list(CachedDescriber(make(openai_server), cache, fingerprint="v").describe(frames))
    assert [d.text for d in second] == ["one", "two", "three"]
    assert [d.usage.cached for d in second] == [1, 0, 1] and len(openai_server.requests) == 5


def test_an_empty_description_a_cache_kept_before_is_a_miss_and_replaced(openai_server, tmp_path):
    """A cache written before empties were refused holds them: they are asked for again and replaced."""
    cache = DescriptionCache(tmp_path / "c.sqlite")
    d = make(openai_server)
    key = CachedDescriber(d, cache, fingerprint="v").key
    cache._connect().execute("INSERT INTO descriptions (fingerprint, settings_key, t_ms, payload) VALUES (?, ?, ?, ?)",
                             ("v", key, 0, '{"t": 0.0, "text": ""}'))
    assert cache.lookup("v", key, [0.0]) == {}
    openai_server.script(Reply.chat("a kitchen"))
    (got,) = list(CachedDescriber(d, cache, fingerprint="v").describe(make_frames([0.0])))
    assert got.text == "a kitchen" and cache.lookup("v", key, [0.0])[0.0].text == "a kitchen"


def _session(server, cache, **sampling):
    from pipelines import Session

    return Session(describer="openai:m", reasoner="naive", cache=cache, sampling={"num_frames": 4, **sampling},
                   describer_options={"base_url": server.base_url, "api_key": "sk-test", "concurrency": 1,
                                      "retry_base_delay": 0.01})


def test_a_grounding_with_refused_frames_warns_with_their_times(openai_server, demo_video, tmp_path):
    """Before: warnings [] and intervals built on the holes, silently."""
    texts = iter(["a person walks in", "", "", "a person sits", "a person leaves", "a chair"])
    openai_server.responder = lambda req: (Reply.chat(t) if (t := next(texts)) else refused())
    with _session(openai_server, tmp_path / "c.sqlite") as s:
        result = s.ground(demo_video[0], "a person walks in")
        assert len(openai_server.requests) == 5
        (warning,) = [w for w in result.warnings if "no description" in w]
        # not remembered with its hole: the session's next call asks for that frame again (the cache has the rest)
        again = s.describe(demo_video[0])
        assert len(openai_server.requests) == 6 and [d.usage.cached for d in again.descriptions] == [1, 0, 1, 1]
        assert again.descriptions[1].text == "a chair" and again.warnings == []
        t = again.descriptions[1].t
        assert "1 of 4 frames" in warning and "content_filter" in warning and f"at {t:g} s" in warning


def test_describing_again_after_every_reply_was_refused_asks_again(openai_server, demo_video, tmp_path):
    """Before: the error said "describe the video again", and every rerun was served the cached empties."""
    openai_server.responder = lambda req: refused()
    for run in (1, 2):
        with _session(openai_server, tmp_path / "c.sqlite") as s:
            with pytest.raises(InputError, match="content_filter; none was cached.*describe the video again") as info:
                s.ground(demo_video[0], "a person walks in")
        assert info.value.usage.requests == 8  # 4 frames, each asked twice, all paid
        assert len(openai_server.requests) == 8 * run


# --- numeric options: one key for one value, and checked before any request ----------------------------------------

def _key(**kw) -> str:
    from frame_describer.cache import settings_key

    return settings_key(OpenAIDescriber("gpt-4o-mini", base_url="http://127.0.0.1:9/v1", api_key="sk-test", **kw),
                        {"max_side": 512})


def test_a_whole_number_temperature_is_the_default_float_in_the_cache_key():
    """--describer-opt temperature=0 is parsed as the int 0, which hashed apart from the default 0.0: every frame
    was described again for the same request."""
    from pipelines.eval_cli import parse_option

    assert parse_option("temperature=0") == ("temperature", 0)
    assert _key(temperature=0) == _key(temperature=0.0) == _key()
    assert _key(temperature=1) == _key(temperature=1.0) != _key()


def test_the_default_key_is_the_one_existing_caches_hold():
    """A user's warm cache stays warm: the default settings hash as they did before the options were normalised
    (the value computed by 41a6d90's code; a change of the describe prompt changes it, as it must)."""
    assert _key() == "b117537755ef1f41be89f0b35bdefafe"


@pytest.mark.parametrize("option", [{"retry_base_delay": -1}, {"retry_base_delay": float("nan")},
                                    {"retry_base_delay": float("inf")}, {"retry_base_delay": "0.5"},
                                    {"temperature": float("nan")}, {"temperature": 5}, {"temperature": -0.1},
                                    {"temperature": True}, {"jpeg_quality": True}, {"max_tokens": True},
                                    {"max_side": True}, {"empty_retries": -1}, {"empty_retries": 1.5}])
def test_a_wrong_number_is_refused_before_any_request(openai_server, option):
    """Before: retry_base_delay=-1 meant no backoff, nan an internal TypeError after the paid requests; temperature
    nan or 5 were sent to the server; True passed for 1."""
    from pipelines import Session
    from vidground.errors import ConfigurationError

    name = next(iter(option))
    with pytest.raises(ConfigurationError, match=name):
        Session(describer="openai:m", describer_options={"base_url": openai_server.base_url, "api_key": "k", **option})
    with pytest.raises(ConfigurationError, match=name):
        make(openai_server, **option)
    assert openai_server.requests == []


# --- a session closed while other threads are in its calls ----------------------------------------------------------

def test_closing_a_session_under_threads_in_calls_ends_each_with_a_typed_error(openai_server, demo_video, tmp_path):
    """A service shutting down closes its session while threads are grounding (README: "A session may be used from
    several threads"). Before: one thread got httpx's RuntimeError('Cannot send a request, as the client has been
    closed.'), the others ConfigurationError. Now every call ends with SessionClosedError (a VidgroundError), close()
    returns after the last call ended, and no call sends more frames once it is closed."""
    import shutil
    import threading

    from pipelines import Session
    from vidground.errors import SessionClosedError

    gate, order, lock = threading.Event(), [], threading.Lock()

    def slow(req):
        gate.wait(30)  # held until the session is closed: the requests in flight are answered after close()
        return Reply.chat("a person walks in")

    openai_server.responder = slow
    videos = [shutil.copy(demo_video[0], tmp_path / f"v{i}.mp4") for i in range(3)]
    s = Session(describer="openai:m", reasoner="naive", cache=False, sampling={"num_frames": 8},
                describer_options={"base_url": openai_server.base_url, "api_key": "k", "concurrency": 2,
                                   "retry_base_delay": 0.01})
    outcomes: dict[int, BaseException | None] = {}

    def ground(i: int) -> None:
        try:
            s.ground(videos[i], "a person walks in")
            outcomes[i] = None
        except BaseException as exc:  # noqa: BLE001 - the test looks at what each thread got
            outcomes[i] = exc
        with lock:
            order.append(f"call {i} ended")

    threads = [threading.Thread(target=ground, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    while openai_server.in_flight < 2:  # the describer's 2 requests are under way, held by the server
        threading.Event().wait(0.01)
    closer = threading.Thread(target=lambda: (s.close(), order.append("close returned")))
    closer.start()
    while not s._closed:
        threading.Event().wait(0.01)
    with pytest.raises(SessionClosedError, match="closed"):  # a new call is refused at once
        s.ground(videos[0], "a person walks in")
    gate.set()
    for t in [*threads, closer]:
        t.join(60)
    assert all(isinstance(outcomes[i], SessionClosedError) for i in range(3)), outcomes
    assert order[-1] == "close returned" and len(order) == 4  # close() waited for every call
    assert len(openai_server.requests) < 3 * 8  # the frames not yet sent were not sent


# --- --max-side: the session's is what is sent, and the cache keys the image sent -----------------------------------

def _video(path, w: int, h: int, n: int = 3):
    import cv2
    import numpy as np

    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 1, (w, h))
    for i in range(n):
        out.write(np.full((h, w, 3), 40 * (i + 1), np.uint8))
    out.release()
    return path


def _sent_sides(server) -> list[int]:
    import base64

    import cv2
    import numpy as np

    sides = []
    for req in server.requests:
        url = req.json["messages"][0]["content"][1]["image_url"]["url"]
        img = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
        sides.append(max(img.shape[:2]))
    return sides


def _describe(server, video, cache, sampled, **options):
    from pipelines import Session

    with Session(describer="openai:m", cache=cache, sampling={"max_side": sampled},
                 describer_options={"base_url": server.base_url, "api_key": "k", **options}) as s:
        return s.describe(video)


def test_the_sessions_max_side_is_the_size_sent(openai_server, tmp_path):
    """Before: the describer shrank every frame to its own 512 again, so --max-side 800 sent 512-px frames."""
    video = _video(tmp_path / "big.mp4", 800, 600)
    _describe(openai_server, video, False, 800)
    _describe(openai_server, video, False, 640)
    _describe(openai_server, video, False, 800, max_side=300)  # the describer's own bound, given: it applies
    assert _sent_sides(openai_server) == [800] * 3 + [640] * 3 + [300] * 3


def test_a_max_side_that_changes_nothing_about_the_image_keeps_the_cache(openai_server, demo_video, tmp_path):
    """The 320x240 demo: 512 (default), 1024 and None send the same frames, so describe them once (before: 1024
    re-described every frame, and its frames were 512 anyway); 256 shrinks them, so it is described anew."""
    cache = tmp_path / "c.sqlite"
    runs = {ms: _describe(openai_server, demo_video[0], cache, ms).usage for ms in (512, 1024, None, 256, 200)}
    frames = runs[512].requests
    assert frames and [(runs[ms].requests, runs[ms].cached) for ms in (1024, None)] == [(0, frames)] * 2
    assert runs[256].requests == runs[200].requests == frames  # 256 and 200 are other images
    assert sorted(set(_sent_sides(openai_server))) == [200, 256, 320]


def test_a_larger_max_side_on_a_large_video_is_another_image(openai_server, tmp_path):
    video = _video(tmp_path / "big.mp4", 800, 600)
    cache = tmp_path / "c.sqlite"
    runs = [_describe(openai_server, video, cache, ms).usage for ms in (512, 800, 2000, 512)]
    assert [u.requests for u in runs] == [3, 3, 0, 0]  # 2000 sends the 800-px frames 800 sent
    assert _sent_sides(openai_server) == [512] * 3 + [800] * 3


def test_the_default_image_key_is_the_one_existing_caches_hold(demo_video, tmp_path):
    """Small and large videos alike: the default settings key as 41a6d90's code computed it (warm caches stay warm);
    a plug-in describer (no bound of its own, as hf:) is keyed by the image too."""
    from frame_describer.cache import settings_key

    from _helpers_eval import FakeDescriber

    cache = DescriptionCache(tmp_path / "c.sqlite")
    d = OpenAIDescriber("gpt-4o-mini", base_url="http://127.0.0.1:9/v1", api_key="sk-test")
    big = _video(tmp_path / "big.mp4", 800, 600)
    for video in (demo_video[0], big):
        assert CachedDescriber(d, cache, video, extra={"max_side": 512}).key == "b117537755ef1f41be89f0b35bdefafe"
    fake = FakeDescriber()
    keys = {ms: CachedDescriber(fake, cache, demo_video[0], extra={"max_side": ms}).key for ms in (512, 1024, 256)}
    assert keys[512] == keys[1024] == settings_key(fake, {"max_side": 512}) != keys[256]


def test_a_search_does_not_hand_a_refused_frame_to_the_next_query(openai_server, demo_video, tmp_path):
    """A coarse-to-fine session reuses the frames earlier queries described; a refused one was reused as it was, its
    warning repeated, and never asked for again in the session (0 requests for the same query again)."""
    from pipelines import Session

    replies = iter([refused()])
    openai_server.responder = lambda req: next(replies, Reply.chat("a person walks in"))
    with Session(describer="openai:m", reasoner="naive", cache=False, search="coarse-to-fine",
                 describer_options={"base_url": openai_server.base_url, "api_key": "k", "concurrency": 1,
                                    "empty_retries": 0}) as s:
        first = s.ground(demo_video[0], "a person walks in")
        asked = len(openai_server.requests)
        second = s.ground(demo_video[0], "a person walks in")
    assert any("1 of" in w and "content_filter" in w for w in first.warnings)
    assert len(openai_server.requests) > asked  # the refused frame, asked again
    assert not any("no description" in w for w in second.warnings)
