"""The default description cache never breaks or stalls a command: a cache that fails after it opened (a full disk,
a file that cannot be written, a damaged file), no home directory to keep it in, a claim left by a killed run. A
cache the user named fails loudly instead, as a typed error that names the file."""

from __future__ import annotations

import json
import logging
import os
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
    """No $HOME, no $XDG_CACHE_HOME and no passwd entry for this user (docker run --user 1234), and the process's
    say-it-once state about missing cache folders as a new process has it: a test that ran before without a home
    had said its warnings already (the no-home test failed when run after the interrupt one)."""
    from frame_describer import cache
    from temporal_reasoner import embedding_store

    monkeypatch.setattr(cache, "_unusable_defaults", set())
    monkeypatch.setattr(embedding_store, "_no_folder_said", False)
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


class _Polled(AssertionError):
    """A wait for a claim that polled more often than the test allows (the claim was not judged as it should be)."""


def _no_sleep(monkeypatch, then=None, limit: int = 20) -> list[float]:
    """``time.sleep`` in the cache's waits, recorded and skipped (``then(n)`` after the n-th): a test asserts how often
    it waited, not for how long. Past ``limit`` polls it raises, so a claim judged live that should not be fails the
    test at once instead of polling until the claim lapses (an hour of no-op sleeps)."""
    slept: list[float] = []

    def sleep(seconds):
        slept.append(seconds)
        if len(slept) > limit:
            raise _Polled(f"polled {len(slept)} times for a claim")
        if then is not None:
            then(len(slept))

    monkeypatch.setattr("frame_describer.cache.time.sleep", sleep)
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

        def stored_after_two(n):  # the other run stores its two descriptions after two polls
            if n == 2:
                cache.store("fp", cached.key, list(FakeDescriber().describe(make_frames([0.0, 1.0]))))

        slept = _no_sleep(monkeypatch, stored_after_two)
        with caplog.at_level(logging.WARNING):
            out = list(cached.describe(make_frames([0.0, 1.0, 2.0])))
    finally:
        other.kill()
        other.wait()
    assert [d.t for d in out] == [0.0, 1.0, 2.0] and describer.calls == 1 and cached.saved == 2 and len(slept) == 2
    said = [r.getMessage() for r in caplog.records if "waiting for another vidground run" in r.getMessage()]
    assert len(said) == 1, said  # HEAD: nothing said
    assert f"process {other.pid} on {socket.gethostname()}" in said[0] and "--no-cache" in said[0]


def _owner(pid: int, boot: str, ns: str, start: str, owner: str = "a stream") -> str:
    """A claim's owner as a process of this host with ``pid``, boot id, pid namespace and start time stores it."""
    return f"{socket.gethostname()}\t{pid}\t@{boot}/{ns}/{start}\t{owner}"


def _started(pid) -> str:
    """When process ``pid`` started, in clock ticks after boot (field 22 of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[19]


def _here() -> tuple[str, str, str]:
    """This process's boot id, pid namespace and start time, which its claims record (Linux: /proc)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip(), str(os.stat("/proc/self/ns/pid").st_ino), _started("self")
    except OSError:
        pytest.skip("no boot id, pid namespace or start time here (/proc)")


def _left_claims(cache, key, owner) -> None:
    """Claims on frames 0 and 1 held for an hour by ``owner`` (as stored)."""
    for t_ms in (0, 1000):
        cache._connect().execute("INSERT OR REPLACE INTO claims VALUES ('fp', ?, ?, ?, ?)", (key, t_ms, owner, 4e9))


def _describe_with_left_claims(tmp_path, monkeypatch, owner) -> tuple[CachedDescriber, FakeDescriber, list[float]]:
    """Describe frames 0, 1 and 2 after ``owner`` (stored) claimed 0 and 1 for an hour; a claim waited for is
    stored by its owner after one poll."""
    cache = DescriptionCache(tmp_path / "c.sqlite")
    describer = FakeDescriber()
    cached = CachedDescriber(describer, cache, fingerprint="fp")
    _left_claims(cache, cached.key, owner)

    def stored_by_the_owner(n):
        cache.store("fp", cached.key, list(FakeDescriber().describe(make_frames([0.0, 1.0]))))

    slept = _no_sleep(monkeypatch, stored_by_the_owner)
    assert [d.t for d in cached.describe(make_frames([0.0, 1.0, 2.0]))] == [0.0, 1.0, 2.0]
    return cached, describer, slept


@pytest.mark.parametrize("earlier", ["same pid namespace", "new pid namespace", "written before boot ids"])
def test_a_claim_left_by_an_earlier_life_of_this_pid_is_taken_over_at_once(tmp_path, monkeypatch, caplog, earlier):
    """A container restarted by Docker (--restart) or Kubernetes keeps its hostname and gets the same pid (1) again:
    the claims its killed run left looked like this process's own, and each was waited for until it lapsed (180 s),
    the warning saying "another describe of this process"."""
    boot, ns, start = _here()
    owner = {"same pid namespace": _owner(os.getpid(), boot, ns, str(int(start) - 100)),
             "new pid namespace": _owner(os.getpid(), boot, "4026500000", str(int(start) - 100)),
             "written before boot ids": f"{socket.gethostname()}\t{os.getpid()}\t{os.getpid()}-1400-1399"}[earlier]
    with caplog.at_level(logging.WARNING):
        cached, describer, slept = _describe_with_left_claims(tmp_path, monkeypatch, owner)
    assert describer.calls == 3 and cached.waited == 0 and slept == []  # HEAD: polled (until the claim lapsed)
    assert not [r for r in caplog.records if "waiting for another vidground run" in r.getMessage()]


def test_a_claim_of_this_process_is_live_only_while_its_stream_is(tmp_path, monkeypatch, caplog):
    """Another describe of this process (another thread, another session) is waited for; a claim this process left
    behind when a stream of it ended without releasing it holds nobody up."""
    from frame_describer.cache import _claimant

    cache = DescriptionCache(tmp_path / "c.sqlite")
    key = CachedDescriber(FakeDescriber(), cache, fingerprint="fp").key
    assert cache.claim("fp", key, 0.0, "a live stream", 3600) is None
    assert cache.claim("fp", key, 0.0, "me", 60) == "a live stream"
    cache.release("fp", key, "a live stream")
    _left_claims(cache, key, _claimant("an ended stream"))  # what a stream whose release failed left
    assert cache.claim("fp", key, 0.0, "me", 60) is None  # HEAD: 'an ended stream' (waited for 3600 s)
    assert cache.claim("fp", key, 1.0, "a live stream", 3600) is None
    assert cache.holder("fp", key, 1.0)[4] is True  # this very process: "another describe of this process"


def _wait_is_kept(tmp_path, monkeypatch, owner) -> None:
    cached, describer, slept = _describe_with_left_claims(tmp_path, monkeypatch, owner)
    assert describer.calls == 1 and cached.saved == 2 and len(slept) == 1  # waited once, then read what it stored


def test_a_claim_of_another_pid_namespace_or_boot_is_waited_for(tmp_path, monkeypatch):
    """A process of another pid namespace (a container with this hostname: --network host, --uts host) or another
    boot (another machine with this hostname) has pids this process cannot check: its pid being free here says
    nothing, and its claim is kept until it lapses (HEAD took it over, and both paid for the frame)."""
    boot, ns, start = _here()
    dead = _dead_pid()
    _wait_is_kept(tmp_path / "ns", monkeypatch, _owner(dead, boot, "4026500000", start))
    _wait_is_kept(tmp_path / "boot", monkeypatch, _owner(dead, "another-boot-id", ns, start))
    # a process of this pid in another namespace that started after this one is no earlier life of it
    _wait_is_kept(tmp_path / "later", monkeypatch, _owner(os.getpid(), boot, "4026500000", str(int(start) + 100)))


def test_a_claim_without_a_boot_id_or_any_owner_is_kept_until_it_lapses(tmp_path, monkeypatch):
    """Claims stored by earlier versions: with host and pid but no boot id or pid namespace (the pid may be of
    another namespace), or with no host at all: waited for until they lapse."""
    _wait_is_kept(tmp_path / "pid", monkeypatch, f"{socket.gethostname()}\t{_dead_pid()}\t1234-5-6")
    _wait_is_kept(tmp_path / "none", monkeypatch, "1234-5-6")


def test_a_claim_whose_pid_now_names_another_process_is_taken_over(tmp_path, monkeypatch):
    """The pid of a killed run's claim, reused by a process started since (kill(pid, 0) says it runs)."""
    boot, ns, start = _here()
    other = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        started = _started(other.pid)
        cached, describer, slept = _describe_with_left_claims(tmp_path, monkeypatch,
                                                              _owner(other.pid, boot, ns, str(int(started) - 1)))
        assert describer.calls == 3 and slept == []  # HEAD: waited (the pid runs)
        _wait_is_kept(tmp_path / "live", monkeypatch, _owner(other.pid, boot, ns, started))  # the owner itself
    finally:
        other.kill()
        other.wait()


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


def test_no_home_directory_gives_a_typed_error_for_the_models_folder(homeless, monkeypatch, tmp_path):
    """Where the assembled gemma GGUF goes: with no home, a NoCacheFolderError that says which setting picks
    the folder (before: Path.home()'s bare RuntimeError, "internal error" in the CLI)."""
    from vidground.models import models_dir

    monkeypatch.delenv("VIDGROUND_MODELS", raising=False)
    with pytest.raises(NoCacheFolderError, match=r"set \$VIDGROUND_MODELS"):  # HEAD: RuntimeError
        models_dir()
    monkeypatch.setenv("VIDGROUND_MODELS", str(tmp_path / "m"))
    assert models_dir() == tmp_path / "m"
