"""A warm description cache opens no container (issue #20): the frame times a sampling picks from a video
are kept in the cache with the video's fingerprint and identity on disk, and planned afresh when the
file or the settings change."""

from __future__ import annotations

import os
import shutil

import pytest

import frame_describer.sampling as sampling
from _helpers_eval import FakeDescriber, register_fakes, render_toy_videos
from pipelines import Session

register_fakes()


@pytest.fixture()
def video(tmp_path):
    folder = render_toy_videos(tmp_path / "v", ["a", "b"])
    return folder / "a.mp4"


@pytest.fixture()
def counted(monkeypatch):
    """Counts the container reads a plan needs (probe and packet times) and the decodes."""
    calls = {"planned": 0, "probe": 0, "decode": 0}
    for name, key in (("planned_times", "planned"), ("probe_video", "probe"), ("sample_frames", "decode")):
        real = getattr(sampling, name)

        def spy(*a, _real=real, _key=key, **k):
            calls[_key] += 1
            return _real(*a, **k)

        monkeypatch.setattr(sampling, name, spy)
    return calls


def describe(video, cache, fps=2.0):
    with Session(describer=FakeDescriber(), reasoner="fake-reasoner", cache=cache, sampling={"fps": fps}) as s:
        return s.describe(video)


def test_a_warm_run_reads_neither_the_packets_nor_the_frames(video, tmp_path, counted):
    cache = tmp_path / "c.sqlite"
    first = describe(video, cache)
    assert counted["planned"] == 1 and counted["decode"] == 1  # planned (and kept), then decoded: cold
    counted.update(planned=0, probe=0, decode=0)
    again = describe(video, cache)
    assert counted == {"planned": 0, "probe": 0, "decode": 0}
    assert [(d.t, d.text) for d in again.descriptions] == [(d.t, d.text) for d in first.descriptions]
    assert (again.duration, again.step, again.sampling["fps"]) == (first.duration, first.step, 2.0)
    assert again.usage.cached == len(first.descriptions)


def test_a_changed_file_or_other_settings_are_planned_again(video, tmp_path, counted):
    cache = tmp_path / "c.sqlite"
    first = describe(video, cache)
    counted.update(planned=0, probe=0, decode=0)
    os.utime(video, ns=(video.stat().st_atime_ns, video.stat().st_mtime_ns + 10**9))  # same bytes, touched
    describe(video, cache)
    assert counted["planned"] == 1 and counted["decode"] == 0  # planned again; the descriptions still hit

    counted.update(planned=0, probe=0, decode=0)
    describe(video, cache, fps=4.0)  # other times: planned, and decoded for the frames not yet described
    assert counted["planned"] == 1 and counted["decode"] == 1

    counted.update(planned=0, probe=0, decode=0)
    shutil.copyfile(video.with_name("b.mp4"), video)  # other content under the same name
    other = describe(video, cache)
    assert counted["planned"] == 1 and counted["decode"] == 1
    assert other.usage.cached == 0 and len(other.descriptions) == len(first.descriptions)  # described afresh


def test_a_warm_run_does_not_import_pyav(video, tmp_path):
    """A warm run answers from the cache alone, so it does not pay PyAV's import (about 0.1 s of a 0.8-s
    warm CLI call): checked in a fresh interpreter, where nothing else has imported it."""
    import subprocess
    import sys
    from pathlib import Path

    cache = tmp_path / "c.sqlite"
    describe(video, cache)  # cold: planned, decoded, described, kept
    tests = Path(__file__).resolve().parent
    code = (
        "import sys\n"
        "from _helpers_eval import FakeDescriber, register_fakes\n"
        "register_fakes()\n"
        "from pipelines import Session\n"
        "assert 'av' not in sys.modules, 'imported before the run'\n"
        f"with Session(describer=FakeDescriber(), reasoner='fake-reasoner', cache={str(cache)!r},"
        " sampling={'fps': 2.0}) as s:\n"
        f"    d = s.describe({str(video)!r})\n"
        "assert d.usage.cached == len(d.descriptions) > 0\n"
        "print('av' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tests,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), str(tests.parent)])})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
