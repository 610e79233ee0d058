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
