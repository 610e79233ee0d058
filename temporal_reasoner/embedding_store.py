"""An on-disk cache of sentence embeddings, keyed by the model's content and the text (SQLite, WAL mode).

Encoding captions is the cost of the offline reasoners: all-MiniLM-L6-v2 encodes a few hundred short
sentences per second on two CPU cores, so a 2-hour transcript takes about a minute and a 800-query
benchmark several. The vectors depend only on the model and the text, so they are kept on disk and
shared by every later process (each CLI call, each benchmark run, several processes at once).

- **Where**: ``$VIDGROUND_EMBEDDING_CACHE`` (a file path; ``off`` disables it), else
  ``$XDG_CACHE_HOME/vidground/embeddings.sqlite`` (``~/.cache`` by default).
- **Key**: the sha256 of :func:`model_fingerprint` of the model folder (every file's name, size and
  content, large files sampled) and the text, so a different or retrained model never reads another's
  vectors. Its first 8 bytes are the row id (one B-tree lookup), the next 8 are checked on every hit.
- **Bounded**: at most ``max_mb`` megabytes of vectors (``$VIDGROUND_EMBEDDING_CACHE_MB``, default
  1024, about 650,000 vectors of MiniLM's 384 floats; 0 turns the cache off, a negative or non-number
  value is warned about and ignored); past that the least recently used are dropped.
- **Never in the way**: a cache that cannot be opened, read or written (read-only folder, a full disk,
  a corrupt file) gives one warning and the encoder goes on without it; a query never fails because of
  it. A cache busy in another process past the 30-s timeout is a miss this time, not a failure.
- **Local disk**: SQLite's WAL mode needs the processes sharing the file on one machine; on a network
  filesystem shared by several machines point ``$VIDGROUND_EMBEDDING_CACHE`` at a local path.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from vidground.errors import ConfigurationError, NoCacheFolderError
from vidground.files import check_database_path, user_cache_dir, video_fingerprint
from vidground.transactions import run_in_transaction

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_VERSION = 2
ENV_PATH = "VIDGROUND_EMBEDDING_CACHE"
ENV_SIZE = "VIDGROUND_EMBEDDING_CACHE_MB"
DEFAULT_MAX_MB = 1024
_OFF = {"", "0", "off", "none", "false", "no"}
_CHUNK = 500  # texts per SQL statement (SQLite allows 32766 parameters; a few hundred keeps statements small)


_no_folder_said = False  # whether default_store_path() said there is no folder for the cache


def default_store_path() -> Path | None:
    """``$VIDGROUND_EMBEDDING_CACHE`` (``None`` when it says ``off``, or ``$VIDGROUND_EMBEDDING_CACHE_MB`` is 0), else the
    user's cache folder; ``None``, with one warning, when there is no such folder (no home directory): the encoder goes
    on without the cache."""
    env = os.environ.get(ENV_PATH)
    if env is not None and env.strip().lower() in _OFF:
        return None
    if _size_setting() == 0:  # room for no vector: off, as VIDGROUND_EMBEDDING_CACHE=0 is
        return None
    if env is not None:
        return Path(env).expanduser()
    try:
        return user_cache_dir(ENV_PATH) / "vidground" / "embeddings.sqlite"
    except NoCacheFolderError as exc:
        global _no_folder_said
        if not _no_folder_said:
            _no_folder_said = True
            log.warning("no embedding cache: %s; going on without it", exc)
        return None


def default_max_mb() -> float:
    """``$VIDGROUND_EMBEDDING_CACHE_MB``, else :data:`DEFAULT_MAX_MB` (0 turns the default cache off:
    :func:`default_store_path`)."""
    value = _size_setting()
    return float(DEFAULT_MAX_MB) if value is None else value


_size_said: set[str] = set()


def _size_setting() -> float | None:
    """``$VIDGROUND_EMBEDDING_CACHE_MB`` in megabytes; ``None`` when it is not set, or, with one warning, when it is not
    a number of megabytes: negative, not a number or not finite (the default is used)."""
    raw = os.environ.get(ENV_SIZE)
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if math.isfinite(value) and value >= 0:
        return value
    if raw not in _size_said:
        _size_said.add(raw)
        log.warning("ignoring %s=%r (%s); using %s MB (0 turns the cache off)", ENV_SIZE, raw,
                    "negative" if value < 0 else "not a number of megabytes", DEFAULT_MAX_MB)
    return None


def model_fingerprint(folder: str | Path) -> str:
    """A content fingerprint of a model folder: each file's relative path and content fingerprint
    (small files hashed whole, large ones by size and sampled chunks, see ``video_fingerprint``).
    Reads at most about 1 MiB per file, so it costs milliseconds."""
    folder = Path(folder)
    h = hashlib.sha256(f"vidground-model{SCHEMA_VERSION}:".encode())
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    for p in files:
        h.update(f"{p.relative_to(folder).as_posix()}\0{video_fingerprint(p)}\0".encode())
    return h.hexdigest()[:32]


def text_key(model: str, text: str) -> tuple[int, bytes]:
    """The row id (a signed 64-bit integer) and the check bytes of ``text`` under ``model``."""
    digest = hashlib.sha256(f"{model}\0{text}".encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big", signed=True), digest[8:16]


class EmbeddingStore:
    """Unit-length float32 vectors by ``(model, text)``; safe across threads (one connection, used under
    a lock: lookups are a few milliseconds) and processes (WAL, a busy timeout). Every failure degrades
    to a miss, with one warning."""

    def __init__(self, path: str | Path, *, max_mb: float | None = None, timeout: float = 30.0):
        self.path = Path(path).expanduser()
        self.timeout = float(timeout)
        self.max_bytes = int((default_max_mb() if max_mb is None else float(max_mb)) * 1024 * 1024)
        self._db_lock = threading.RLock()
        self._connection: sqlite3.Connection | None = None
        self.broken: str | None = None
        self.hits = self.misses = self.stored = self.busy = 0

    # ---------------------------------------------------------------------------------- plumbing
    def _disable(self, exc: BaseException) -> None:
        if self.broken is None:
            self.broken = f"{type(exc).__name__}: {exc}"
            log.warning("embedding cache %s is not usable (%s); going on without it (set %s=off to silence this)",
                        self.path, self.broken, ENV_PATH)

    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            check_database_path(self.path, "embedding cache")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("CREATE TABLE IF NOT EXISTS vectors (id INTEGER PRIMARY KEY, tag BLOB NOT NULL, "
                             "vec BLOB NOT NULL, used INTEGER NOT NULL)")
                conn.execute("CREATE INDEX IF NOT EXISTS vectors_used ON vectors (used)")
                # the row count, kept with every insert and eviction (count(*) reads the whole table)
                conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('rows', (SELECT count(*) FROM vectors))")
            except BaseException:
                conn.close()
                raise
            self._connection = conn
        return self._connection

    def _guarded(self, work: Callable[[sqlite3.Connection], T], default: T) -> T:
        """``work(connection)`` under the lock; a busy database is a miss this time, any other failure
        disables the cache (one warning)."""
        for attempt in range(4):
            if self.broken:
                return default
            started = time.monotonic()
            try:
                with self._db_lock:
                    return work(self._conn())
            except sqlite3.OperationalError as exc:
                if not (getattr(exc, "sqlite_errorcode", None) in (5, 6) or "locked" in str(exc) or "busy" in str(exc)):
                    self._disable(exc)
                    return default
                # SQLite answers some contention at once, without waiting out the timeout (another
                # process switching the file to WAL, say): try again shortly. Busy past the timeout:
                # another process holds the file; this time is a miss
                if attempt < 3 and time.monotonic() - started < self.timeout / 2:
                    time.sleep(0.05 * 2 ** attempt)
                    continue
                self.busy += 1
                log.debug("embedding cache %s busy: %s", self.path, exc)
                return default
            except (sqlite3.Error, OSError, ConfigurationError) as exc:  # a special file: see check_database_path
                self._disable(exc)
                return default
        return default

    def close(self) -> None:
        with self._db_lock:
            conn, self._connection = self._connection, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing never matters to the caller
                pass

    # ------------------------------------------------------------------------------------- API
    def lookup(self, model: str, texts: Sequence[str], dim: int | None = None) -> dict[str, np.ndarray]:
        """The stored vectors of those ``texts`` that have one (a vector of another length than ``dim``,
        when given, counts as missing)."""
        if self.broken or not texts:
            return {}
        ids: dict[int, tuple[bytes, str]] = {}  # row id -> (check bytes, text)
        for t in dict.fromkeys(texts):
            rid, tag = text_key(model, t)
            ids[rid] = (tag, t)
        now = time.time_ns()

        def work(conn: sqlite3.Connection) -> dict[str, np.ndarray]:
            found: dict[str, np.ndarray] = {}
            id_list = list(ids)
            for i in range(0, len(id_list), _CHUNK):
                chunk = id_list[i:i + _CHUNK]
                rows = conn.execute(f"SELECT id, tag, vec FROM vectors WHERE id IN ({','.join('?' * len(chunk))})",
                                    chunk).fetchall()
                hit = []
                for rid, tag, blob in rows:
                    want, text = ids[rid]
                    vec = np.frombuffer(blob, dtype=np.float32)
                    if bytes(tag) == want and (dim is None or len(vec) == dim):
                        found[text] = vec
                        hit.append(rid)
                if hit:  # least-recently-used bookkeeping, one statement per chunk
                    conn.execute(f"UPDATE vectors SET used = ? WHERE id IN ({','.join('?' * len(hit))})", (now, *hit))
            return found

        found = self._guarded(work, {})
        self.hits += len(found)
        self.misses += len(ids) - len(found)
        return found

    def store(self, model: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        """Keep these vectors (idempotent), then drop the least recently used past the size bound."""
        if self.broken:
            return
        now = time.time_ns()
        rows = [(*text_key(model, t), np.ascontiguousarray(v, dtype=np.float32).tobytes(), now) for t, v in items]
        if not rows:
            return

        def insert(conn: sqlite3.Connection) -> None:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO vectors (id, tag, vec, used) VALUES (?, ?, ?, ?)", rows)
            conn.execute("UPDATE meta SET value = value + ? WHERE name = 'rows'", (conn.total_changes - before,))
            # a vector's row takes about 1.4 times its bytes on disk (SQLite pages, the index on used)
            self._evict(conn, row_bytes=int(len(rows[0][2]) * 1.4) + 64)

        def count(_: None) -> None:  # once the COMMIT took, an interrupt just after it included: the rows are in
            self.stored += len(rows)

        # a Ctrl-C anywhere leaves no transaction open on this connection; one just after COMMIT is raised as the
        # KeyboardInterrupt it is (vidground.transactions.run_in_transaction)
        self._guarded(lambda conn: run_in_transaction(conn, lambda: insert(conn), on_commit=count), None)

    def _evict(self, conn: sqlite3.Connection, *, row_bytes: int) -> None:
        limit = max(1, self.max_bytes // row_bytes)
        (count,) = conn.execute("SELECT value FROM meta WHERE name = 'rows'").fetchone()
        if count > limit:
            # down to 90% of the bound at once, so that the next inserts do not each trigger an eviction
            drop = count - int(limit * 0.9)
            before = conn.total_changes
            conn.execute("DELETE FROM vectors WHERE id IN (SELECT id FROM vectors ORDER BY used LIMIT ?)", (drop,))
            conn.execute("UPDATE meta SET value = value - ? WHERE name = 'rows'", (conn.total_changes - before,))

    def __len__(self) -> int:
        return self._guarded(lambda conn: int(conn.execute("SELECT count(*) FROM vectors").fetchone()[0]), 0)
