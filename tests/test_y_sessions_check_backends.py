"""Every entry point that describes a video checks both backends' specs and option values before the first frame is
described (a paid describer's requests) and before a reasoner loads its model, as `vidground eval` does: a
:class:`~pipelines.session.Session` checks them when it is made (:func:`pipelines.session.check_backends`).

Before: a reasoner's bad ``fallback=`` spec was found after the video was described and the reasoner's first reply was
paid for (4 requests to the server here: 3 frames and 1 reply), with a message that did not say ``fallback``; a bad
describer option after the reasoner was built (a local chat reasoner's model loaded); and ``Session.describe`` paid for
every frame with a reasoner option that every later call of the session would refuse."""

from __future__ import annotations

from typing import Any

import pytest

import pipelines
from pipelines import Session
from pipelines.cli import main
from frame_describer import FrameDescription, describers
from temporal_reasoner import reasoners
from temporal_reasoner.base import BaseReasoner
from vidground import ratelimit
from vidground.chat import NO_KEY
from vidground.errors import ConfigurationError

from _helpers_eval import render_toy_videos
from _helpers_openai_server import openai_server  # noqa: F401  (fixture)

LOADED: list["LoadingReasoner"] = []


class LoadingReasoner(BaseReasoner):
    """Stands for a reasoner whose construction loads model weights (hf:, llamacpp:): each one built is counted."""

    name = "loading"

    def __init__(self, arg: str | None = None, *, size: int = 1):
        LOADED.append(self)

    def ground(self, query: str, transcript: Any) -> Any:
        raise AssertionError("not reached: the describer's option fails first")

    answer = events = ground


reasoners.register("y-loading", LoadingReasoner)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> str:  # 3 s at 10 fps: 3 frames at the default 1 fps
    return str(render_toy_videos(tmp_path_factory.mktemp("videos"), ["vid0"], n_frames=30, fps=10.0) / "vid0.mp4")


def _paid(server: Any) -> dict[str, Any]:
    return dict(describer="openai:m", describer_options={"base_url": server.base_url}, cache=False)


def _bad_fallback(server: Any) -> dict[str, Any]:
    return dict(reasoner="openai:m", reasoner_options={"base_url": server.base_url, "fallback": "openai:",
                                                       "max_attempts": 1})


def _session_call(method: str, video: str, **backends: Any) -> Any:
    with Session(**backends) as s:
        args = {"ground": (video, "a person"), "answer": (video, "what is seen?"), "events": (video,),
                "describe": (video,)}[method]
        return getattr(s, method)(*args)


ENTRY_POINTS = {
    "api.ground": lambda video, **b: pipelines.ground(video, "a person", **b),
    "api.answer": lambda video, **b: pipelines.answer(video, "what is seen?", ["a door", "a cat"], **b),
    "api.events": lambda video, **b: pipelines.events(video, **b),
    **{f"Session.{m}": (lambda m: lambda video, **b: _session_call(m, video, **b))(m)
       for m in ("ground", "answer", "events", "describe")},
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_a_bad_fallback_spec_fails_before_a_frame_is_described(entry, video, openai_server):  # noqa: F811
    with pytest.raises(ConfigurationError) as info:
        ENTRY_POINTS[entry](video, **_paid(openai_server), **_bad_fallback(openai_server))
    assert len(openai_server.requests) == 0  # before: 4 (3 frames described, 1 reply), then the error
    assert str(info.value).startswith("fallback='openai:': reasoner 'openai:': the openai reasoner needs a model")


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_a_bad_describer_option_fails_before_the_reasoner_is_built(entry, video, openai_server):  # noqa: F811
    LOADED.clear()
    bad = _paid(openai_server)
    bad["describer_options"]["concurrency"] = 0
    with pytest.raises(ConfigurationError) as info:
        ENTRY_POINTS[entry](video, reasoner="y-loading", **bad)
    assert LOADED == [] and len(openai_server.requests) == 0  # before: the reasoner was built (its model loaded)
    assert str(info.value) == "describer 'openai:m': concurrency must be a positive integer, got 0"


@pytest.mark.parametrize("options, named", [
    ({"spans": "bogus"}, "unknown spans 'bogus'; choose one of: ranked, segments, peaks"),
    ({"spanz": "peaks"}, "reasoner 'embedding' has no option spanz; its options: "),
])
def test_describe_refuses_a_session_whose_reasoner_every_later_call_would_refuse(video, openai_server,  # noqa: F811
                                                                                 options, named):
    """The session was made with this reasoner: its first describe paid for every frame (3 requests), then each
    ground/answer/events of that session failed. Now the session is not made."""
    with pytest.raises(ConfigurationError, match=named):
        Session(reasoner="embedding", reasoner_options=options, **_paid(openai_server))
    assert len(openai_server.requests) == 0


def test_a_misspelt_embedding_model_folder_fails_before_a_frame_is_described(video, openai_server,  # noqa: F811
                                                                              tmp_path):
    """The session is refused when made. Before 4cd7692 it was made, and its describe paid for the video (3 requests
    here) though every later ground/answer/events would refuse the folder (6c426e3 looked for it when the reasoner
    was built, after the describe)."""
    missing = tmp_path / "minilm-typo"
    with pytest.raises(ConfigurationError) as info:
        Session(reasoner=f"embedding:{missing}", **_paid(openai_server)).describe(video)
    assert len(openai_server.requests) == 0
    assert str(info.value).startswith(f"reasoner 'embedding:{missing}': sentence-transformers model folder "
                                      f"{str(missing)!r} not found")


@pytest.mark.parametrize("kind", ["reasoner", "describer"])
@pytest.mark.parametrize("folder, why", [("typo", "no such file or folder"), ("empty", "has no config.json")])
def test_an_hf_model_folder_that_cannot_load_fails_when_the_session_is_made(kind, folder, why, video,
                                                                           openai_server, tmp_path):  # noqa: F811
    """Before: the session was made; with an hf: reasoner its describe, then ground paid for the video (3 requests
    here), then 'no such file or folder' when the model loaded. A hub id is not looked up (the network is not asked),
    and a folder elsewhere (an eval's Ray workers) is not looked for here."""
    (tmp_path / "empty").mkdir()
    spec = f"hf:{tmp_path / folder}"
    other = "describer" if kind == "reasoner" else "reasoner"  # the other stage, paid
    backends = {kind: spec, other: "openai:m", f"{other}_options": {"base_url": openai_server.base_url}, "cache": False}
    made: list[Session] = []
    with pytest.raises(ConfigurationError) as info:
        with Session(**backends) as s:
            made.append(s)
            s.ground(s.describe(video), "a person")
    assert made == [] and len(openai_server.requests) == 0
    assert str(info.value).startswith(f"{kind} {spec!r}: {kind} model") and why in str(info.value)
    registry = reasoners if kind == "reasoner" else describers
    registry.check(spec, local=False)
    Session(**{kind: "hf:no-such-org/no-such-model"}).close()  # a hub id: found or fetched when it loads


def test_a_refused_session_leaves_the_shared_rate_limits_as_they_were(video, openai_server,  # noqa: F811
                                                                      monkeypatch):
    """Checking an openai: backend's options builds one: it registered its limits with the process's shared limiter,
    and limits only tighten, so a session refused for its reasoner's option left every later session on that endpoint
    at rpm=6, one request at a time (as did a session made and never used). A session that describes applies them."""
    monkeypatch.setattr(ratelimit, "_SHARED", {})
    throttled = dict(describer="openai:m", cache=False,
                     describer_options={"base_url": openai_server.base_url, "concurrency": 1, "rpm": 6})
    with pytest.raises(ConfigurationError, match="top_k"):
        Session(**throttled, reasoner="embedding", reasoner_options={"top_k": -1})
    Session(**throttled).close()
    describers.check("openai:m", **throttled["describer_options"])  # an eval's check before its run
    assert ratelimit._SHARED == {}  # before: rpm=6, max_in_flight=1 for the endpoint
    limiter = ratelimit.shared_limiter(openai_server.base_url, NO_KEY)
    assert (limiter.rpm, limiter.max_in_flight) == (None, None)
    with pytest.raises(ConfigurationError, match=r"^describer 'openai:m': rpm must be a number >= 1 or None, got 0"):
        Session(describer="openai:m", describer_options={"base_url": openai_server.base_url, "rpm": 0})
    with Session(**throttled) as s:  # the limits of a session that sends requests apply to the endpoint ...
        s.describe(video)
        assert (limiter.rpm, limiter.max_in_flight) == (6, 1) and len(openai_server.requests) == 3
    assert (limiter.rpm, limiter.max_in_flight) == (None, None)  # ... until its describer closes


@pytest.mark.parametrize("call", ["ground", "answer", "events"])
@pytest.mark.parametrize("given", ["descriptions=", "first argument"])
def test_describer_options_with_descriptions_are_refused_as_the_describer_is(call, given):
    """Before: "describer 'cv' has no option detail", a describer the caller never named (the session checked the
    options against the default one)."""
    descriptions = [FrameDescription(t=float(t), text=f"frame {t}") for t in range(4)]
    args = {"ground": ("frame 2",), "answer": ("what is seen?",), "events": ()}[call]
    fn = getattr(pipelines, call)
    with pytest.raises(ConfigurationError, match=r"^describer_options= apply to describing a video and have no "
                                                 r"effect with descriptions; give a video instead"):
        if given == "descriptions=":
            fn(None, *args, descriptions=descriptions, describer_options={"detail": "low"})
        else:
            fn(descriptions, *args, describer_options={"detail": "low"})
    fn(None, *args, descriptions=descriptions)  # without them: fine


def test_a_keyless_openai_describer_says_how_to_use_descriptions_only(monkeypatch, video, capsys):
    """A session checks its describer when made, even one used with descriptions only: the message says how to make
    that session. A reasoner without a key is the reasoner's error, without that advice."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError) as info:
        Session(describer="openai:m")
    assert str(info.value).startswith("describer 'openai:m': no API key: set OPENAI_API_KEY")
    assert str(info.value).endswith("; to use descriptions only, pass describer=None (command line: --descriptions "
                                    "FILE)")
    with pytest.raises(ConfigurationError) as info:
        Session(reasoner="openai:m")
    assert str(info.value).startswith("reasoner 'openai:m': no API key") and "describer=None" not in str(info.value)
    assert main(["ground", video, "a person", "--describer", "openai:m"]) == 1
    assert capsys.readouterr().err.rstrip().endswith("(command line: --descriptions FILE)")
    with Session(reasoner="naive") as s:  # describer=None: the descriptions are grounded
        assert s.ground(descriptions=[FrameDescription(t=0.0, text="a door"), FrameDescription(t=1.0, text="a cat")],
                        query="a cat").best is not None


@pytest.mark.parametrize("command", [["ground", "{video}", "a person"], ["ask", "{video}", "what is seen?"],
                                     ["events", "{video}"]])
def test_the_commands_fail_before_a_frame_is_described(command, video, openai_server, capsys):  # noqa: F811
    argv = [a.format(video=video) for a in command]
    common = ["--describer", "openai:m", "--describer-opt", f"base_url={openai_server.base_url}"]
    bad_fallback = ["--reasoner", "openai:m", "--reasoner-opt", f"base_url={openai_server.base_url}",
                    "--reasoner-opt", "fallback=openai:", "--reasoner-opt", "max_attempts=1"]
    assert main([*argv, *common, *bad_fallback]) == 1  # an error, not a usage error (2)
    assert len(openai_server.requests) == 0  # before: 4 (3 frames described, 1 reply), then the error
    err = capsys.readouterr().err
    assert err.startswith("vidground: error: fallback='openai:': reasoner 'openai:': ") and "paid so far" not in err
    LOADED.clear()
    assert main([*argv, *common, "--describer-opt", "concurrency=0", "--reasoner", "y-loading"]) == 1
    assert LOADED == [] and len(openai_server.requests) == 0  # before: the reasoner was built (its model loaded)
    assert capsys.readouterr().err.startswith("vidground: error: describer 'openai:m': concurrency must be a positive")


def test_a_session_checks_only_what_it_was_given(monkeypatch):
    """The default backends without options are not checked (nothing to check, and checking the cv describer builds
    its detectors); options for a default backend are checked against it, as the session would build it."""
    checked: list[str] = []
    for registry in (describers, reasoners):
        monkeypatch.setattr(registry, "check", (lambda check: lambda spec, **o: checked.append(spec) or check(spec, **o))(
            registry.check))
    Session().close()
    assert checked == []
    with pytest.raises(ConfigurationError, match=r"^describer 'cv': mode must be one of"):
        Session(describer_options={"mode": "nope"})
    with pytest.raises(ConfigurationError, match=r"^reasoner 'embedding': top_percentile must be above"):
        Session(reasoner_options={"top_percentile": 500})
    assert checked == ["cv", "embedding"]
