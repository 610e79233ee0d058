"""The frame times a sampling picks from a video, kept in the description cache (issue #20): what the
packets say, and the sampler's errors for files it refuses (Session's use: tests/test_session_plan.py)."""

from __future__ import annotations

import os

import pytest

import frame_describer.sampling as sampling
from _helpers_eval import render_toy_videos
from frame_describer.cache import DescriptionCache, sampling_plan
from vidground.errors import VideoDecodeError


@pytest.fixture()
def video(tmp_path):
    folder = render_toy_videos(tmp_path / "v", ["a", "b"])
    return folder / "a.mp4"


def test_the_plan_is_what_the_packets_say_and_bad_files_get_the_samplers_error(video, tmp_path):
    cache = DescriptionCache(tmp_path / "c.sqlite")
    times, duration = sampling_plan(cache, video, fps=2.0, num_frames=None, max_frames=None)
    assert times == sampling.planned_times(video, fps=2.0) and duration == sampling.probe_video(video).duration
    assert sampling_plan(cache, video, fps=2.0, num_frames=None, max_frames=None) == (times, duration)
    with pytest.raises(VideoDecodeError):
        sampling_plan(cache, tmp_path / "missing.mp4", fps=1.0)
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoDecodeError):
        sampling_plan(cache, tmp_path / "empty.mp4", fps=1.0)
    os.mkfifo(tmp_path / "fifo.mp4")  # never opened for a fingerprint (that would block): the sampler refuses it
    with pytest.raises(VideoDecodeError):
        sampling_plan(cache, tmp_path / "fifo.mp4", fps=1.0)


def test_the_plan_is_read_once_per_file_and_settings(video, tmp_path, monkeypatch):
    cache = DescriptionCache(tmp_path / "c.sqlite")
    calls = []
    real = sampling.planned_times
    monkeypatch.setattr(sampling, "planned_times", lambda *a, **k: calls.append(k) or real(*a, **k))
    first = sampling_plan(cache, video, fps=2.0)
    assert sampling_plan(cache, video, fps=2.0) == first and len(calls) == 1  # kept: no packet read again
    assert sampling_plan(DescriptionCache(tmp_path / "c.sqlite"), video, fps=2.0) == first and len(calls) == 1
    sampling_plan(cache, video, fps=4.0)
    assert len(calls) == 2  # other settings
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert sampling_plan(cache, video, fps=2.0) == first and len(calls) == 3  # touched: planned again
    video.write_bytes(video.with_name("b.mp4").read_bytes())  # other content under the same name
    assert sampling_plan(cache, video, fps=2.0) == first and len(calls) == 4  # same times, but read afresh


def test_a_plan_made_by_other_sampling_code_is_not_served(video, tmp_path, monkeypatch):
    """The plan's key carries PLAN_VERSION: a change to what planned_times picks bumps it, and no cache then
    serves a plan the code before made."""
    import frame_describer.cache as cache_module

    cache = DescriptionCache(tmp_path / "c.sqlite")
    calls = []
    real = sampling.planned_times
    monkeypatch.setattr(sampling, "planned_times", lambda *a, **k: calls.append(k) or real(*a, **k))
    first = sampling_plan(cache, video, fps=2.0)
    assert sampling_plan(cache, video, fps=2.0) == first and len(calls) == 1
    monkeypatch.setattr(cache_module, "PLAN_VERSION", cache_module.PLAN_VERSION + 1)
    assert sampling_plan(cache, video, fps=2.0) == first and len(calls) == 2  # planned afresh
    assert sampling_plan(cache, video, fps=2.0) == first and len(calls) == 2


def _plan_rows(path) -> int:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT COUNT(*) FROM plans").fetchone()[0]
    finally:
        conn.close()


def test_a_touched_edited_or_copied_file_keeps_one_plan_row_per_path(video, tmp_path):
    import shutil

    cache = DescriptionCache(tmp_path / "c.sqlite")
    for _ in range(20):  # each touch changes the file's times: planned again, and the new plan replaces the old
        st = video.stat()
        os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        sampling_plan(cache, video, fps=1.0)
    assert _plan_rows(cache.path) == 1
    video.write_bytes(video.with_name("b.mp4").read_bytes())  # other content in place
    other = sampling_plan(cache, video, fps=1.0)
    assert _plan_rows(cache.path) == 1 and sampling_plan(cache, video, fps=1.0) == other
    for k in range(5):  # copies are other paths: a row each
        shutil.copy(video, tmp_path / f"copy{k}.mp4")
        assert sampling_plan(cache, tmp_path / f"copy{k}.mp4", fps=1.0) == other
    sampling_plan(cache, video, fps=2.0)  # other settings: a row of their own
    assert _plan_rows(cache.path) == 7


def test_the_plans_table_is_bounded_and_keeps_the_newest(video, tmp_path, monkeypatch):
    import shutil

    cache = DescriptionCache(tmp_path / "c.sqlite")
    monkeypatch.setattr(DescriptionCache, "MAX_PLANS", 4)
    copies = []
    for k in range(9):
        copies.append(tmp_path / f"copy{k}.mp4")
        shutil.copy(video, copies[-1])
        sampling_plan(cache, copies[-1], fps=1.0)
        assert _plan_rows(cache.path) <= 4
    calls = []
    real = sampling.planned_times
    monkeypatch.setattr(sampling, "planned_times", lambda *a, **k: calls.append(k) or real(*a, **k))
    sampling_plan(cache, copies[-1], fps=1.0)
    assert not calls  # the newest plan was kept


def test_plans_of_an_older_cache_are_dropped_when_it_is_opened(video, tmp_path):
    import sqlite3

    path = tmp_path / "c.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE plans (fingerprint TEXT NOT NULL, plan_key TEXT NOT NULL, payload TEXT NOT NULL, "
                 "PRIMARY KEY (fingerprint, plan_key)) WITHOUT ROWID")
    conn.executemany("INSERT INTO plans VALUES (?, ?, '{}')", [("fp", f"touch {k}") for k in range(20)])
    conn.execute("PRAGMA user_version=2")
    conn.commit()
    conn.close()
    cache = DescriptionCache(path)
    times = sampling_plan(cache, video, fps=1.0)
    assert _plan_rows(path) == 1 and sampling_plan(cache, video, fps=1.0) == times
