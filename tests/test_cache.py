"""The SQLite description cache: keys, hit accounting, the describer wrapper, concurrency."""

from __future__ import annotations

import multiprocessing as mp
import pickle
import threading
from pathlib import Path

import pytest

from frame_describer.cache import SCHEMA_VERSION, CachedDescriber, DescriptionCache, settings_key, video_fingerprint
from vidground.errors import ConfigurationError, VideoDecodeError
from vidground.types import FrameDescription

from _helpers_eval import FakeDescriber, make_frames


def test_fingerprint_is_content_based_and_fast_on_big_files(tmp_path):
    a, b = tmp_path / "a.mp4", tmp_path / "copy.mkv"
    a.write_bytes(bytes(range(256)) * 100)
    b.write_bytes(a.read_bytes())
    assert video_fingerprint(a) == video_fingerprint(b)
    b.write_bytes(a.read_bytes()[:-1] + b"\x00")
    assert video_fingerprint(a) != video_fingerprint(b)
    big = tmp_path / "big.mp4"
    with big.open("wb") as fh:  # a 4 GiB sparse file: only ~1 MiB of it is read
        fh.truncate(4 * 1024**3)
    read: list[int] = []  # count the bytes read, not the time taken
    real_open = Path.open

    class Counting:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def seek(self, *a):
            return self.fh.seek(*a)

        def read(self, *a):
            data = self.fh.read(*a)
            read.append(len(data))
            return data

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "open", lambda self, *a, **kw: Counting(real_open(self, *a, **kw)))
        fp = video_fingerprint(big)
    assert sum(read) <= 1024**2 and len(read) == 16
    with big.open("r+b") as fh:  # a change inside a sampled chunk changes the fingerprint
        fh.seek(4 * 1024**3 - 10)  # inside the last sampled chunk
        fh.write(b"x")
    assert video_fingerprint(big) != fp
    with pytest.raises(VideoDecodeError, match="fingerprint"):
        video_fingerprint(tmp_path / "missing.mp4")


def test_settings_key_covers_settings_and_extra():
    k = settings_key(FakeDescriber())
    assert k == settings_key(FakeDescriber())
    assert k != settings_key(FakeDescriber(version="2"))
    assert k != settings_key(FakeDescriber(), {"max_side": 256})


def test_lookup_store_and_accounting(tmp_path):
    cache = DescriptionCache(tmp_path / "c.sqlite")
    descs = [FrameDescription(t=t, text=f"d{t}", model="m") for t in (0.0, 1.0, 2.5)]
    assert cache.lookup("fp", "k", [0.0, 1.0]) == {}
    assert cache.stats() == {"hits": 0, "misses": 2, "stored": 0}
    assert cache.store("fp", "k", descs) == 3
    assert cache.store("fp", "k", descs) == 0  # idempotent
    got = cache.lookup("fp", "k", [0.0, 1.0, 2.5, 3.0])
    assert sorted(got) == [0.0, 1.0, 2.5] and got[2.5].text == "d2.5"
    assert got[0.0].model_extra == {"model": "m"} and got[0.0].usage.cached == 1
    assert cache.stats() == {"hits": 3, "misses": 3, "stored": 3}
    assert cache.lookup("fp", "other-key", [0.0]) == {} and cache.lookup("fp2", "k", [0.0]) == {}
    assert cache.count() == 3
    again = pickle.loads(pickle.dumps(cache))  # e.g. sent to a worker process
    assert again.lookup("fp", "k", [1.0])[1.0].text == "d1.0" and again.hits == 1
    with pytest.raises(ConfigurationError, match="is a folder"):
        DescriptionCache(tmp_path)


def test_cached_describer_describes_each_frame_once(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"video bytes")
    cache = DescriptionCache(tmp_path / "c.sqlite")
    times = [0.0, 1.0, 2.0, 3.0, 4.0]
    inner = FakeDescriber()
    first = CachedDescriber(inner, cache, video)
    out1 = list(first.describe(make_frames(times)))
    assert (first.calls, first.saved, inner.calls) == (5, 0, 5)
    second = CachedDescriber(inner, cache, video)
    out2 = list(second.describe(make_frames(times)))
    assert (second.calls, second.saved, inner.calls) == (0, 5, 5)
    assert [d.text for d in out2] == [d.text for d in out1] and [d.t for d in out2] == times
    assert all(d.usage.cached == 1 and d.usage.requests == 0 for d in out2)
    # a denser sampling: only the new times go to the model, output stays in time order
    third = CachedDescriber(inner, cache, video)
    out3 = list(third.describe(make_frames([0.0, 0.5, 1.0, 1.5, 2.0])))
    assert (third.calls, third.saved) == (2, 3)
    assert [d.t for d in out3] == [0.0, 0.5, 1.0, 1.5, 2.0]
    # other settings are another key
    other = CachedDescriber(FakeDescriber(version="2"), cache, video)
    list(other.describe(make_frames(times)))
    assert other.calls == 5


def test_query_aware_describers_are_not_cached(tmp_path):
    cache = DescriptionCache(tmp_path / "c.sqlite")
    wrapped = CachedDescriber(FakeDescriber(mode="aware"), cache, fingerprint="fp")
    out = list(wrapped.describe(make_frames([0.0, 1.0]), query="a dog"))
    assert wrapped.calls == 2 and "for a dog" in out[0].text and cache.count() == 0


def test_threads_share_one_cache(tmp_path):
    cache = DescriptionCache(tmp_path / "c.sqlite")
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(20):
                cache.store("fp", "k", [FrameDescription(t=float(j), text=f"{j}")])
                cache.lookup("fp", "k", [float(j), float(j + 1)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and cache.count() == 20 and cache.stored == 20
    assert cache.hits + cache.misses == 6 * 20 * 2


def _process_writer(path: str, offset: int) -> None:
    cache = DescriptionCache(path)
    for j in range(40):
        cache.store("fp", "k", [FrameDescription(t=float(offset + j), text=str(offset + j))])


@pytest.mark.slow
def test_processes_share_one_cache(tmp_path):
    path = str(tmp_path / "c.sqlite")
    DescriptionCache(path)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_process_writer, args=(path, k * 20)) for k in range(3)]  # overlapping ranges
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert DescriptionCache(path).count() == 80  # times 0..79, each stored once



def test_a_run_opening_the_cache_from_two_threads_at_once_does_not_see_locked(tmp_path):
    """Two videos described in parallel open the new cache file at the same moment; that once failed
    one video's queries with "database is locked" (the journal-mode switch and schema set-up do not
    wait for locks), about one run in two."""
    from _helpers_eval import register_fakes, render_toy_videos, write_toy_dataset
    from pipelines.runs import RunConfig, run_eval

    register_fakes()
    for round_ in range(6):
        videos = render_toy_videos(tmp_path / f"videos{round_}", ["vid0", "vid1"])
        ds, _ = write_toy_dataset(tmp_path / f"data{round_}", n_videos=2, per_video=3, duration=3.0)
        s = run_eval(RunConfig(dataset="jsonl", dataset_path=str(ds), videos=str(videos), describer="fake",
                               reasoner="fake-reasoner", cache=str(tmp_path / f"c{round_}.sqlite")),
                     tmp_path / f"run{round_}")
        assert s.failed == 0 and s.ran == 6, round_


def test_close_closes_every_threads_connection(tmp_path):
    import sqlite3
    import threading

    cache = DescriptionCache(tmp_path / "c.sqlite")
    conns = []
    threads = [threading.Thread(target=lambda: conns.append(cache._connect())) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    cache.close()
    for conn in conns:
        with pytest.raises(sqlite3.ProgrammingError):  # closed
            conn.execute("SELECT 1")
    assert cache.count() == 0  # usable again: a new connection


class _KeyedDescriber(FakeDescriber):
    """A third-party describer that reports its credentials among its settings."""

    name = "thirdparty"

    def settings(self):
        return {**super().settings(), "api_key": "sk-live-0123456789abcdefXYZ", "token": "tok-98765-secret",
                "base_url": "https://api.example.com/v1?key=QUERYKEY4242&region=eu",
                "headers": {"Authorization": "Bearer abcdef0123456789"}}


_SECRETS = ("sk-live-0123456789abcdefXYZ", "tok-98765-secret", "QUERYKEY4242", "abcdef0123456789")


def _database_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_a_describers_secrets_never_reach_the_cache_file(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"video bytes")
    path = tmp_path / "c.sqlite"
    cache = DescriptionCache(path)
    list(CachedDescriber(_KeyedDescriber(), cache, video).describe(make_frames([0.0, 1.0])))
    (_, stored, _), *_ = cache.entries(video_fingerprint(video))
    assert stored["settings"]["api_key"] == stored["settings"]["token"] == "<redacted>"
    assert stored["settings"]["base_url"] == "https://api.example.com/v1?key=<redacted>&region=eu"
    assert stored["settings"]["headers"]["Authorization"] == "<redacted>"
    assert stored["settings"]["version"] == "1" and stored["describer"] == "thirdparty"
    cache.close()
    data = _database_bytes(path)
    assert b"QUERYKEY" not in data and not any(s.encode() in data for s in _SECRETS)
    # the key is still told apart from another one's: the settings key hashes the real settings
    again = CachedDescriber(_KeyedDescriber(), DescriptionCache(path), video)
    assert len(list(again.describe(make_frames([0.0, 1.0])))) == 2 and again.calls == 0


def test_settings_stored_in_plain_text_by_an_older_cache_are_redacted_when_it_is_opened(tmp_path):
    import json
    import sqlite3

    path = tmp_path / "c.sqlite"
    DescriptionCache(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO settings VALUES (?, ?)",
                 ("k1", json.dumps({"describer": "thirdparty", "settings": _KeyedDescriber().settings()})))
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    DescriptionCache(path).close()
    conn = sqlite3.connect(path)
    (payload,), = conn.execute("SELECT payload FROM settings WHERE settings_key='k1'").fetchall()
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    assert json.loads(payload)["settings"]["api_key"] == "<redacted>"
    assert not any(s in payload for s in _SECRETS)


def test_an_older_cache_with_a_damaged_settings_row_opens(tmp_path):
    """Opening a version-1 file whose settings row is not JSON: before, the redaction pass raised a bare
    ValueError from json (and a default cache with such a row could never be opened). Now the file opens, the
    other rows are redacted, and the damaged row is left for the reads that already treat damaged rows."""
    import json
    import sqlite3

    path = tmp_path / "c.sqlite"
    DescriptionCache(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO settings VALUES (?, ?)", ("bad", "{not json"))
    conn.execute("INSERT INTO settings VALUES (?, ?)",
                 ("k1", json.dumps({"describer": "thirdparty", "settings": _KeyedDescriber().settings()})))
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    DescriptionCache(path).close()  # HEAD: json.decoder.JSONDecodeError
    conn = sqlite3.connect(path)
    rows = dict(conn.execute("SELECT settings_key, payload FROM settings").fetchall())
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    assert rows["bad"] == "{not json" and json.loads(rows["k1"])["settings"]["api_key"] == "<redacted>"
