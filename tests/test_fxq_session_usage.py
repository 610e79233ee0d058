"""FX-Q (user test U8): a result's usage is what producing it spent; a Ctrl-C says what it stopped; the one-off
answer() and events() take motion= and skip_unchanged=; a descriptions file given to events() as a video says how
events() takes it.

1. ``ground(d)``, ``answer(d)`` and ``events(d)`` of ``d = session.describe(video)`` each repeated d's describe
   usage (10 requests each), so summing the results' usage counted describing once more per result (the README's
   "describe once, pass described"). The describe cost belongs to describe()'s result; a call that describes a video
   given as a path still reports it (as the command line's tables do).
2. A Ctrl-C while a chat reasoner answered (``ask --descriptions``) said "the frames being described finish first
   and are kept" though nothing was being described, and the last line was only "vidground: interrupted". The
   Ctrl-C here is a SIGINT the fake server sends once the request reached it; no clock is read.
3. ``events(v, motion=True)`` failed with "unknown events option(s) motion"; answer() had no motion= nor
   skip_unchanged=.
4. ``events("x.jsonl")`` suggested ``ground(descriptions=PATH, query=...)``.
"""

from __future__ import annotations

import json
import signal
import threading

import av
import numpy as np
import pytest

from pipelines import Session, api, answer, events, ground
from pipelines.cli import main
from vidground.errors import ConfigurationError, VideoDecodeError

from _helpers_openai_server import FakeOpenAIServer, Reply
from test_events import no_caption_scorers  # noqa: F401


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A 10-s video (5 fps, brightening) and a replay file with one caption a second for it."""
    folder = tmp_path_factory.mktemp("fxq")
    path = folder / "v.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=5)
        s.width, s.height = 64, 48
        for i in range(50):
            for p in s.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 5, np.uint8), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    caps = folder / "caps.jsonl"
    caps.write_text("".join(json.dumps({"t": float(t), "text": "a dog runs" if t > 5 else "a cat sleeps"}) + "\n"
                            for t in range(10)))
    return path, caps


# -- 1. usage -----------------------------------------------------------------------------------------------------
def test_results_built_from_describes_output_do_not_repeat_its_usage(video):
    path, caps = video
    with Session(describer=f"replay:{caps}", cache=False) as s:
        d = s.describe(path)
        assert d.usage.requests == 10
        results = [s.ground(d, "a dog"), s.answer(d, "what runs?"), s.events(d), s.ground(descriptions=d,
                                                                                       query="a cat")]
        for r in results:
            assert "describe" not in r.usage, type(r).__name__  # was 10 requests in each
            assert "describe" not in r.timings
        assert d.usage.requests == 10  # describe()'s own result keeps what it paid
        total = d.usage.requests + sum(u.requests for r in results for u in r.usage.values())
        assert total == 10  # was 50: describing counted once per result too


def test_a_call_that_describes_a_video_path_reports_the_describe_once(video):
    path, caps = video
    with Session(describer=f"replay:{caps}", cache=False) as s:
        first = s.ground(path, "a dog")
        again = s.answer(path, "what runs?")  # the session remembers the video: nothing described
    assert first.usage["describe"].requests == 10
    assert "describe" not in again.usage
    one_off = events(path, describer=f"replay:{caps}", cache=False)
    assert one_off.usage["describe"].requests == 10


def test_the_command_line_still_shows_the_describe_spend(video, capsys):
    path, caps = video
    assert main(["ground", str(path), "a dog", "--describer", f"replay:{caps}", "--no-cache", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["usage"]["describe"]["requests"] == 10


# -- 2. Ctrl-C while the reasoner answers -------------------------------------------------------------------------
def test_ctrl_c_while_the_reasoner_answers_says_its_request_is_lost(tmp_path, capsys):
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("needs Python's own SIGINT handler in the main thread")
    hand = tmp_path / "hand.jsonl"
    hand.write_text("".join(json.dumps({"t": float(t), "text": f"frame {t}: a hand waves"}) + "\n" for t in range(8)))
    release = threading.Event()
    main_ident = threading.main_thread().ident

    def slow(req):  # the request reached the server: Ctrl-C now, and answer only once the test is done
        signal.pthread_kill(main_ident, signal.SIGINT)
        release.wait(30)  # a bound so that a stuck test fails, not hangs; the test sets it before that
        return Reply.chat('{"choice": 0}')

    with FakeOpenAIServer(slow) as srv:
        try:
            rc = main(["ask", "--descriptions", str(hand), "what waves?", "--choice", "a hand", "--choice", "a foot",
                       "--reasoner", "openai:m", "--reasoner-opt", f"base_url={srv.base_url}",
                       "--reasoner-opt", "api_key=x"])
        finally:
            release.set()
    err = capsys.readouterr().err
    assert rc == 130
    assert len(srv.requests) == 1
    assert "frames being described" not in err  # was said, though nothing was being described
    stopping = [line for line in err.splitlines() if line.startswith("vidground: stopping")]
    assert stopping and "reasoner's request under way is abandoned" in stopping[0]
    last = err.strip().splitlines()[-1]
    assert last.startswith("vidground: interrupted while the reasoner was answering")  # was "vidground: interrupted"
    assert "reply is lost" in last


def test_ctrl_c_while_describing_still_says_the_frames_are_kept(video, capsys, monkeypatch):
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("needs Python's own SIGINT handler in the main thread")
    from frame_describer.replay import ReplayDescriber  # noqa: F401  (the describer the spec names)
    from vidground import interrupts

    path, caps = video
    seen = []
    real = Session._describe_now

    def describing(self, *a, **kw):  # a Ctrl-C at the start of the describe: under way is "describing"
        seen.append(interrupts.under_way())
        signal.raise_signal(signal.SIGINT)
        return real(self, *a, **kw)

    monkeypatch.setattr(Session, "_describe_now", describing)
    rc = main(["ground", str(path), "a dog", "--describer", f"replay:{caps}", "--no-cache"])
    err = capsys.readouterr().err
    assert rc == 130 and seen == ["describing"]
    assert "the frames being described finish first and are kept" in err
    assert "reasoner" not in err.strip().splitlines()[-1]


# -- 3. motion= and skip_unchanged= of the one-off calls ----------------------------------------------------------
@pytest.fixture
def sessions(monkeypatch):
    """The settings of each short-lived session the one-off calls make."""
    made = []

    class Spy(api.Session):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append({"motion": self.motion, "skip_unchanged": self.skip_unchanged})

    monkeypatch.setattr(api, "Session", Spy)
    return made


@pytest.mark.parametrize("call", ["ground", "answer", "events"])
def test_one_off_calls_take_motion_and_skip_unchanged(video, sessions, call):
    path, _ = video
    args = {"ground": ("a dog",), "answer": ("what runs?",), "events": ()}[call]
    result = getattr(api, call)(path, *args, motion=True, skip_unchanged=2.0, cache=False)
    assert sessions == [{"motion": True, "skip_unchanged": 2.0}]
    assert result.settings["skip_unchanged"]["threshold"] == 2.0
    assert result.describer == "cv+motion"  # the motion stream described the frames


def test_events_motion_is_no_events_option(video):
    path, _ = video
    plain = events(path, cache=False)
    moved = events(path, motion=True, cache=False)  # was: unknown events option(s) motion for the offline path
    assert (plain.describer, moved.describer) == ("cv", "cv+motion")


@pytest.mark.parametrize("call", [answer, events, ground])
def test_motion_and_skip_unchanged_with_descriptions_are_refused(video, call):
    _, caps = video
    args = {answer: ("what?",), events: (), ground: ("a dog",)}[call]
    for option in ({"motion": True}, {"skip_unchanged": 2.0}):
        with pytest.raises(ConfigurationError, match=f"{next(iter(option))}= apply to describing a video"):
            call(None, *args, descriptions=caps, **option) if call is not events else \
                call(descriptions=caps, **option)


# -- 4. the hint of a descriptions file given as a video ----------------------------------------------------------
@pytest.mark.parametrize("call, args, hint", [
    (events, (), "events(descriptions=PATH)"),
    (answer, ("what?",), "answer(descriptions=PATH, question=...)"),
    (ground, ("a dog",), "ground(descriptions=PATH, query=...)"),
])
def test_a_descriptions_file_given_as_the_video_names_the_calls_own_way(video, call, args, hint):
    _, caps = video
    with pytest.raises(VideoDecodeError) as info:
        call(str(caps), *args, cache=False)
    assert hint in str(info.value)
    assert ("ground(" in str(info.value)) == (call is ground)  # events() was told to use ground()


def test_describe_of_a_descriptions_file_says_it_needs_no_describing(video):
    _, caps = video
    with pytest.raises(VideoDecodeError, match=r"load_descriptions\(PATH\)"):
        api.describe(caps, cache=False)


def test_the_events_eval_still_counts_each_video_describe_once(video, tmp_path, no_caption_scorers):  # noqa: F811
    """The events eval gives each video's events describe()'s output: its row takes that describe's usage itself
    (the events no longer repeat it), so the run's totals are unchanged: 10 describer requests for one video."""
    from pipelines.events_eval import run_events_eval

    path, caps = video
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "v_a.mp4").write_bytes(path.read_bytes())
    refs = tmp_path / "val_1.json"
    refs.write_text(json.dumps({"v_a": {"duration": 10.0, "timestamps": [[0, 5], [5, 10]],
                                        "sentences": ["a cat sleeps", "a dog runs"]}}))
    metrics = run_events_eval(tmp_path / "run", references=[refs], videos=videos, describer=f"replay:{caps}",
                              cache=False)
    assert metrics["usage"]["describe"]["requests"] == 10
    assert metrics["usage"]["total"]["requests"] == 10
    row = json.loads((tmp_path / "run" / "events.jsonl").read_text().splitlines()[0])
    assert row["usage"]["describe"]["requests"] == 10


@pytest.mark.parametrize("argv, hint", [
    (["events"], "vidground events --descriptions PATH"),
    (["ask", "what?"], "vidground ask --descriptions PATH QUESTION"),
    (["ground", "a dog"], "vidground ground --descriptions PATH QUERY"),
])
def test_the_command_line_names_its_own_option(video, capsys, argv, hint):
    _, caps = video
    assert main([argv[0], str(caps), *argv[1:], "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert hint in err and "descriptions=PATH" not in err  # was the Python call's ground(descriptions=PATH, ...)
