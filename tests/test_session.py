"""The session owns the backends: built once, described once, closed at the end (and only what it built)."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import pipelines.session as session_module
from _helpers_eval import FakeDescriber, FakeReasoner, register_fakes, render_toy_videos, write_toy_dataset
from _helpers_openai_server import Reply, openai_server  # noqa: F401
from pipelines import ConfigurationError, Sampling, Session
from pipelines.executors import LocalExecutor
from pipelines.runs import RunConfig, run_eval
from vidground.types import FrameDescription
from vidground.errors import SessionClosedError

register_fakes()


class Closing(FakeDescriber):
    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    return render_toy_videos(tmp_path_factory.mktemp("session-videos"), ["a", "b", "c"])


def test_a_video_is_described_once_for_many_queries(videos):
    describer = FakeDescriber()
    with Session(describer=describer, reasoner="fake-reasoner", sampling={"fps": 2}) as s:
        first = s.ground(videos / "a.mp4", "frame at 1.0")
        calls = describer.calls
        again = [s.ground(videos / "a.mp4", q) for q in ("frame at 2.0", "frame at 0.5", "frame at 1.0")]
    assert calls == 6  # 3 s at 2 fps
    assert describer.calls == calls  # the later queries described nothing
    assert [i.as_list() for i in again[2].intervals] == [i.as_list() for i in first.intervals]
    assert first.usage["describe"].requests == 6
    assert all("describe" not in r.usage for r in again)  # paid once, reported once
    assert first.settings["fps"] == 2.0 and first.settings["max_side"] == 512


def test_settings_record_the_sampling_really_used_and_none_for_descriptions(videos):
    with Session(describer=FakeDescriber(), reasoner="fake-reasoner") as s:
        default = s.ground(videos / "a.mp4", "frame at 1.0")
        loaded = s.ground(descriptions=[{"t": 0, "text": "frame at 0.0"}, {"t": 1, "text": "frame at 1.0"}],
                          query="frame at 1.0")
    with Session(describer=FakeDescriber(), reasoner="fake-reasoner", sampling={"fps": 4, "max_frames": 3}) as s:
        capped = s.ground(videos / "a.mp4", "frame at 1.0")
    assert default.settings["fps"] == 1.0 and default.settings["num_frames"] is None  # not null: 1 fps was used
    assert capped.settings["fps"] == pytest.approx(1.0) and capped.settings["max_frames"] == 3  # 3 s, 3 frames
    assert not {"fps", "num_frames", "max_frames", "max_side"} & set(loaded.settings)  # no sampling happened


def test_a_changed_video_is_described_again(tmp_path):
    folder = render_toy_videos(tmp_path, ["x"])
    describer = FakeDescriber()
    with Session(describer=describer, reasoner="fake-reasoner") as s:
        s.describe(folder / "x.mp4")
        render_toy_videos(tmp_path, ["x"], n_frames=20)  # rewritten: other size and length
        s.describe(folder / "x.mp4")
    assert describer.calls == 3 + 2


def test_a_descriptions_file_is_read_once_and_again_when_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"t": t, "text": f"frame {t}"}) + "\n" for t in range(5)))
    reads = []
    real = session_module.load_descriptions
    monkeypatch.setattr(session_module, "load_descriptions", lambda *a, **k: reads.append(1) or real(*a, **k))
    with Session(reasoner="fake-reasoner") as s:
        for q in ("frame 1", "frame 2", "frame 3"):
            s.ground(descriptions=path, query=q)
        assert len(reads) == 1
        path.write_text("".join(json.dumps({"t": t, "text": f"frame {t}"}) + "\n" for t in range(7)))
        assert s.ground(descriptions=path, query="frame 6").duration == 7.0
        assert len(reads) == 2
        assert s.load(path, duration=30.0).duration == 30.0  # a known duration still wins, without a re-read
        assert len(reads) == 2


def test_close_closes_what_the_session_built_and_leaves_what_it_was_given(videos, monkeypatch):
    built: list[Closing] = []
    monkeypatch.setattr(session_module, "get_describer", lambda spec, **o: built.append(Closing()) or built[-1])
    given = Closing()
    with Session(describer="fake", reasoner="fake-reasoner") as s:
        s.describe(videos / "a.mp4")
        s.describe(videos / "b.mp4")
    with Session(describer=given, reasoner="fake-reasoner") as t:
        t.describe(videos / "a.mp4")
    assert len(built) == 1 and built[0].closed == 1  # built once for two videos, closed once
    assert given.closed == 0
    s.close()  # idempotent
    assert built[0].closed == 1
    with pytest.raises(SessionClosedError, match="closed"):
        s.ground(videos / "a.mp4", "frame at 1.0")


def test_a_cache_path_is_opened_once_and_closed(videos, tmp_path):
    db = tmp_path / "c.sqlite"
    with Session(describer=FakeDescriber(), cache=db) as s:
        s.describe(videos / "a.mp4")
        cache = s.cache
        assert s.cache is cache
    assert db.exists()
    with Session(describer=FakeDescriber(), cache=db) as s2:  # a new session: answered by the cache
        assert s2.describe(videos / "a.mp4").usage.cached == 3


def test_bad_sampling_fails_before_any_video_or_model():
    for bad in ({"fps": float("nan")}, {"fps": 0}, {"max_side": 0}, {"num_frames": 0}, {"fps": 1, "num_frames": 2},
                {"typo": 1}):
        with pytest.raises(ConfigurationError):
            Session(sampling=bad)
    assert Sampling.of({"fps": 2}, max_side=None) == Sampling(fps=2, max_side=None)


@pytest.mark.parametrize("kwargs, words", [
    ({"describer": object()}, "describer= must be a spec string (cv, openai:MODEL...) or an object with name, "
                              "settings() and describe(frames, query=None); got an instance of object, which has no "
                              "name, settings, describe"),
    ({"reasoner": object()}, "reasoner= must be a spec string (embedding, openai:MODEL...) or an object with name, "
                             "settings() and ground(query, transcript) (or answer/events/chat); got an instance of object"),
    ({"sampling": 3}, "sampling= must be a Sampling or a dict of its settings (fps, num_frames, max_frames, "
                      "max_side), got int 3"),
])
def test_a_backend_or_sampling_of_the_wrong_kind_is_a_configuration_error(kwargs, words):
    """An AttributeError at first use (object() as a backend) or a TypeError (sampling=3) before."""
    with pytest.raises(ConfigurationError) as info:
        Session(**kwargs)
    assert words in str(info.value)


@pytest.mark.parametrize("call, words", [
    (lambda s: s.describe(None), "video must be a video path (str or Path), got NoneType None"),
    (lambda s: s.ground(5, "x"), "video must be a video path (str or Path), describe()'s output, or None with "
                                 "descriptions=, got int 5"),
    (lambda s: s.answer(3.5, "why?"), "got float 3.5"),
    (lambda s: s.events({"a": 1}), "got dict {'a': 1}"),
])
def test_a_video_of_the_wrong_kind_is_an_input_error(call, words):
    """A TypeError from pathlib ('expected str, bytes or os.PathLike object, not int')."""
    from pipelines import InputError

    with Session(describer=FakeDescriber(), reasoner="fake-reasoner") as s, pytest.raises(InputError) as info:
        call(s)
    assert words in str(info.value)


def test_a_duration_with_a_video_is_refused_as_on_the_command_line(videos):
    """ground(video, duration=100) stretched the 3-s video's last description to 100 s and said nothing (c0d2291
    refused --duration with a video); descriptions keep taking one, and describe()'s output can be given one."""
    describer = FakeDescriber()
    with Session(describer=describer, reasoner="fake-reasoner") as s:
        for call in (lambda: s.ground(videos / "a.mp4", "frame at 1.0", duration=100),
                     lambda: s.answer(videos / "a.mp4", "which frame?", duration=100),
                     lambda: s.events(videos / "a.mp4", duration=100)):
            with pytest.raises(ConfigurationError, match="duration= applies to descriptions=: a video's duration is "
                                                         "read from the video"):
                call()
        assert describer.calls == 0  # refused before any frame was described
        real = s.ground(videos / "a.mp4", "frame at 1.0")
        longer = s.ground(s.describe(videos / "a.mp4").with_duration(100), "frame at 1.0")
    assert real.duration == 3.0 and longer.duration == 100.0


def test_a_reasoner_for_questions_or_events_alone_needs_no_ground(videos):
    """The protocol check at construction took ground() for every reasoner: one that only answers questions or only
    finds events (Session.answer / events) was refused though it worked."""

    class AnswerOnly:
        name = "answer-only"

        def settings(self):
            return {"name": self.name}

        def answer(self, question, transcript, choices=None):
            raise NotImplementedError

    calls = []

    class Counting(FakeDescriber):
        def describe(self, frames, *, query=None):
            for d in super().describe(frames, query=query):
                calls.append(d.t)
                yield d

    with Session(describer=Counting(), reasoner=AnswerOnly()) as s:
        assert s.reasoner.name == "answer-only"
        with pytest.raises(ConfigurationError, match="cannot ground queries"):  # before any frame is described
            s.ground(videos / "a.mp4", "a query")
    assert calls == []
    with pytest.raises(ConfigurationError, match="no ground or answer or events or chat"):
        Session(reasoner=type("Named", (), {"name": "x", "settings": lambda self: {}})())


def test_a_fallback_that_answered_is_said_at_the_top_of_the_settings(openai_server):
    """The result's own settings stay at the top level beside the reasoner's under "reasoner": a dedup that dropped
    a top-level key equal to the configured one hid that the fallback answered ("fallback" is both the configured
    fallback and, at the top, the one that answered), and the keys scripts read from ground --json."""
    from temporal_reasoner.base import BaseReasoner
    from temporal_reasoner.openai_reasoner import OpenAIReasoner
    from vidground.types import FrameDescription, GroundingResult, Interval

    class Fixed(BaseReasoner):
        name = "fixed"

        def ground(self, query, transcript):
            return GroundingResult(query=query, duration=transcript.duration, intervals=[Interval(start=0, end=2)])

    descs = [FrameDescription(t=i * 2.0, text=t) for i, t in enumerate(["a person sits"] * 3 + ["a door opens"] * 2)]
    openai_server.responder = lambda req: Reply.chat("no json here")
    rsn = OpenAIReasoner("gpt-4o-mini", base_url=openai_server.base_url, api_key="sk-x", fallback=Fixed(),
                         max_attempts=2, retry_base_delay=0.01)
    with Session(reasoner=rsn) as s:
        result = s.ground(descriptions=descs, query="q")
    assert result.settings["fallback"] == "fixed" and result.settings["reasoner"] == rsn.settings()
    assert "time_style" in result.settings and "max_intervals" in result.settings


@pytest.mark.slow
def test_one_session_serves_many_threads(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"t": t, "text": f"frame {t}"}) + "\n" for t in range(40)))
    queries = [f"frame {i % 40}" for i in range(64)]
    with Session(reasoner="embedding") as s:
        alone = {q: s.ground(descriptions=path, query=q).intervals[0].as_list() for q in set(queries)}
        with ThreadPoolExecutor(8) as pool:
            together = list(pool.map(lambda q: (q, s.ground(descriptions=path, query=q).intervals[0].as_list()),
                                     queries))
    assert all(alone[q] == got for q, got in together)


def test_descriptions_given_as_a_list_work_too():
    items = [FrameDescription(t=t, text=f"frame {t}") for t in range(4)]
    with Session(reasoner="fake-reasoner") as s:
        assert s.ground(descriptions=items, query="frame 2").best.start == 2.0


def test_an_eval_builds_one_describer_per_process_whatever_the_concurrency(tmp_path, monkeypatch):
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=3, per_video=2, duration=3.0)
    folder = render_toy_videos(tmp_path / "videos", ["vid0", "vid1", "vid2"])
    built: list[FakeDescriber] = []
    lock = threading.Lock()
    real = session_module.get_describer

    def counting(spec, **options):
        with lock:
            built.append(real(spec, **options))
            return built[-1]

    monkeypatch.setattr(session_module, "get_describer", counting)
    config = RunConfig(dataset="jsonl", dataset_path=str(ds), videos=str(folder), describer="fake",
                       reasoner="fake-reasoner", cache=str(tmp_path / "c.sqlite"), concurrency=3)
    summary = run_eval(config, tmp_path / "run", executor=LocalExecutor(3))
    assert summary.failed == 0 and summary.ran == 6
    assert len(built) == 1
    assert built[0].calls == 9  # 3 videos x 3 frames, each described once


@pytest.mark.parametrize("option", [{"fps": float("nan")}, {"max_side": 0}, {"top_k": 0}, {"num_frames": 0},
                                    {"cache": "."}, {"describer": "nope"}])
def test_an_eval_with_invalid_options_fails_up_front(tmp_path, option):
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=1, per_video=1, duration=3.0)
    folder = render_toy_videos(tmp_path / "videos", ["vid0"])
    option = {k: (str(tmp_path) if v == "." else v) for k, v in option.items()}
    option = {"describer": "fake", **option}
    config = RunConfig(dataset="jsonl", dataset_path=str(ds), videos=str(folder), reasoner="fake-reasoner", **option)
    with pytest.raises(ConfigurationError):
        run_eval(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_reasoner_options_need_a_spec():
    with pytest.raises(ConfigurationError, match="spec string"):
        Session(reasoner=FakeReasoner(), reasoner_options={"x": 1})


def test_threads_asking_for_one_video_share_one_description(videos):
    describer = FakeDescriber()
    with Session(describer=describer, reasoner="fake-reasoner") as s:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda q: s.ground(videos / "b.mp4", q), ["frame at 1.0"] * 4))
    assert describer.calls == 3 and len(results) == 4  # 3 frames, described once for the 4 threads


def test_a_video_replaced_with_the_same_size_and_mtime_is_described_again(tmp_path):
    import os

    one = render_toy_videos(tmp_path / "one", ["x"]) / "x.mp4"
    copy = tmp_path / "copy.mp4"
    data = bytearray(one.read_bytes())
    data[-1] ^= 1  # other bytes, the same size
    copy.write_bytes(bytes(data))
    describer = FakeDescriber()
    with Session(describer=describer) as s:
        s.describe(one)
        st = one.stat()
        os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))  # the mtime kept, as cp -p and rsync -t do
        assert copy.stat().st_size == st.st_size and copy.stat().st_mtime_ns == st.st_mtime_ns
        os.replace(copy, one)
        s.describe(one)
    assert describer.calls == 6


def test_a_run_abandoned_half_way_closes_its_session(tmp_path, monkeypatch):
    ds, _ = write_toy_dataset(tmp_path / "data", n_videos=3, per_video=1, duration=3.0)
    folder = render_toy_videos(tmp_path / "videos", ["vid0", "vid1", "vid2"])
    sessions = []
    real = session_module.Session.__init__

    def tracking(self, *a, **k):
        real(self, *a, **k)
        sessions.append(self)

    monkeypatch.setattr(session_module.Session, "__init__", tracking)
    config = RunConfig(dataset="jsonl", dataset_path=str(ds), videos=str(folder), describer="fake",
                       reasoner="fake-reasoner", cache=str(tmp_path / "c.sqlite"))
    from pipelines.runs import VideoTask, select_queries

    tasks = [VideoTask(q.video, str(folder / f"{q.video}.mp4"), [q]) for q in select_queries(config)]
    run = LocalExecutor(1).run(tasks, config)
    next(run)  # the first record, then the caller stops
    run.close()
    assert sessions and all(s._closed for s in sessions)


def test_a_closed_session_says_so_before_touching_the_file():
    s = Session()
    s.close()
    with pytest.raises(SessionClosedError, match="closed"):
        s.describe("/no/such/video.mp4")


def test_a_warm_cache_describes_a_video_without_decoding_it(videos, tmp_path, monkeypatch):
    """Issue #20: a description-cache hit still decoded the whole video. With every planned frame in the cache
    the descriptions come from it alone; one missing frame and the video is decoded as before."""
    import frame_describer.sampling as sampling

    cache = tmp_path / "c.sqlite"
    describer = FakeDescriber()
    with Session(describer=describer, reasoner="fake-reasoner", cache=cache, sampling={"fps": 2}) as s:
        first = s.describe(videos / "a.mp4")
    calls = describer.calls

    def no_decoding(*a, **k):
        raise AssertionError("decoded although every frame was cached")

    monkeypatch.setattr(sampling, "sample_frames", no_decoding)
    with Session(describer=describer, reasoner="fake-reasoner", cache=cache, sampling={"fps": 2}) as s:
        again = s.describe(videos / "a.mp4")
        result = s.ground(videos / "a.mp4", "frame at 1.0")
    assert describer.calls == calls and again.usage.cached == len(first.descriptions)
    assert [(d.t, d.text) for d in again.descriptions] == [(d.t, d.text) for d in first.descriptions]
    assert (again.duration, again.step, again.sampling["fps"]) == (first.duration, first.step, 2.0)
    assert result.intervals and result.settings["fps"] == 2.0
    with Session(describer=describer, reasoner="fake-reasoner", cache=cache, sampling={"fps": 4}) as s:
        with pytest.raises(AssertionError, match="decoded although"):  # other frames: not all cached
            s.describe(videos / "a.mp4")
