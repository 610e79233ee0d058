"""The Python API's session defects a user test found (FX-F): answers shared between callers, a stale transcript,
list/file rules that differed, an unchecked cache=, a second close() that did not wait, untyped plug-in errors,
one-off arguments silently ignored, and SessionClosedError taken for a configuration mistake."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import pytest

import pipelines.session as session_module
from _helpers_eval import FakeDescriber, register_fakes, render_toy_videos
from pipelines import ConfigurationError, InputError, Session, VidgroundError, answer, events, ground, load_descriptions
from temporal_reasoner import BaseReasoner
from vidground.errors import PluginError, SessionClosedError, VideoDecodeError
from vidground.types import FrameDescription, GroundingResult, Interval

register_fakes()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    return render_toy_videos(tmp_path_factory.mktemp("fxf-videos"), ["a", "b"])


def _rows(n: int = 6) -> list[dict[str, Any]]:
    return [{"t": float(t), "text": f"frame {t} shows a {'dog' if t == 2 else 'cat'}"} for t in range(n)]


# --- 1. describe()/load()/remembered() give the caller its own copy ------------------------------------------------

def test_editing_what_describe_returned_changes_no_later_answer(videos):
    """The first describe() returned the session's stored object, later ones a shallow copy sharing its list: a
    caller's `dv.descriptions[:] = ...` or `dv.video = ...` changed every later answer on that video."""
    describer = FakeDescriber()
    with Session(describer=describer, reasoner="fake-reasoner", cache=False) as s:
        first = s.describe(videos / "a.mp4")
        before = s.ground(videos / "a.mp4", "frame at 1.0")
        first.descriptions[0].text = "edited"
        first.descriptions[0].model_extra["model"] = "mine"
        first.descriptions[1:] = []
        first.video, first.duration = "x", 99.0
        first.settings["version"] = "edited"
        first.warnings.append("mine")
        first.sampling["fps"] = 7
        second = s.describe(videos / "a.mp4")
        second.descriptions.clear()  # a copy again: the next call is not given this one either
        remembered = s.remembered(videos / "a.mp4")
        remembered.descriptions.pop()
        after = s.ground(videos / "a.mp4", "frame at 1.0")
        third = s.describe(videos / "a.mp4")
    assert describer.calls == 3  # described once: the copies are made from what the session kept
    assert third.video == str(videos / "a.mp4") and third.duration == pytest.approx(3.0)
    assert [d.text for d in third.descriptions] == ["frame at 0.0 after None", "frame at 1.0 after 0.0",
                                                    "frame at 2.0 after 1.0"]
    assert third.descriptions[0].model_extra["model"] == "fake-1"
    assert third.settings["version"] == "1" and third.warnings == [] and third.sampling["fps"] == 1.0
    assert [iv.as_list() for iv in after.intervals] == [iv.as_list() for iv in before.intervals]
    assert after.video == before.video and after.duration == before.duration


def test_editing_what_load_returned_changes_no_later_answer(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    with Session(reasoner="fake-reasoner") as s:
        mine = s.load(path)
        mine.descriptions[2].text = "nothing"
        mine.descriptions[3:] = []
        again = s.load(path)
        result = s.ground(descriptions=path, query="dog")
    assert len(again.descriptions) == 6 and again.descriptions[2].text == "frame 2 shows a dog"
    assert result.best.start <= 2 < result.best.end


def test_a_copy_shares_the_built_transcript():
    """A copy's transcript is not built again: the same times and texts (7,200 lines at 1 fps: about 2 h)."""
    rows = [{"t": float(t), "text": f"scene {t // 30} frame", "usage": {"requests": 1}} for t in range(7200)]
    described = load_descriptions(rows, duration=7200.0)
    copy = session_module._own_copy(described)
    assert copy.descriptions[0] is not described.descriptions[0]
    assert copy.descriptions[0].usage is not described.descriptions[0].usage
    assert copy.transcript() is described.transcript()


# --- 2. a description edited in place is seen -----------------------------------------------------------------------

def test_a_description_edited_in_place_rebuilds_the_transcript():
    """transcript() was cached by the descriptions' ids: text edited in place kept the old transcript, and ground
    answered from it."""
    described = load_descriptions(_rows())
    assert "dog" in described.transcript().entries[2].text
    described.descriptions[2].text = "frame 2 shows a cat"
    described.descriptions[4].text = "frame 4 shows a dog"
    assert [e.text for e in described.transcript().entries if "dog" in e.text] == ["frame 4 shows a dog"]
    with Session(reasoner="fake-reasoner") as s:
        best = s.ground(described, "dog").best
    assert best.start <= 4 < best.end


# --- 3. a list follows a file's rule: one description a time ---------------------------------------------------------

def test_two_rows_at_one_time_in_a_list_are_refused_as_in_a_file(tmp_path):
    rows = [{"t": 0, "text": "a"}, {"t": 1, "text": "b"}, {"t": 1.0, "text": "c"}]
    with pytest.raises(InputError, match=r"^descriptions\[2\]: 't' 1 is already at descriptions\[1\]"):
        load_descriptions(rows)
    with pytest.raises(InputError, match=r"descriptions\[1\]: 't' 1 is already at descriptions\[0\]"):
        ground([FrameDescription(t=1, text="x"), FrameDescription(t=1, text="y")], "x")
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match="'t' 1.0 is already on line 2"):  # the file's rule, as before
        load_descriptions(path)


# --- 4. cache= is checked when the session is made -------------------------------------------------------------------

def test_cache_true_is_the_default_cache(videos, tmp_path, monkeypatch):
    db = tmp_path / "env.sqlite"
    monkeypatch.setenv("VIDGROUND_CACHE", str(db))
    with Session(describer="fake", cache=True) as s:
        s.describe(videos / "a.mp4")
        assert s.cache is not None and db.exists()
    with Session(describer="fake", cache=True) as s:
        assert s.describe(videos / "a.mp4").usage.cached == 3


@pytest.mark.parametrize("bad", [5, 1.5, b"c.sqlite", object(), ["c.sqlite"]])
def test_a_cache_of_another_type_is_a_configuration_error_at_once(bad):
    """cache=5 was a raw TypeError at the first call that used the cache."""
    with pytest.raises(ConfigurationError, match=r"^cache= must be the path of a description cache file"):
        Session(cache=bad)
    with pytest.raises(ConfigurationError, match=r"^cache= must be"):  # before the (missing) video is opened
        ground("/no/such/video.mp4", "a dog", cache=bad)


# --- 5. every close() waits ------------------------------------------------------------------------------------------

class _Held(BaseReasoner):
    """Grounds once `release` is set; says when it is in a call."""

    name = "held"

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def settings(self) -> dict[str, Any]:
        return {"name": self.name}

    def ground(self, query: str, transcript: Any) -> GroundingResult:
        self.entered.set()
        assert self.release.wait(30)
        return GroundingResult(query=query, duration=transcript.duration, intervals=[Interval(start=0, end=1)])


class _Waits(threading.Condition):
    """The session's condition, counting the threads waiting on it."""

    def __init__(self, lock: Any) -> None:
        super().__init__(lock)
        self.waiting = 0
        self.changed = threading.Condition()

    def wait(self, timeout: float | None = None) -> bool:
        with self.changed:
            self.waiting += 1
            self.changed.notify_all()
        try:
            return super().wait(timeout)
        finally:
            with self.changed:
                self.waiting -= 1

    def until_waiting(self, n: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.waiting >= n, timeout=30)


def test_a_second_close_returns_only_after_the_calls_ended_and_the_backends_closed():
    """The second close() returned at once while the first still waited for a call in flight: a service's shutdown
    went on with the session's backends and cache still in use."""
    order: list[str] = []

    class Built(_Held):
        def close(self) -> None:
            order.append("backend closed")

    reasoner = Built()
    s = Session(reasoner="fake-reasoner")
    s._built["reasoner"] = reasoner  # as if built from the spec: the session closes it
    s._idle = waits = _Waits(s._lock)

    def call() -> None:
        s.ground(descriptions=_rows(), query="dog")
        order.append("call ended")

    caller = threading.Thread(target=call)
    caller.start()
    assert reasoner.entered.wait(30)
    first = threading.Thread(target=lambda: (s.close(), order.append("first close returned")))
    first.start()
    assert waits.until_waiting(1)  # the first close() waits for the call

    def release_when_both_wait() -> None:
        waits.until_waiting(2)  # the second close() waits too (it did not: then released after the 30-s bound)
        reasoner.release.set()

    releaser = threading.Thread(target=release_when_both_wait)
    releaser.start()
    s.close()
    order.append("second close returned")
    for t in (caller, first, releaser):
        t.join(30)
    assert order.index("second close returned") > order.index("backend closed")
    assert "call ended" in order and order.count("backend closed") == 1


def test_a_close_interrupted_in_its_wait_leaves_the_closing_to_the_next():
    s = Session(reasoner="fake-reasoner")
    s._calls = 1  # a call of another thread under way
    s._idle = waits = _Waits(s._lock)
    interrupted = threading.Event()

    def interrupt_wait(timeout: float | None = None) -> bool:
        interrupted.set()
        raise KeyboardInterrupt

    waits.wait = interrupt_wait  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        s.close()
    assert interrupted.is_set() and s._closed and not s._shut
    s._calls = 0
    s.close()  # closes now, not "already closing"
    assert s._shut


def test_close_from_within_a_call_while_another_close_waits_returns():
    """A close() made inside a call, which the first close() waits for, cannot wait for that close: it returns."""
    class Closer(_Held):
        def ground(self, query: str, transcript: Any) -> GroundingResult:
            assert self.release.wait(30)
            s.close()  # the first close() is waiting for this very call
            return GroundingResult(query=query, duration=transcript.duration)

    reasoner = Closer()
    s = Session(reasoner=reasoner)
    s._idle = waits = _Waits(s._lock)
    caller = threading.Thread(target=lambda: s.ground(descriptions=_rows(), query="dog"))
    caller.start()
    closer = threading.Thread(target=s.close)
    closer.start()
    assert waits.until_waiting(1)
    reasoner.release.set()
    caller.join(30)
    closer.join(30)
    assert not caller.is_alive() and not closer.is_alive() and s._shut


# --- 6. a plug-in that breaks its protocol is named ------------------------------------------------------------------

class _Yields(FakeDescriber):
    """Yields ``make(frame)`` for each frame."""

    name = "mine"

    def __init__(self, make: Any):
        super().__init__()
        self.make = make

    def describe(self, frames: Any, *, query: str | None = None) -> Any:
        for f in frames:
            yield self.make(f)


@pytest.mark.parametrize("cached", [False, True])
@pytest.mark.parametrize("make", [lambda f: "a cat", lambda f: {"t": f.t, "text": "a cat"}])
def test_a_describer_yielding_no_description_is_a_plugin_error(videos, tmp_path, make, cached):
    """It was an AttributeError ("'str' object has no attribute 't'") from the session or the cache."""
    cache = tmp_path / "c.sqlite" if cached else False
    with Session(describer=_Yields(make), cache=cache) as s, pytest.raises(PluginError) as info:
        s.describe(videos / "a.mp4")
    message = str(info.value)
    assert re.match(r"describer 'mine' \(\S*test_fxf_session_api\._Yields\) broke the describer protocol: "
                    r"describe\(frames, query=None\) must yield FrameDescription objects", message), message
    assert info.value.plugin == "mine" and info.value.protocol == "describe"


def test_a_describer_describing_a_time_past_the_frames_is_refused(videos):
    """One description at t=100 x the frame's time made a 3-s video last 200 s."""
    with Session(describer=_Yields(lambda f: FrameDescription(t=f.t * 100, text="a cat")), cache=False) as s:
        with pytest.raises(PluginError, match=r"yielded a description at t=100 s, past the last frame it was given "
                                              r"\(1 s\)"):
            s.describe(videos / "a.mp4")
    with Session(describer=_Yields(lambda f: FrameDescription(t=f.t, text="a cat")), cache=False) as s:
        assert s.describe(videos / "a.mp4").duration == pytest.approx(3.0)  # a describer keeping to it is as before


class _Returns(BaseReasoner):
    name = "mine"

    def __init__(self, make: Any):
        self.make = make

    def settings(self) -> dict[str, Any]:
        return {}

    def ground(self, query: str, transcript: Any) -> Any:
        return self.make(query, transcript)


def test_a_reasoner_returning_no_grounding_result_is_a_plugin_error(videos):
    """It was an AttributeError ("'dict' object has no attribute 'intervals'")."""
    for source in (dict(descriptions=_rows()), dict(video=videos / "a.mp4")):
        with Session(describer="fake", reasoner=_Returns(lambda q, t: {"intervals": [[0, 1]]}), cache=False,
                     search="coarse-to-fine" if "video" in source else None) as s:
            with pytest.raises(PluginError, match=r"^reasoner 'mine' \(\S*test_fxf_session_api._Returns\) broke the "
                                                  r"reasoner protocol: ground\(query, transcript\) must return a "
                                                  r"GroundingResult, got dict") as info:
                s.ground(query="dog", **source)
        assert info.value.protocol == "ground"


def test_a_reasoner_interval_outside_the_transcript_is_refused_as_a_chat_reply_is():
    """Interval(50, 60) on a 6-s transcript was passed on; a chat model's reply so far outside is rejected and one
    within the tolerance (one step) clamped, with a warning: so is a plug-in's."""
    far = _Returns(lambda q, t: GroundingResult(query=q, duration=t.duration, intervals=[Interval(start=50, end=60)]))
    with Session(reasoner=far) as s, pytest.raises(PluginError, match=r"returned intervals\[0\] \[50, 60\], outside "
                                                                      r"the transcript, which lasts 6 s"):
        s.ground(descriptions=_rows(), query="dog")
    near = _Returns(lambda q, t: GroundingResult(query=q, duration=t.duration, intervals=[
        Interval(start=1, end=2, score=0.9), Interval(start=5, end=6.5, score=0.5),
        Interval(start=6.2, end=6.8, score=0.1)]))
    with Session(reasoner=near) as s:
        result = s.ground(descriptions=_rows(), query="dog")
    assert [iv.as_list() for iv in result.intervals] == [[1, 2, 0.9], [5, 6, 0.5], [5, 6, 0.1]]
    assert result.warnings == ["reasoner 'mine': intervals[1] [5, 6.5] clamped to [5, 6], the transcript's 6 s",
                               "reasoner 'mine': intervals[2] [6.2, 6.8] clamped to [5, 6], the transcript's 6 s"]


# --- 7. the one-off calls take the same arguments alike --------------------------------------------------------------

def test_ground_takes_a_list_of_descriptions_first_as_answer_and_events_do():
    """ground(list, q) was an InputError ('video must be a video path...') while answer(list, q) and events(list)
    took it."""
    assert ground(_rows(), "dog", reasoner="fake-reasoner").best.start == 2
    with Session(reasoner="fake-reasoner") as s:
        assert s.ground(_rows(), "dog").best.start == 2


@pytest.mark.parametrize("setting", [{"fps": 2}, {"num_frames": 4}, {"max_frames": 10}, {"max_side": 256},
                                     {"max_side": None}])
def test_sampling_settings_with_descriptions_are_refused_as_describer_is(setting):
    """fps=/num_frames=/max_frames=/max_side= were silently ignored with descriptions, while describer= raised."""
    name = next(iter(setting))
    for call in (lambda: ground(descriptions=_rows(), query="dog", **setting),
                 lambda: ground(_rows(), "dog", **setting),
                 lambda: answer(load_descriptions(_rows()), "what?", **setting),
                 lambda: events(_rows(), **setting)):
        with pytest.raises(ConfigurationError, match=rf"^{name}= apply to describing a video and have no effect with "
                                                     "descriptions"):
            call()
    with pytest.raises(ConfigurationError, match=r"^describer=, fps= apply to describing a video"):
        ground(_rows(), "dog", describer="cv", fps=2)


def test_a_descriptions_file_given_as_the_video_says_to_pass_it_as_descriptions(tmp_path):
    path = tmp_path / "x.descriptions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    for search in (None, "coarse-to-fine"):
        with pytest.raises(VideoDecodeError, match=r"looks like descriptions, not a video: pass it as "
                                                   r"descriptions=PATH"):
            ground(path, "dog", search=search)
    assert ground(descriptions=path, query="dog", reasoner="fake-reasoner").best.start == 2


# --- 8. a closed session is not a configuration mistake ------------------------------------------------------------

def test_session_closed_error_is_no_configuration_error():
    s = Session()
    s.close()
    with pytest.raises(SessionClosedError) as info:
        s.ground(descriptions=_rows(), query="dog")
    assert not isinstance(info.value, ConfigurationError)  # a service's "bad request" handler does not take it
    assert isinstance(info.value, VidgroundError) and isinstance(info.value, RuntimeError)


class _Answers(_Returns):
    """A plug-in with its own answer() and events(), each giving ``make``'s output."""

    def answer(self, question: str, transcript: Any, choices: Any = None) -> Any:
        return self.make(question, transcript)

    def events(self, transcript: Any, **options: Any) -> Any:
        return self.make("", transcript)


def test_a_reasoner_answer_or_events_of_another_type_is_a_plugin_error():
    """Session.answer/events with a plug-in whose answer()/events() returned a dict: AttributeError ("'dict' object
    has no attribute 'reasoner'" / "... 'events'")."""
    with Session(reasoner=_Answers(lambda q, t: {"answer": "a dog"})) as s:
        with pytest.raises(PluginError, match=r"answer\(question, transcript, choices=None\) must return an Answer, "
                                              r"got dict") as info:
            s.answer(_rows(), "what is shown?")
        assert info.value.protocol == "answer"
        with pytest.raises(PluginError, match=r"events\(transcript, \*\*options\) must return an Events, got dict"):
            s.events(_rows())


def test_a_reasoner_answer_and_events_spans_are_held_to_the_transcript():
    from vidground.types import Answer, Event, Events

    def far(q: str, t: Any) -> Any:
        return Answer(question=q, answer="a dog", duration=t.duration, intervals=[Interval(start=50, end=60)]) if q \
            else Events(duration=t.duration, events=[Event(start=1, end=2, caption="a dog"),
                                                     Event(start=5, end=6.5, caption="a cat")])
    with Session(reasoner=_Answers(far)) as s:
        with pytest.raises(PluginError, match=r"answer\(\) returned intervals\[0\] \[50, 60\], outside the transcript"):
            s.answer(_rows(), "what is shown?")
        found = s.events(_rows())
    assert [(e.start, e.end, e.caption) for e in found.events] == [(1, 2, "a dog"), (5, 6, "a cat")]
    assert found.warnings == ["reasoner 'mine': events[1] [5, 6.5] clamped to [5, 6], the transcript's 6 s"]

