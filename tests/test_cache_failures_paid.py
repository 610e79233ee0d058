"""A description cache that fails is never the reason paid descriptions go uncounted, nor an internal error: a named
cache that fails while storing stops the stream at once and its error carries the usage of every description paid
and not handed over; a damaged default cache says to delete it; an unreadable stored row is a miss in the default
cache and a typed error in a named one; a folder that cannot be made for a named cache is a typed error."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from _helpers_eval import make_frames
from frame_describer.base import BaseDescriber, DescriptionStream, StreamState
from frame_describer.cache import CachedDescriber, DescriptionCache
from test_cache_robustness import _damage
from vidground.errors import ConfigurationError
from vidground.types import Frame, FrameDescription, Usage


class InFlight(BaseDescriber):
    """A paid describer with one request in flight, as ``openai:`` with concurrency: when its stream is stopped,
    the request already sent for the next frame is answered (paid) and kept in the stream's ``unread``."""

    name = "in-flight"

    def __init__(self) -> None:
        self.paid = 0

    def settings(self) -> dict[str, Any]:
        return {"name": self.name}

    def _ask(self, f: Frame) -> FrameDescription:
        self.paid += 1
        return FrameDescription(t=f.t, text=f"frame at {f.t:.1f}", usage=Usage(requests=1))

    def describe(self, frames: Iterable[Frame], *, query: str | None = None) -> Iterator[FrameDescription]:
        def body(out: StreamState) -> Iterator[FrameDescription]:
            it = iter(frames)
            try:
                for f in it:
                    out.handed = d = self._ask(f)
                    yield d
            finally:  # stopped early: the request sent for the next frame is answered all the same
                following = next(it, None)
                if following is not None:
                    out.unread.append(self._ask(following))

        return DescriptionStream(body)


def _full_from_the_second_store(monkeypatch) -> list[int]:
    """Every store after the first fails as on a full disk; the list counts the stores tried."""
    real, tried = DescriptionCache._store, []

    def store(self, *args: Any) -> int:
        tried.append(1)
        if len(tried) > 1:
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, *args)

    monkeypatch.setattr(DescriptionCache, "_store", store)
    return tried


def test_a_named_cache_that_fails_storing_stops_and_its_error_carries_every_description_paid(tmp_path, monkeypatch):
    """HEAD: the stream went on after the failed store only to wait for what was in flight, the store was tried
    again in the cleanup, failed again and replaced the error (whose usage said nothing of the two descriptions paid
    and not handed over), and the claims of the frames were left behind."""
    cache = DescriptionCache(tmp_path / "named.sqlite")
    tried = _full_from_the_second_store(monkeypatch)
    describer = InFlight()
    handed: list[FrameDescription] = []
    with pytest.raises(ConfigurationError, match="storing descriptions failed: database or disk is full") as e:
        for d in CachedDescriber(describer, cache, fingerprint="v").describe(make_frames([0.0, 1.0, 2.0, 3.0, 4.0])):
            handed.append(d)
    assert len(handed) == 1 and describer.paid == 3  # one stored and handed; one not stored; one in flight
    assert e.value.usage.requests == describer.paid - len(handed) == 2
    assert len(tried) == 2  # no store tried after the one that failed
    with sqlite3.connect(tmp_path / "named.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM descriptions").fetchone()[0] == 1


def test_through_a_session_the_error_counts_every_request_paid(tmp_path, monkeypatch):
    from _helpers_eval import render_toy_videos
    from pipelines.api import describe

    video = render_toy_videos(tmp_path / "videos", ["v"], n_frames=60, fps=10.0) / "v.mp4"  # 6 frames at 1 fps
    _full_from_the_second_store(monkeypatch)
    describer = InFlight()
    with pytest.raises(ConfigurationError) as e:
        describe(video, describer=describer, cache=tmp_path / "named.sqlite")
    assert e.value.usage.requests == describer.paid == 3  # HEAD: 1 of 3


def test_an_interrupted_stream_whose_store_fails_raises_the_interrupt_and_says_what_was_lost(tmp_path, monkeypatch,
                                                                                            caplog):
    """A Ctrl-C after the first frame: the request in flight is answered and its store fails; HEAD raised the
    cache's error in place of the interrupt and left the claims."""
    cache = DescriptionCache(tmp_path / "named.sqlite")
    tried = _full_from_the_second_store(monkeypatch)
    stream = CachedDescriber(InFlight(), cache, fingerprint="v").describe(make_frames([0.0, 1.0, 2.0]))
    assert next(stream).t == 0.0
    with caplog.at_level(logging.WARNING), pytest.raises(KeyboardInterrupt):
        stream.throw(KeyboardInterrupt())
    assert len(tried) == 2
    assert any("database or disk is full" in m and m.endswith("; 1 description(s) paid for were not kept")
               for m in (r.getMessage() for r in caplog.records))
    with sqlite3.connect(tmp_path / "named.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0


@pytest.fixture
def video(tmp_path):
    from _helpers_eval import render_toy_videos

    return render_toy_videos(tmp_path / "videos", ["v"], n_frames=30, fps=10.0) / "v.mp4"  # 3 frames at 1 fps


def _unusable(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "the default description cache cannot be used" in r.getMessage()]


@pytest.mark.parametrize("how", ["malformed", "not a database"])
def test_a_damaged_default_cache_says_to_delete_it(video, caplog, how):
    """The named cache's error said 'the file is damaged: delete it'; the default cache's warning only said it could
    not be used, whether SQLite found it malformed once open or no database at all when opening it."""
    from frame_describer.cache import default_cache_path
    from pipelines.api import describe

    describe(video)
    path = default_cache_path()
    if how == "malformed":
        _damage(path)
    else:
        for f in path.parent.glob(path.name + "*"):
            f.unlink()
        path.write_bytes(b"not sqlite " * 1000)
    with caplog.at_level(logging.WARNING):
        describe(video)
    warned = _unusable(caplog)
    assert len(warned) == 1 and "the file is damaged: delete it (safe while no vidground process uses it)" in \
        warned[0] and str(path) in warned[0], warned


def _truncate_payloads(path, table: str = "descriptions") -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE {table} SET payload = substr(payload, 1, 10)")


def test_an_unreadable_description_in_the_default_cache_is_a_miss_and_is_replaced(video, caplog, capsys):
    """HEAD: pydantic's ValidationError from lookup, 'internal error' on the command line (/tmp/rv4/r/bad_payload.py)."""
    from frame_describer.cache import default_cache_path
    from pipelines import cli
    from pipelines.api import describe

    fresh = [d.text for d in describe(video, cache=False).descriptions]
    describe(video)
    _truncate_payloads(default_cache_path())
    with caplog.at_level(logging.WARNING):
        again = describe(video)
    assert [d.text for d in again.descriptions] == fresh and again.usage.cached == 0
    warned = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(warned) == 1 and str(default_cache_path()) in warned[0], warned
    later = describe(video)  # the unreadable rows were replaced by the new descriptions
    assert [d.text for d in later.descriptions] == fresh and later.usage.cached == len(fresh) == 3
    _truncate_payloads(default_cache_path())
    assert cli.main(["describe", str(video)]) == 0 and "internal error" not in capsys.readouterr().err


def test_an_unreadable_sampling_plan_in_the_default_cache_is_planned_again(video):
    from frame_describer.cache import default_cache_path
    from pipelines.api import describe

    fresh = [d.text for d in describe(video).descriptions]
    for bad in ("substr(payload, 1, 10)", "'[1, 2]'"):
        with sqlite3.connect(default_cache_path()) as conn:
            conn.execute(f"UPDATE plans SET payload = {bad}")
        assert [d.text for d in describe(video).descriptions] == fresh  # HEAD: JSONDecodeError, then TypeError


def test_an_unreadable_row_in_a_named_cache_is_a_typed_error_that_names_it(video, tmp_path, capsys):
    from pipelines import cli
    from pipelines.api import describe

    mine = tmp_path / "mine.sqlite"
    describe(video, cache=mine)
    _truncate_payloads(mine)
    with pytest.raises(ConfigurationError, match=r"description of the frame at [\d.]+ s stored there cannot be read "
                                                 r".*the file is damaged: delete it"):
        describe(video, cache=mine)
    with pytest.raises(ConfigurationError, match="cannot be read"):  # what export-tuning-data reads
        _entries_of_all(mine)
    assert cli.main(["describe", str(video), "--cache", str(mine)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"vidground: error: the description cache {mine}: ") and "internal error" not in err, err


def _entries_of_all(path) -> None:
    cache = DescriptionCache(path)
    with sqlite3.connect(path) as conn:
        fingerprint = conn.execute("SELECT fingerprint FROM descriptions").fetchone()[0]
    cache.entries(fingerprint)


def test_a_named_cache_whose_folder_cannot_be_made_is_a_typed_error(video, tmp_path, monkeypatch, capsys):
    """HEAD: FileNotFoundError from mkdir (``--cache /proc/1/foo/c.sqlite``; PermissionError in a folder this user
    cannot write), 'internal error' on the command line."""
    from pathlib import Path

    from pipelines import cli

    paths = [Path("/proc/1/foo/c.sqlite")] if Path("/proc/1").is_dir() else []
    for path in paths:
        with pytest.raises(ConfigurationError, match=f"cannot make the folder of the description cache {path}: "):
            DescriptionCache(path)

    def refused(self: Path, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refused)
    for path in [*paths, tmp_path / "not-mine" / "c.sqlite"]:
        assert cli.main(["describe", str(video), "--cache", str(path)]) == 1
        err = capsys.readouterr().err
        assert f"cannot make the folder of the description cache {path}: " in err and "internal error" not in err, err


def test_local_weights_skip_a_file_removed_between_listing_and_reading(tmp_path, monkeypatch):
    """A checkpoint being saved in the folder: a file listed then gone raised FileNotFoundError."""
    from pathlib import Path

    from frame_describer.hf_describer import local_weights

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    before = local_weights(str(folder))
    (folder / "vanishing.json").write_text("{}")
    real = Path.is_file

    def is_file(self: Path) -> bool:
        found = real(self)
        if found and self.name == "vanishing.json":
            self.unlink()  # listed as a file, gone before its size is read
        return found

    monkeypatch.setattr(Path, "is_file", is_file)
    assert local_weights(str(folder)) == before


def test_a_coarse_to_fine_search_with_cv_interrupted_says_nothing_was_kept(video, monkeypatch, capsys):
    """Such a search uses no description cache: the note said the frames were kept in it (0 stored)."""
    from frame_describer.classical import ClassicalDescriber
    from pipelines import cli
    from test_default_description_cache import _stop_after

    _stop_after(monkeypatch, ClassicalDescriber, 1)
    assert cli.main(["ground", str(video), "a person", "--strategy", "coarse-to-fine"]) == 130
    err = capsys.readouterr().err
    assert "coarse-to-fine search of a describer that compares each frame with the one before uses no description " \
           "cache: nothing described was kept" in err and "kept in the description cache" not in err, err
