"""The default description cache never breaks or stalls a command: a cache that fails after it opened (a full disk,
a file that cannot be written, a damaged file), no home directory to keep it in, a claim left by a killed run. A
cache the user named fails loudly instead, as a typed error that names the file."""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
import subprocess
import sys

import pytest

from _helpers_eval import FakeDescriber, make_frames, register_fakes, render_toy_videos
from frame_describer.cache import CachedDescriber, DescriptionCache, default_cache_path
from pipelines import cli
from pipelines.api import describe
from vidground.errors import ConfigurationError, NoCacheFolderError

register_fakes()

UNUSABLE = "the default description cache cannot be used"


@pytest.fixture
def video(tmp_path):
    return render_toy_videos(tmp_path / "videos", ["v"], n_frames=30, fps=10.0) / "v.mp4"  # 3 s: 3 frames at 1 fps


def _damage(path) -> None:
    """Every page of the SQLite file after the first overwritten: the header and schema read, the tables do not
    ("database disk image is malformed"), as a disk error or a half-copied file leaves it."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    data[page:] = b"\xab" * (len(data) - page)
    path.write_bytes(bytes(data))


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if UNUSABLE in r.getMessage()]


def test_a_damaged_default_cache_warns_once_and_the_frames_are_still_described(video, caplog, capsys):
    fresh = [d.text for d in describe(video, cache=False).descriptions]
    describe(video)  # the default cache, then damaged
    _damage(default_cache_path())
    with caplog.at_level(logging.WARNING):
        again = [describe(video) for _ in range(2)]  # HEAD: sqlite3.DatabaseError from the first
    assert [[d.text for d in r.descriptions] for r in again] == [fresh, fresh]
    warned = _warnings(caplog)
    assert len(warned) == 1 and "database disk image is malformed" in warned[0], warned
    assert cli.main(["describe", str(video)]) == 0  # HEAD: "internal error: DatabaseError ...", exit 1
    out = capsys.readouterr()
    assert [json.loads(line)["text"] for line in out.out.splitlines()] == fresh
    assert "internal error" not in out.err


def test_a_damaged_cache_the_user_named_is_a_typed_error_that_names_it(video, tmp_path, capsys):
    mine = tmp_path / "mine.sqlite"
    describe(video, cache=mine)
    _damage(mine)
    with pytest.raises(ConfigurationError, match="the file is damaged: delete it"):  # HEAD: sqlite3.DatabaseError
        describe(video, cache=mine)
    assert cli.main(["describe", str(video), "--cache", str(mine)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"vidground: error: the description cache {mine}: ") and "malformed" in err, err


def _full_after_open(monkeypatch) -> None:
    """Every cache opened from now on may not grow past the pages it has when opened: SQLite's own "database or
    disk is full" once a table needs a new page, as on a full disk."""
    real = DescriptionCache._setup

    def setup(conn):
        real(conn)
        conn.execute(f"PRAGMA max_page_count={conn.execute('PRAGMA page_count').fetchone()[0]}")

    monkeypatch.setattr(DescriptionCache, "_setup", staticmethod(setup))


def test_a_full_disk_midway_keeps_every_frame_described_and_warns_once(tmp_path, monkeypatch, caplog):
    long = render_toy_videos(tmp_path / "long", ["v"], n_frames=600, fps=10.0) / "v.mp4"  # 60 frames at 1 fps
    fresh = [d.text for d in describe(long, cache=False).descriptions]
    _full_after_open(monkeypatch)
    with caplog.at_level(logging.WARNING):
        result = describe(long)  # HEAD: sqlite3.OperationalError: database or disk is full, the frames lost
    assert [d.text for d in result.descriptions] == fresh and len(fresh) == 60
    warned = _warnings(caplog)
    assert len(warned) == 1 and "database or disk is full" in warned[0], warned
    with sqlite3.connect(default_cache_path()) as conn:
        kept = conn.execute("SELECT COUNT(*) FROM descriptions").fetchone()[0]
    assert 0 < kept < 60  # the frames stored before the disk filled stay for the next run


def test_a_cache_that_cannot_be_written_still_answers(video, monkeypatch, caplog):
    """A cache file that can be read but not written (another user's, read-only, in a folder that can): the frames
    are described, nothing is stored, one warning."""
    fresh = [d.text for d in describe(video, cache=False).descriptions]
    describe(video, num_frames=2)  # the cache exists
    real = DescriptionCache._setup

    def read_only(conn):
        real(conn)
        conn.execute("PRAGMA query_only=1")  # writes fail as on a read-only file: "attempt to write a readonly ..."

    monkeypatch.setattr(DescriptionCache, "_setup", staticmethod(read_only))
    with caplog.at_level(logging.WARNING):
        result = describe(video)  # HEAD: sqlite3.OperationalError
    assert [d.text for d in result.descriptions] == fresh
    warned = _warnings(caplog)
    assert len(warned) == 1 and "attempt to write a readonly database" in warned[0], warned


def test_a_full_named_cache_is_a_typed_error_not_an_internal_one(tmp_path, monkeypatch, capsys):
    long = render_toy_videos(tmp_path / "long", ["v"], n_frames=600, fps=10.0) / "v.mp4"
    _full_after_open(monkeypatch)
    assert cli.main(["describe", str(long), "--cache", str(tmp_path / "mine.sqlite")]) == 1
    err = capsys.readouterr().err
    assert "vidground: error: the description cache" in err and "database or disk is full" in err, err
    assert "--no-cache" in err


@pytest.fixture
def homeless(monkeypatch):
    """No $HOME, no $XDG_CACHE_HOME and no passwd entry for this user (docker run --user 1234)."""
    for name in ("HOME", "XDG_CACHE_HOME", "VIDGROUND_CACHE", "VIDGROUND_EMBEDDING_CACHE"):
        monkeypatch.delenv(name, raising=False)

    def no_entry(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr("pwd.getpwuid", no_entry)


def test_no_home_directory_leaves_the_default_caches_off_with_a_warning(video, homeless, caplog, capsys):
    from temporal_reasoner.embedding_store import default_store_path

    with pytest.raises(NoCacheFolderError, match=r"set \$VIDGROUND_CACHE"):  # HEAD: RuntimeError
        default_cache_path()
    with caplog.at_level(logging.WARNING):
        assert len(describe(video).descriptions) == 3  # HEAD: RuntimeError: Could not determine home directory
        assert default_store_path() is None  # HEAD: RuntimeError (the embedding reasoner's cache)
    assert any("no folder for vidground's caches" in m for m in _warnings(caplog))
    assert any("no embedding cache" in r.getMessage() for r in caplog.records)
    assert cli.main(["describe", str(video)]) == 0
    assert "internal error" not in capsys.readouterr().err


def test_no_home_directory_says_nothing_was_kept_on_an_interrupt(video, homeless, monkeypatch, capsys):
    from frame_describer.classical import ClassicalDescriber

    real = ClassicalDescriber.describe

    def stopped(self, frames, *, query=None):
        for n, d in enumerate(real(self, frames, query=query)):
            if n == 1:
                raise KeyboardInterrupt
            yield d

    monkeypatch.setattr(ClassicalDescriber, "describe", stopped)
    assert cli.main(["describe", str(video)]) == 130
    err = capsys.readouterr().err
    assert "the default description cache could not be used, so nothing described was kept" in err, err


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def _no_sleep(monkeypatch) -> list[float]:
    """``time.sleep`` in the cache's waits, recorded and skipped: a test asserts how often it waited, not for how long."""
    slept: list[float] = []
    monkeypatch.setattr("frame_describer.cache.time.sleep", slept.append)
    return slept


def test_a_claim_left_by_a_killed_process_on_this_host_is_taken_over_at_once(tmp_path, monkeypatch):
    """A run killed while describing (kill -9, the OOM killer) left its claims for 180 s: the next run waited that
    long, silently, before describing the frame itself."""
    path = tmp_path / "c.sqlite"
    describer = FakeDescriber()
    cached = CachedDescriber(describer, DescriptionCache(path), fingerprint="fp")
    code = (f"from frame_describer.cache import DescriptionCache; "
            f"assert DescriptionCache({str(path)!r}).claim('fp', {cached.key!r}, 0.0, 'killed run', 3600) is None")
    subprocess.run([sys.executable, "-c", code], check=True)  # claims for an hour, then is gone
    slept = _no_sleep(monkeypatch)
    assert [d.t for d in cached.describe(make_frames([0.0, 1.0]))] == [0.0, 1.0]
    assert describer.calls == 2 and cached.waited == 0
    assert slept == []  # HEAD: polled until the hour-long claim lapsed


def test_a_live_claim_is_waited_for_and_said_once(tmp_path, monkeypatch, caplog):
    cache = DescriptionCache(tmp_path / "c.sqlite")
    describer = FakeDescriber()
    cached = CachedDescriber(describer, cache, fingerprint="fp")
    other = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:  # a claim of a live process of this host (written as it writes them): waited for
        cache._connect().execute("INSERT INTO claims VALUES ('fp', ?, ?, ?, ?)",
                                 (cached.key, 0, f"{socket.gethostname()}\t{other.pid}\tanother run", 4e9))
        cache._connect().execute("INSERT INTO claims VALUES ('fp', ?, ?, ?, ?)",
                                 (cached.key, 1000, f"{socket.gethostname()}\t{other.pid}\tanother run", 4e9))
        assert cache.claim("fp", cached.key, 0.0, "me", 60) == "another run"
        slept: list[float] = []

        def sleep(seconds):  # the other run stores its two descriptions after two polls
            slept.append(seconds)
            if len(slept) == 2:
                cache.store("fp", cached.key, list(FakeDescriber().describe(make_frames([0.0, 1.0]))))

        monkeypatch.setattr("frame_describer.cache.time.sleep", sleep)
        with caplog.at_level(logging.WARNING):
            out = list(cached.describe(make_frames([0.0, 1.0, 2.0])))
    finally:
        other.kill()
        other.wait()
    assert [d.t for d in out] == [0.0, 1.0, 2.0] and describer.calls == 1 and cached.saved == 2 and len(slept) == 2
    said = [r.getMessage() for r in caplog.records if "waiting for another vidground run" in r.getMessage()]
    assert len(said) == 1, said  # HEAD: nothing said
    assert f"process {other.pid} on {socket.gethostname()}" in said[0] and "--no-cache" in said[0]


def test_the_demo_keeps_nothing_in_the_default_cache():
    from _helpers_eval import FakeReasoner
    from pipelines.demo import run_demo

    report = run_demo(reasoner=FakeReasoner())
    assert report["frames"] > 0
    assert not default_cache_path().exists()  # HEAD: its temporary video's descriptions, kept


def test_export_tuning_data_reads_the_default_cache(video, tmp_path, capsys):
    describe(video)  # cv's descriptions in the default cache
    rc = cli.main(["export-tuning-data", "--videos", str(video), "--out", str(tmp_path / "o")])
    out = capsys.readouterr()
    assert rc == 0, out.err  # HEAD: "nothing to export" (only $VIDGROUND_CACHE was read)
    assert "wrote 3 records from 1 video(s)" in out.out and "describers: cv (3)" in out.out


def test_eval_refuses_cache_with_no_cache(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:  # HEAD: ran with no cache
        cli.main(["eval", "qvhighlights", "--out", str(tmp_path / "run"), "--cache", str(tmp_path / "c.sqlite"),
                  "--no-cache"])
    assert info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_events_eval_stops_on_an_unusable_default_cache_as_a_grounding_eval_does(video, tmp_path, monkeypatch,
                                                                                 capsys):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    (tmp_path / "refs.json").write_text(json.dumps({"v": {"duration": 3.0, "timestamps": [[0, 3]],
                                                          "sentences": ["a count"]}}))
    (tmp_path / "data").mkdir()
    rc = cli.main(["eval", "activitynet-events", "--data-root", str(tmp_path / "data"), "--references",
                   str(tmp_path / "refs.json"), "--videos", str(video.parent), "--reasoner", "fake-reasoner",
                   "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and f"cache path {default_cache_path()}" in err, err  # HEAD: a warning, and the run went on
