"""The description cache is on by default outside eval too: ``vidground ground``/``describe``/``ask``/``events`` and
the Python calls keep what they described in the default cache (``$XDG_CACHE_HOME/vidground/descriptions.sqlite``,
each test's own: conftest), so a second question about the same video pays for no frame again; ``--no-cache`` /
``cache=False`` turn it off. A describer given as an object is cached only in a cache the user names (its name and
``settings()`` may not tell it from another one), and a default cache that cannot be opened is a warning."""

from __future__ import annotations

import logging

import pytest

from _helpers_eval import FakeDescriber, FakeReasoner, register_fakes, render_toy_videos
from _helpers_openai_server import openai_server  # noqa: F401
from pipelines import cli
from pipelines.api import describe, ground
from pipelines.runs import default_cache_path
from vidground.errors import ConfigurationError

register_fakes()


@pytest.fixture
def video(tmp_path):
    return render_toy_videos(tmp_path / "videos", ["v"], n_frames=30, fps=10.0) / "v.mp4"  # 3 s: 3 frames at 1 fps


def _paid(server) -> list[str]:
    """The describer's requests (the fake server answers every one with a description)."""
    return [r for r in server.requests if r.path.endswith("/chat/completions")]


def _ground_argv(video, server, *extra):
    return ["ground", str(video), "a person opens the door", "--describer", "openai:m", "--describer-opt",
            f"base_url={server.base_url}", "--describer-opt", "api_key=sk-test", "--reasoner", "fake-reasoner",
            *extra]


def test_a_second_ground_of_the_same_video_pays_for_no_frame(video, openai_server, capsys):  # noqa: F811
    assert cli.main(_ground_argv(video, openai_server)) == 0
    first = len(_paid(openai_server))
    assert first == 3
    assert default_cache_path().is_file()  # in this test's own XDG_CACHE_HOME
    assert cli.main(_ground_argv(video, openai_server)) == 0
    assert len(_paid(openai_server)) == first  # HEAD: 6, every frame paid for again
    assert cli.main(_ground_argv(video, openai_server, "--no-cache")) == 0
    assert len(_paid(openai_server)) == 2 * first  # --no-cache: described again, as asked


def test_no_cache_and_cache_are_one_or_the_other(video, openai_server, tmp_path, capsys):  # noqa: F811
    with pytest.raises(SystemExit) as info:
        cli.main(_ground_argv(video, openai_server, "--no-cache", "--cache", str(tmp_path / "c.sqlite")))
    assert info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    assert _paid(openai_server) == []


def test_an_explicit_cache_still_wins(video, openai_server, tmp_path):  # noqa: F811
    mine = tmp_path / "mine.sqlite"
    assert cli.main(_ground_argv(video, openai_server, "--cache", str(mine))) == 0
    assert mine.is_file() and not default_cache_path().exists()
    assert cli.main(_ground_argv(video, openai_server)) == 0  # the default cache is another file: described again
    assert len(_paid(openai_server)) == 6


def test_python_ground_twice_pays_once_and_cache_false_pays_again(video, openai_server):  # noqa: F811
    options = {"base_url": openai_server.base_url, "api_key": "sk-test"}
    results = [ground(video, "a person opens the door", describer="openai:m", describer_options=options,
                      reasoner=FakeReasoner()) for _ in range(2)]
    assert len(_paid(openai_server)) == 3  # HEAD: 6
    assert results[1].usage["describe"].cached == 3 and results[1].usage["describe"].requests == 0
    ground(video, "a person opens the door", describer="openai:m", describer_options=options,
           reasoner=FakeReasoner(), cache=False)
    assert len(_paid(openai_server)) == 6


def test_the_offline_describer_is_cached_by_default_too(video):
    first = describe(video)
    second = describe(video)  # a warm cache: nothing decoded, nothing described
    assert first.usage.cached == 0 and second.usage.cached == len(second.descriptions) == 3
    assert [d.text for d in second.descriptions] == [d.text for d in first.descriptions]
    assert describe(video, cache=False).usage.cached == 0


class _Shout(FakeDescriber):
    """Another user's describer with the same name and settings as FakeDescriber, and other descriptions: the
    cache's key (name and settings) cannot tell the two apart."""

    def describe(self, frames, *, query=None):
        for d in super().describe(frames, query=query):
            yield d.model_copy(update={"text": d.text.upper()})


def test_a_describer_object_is_cached_only_in_a_cache_the_user_names(video, tmp_path):
    quiet, loud = FakeDescriber(), _Shout()
    assert ground(video, "frame", describer=quiet, reasoner=FakeReasoner()).usage["describe"].requests == 3
    shouted = describe(video, describer=loud)
    assert quiet.calls == loud.calls == 3  # not answered with the other one's descriptions
    assert all(d.text.isupper() for d in shouted.descriptions)
    assert not default_cache_path().exists()  # an object is never put in the shared default cache
    mine = tmp_path / "mine.sqlite"
    for _ in range(2):
        describe(video, describer=quiet, cache=mine)
    assert quiet.calls == 6  # the named cache answered the second time


def test_the_default_cache_for_a_plugin_spec_is_off_but_the_environment_cache_is_used(video, tmp_path, monkeypatch):
    """A spec registered by the user (``fake``) is no better keyed than an object: no default cache; a cache the
    user names in ``$VIDGROUND_CACHE`` is the user's choice and is used."""
    assert describe(video, describer="fake").usage.requests == 3
    assert not default_cache_path().exists()
    monkeypatch.setenv("VIDGROUND_CACHE", str(tmp_path / "env.sqlite"))
    describe(video, describer="fake")
    assert describe(video, describer="fake").usage.cached == 3


def test_an_unusable_default_cache_warns_once_and_still_answers(video, tmp_path, monkeypatch, caplog, capsys):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be: as good as a read-only home\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    with caplog.at_level(logging.WARNING, logger="vidground"):
        results = [ground(video, "frame", reasoner=FakeReasoner()) for _ in range(2)]
    assert [len(r.intervals) > 0 for r in results] == [True, True]
    warned = [r.getMessage() for r in caplog.records if "default description cache cannot be used" in r.getMessage()]
    assert len(warned) == 1, warned  # once per process, not once per call
    with pytest.raises(ConfigurationError, match="Not a directory"):  # a cache the user names is an error, as before
        describe(video, cache=blocked / "vidground" / "descriptions.sqlite")
    other = tmp_path / "another-file"  # the CLI, on a path this process has not warned about yet
    other.write_text("x\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(other))
    caplog.clear()
    assert cli.main(["ground", str(video), "frame", "--reasoner", "fake-reasoner"]) == 0
    assert "query:     frame" in capsys.readouterr().out
    assert [str(other) in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [True]


class _Interrupting(FakeDescriber):
    name = "interrupting"


def _stop_after(monkeypatch, cls, after: int) -> None:
    """``cls.describe`` raises KeyboardInterrupt (a Ctrl-C) once ``after`` descriptions are out."""
    real = cls.describe

    def describe(self, frames, *, query=None):
        for n, d in enumerate(real(self, frames, query=query)):
            if n == after:
                raise KeyboardInterrupt
            yield d

    monkeypatch.setattr(cls, "describe", describe)


def test_the_interrupt_note_says_what_was_kept_with_the_default_cache(video, openai_server, monkeypatch,  # noqa: F811
                                                                      capsys, tmp_path):
    """A paid built-in describer stopped by a Ctrl-C after some frames: they are in the default cache and the note
    says so (HEAD: "without a description cache nothing described was kept"); with --no-cache it says nothing was."""
    from frame_describer.openai_describer import OpenAIDescriber

    _stop_after(monkeypatch, OpenAIDescriber, 2)
    argv = _ground_argv(video, openai_server, "--fps", "2")
    assert cli.main(argv) == 130
    err = capsys.readouterr().err
    assert f"the frames described so far are kept in the description cache {default_cache_path()}" in err, err
    assert "(2 new description(s) stored by this command)" in err, err
    assert cli.main(argv + ["--no-cache"]) == 130
    assert "(--no-cache: nothing described was kept" in capsys.readouterr().err
    mine = tmp_path / "mine.sqlite"
    assert cli.main(argv + ["--cache", str(mine)]) == 130
    assert f"kept in the description cache {mine} (2 new description(s)" in capsys.readouterr().err
    assert cli.main(argv + ["--describer-opt", "mode=aware"]) == 130  # descriptions of one query: never cached
    assert "query-aware describer's descriptions depend on the query and are not cached: nothing was kept" in \
        capsys.readouterr().err


def test_the_interrupt_note_with_an_unusable_default_cache_says_nothing_was_kept(video, tmp_path, monkeypatch,
                                                                                  capsys):
    from frame_describer.classical import ClassicalDescriber

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("x\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    _stop_after(monkeypatch, ClassicalDescriber, 1)
    assert cli.main(["describe", str(video)]) == 130
    err = capsys.readouterr().err
    assert f"the default description cache {default_cache_path()} could not be used, so nothing described was kept" \
        in err, err


def test_a_plugin_describers_interrupt_note_says_nothing_was_kept(video, capsys, monkeypatch):
    from frame_describer import describers

    _stop_after(monkeypatch, _Interrupting, 2)
    describers.register("interrupting", _Interrupting)
    assert cli.main(["describe", str(video), "--describer", "interrupting"]) == 130
    err = capsys.readouterr().err
    assert "describer 'interrupting' is not one of vidground's own, so nothing described was kept: --cache FILE" \
        in err, err


def test_the_cli_help_names_the_default_cache_and_no_cache(capsys):
    for command in ("ground", "describe", "ask", "events"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert "--no-cache do not read or write the description cache" in out, command
        assert "~/.cache/vidground/descriptions.sqlite" in out, command
