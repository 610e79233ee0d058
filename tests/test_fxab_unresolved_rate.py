"""RV-P on 3783f1b: descriptions an older vidground cached for ``cv`` at the default rate (keyed ``fps: null``) were
copied to the resolved key on every cv run in every process: a read-only cache failed ("attempt to write a readonly
database") where the old code read every frame, and the default cache was turned off; and the copy parsed every row
the video has under any describer, so one unreadable row under another describer's key stopped the run. Now the old
key is read where the new one misses: nothing is written, and only that key's rows are read."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from _helpers_eval import FakeDescriber
from frame_describer.cache import DescriptionCache
from frame_describer.synthetic import render_numbered_video
from pipelines import session as session_module
from pipelines.session import Session
from vidground.files import video_fingerprint
from vidground.types import FrameDescription


class _Comparing(FakeDescriber):
    """The fake describer, marked as one whose text depends on the frame before (as ``cv``)."""

    uses_previous_frame = True


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """3 s at 10 fps: 3 frames at the default rate."""
    return render_numbered_video(tmp_path_factory.mktemp("fxab_rate") / "numbered.mp4", n_frames=30, fps=10)


def _describe(cache, video: Path, sampling: dict | None = None) -> tuple[_Comparing, list[str]]:
    describer = _Comparing()
    with Session(describer=describer, cache=cache, sampling=sampling) as s:
        texts = [d.text for d in s.describe(video).descriptions]
    return describer, texts


@pytest.fixture
def legacy(tmp_path, video, monkeypatch) -> tuple[Path, list[str]]:
    """A cache written by a vidground that keyed cv's default rate as fps null."""
    cache = tmp_path / "c.sqlite"
    with monkeypatch.context() as m:
        m.setattr(session_module, "_sampled", lambda s: s.model_dump(include={"fps", "num_frames", "max_frames"}))
        old, texts = _describe(cache, video)
    assert old.calls == 3
    return cache, texts


def _read_only(monkeypatch) -> list[int]:
    """Every write of descriptions fails as on a read-only file; returns the list the tries are counted in."""
    tries: list[int] = []

    def refuse(self, rows, key, settings):
        tries.append(len(rows))
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(DescriptionCache, "_store", refuse)
    return tries


@pytest.mark.parametrize("sampling", [None, {"fps": 1.0}])
def test_a_read_only_cache_of_the_old_key_is_read_whole_and_nothing_written(legacy, video, monkeypatch, sampling):
    cache, texts = legacy
    tries = _read_only(monkeypatch)
    again, read = _describe(cache, video, sampling)  # a cache the user named: a failed write would be an error
    assert (again.calls, read, tries) == (0, texts, [])


def test_the_default_cache_stays_on_when_the_old_key_is_read(legacy, video, monkeypatch):
    cache, texts = legacy
    tries = _read_only(monkeypatch)
    store = DescriptionCache(cache, optional=True)
    try:
        again, read = _describe(store, video)
        assert (again.calls, read, tries, store.broken) == (0, texts, [], None)
    finally:
        store.close()


def test_only_the_old_key_s_rows_are_read_and_another_describer_s_bad_row_stops_nothing(legacy, video, monkeypatch):
    cache, texts = legacy
    store = DescriptionCache(cache)
    fp = video_fingerprint(video)
    store.store(fp, "another-describer", [FrameDescription(t=float(i), text=f"other {i}") for i in range(50)],
                settings={"describer": "openai", "settings": {}, "extra": {}})
    store._connect().execute("UPDATE descriptions SET payload='not json' WHERE settings_key='another-describer' "
                             "AND t_ms=7000")
    store.close()
    parsed: list[str] = []
    parse = DescriptionCache._parse

    def counting(self, payload, how, what):
        parsed.append(what)
        return parse(self, payload, how, what)

    monkeypatch.setattr(DescriptionCache, "_parse", counting)
    again, read = _describe(cache, video)  # the old code parsed all 53 rows, and the bad one was a ConfigurationError
    assert (again.calls, read) == (0, texts)
    assert sum("description of the frame" in w for w in parsed) == 3
