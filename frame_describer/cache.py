"""A persistent cache of query-agnostic frame descriptions (SQLite, WAL mode).

A description is keyed by

* the video's **content fingerprint** (:func:`video_fingerprint`: its size plus sampled
  bytes, so a renamed or copied file still hits and a re-encoded one does not),
* the frame's **time** (milliseconds),
* a **settings key** (:func:`settings_key`): the describer's name and ``settings()`` (which
  carry the model, the prompt and its hash) plus any sampling settings that change the image.

Each frame of each video is then described once across all queries and all later runs.
The cache is safe to share between threads (one connection per thread) and processes
(SQLite's WAL mode and a busy timeout); writes are idempotent (``INSERT OR IGNORE``).

Two ways to use it::

    cache = DescriptionCache("~/.cache/vidground/descriptions.sqlite")
    # 1. wrap a describer: hits are answered from the cache, misses go to the model and are stored
    describer = CachedDescriber(get_describer("cv"), cache, video_path)
    # 2. low level
    hits = cache.lookup(fp, key, times)         # {t: FrameDescription}
    cache.store(fp, key, descriptions)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import sqlite3
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from vidground.errors import ConfigurationError, VidgroundError
from vidground.files import _alive, check_database_path, user_cache_dir, video_fingerprint
from vidground.redaction import redact
from vidground.transactions import run_in_transaction
from vidground.types import DEFAULT_MAX_SIDE, Frame, FrameDescription, Usage

from .base import leftovers

log = logging.getLogger(__name__)
T = TypeVar("T")

#: 2: the settings table holds no secrets (rows stored by version 1 are redacted when a cache is opened);
#: 3: one sampling plan per path and sampling settings (the plans of version 2, keyed by the file's
#: times too, piled up a row per touch: they are dropped when a cache is opened)
SCHEMA_VERSION = 3

#: part of every sampling plan's key: bump it whenever what :func:`sampling_plan` keeps changes meaning
#: (``planned_times``/``probe_video`` pick other frame times or another duration), so no cache serves a
#: plan made by the code before
PLAN_VERSION = 2  # 2: num_frames spread over the video's real length and that length kept (VideoInfo.extent)


def default_cache_path() -> Path:
    """``$VIDGROUND_CACHE``, else ``$XDG_CACHE_HOME/vidground/descriptions.sqlite`` (``~/.cache`` by default): the
    description cache of an eval, and of every other command and session not told otherwise. A
    :class:`~vidground.errors.NoCacheFolderError` when there is no home directory to put it in (a session goes on
    without it, an eval stops)."""
    if os.environ.get("VIDGROUND_CACHE"):
        return Path(os.environ["VIDGROUND_CACHE"]).expanduser()
    return user_cache_dir("VIDGROUND_CACHE") / "vidground" / "descriptions.sqlite"


_unusable_defaults: set[str] = set()  # default caches this process could not open or use (each is said once)
_unusable_lock = threading.Lock()


def default_cache_failed(path: Path | None, reason: Any) -> None:
    """Say (a warning, once per process and path) that the default description cache at ``path`` (``None``: there is
    no folder for it) cannot be used, and why: nobody asked for it, so the command goes on without it."""
    with _unusable_lock:
        if str(path) in _unusable_defaults:
            return
        _unusable_defaults.add(str(path))
    log.warning("the default description cache cannot be used (%s): going on without it, so nothing described is "
                "kept for the next run (--cache FILE or $VIDGROUND_CACHE names another file, --no-cache says you want "
                "none)", reason)


def default_cache_unusable(path: Path | None) -> bool:
    """Whether this process found the default description cache at ``path`` unusable (and went on without it)."""
    return str(path) in _unusable_defaults


#: what to do about a damaged cache file (SQLite says it is not a database, or malformed; a row that cannot be read)
DAMAGED = "the file is damaged: delete it (safe while no vidground process uses it)"
#: the other ways out of a cache the user named that fails
INSTEAD = "another file (--cache FILE, cache=) or none (--no-cache, cache=False)"


def _plan_payload(text: str) -> dict[str, Any]:
    """A stored sampling plan, read: ``ValueError`` unless it holds frame times and a duration."""
    plan = json.loads(text)
    if not isinstance(plan, dict) or not isinstance(plan.get("times"), list) or "duration" not in plan:
        raise ValueError("not a sampling plan")
    return plan


def _side_payload(side: Any) -> int:
    """A kept frame size (:meth:`DescriptionCache.longest_side`), read: ``ValueError`` unless a positive integer."""
    if isinstance(side, bool) or not isinstance(side, int) or side < 1:
        raise ValueError(f"not a frame size: {side!r}")
    return side


def _damaged(exc: BaseException) -> bool:
    """Whether SQLite's error says the file itself is damaged (not locked, full or read-only)."""
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)


class UnkeyableSettings(ConfigurationError):
    """A describer's settings (or the options it was built with) hold a value that is not JSON data (an ``object()``,
    a function, a client): its text names the object's address, another each run, so no key made of it is found
    again. ``what`` names the value (``settings()['fn']``)."""

    def __init__(self, what: str, value: Any):
        self.what = what
        super().__init__(f"{what} is {type(value).__name__} {value!r:.60}, not JSON data (str, number, bool, None, "
                         "list, dict, set, a numpy value): it cannot key a description cache")


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def key_data(value: Any, what: str = "settings()") -> Any:
    """``value`` as the JSON data a cache key is made of, the same whatever the order a set was built in (sorted) or
    the run (no memory address): numpy scalars and arrays as Python numbers and lists, a set as a sorted list; any
    other value by its text (a ``Path``), as keys always took it, unless that text holds a memory address (an
    ``object()``, a function): then an :class:`UnkeyableSettings`, since such a key would never be found again."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, np.generic):
        return key_data(value.item(), what)
    if isinstance(value, np.ndarray):
        return key_data(value.tolist(), what)
    if isinstance(value, dict):
        return {str(k): key_data(v, f"{what}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [key_data(v, f"{what}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        items = [key_data(v, f"{what} (a set)") for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    text = str(value)
    if _ADDRESS.search(text):
        raise UnkeyableSettings(what, value)
    return text


def settings_key(describer: Any, extra: dict[str, Any] | None = None) -> str:
    """A stable key for everything that changes a description: the describer's name and
    ``settings()`` (model, prompt hash, ...) plus ``extra`` (e.g. ``{"max_side": 512}``), as :func:`key_data` takes
    them (an :class:`UnkeyableSettings` for a value that would make another key each run)."""
    name = getattr(describer, "name", type(describer).__name__)
    payload = {"describer": key_data(name, "name"),
               "settings": key_data(describer.settings() if hasattr(describer, "settings") else {}),
               "extra": key_data(extra or {}, "the cache key's extra")}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def image_max_side(max_side: int | None, own: int | None, longest: int | None) -> int | None:
    """The ``max_side`` a description cache keys, for the image a describer is given: frames sampled at ``max_side``
    (``None``: as decoded), shrunk again to ``own`` by a describer that bounds them itself (``image_max_side``), of a
    video whose frames' longest side is ``longest`` (``None`` when unknown: ``max_side`` as given). A bound the frames
    are not over changes nothing about the image, so every such setting keys alike, as the default 512 does for a
    video of at most 512 px (the keys of existing caches stay): ``max(longest, DEFAULT_MAX_SIDE)``; a bound that
    shrinks them keys by its value."""
    bounds = [b for b in (max_side, own) if b is not None]
    bound = min(bounds) if bounds else None
    if longest is None:
        return max_side if own is None else bound
    if bound is None or bound >= longest:
        return max(longest, DEFAULT_MAX_SIDE)
    return bound


def _settings_json(settings: Any) -> str:
    """What the settings table keeps of a key's settings: redacted, since a third-party describer's
    ``settings()`` may hold its API key, a token or a URL with a key in its query string (the settings
    key itself is a hash, which keeps two keys' descriptions apart without storing either)."""
    return json.dumps(redact(json.loads(json.dumps(settings, default=str))), sort_keys=True, default=str)


_stored = 0  # descriptions stored (new rows) by every cache of this process
_stored_lock = threading.Lock()


_waits: set[tuple[Path, str | None, Any]] = set()  # the claim holders this process said it waits for
_waits_lock = threading.Lock()


def stored_in_process() -> int:
    """How many new descriptions every :class:`DescriptionCache` of this process has stored so far (a command
    compares it with its value at the start to say how many descriptions an interrupted run kept)."""
    return _stored


def _ms(t: float) -> int:
    return int(round(float(t) * 1000))


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _start_time(pid: int | str) -> str:
    """When process ``pid`` started (clock ticks after boot, field 22 of ``/proc/PID/stat``), ``""`` when it is
    not there or there is no ``/proc``: a pid and its start time name one process of a boot (a pid is reused)."""
    stat_line = _read(f"/proc/{pid}/stat")
    fields = stat_line.rsplit(")", 1)[-1].split() if stat_line else []
    return fields[19] if len(fields) > 19 else ""


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


_me: tuple[int, str] | None = None  # (pid, identity) of this process, computed once per pid (a forked child anew)


def _identity() -> str:
    """This process as a claim records it beyond host and pid: ``@BOOT/PIDNS/START`` (the boot id, the pid
    namespace's inode and the start time; each empty where the system does not say)."""
    global _me
    pid = os.getpid()
    if _me is None or _me[0] != pid:
        _me = (pid, f"@{_read('/proc/sys/kernel/random/boot_id')}/{_pid_namespace()}/{_start_time('self')}")
    return _me[1]


_live_owners: set[str] = set()  # the owners this process claims frames for and has not released (its live streams)
_live_lock = threading.Lock()


def _claimant(owner: str) -> str:
    """A claim's owner as stored: this host, this process's id, its :func:`_identity` and ``owner``, tab-separated."""
    return f"{socket.gethostname()}\t{os.getpid()}\t{_identity()}\t{owner}"


def _parse_claim(stored: str) -> tuple[str | None, int | None, tuple[str, str, str] | None, str]:
    """``(host, pid, (boot, pidns, start), owner)`` of a stored claim owner: host and pid ``None`` for one stored
    without them (before they were recorded), the identity ``None`` for one stored without it."""
    parts = str(stored).split("\t", 3)
    if len(parts) == 4 and parts[1].isdigit() and parts[2].startswith("@") and parts[2].count("/") == 2:
        boot, ns, start = parts[2][1:].split("/")
        return parts[0], int(parts[1]), (boot, ns, start), parts[3]
    parts = str(stored).split("\t", 2)
    if len(parts) == 3 and parts[1].isdigit():
        return parts[0], int(parts[1]), None, parts[2]
    return None, None, None, str(stored)


def _this_process(stored: str) -> bool:
    """Whether the claim was made by this very process (not by an earlier one that had its host and pid)."""
    host, pid, identity, _ = _parse_claim(stored)
    return host == socket.gethostname() and pid == os.getpid() and identity is not None \
        and "@" + "/".join(identity) == _identity()


def _gone(stored: str) -> bool:
    """Whether the claim's owner is shown to be gone, so its claim need not wait out its time:

    * a claim of this very process whose stream has ended (its owner is not among :data:`_live_owners`);
    * one of this host, boot and pid made by a process that started before this one: an earlier life of this pid
      (a container restarted by Docker or Kubernetes keeps its hostname and gets pid 1 again after a kill -9 or
      the OOM killer; a claim of the pid stored without boot and start time, by an earlier version, too);
    * one of another pid of this boot and pid namespace that no longer runs, or now names a process started at
      another time (a reused pid).

    Anything else lapses at its time: another host or boot (another machine with this hostname), another pid
    namespace (a container with this hostname: its pids cannot be checked here), a claim stored without host and
    pid, or with them but no boot and start time for another pid. One risk is left: a live process of another pid
    namespace with this hostname and pid that started before this one is taken for an earlier life (both describe
    the frame)."""
    host, pid, identity, owner = _parse_claim(stored)
    if host != socket.gethostname() or pid is None:
        return False
    boot, ns, start = _identity()[1:].split("/")
    if identity is None:
        return pid == os.getpid()
    if identity[0] != boot:
        return False
    if pid == os.getpid():
        if identity == (boot, ns, start):
            with _live_lock:
                return owner not in _live_owners
        return identity[2].isdigit() and start.isdigit() and int(identity[2]) < int(start)
    if identity[1] != ns:
        return False
    started = _start_time(pid) if identity[2] else ""
    if started:  # the pid runs: the owner if it started when the owner did, else a process that reused its pid
        return started != identity[2]
    return not _alive(pid)  # no /proc, or another user's process hidden there (hidepid): kill(pid, 0) says


class DescriptionCache:
    """The SQLite description cache. ``hits`` and ``misses`` count frames looked up by this object.

    A cache that fails once open (a full disk, a read-only file, a damaged one: SQLite or OS errors) raises a
    :class:`ConfigurationError` naming the file; an ``optional`` one (the default cache, which nobody asked for)
    instead warns once and goes on as an empty cache that keeps nothing (``broken`` says why): a command is never
    stopped, and nothing it described lost, by a cache it did not ask for."""

    def __init__(self, path: str | Path, *, timeout: float = 60.0, optional: bool = False):
        self.path = Path(path).expanduser()
        check_database_path(self.path, "cache path")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # /proc/1/foo/c.sqlite, a file in the folder's place, no permission
            raise ConfigurationError(f"cannot make the folder of the description cache {self.path}: "
                                     f"{exc.strerror or exc}; give {INSTEAD}") from None
        self.timeout = timeout
        self.optional = optional
        self.broken: str | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[tuple[int, sqlite3.Connection]] = []  # (pid, connection) of every thread, for close()
        self.hits = 0
        self.misses = 0
        self.stored = 0
        self._unreadable: set[tuple[str, str, int]] = set()  # descriptions stored unreadable: replaced when stored
        self._said_unreadable = False
        try:
            self._connect()  # create the schema now, so errors surface here
        except sqlite3.DatabaseError as exc:
            remedy = "" if not _damaged(exc) else f"; {DAMAGED}" if optional else f"; {DAMAGED}, or give {INSTEAD}"
            raise ConfigurationError(f"cannot open the description cache {self.path}: {exc}{remedy}") from None

    # connections: one per thread and per process (a forked child must not reuse its parent's)
    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
        # Switching the journal mode and creating the schema take locks for which SQLite does not
        # always wait (a second connection opening at the same moment saw "database is locked"):
        # one thread at a time here, and a bounded retry for other processes.
        try:
            with self._lock:
                self._retry_locked(lambda: self._setup(conn))
                self._open.append((os.getpid(), conn))
        except BaseException:
            conn.close()
            raise
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @staticmethod
    def _setup(conn: sqlite3.Connection) -> None:
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("""CREATE TABLE IF NOT EXISTS descriptions (
            fingerprint TEXT NOT NULL, settings_key TEXT NOT NULL, t_ms INTEGER NOT NULL,
            payload TEXT NOT NULL, created REAL NOT NULL DEFAULT (julianday('now')),
            PRIMARY KEY (fingerprint, settings_key, t_ms)) WITHOUT ROWID""")
        conn.execute("CREATE TABLE IF NOT EXISTS settings (settings_key TEXT PRIMARY KEY, payload TEXT NOT NULL)")
        # a frame someone is describing now (another process, thread or run): others wait for it
        # instead of paying for it twice; a claim ends when the description is stored or at ``until``
        conn.execute("""CREATE TABLE IF NOT EXISTS claims (
            fingerprint TEXT NOT NULL, settings_key TEXT NOT NULL, t_ms INTEGER NOT NULL,
            owner TEXT NOT NULL, until REAL NOT NULL,
            PRIMARY KEY (fingerprint, settings_key, t_ms)) WITHOUT ROWID""")
        # the frame times a sampling picks from a video (and its duration), so a warm run need not read
        # the container's packets; one row per path and sampling settings, the newest kept
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version < 3:
            conn.execute("DROP TABLE IF EXISTS plans")
        conn.execute("""CREATE TABLE IF NOT EXISTS plans (
            plan_key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, payload TEXT NOT NULL,
            stored REAL NOT NULL DEFAULT 0) WITHOUT ROWID""")
        conn.execute("CREATE INDEX IF NOT EXISTS plans_by_age ON plans (stored)")
        # the longest side of a video's frames, by content: what a --max-side does to its frames (CachedDescriber)
        conn.execute("CREATE TABLE IF NOT EXISTS frame_sizes (fingerprint TEXT PRIMARY KEY, "
                     "longest_side INTEGER NOT NULL) WITHOUT ROWID")
        if version < 2:
            DescriptionCache._redact_stored_settings(conn)
        if version != SCHEMA_VERSION:
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @staticmethod
    def _redact_stored_settings(conn: sqlite3.Connection) -> None:
        """Rewrite settings rows stored before they were redacted (a describer's key in plain text). A row that is
        not JSON is left as it is: reading it later is a damaged row like any other (a miss in the default cache,
        a ConfigurationError naming a cache the user named), not a ValueError from opening the file."""
        def work() -> None:
            for key, payload in conn.execute("SELECT settings_key, payload FROM settings").fetchall():
                try:
                    clean = _settings_json(json.loads(payload))
                except (ValueError, TypeError):
                    continue
                if clean != payload:
                    conn.execute("UPDATE settings SET payload=? WHERE settings_key=?", (clean, key))

        run_in_transaction(conn, work)

    def _retry_locked(self, work: Any) -> Any:
        deadline = time.monotonic() + self.timeout
        delay = 0.01
        while True:
            try:
                return work()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def _guarded(self, doing: str, work: Callable[[], T], failed: T) -> T:
        """``work()``; when SQLite or the OS fails in it (a full disk, a read-only or damaged file), a
        :class:`ConfigurationError` naming the file and what it was ``doing``, or, for an ``optional`` cache, one
        warning per process and ``failed`` from then on (the cache is off: every lookup a miss, nothing stored)."""
        if self.broken is not None:
            return failed
        try:
            return work()
        except (sqlite3.Error, OSError) as exc:
            reason = f"{self.path}: {doing} failed: {' '.join(str(exc).split()) or type(exc).__name__}"
            if _damaged(exc):
                reason += f"; {DAMAGED}"
            if not self.optional:
                raise ConfigurationError(f"the description cache {reason}{', or' if _damaged(exc) else ';'} give "
                                         f"{INSTEAD}") from exc
            with self._lock:
                first = self.broken is None
                self.broken = reason
            if first:
                default_cache_failed(self.path, reason)
            return failed

    def lookup(self, fingerprint: str, key: str, times: Sequence[float], *,
               also: Sequence[str] = ()) -> dict[float, FrameDescription]:
        """Cached descriptions for the given frame times (absent times are misses); a time ``key`` lacks is looked
        for under the keys in ``also`` in turn (ones an older vidground stored the same descriptions under: read,
        never written, so a read-only cache reads them and nothing is copied).

        A hit comes back with ``usage=Usage(cached=1)``: it cost nothing this time.
        """
        wanted = {_ms(t): t for t in times}

        def work() -> dict[float, FrameDescription]:
            found: dict[float, FrameDescription] = {}
            conn = self._connect()
            for k in (key, *also):
                ms = [m for m in wanted if wanted[m] not in found]
                for i in range(0, len(ms), 500):
                    part = ms[i:i + 500]
                    rows = conn.execute(
                        f"SELECT t_ms, payload FROM descriptions WHERE fingerprint=? AND settings_key=? "
                        f"AND t_ms IN ({','.join('?' * len(part))})", (fingerprint, k, *part)).fetchall()
                    for t_ms, payload in rows:
                        d = self._parse(payload, FrameDescription.model_validate_json,
                                        f"the description of the frame at {t_ms / 1000:g} s")
                        if d is None or not d.text:  # a miss: described again, and the row replaced when that is
                            if k == key:  # stored (a description with no text was kept before they were refused)
                                with self._lock:
                                    self._unreadable.add((fingerprint, key, t_ms))
                            continue
                        found[wanted[t_ms]] = d.model_copy(update={"t": wanted[t_ms], "usage": Usage(cached=1)})
                if len(found) == len(wanted):
                    break
            return found

        none: dict[float, FrameDescription] = {}
        found = self._guarded("reading descriptions", work, none)
        with self._lock:
            self.hits += len(found)
            self.misses += len(wanted) - len(found)
        return found

    #: the most sampling plans kept (one per path and sampling settings); past it the oldest quarter goes
    MAX_PLANS = 4096

    def plan(self, fingerprint: str, key: str) -> dict[str, Any] | None:
        """What :meth:`store_plan` kept under ``key`` for this content, or ``None``."""
        row = self._guarded("reading a sampling plan", lambda: self._connect().execute(
            "SELECT payload FROM plans WHERE plan_key=? AND fingerprint=?", (key, fingerprint)).fetchone(), None)
        return None if row is None else self._parse(row[0], _plan_payload, "a sampling plan")

    def store_plan(self, fingerprint: str, key: str, plan: dict[str, Any]) -> None:
        """Keep ``plan`` (JSON-able: a sampling's frame times and the video's duration) for this content
        under ``key`` (a path and sampling settings: see :func:`sampling_plan`), replacing what was kept
        under it before, so a file touched, edited or replaced in place leaves one row, not one per change;
        past :attr:`MAX_PLANS` rows the oldest quarter is dropped (files long gone, settings not used)."""
        self._guarded("storing a sampling plan", lambda: self._store_plan(fingerprint, key, plan), None)

    def _store_plan(self, fingerprint: str, key: str, plan: dict[str, Any]) -> None:
        conn = self._connect()

        def work() -> None:
            conn.execute("INSERT OR REPLACE INTO plans (plan_key, fingerprint, payload, stored) VALUES (?, ?, ?, ?)",
                         (key, fingerprint, json.dumps(plan), time.time()))
            rows = conn.execute("SELECT COUNT(*) FROM plans").fetchone()[0]
            if rows > self.MAX_PLANS:
                conn.execute("DELETE FROM plans WHERE plan_key IN (SELECT plan_key FROM plans ORDER BY stored "
                             "LIMIT ?)", (rows - self.MAX_PLANS * 3 // 4,))

        self._retry_locked(lambda: run_in_transaction(conn, work))

    def longest_side(self, fingerprint: str, video: str | Path) -> int | None:
        """The longest side of the frames of the video ``fingerprint`` names (upright), kept from an earlier look, else
        read from ``video`` (one frame decoded) and kept; ``None`` when the video cannot be read."""
        row = self._guarded("reading a frame size", lambda: self._connect().execute(
            "SELECT longest_side FROM frame_sizes WHERE fingerprint=?", (fingerprint,)).fetchone(), None)
        side = self._parse(row[0], _side_payload, "a frame size") if row is not None else None
        if side is None:
            from .sampling import probe_video

            try:
                info = probe_video(Path(video))
            except VidgroundError:
                return None
            side = self.keep_side(fingerprint, info)
        return side

    def keep_side(self, fingerprint: str, info: Any) -> int:
        """Keep the longest side of a probed video's frames (:meth:`longest_side`); returns it."""
        side = max(int(info.width), int(info.height))
        self._guarded("storing a frame size", lambda: self._retry_locked(lambda: self._connect().execute(
            "INSERT OR REPLACE INTO frame_sizes VALUES (?, ?)", (fingerprint, side))), None)
        return side

    def entries(self, fingerprint: str) -> list[tuple[str, dict[str, Any] | None, FrameDescription]]:
        """Every description cached for one video, by any describer: ``(settings key, what the key stands
        for - describer, settings, extra - or None when it was not recorded, description)``, in time order."""
        return self._guarded("reading descriptions", lambda: self._entries(fingerprint), [])

    def _entries(self, fingerprint: str) -> list[tuple[str, dict[str, Any] | None, FrameDescription]]:
        conn = self._connect()
        settings = {k: self._parse(v, json.loads, "a describer's settings") for k, v in conn.execute(
            "SELECT settings_key, payload FROM settings WHERE settings_key IN "
            "(SELECT DISTINCT settings_key FROM descriptions WHERE fingerprint=?)", (fingerprint,))}
        rows = conn.execute("SELECT settings_key, t_ms, payload FROM descriptions WHERE fingerprint=? "
                            "ORDER BY settings_key, t_ms", (fingerprint,)).fetchall()
        out = [(key, settings.get(key), d) for key, t_ms, payload in rows if (d := self._parse(
            payload, FrameDescription.model_validate_json, f"the description of the frame at {t_ms / 1000:g} s"))]
        return sorted(out, key=lambda e: (e[2].t, e[0]))

    def _parse(self, payload: Any, parse: Callable[[Any], T], what: str) -> T | None:
        """``parse(payload)`` of a stored row; when it cannot be read (written by something else, or damaged): for a
        cache the user named a :class:`ConfigurationError` naming the file, for an ``optional`` one ``None`` (a
        miss, as though the row were not there) and a warning, once per cache."""
        try:
            return parse(payload)
        except (ValueError, TypeError) as exc:
            reason = f"{self.path}: {what} stored there cannot be read ({' '.join(str(exc).split())[:160]})"
        if not self.optional:
            raise ConfigurationError(f"the description cache {reason}; {DAMAGED}, or give {INSTEAD}")
        with self._lock:
            said, self._said_unreadable = self._said_unreadable, True
        if not said:
            log.warning("the default description cache %s: taken as missing (a description is made again and "
                        "replaces it)", reason)
        return None

    def store(self, fingerprint: str, key: str, descriptions: Iterable[FrameDescription],
              settings: dict[str, Any] | None = None) -> int:
        """Store descriptions (their usage is not stored); returns how many rows were new. A description with no text
        (a reply refused by a content filter, or empty) is not stored: a later run asks for it again."""
        rows = [(fingerprint, key, _ms(d.t), d.model_dump_json(exclude={"usage"})) for d in descriptions if d.text]
        if not rows:
            return 0
        return self._guarded("storing descriptions", lambda: self._store(rows, key, settings), 0)

    def _store(self, rows: list[tuple[str, str, int, str]], key: str, settings: dict[str, Any] | None) -> int:
        conn = self._connect()

        def work() -> int:
            before = conn.total_changes
            with self._lock:  # a row found unreadable is replaced; any other is kept as the first run stored it
                bad = {r[:3] for r in rows} & self._unreadable
            conn.executemany("INSERT OR IGNORE INTO descriptions (fingerprint, settings_key, t_ms, payload) "
                             "VALUES (?, ?, ?, ?)", [r for r in rows if r[:3] not in bad])
            conn.executemany("INSERT OR REPLACE INTO descriptions (fingerprint, settings_key, t_ms, payload) "
                             "VALUES (?, ?, ?, ?)", [r for r in rows if r[:3] in bad])
            new = conn.total_changes - before
            if settings is not None:
                conn.execute("INSERT OR IGNORE INTO settings VALUES (?, ?)", (key, _settings_json(settings)))
            conn.executemany("DELETE FROM claims WHERE fingerprint=? AND settings_key=? AND t_ms=?",
                             [r[:3] for r in rows])
            return new

        # counted once the COMMIT took, an interrupt just after it included: the rows are in
        return run_in_transaction(conn, work, on_commit=self._count)

    def _count(self, new: int) -> None:
        global _stored
        with self._lock:
            self.stored += new
        with _stored_lock:
            _stored += new

    def claim(self, fingerprint: str, key: str, t: float, owner: str, ttl: float) -> str | None:
        """Claim the frame at ``t`` for ``owner`` for ``ttl`` seconds: ``None`` when the claim is ours (new,
        renewed, or taken over from an expired one, or from an owner shown to be gone (:func:`_gone`): a run killed
        by ``kill -9`` or the OOM killer held the next one up for the whole ``ttl``), else the live owner that holds
        it. The claim records this process's host, pid, boot id, pid namespace and start time with ``owner``
        (:meth:`holder`); this process holds ``owner``'s claims live until :meth:`release` drops them."""
        mine = _claimant(owner)
        with _live_lock:
            _live_owners.add(owner)

        def claim() -> str | None:
            conn = self._connect()
            now = time.time()

            def work() -> str | None:
                row = conn.execute("SELECT owner, until FROM claims WHERE fingerprint=? AND settings_key=? AND t_ms=?",
                                   (fingerprint, key, _ms(t))).fetchone()
                if row is not None and row[0] != mine and row[1] > now and not _gone(row[0]):
                    return _parse_claim(row[0])[3]
                conn.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?)",
                             (fingerprint, key, _ms(t), mine, now + ttl))
                return None

            return self._retry_locked(lambda: run_in_transaction(conn, work))

        return self._guarded("claiming a frame", claim, None)

    def holder(self, fingerprint: str, key: str,
               t: float) -> tuple[str | None, int | None, str, float, bool] | None:
        """Who holds the claim on the frame at ``t``: ``(host, pid, owner, seconds left, whether this very process
        made it)`` (host and pid ``None`` for a claim made before they were recorded), or ``None`` when nobody
        does."""
        row = self._guarded("reading a claim", lambda: self._connect().execute(
            "SELECT owner, until FROM claims WHERE fingerprint=? AND settings_key=? AND t_ms=?",
            (fingerprint, key, _ms(t))).fetchone(), None)
        if row is None:
            return None
        host, pid, _, owner = _parse_claim(row[0])
        return host, pid, owner, max(0.0, row[1] - time.time()), _this_process(row[0])

    def release(self, fingerprint: str, key: str, owner: str) -> None:
        """Drop ``owner``'s claims on this video that no description ended (a failed or stopped stream): any left
        (the cache failed here) are this process's dead ones from now on, taken over at once by its other streams."""
        try:
            self._guarded("releasing claims", lambda: self._retry_locked(lambda: self._connect().execute(
                "DELETE FROM claims WHERE fingerprint=? AND settings_key=? AND owner=?",
                (fingerprint, key, _claimant(owner)))), None)
        finally:
            with _live_lock:
                _live_owners.discard(owner)

    def count(self) -> int:
        return int(self._guarded("counting descriptions", lambda: self._connect().execute(
            "SELECT COUNT(*) FROM descriptions").fetchone()[0], 0))

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "stored": self.stored}

    def close(self) -> None:
        """Close the connections every thread of this process opened (a later use opens a new one)."""
        with self._lock:
            conns, self._open = self._open, []
            self._local = threading.local()
        for pid, conn in conns:
            if pid == os.getpid():  # a forked child leaves its parent's connections alone
                conn.close()

    def __getstate__(self) -> dict[str, Any]:  # picklable for process pools / Ray: reconnects on use
        return {"path": self.path, "timeout": self.timeout, "optional": self.optional}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], timeout=state["timeout"], optional=state.get("optional", False))

    def __repr__(self) -> str:
        return f"DescriptionCache({str(self.path)!r}, hits={self.hits}, misses={self.misses})"


def sampling_plan(cache: DescriptionCache, video: str | Path, *, with_fps: bool = False,
                  **sampling: Any) -> tuple[list[float], float] | tuple[list[float], float, float | None]:
    """The frame times ``sample_frames(video, **sampling)`` would return and the video's duration, without
    decoding a frame; ``with_fps=True`` adds the video's own rate (:attr:`VideoInfo.fps`), from which a warm run
    tells the rate it samples at (:func:`~frame_describer.sampling.rate_used`) without opening the container (a plan
    kept before the rate was, is made again once).

    Read once from the container's packets (:func:`~frame_describer.sampling.planned_times`, which
    reads every packet: a sizeable part of a warm run on a long video) and kept in ``cache`` under the
    video's path, the sampling settings and :data:`PLAN_VERSION`, with the content's fingerprint and its
    identity on disk (device, inode, size, modification and change times), so a warm run looks up its
    descriptions without opening the container; a file changed in any of these, or other settings, is
    planned afresh (and its new plan replaces the old one)."""
    video = Path(video)
    fp = key = identity = None
    try:
        st = video.stat()
        if stat.S_ISREG(st.st_mode):  # a FIFO or device is never read here: probe_video refuses it
            fp = video_fingerprint(video)
            key = json.dumps({"plan": PLAN_VERSION, "sampling": sampling, "path": str(video.resolve())}, sort_keys=True)
            identity = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    except (OSError, VidgroundError):
        fp = None  # probe_video says what is wrong with the file
    plan = cache.plan(fp, key) if fp and key else None
    if plan is None or plan.get("file") != identity or (with_fps and "video_fps" not in plan):
        from .sampling import planned_times, probe_video  # PyAV only when the container must be read

        info = probe_video(video)  # checks the file as sample_frames would
        # the real length (frames past a short claim count); a truncated file's claim, whose frames stop well short
        # of it, so the caller decodes it and says what is missing
        duration = info.duration if info.truncated_at is not None else info.extent
        plan = {"times": planned_times(video, **sampling), "duration": duration, "file": identity,
                "video_fps": info.fps}
        if fp and key:
            cache.store_plan(fp, key, plan)
            cache.keep_side(fp, info)  # the image's key needs it next (CachedDescriber): not probed again
    if with_fps:
        return plan["times"], plan["duration"], plan["video_fps"]
    return plan["times"], plan["duration"]


#: in :class:`CachedDescriber`'s queue, a cached frame sent again so the describer sees the frame before a miss
_PRIMING = object()


class CachedDescriber:
    """A describer wrapper that answers frames from a :class:`DescriptionCache`.

    Query-aware describers pass through uncached (their output depends on the query).
    ``calls`` counts frames sent to the wrapped describer, ``saved`` frames answered by the
    cache (``waited`` of them after waiting for another describer that was describing them: a
    frame is claimed before it is described, so two runs sharing a cache do not pay for it twice;
    a claim lapses after ``claim_ttl`` seconds, so a killed run holds nobody up for longer).
    Frames are still decoded for hits; only the model call is saved.

    ``extra``'s ``max_side`` (the sampling's) is keyed as the image the describer is given (:func:`image_max_side`):
    a ``--max-side`` the video's frames are not over, and one above the describer's own bound, key alike.

    A describer that compares each frame with the one before (``uses_previous_frame``: ``cv``) is given, before
    a missed frame that follows a cached one, that cached frame again, and its description of it is dropped
    (``primed`` counts them): so the missed frame is compared with the frame a run without the cache would have
    compared it with, and a run resumed after an interrupt, or one sharing the cache with another, stores the
    texts a fresh run would.

    ``read_also``: changes to ``extra`` that give keys an older vidground stored the same descriptions under (``cv``
    at the default rate was keyed ``fps: null``); a frame the key misses is looked for under them, read only.
    """

    #: how often to look for a description another describer is writing (seconds, growing to the second)
    POLL = (0.02, 0.5)

    def __init__(self, describer: Any, cache: DescriptionCache, video: str | Path | None = None, *,
                 fingerprint: str | None = None, extra: dict[str, Any] | None = None, claim_ttl: float = 180.0,
                 read_also: Sequence[dict[str, Any]] = ()):
        if fingerprint is None and video is None:
            raise ConfigurationError("CachedDescriber needs the video path or its fingerprint")
        self.inner = describer
        self.cache = cache
        self.fingerprint = fingerprint or video_fingerprint(video)  # type: ignore[arg-type]
        extra = dict(extra or {})
        if "max_side" in extra and video is not None:  # the image sent, not the setting (see image_max_side)
            extra["max_side"] = image_max_side(extra["max_side"], getattr(describer, "image_max_side", None),
                                               cache.longest_side(self.fingerprint, video))
        self.key = settings_key(describer, extra)
        # keys an older vidground stored these very descriptions under (``extra`` with ``read_also``'s changes): read
        # where ``key`` misses, never written (nothing is copied: a read-only cache is read as before)
        self.also = tuple(k for k in dict.fromkeys(settings_key(describer, {**extra, **e}) for e in read_also)
                          if k != self.key)
        self.extra = extra
        self.name = describer.name
        self.mode = getattr(describer, "mode", "agnostic")
        self.claim_ttl = float(claim_ttl)
        self.prime = bool(getattr(describer, "uses_previous_frame", False))
        self.calls = 0
        self.saved = 0
        self.waited = 0
        self.primed = 0

    def settings(self) -> dict[str, Any]:
        return self.inner.settings()

    def _claim_or_wait(self, t: float, owner: str) -> FrameDescription | None:
        """``None`` once the frame at ``t`` is claimed for ``owner`` (describe it), or its description when
        another describer that held the claim stored it meanwhile."""
        delay = self.POLL[0]
        while self.cache.claim(self.fingerprint, self.key, t, owner, self.claim_ttl) is not None:
            hit = self.cache.lookup(self.fingerprint, self.key, [t], also=self.also).get(t)
            if hit is not None:
                self.waited += 1
                return hit
            if delay == self.POLL[0]:
                self._say_waiting(t)
            time.sleep(delay)
            delay = min(delay * 1.5, self.POLL[1])
        # ours now; a describer that stored it just before our claim has left its description
        return self.cache.lookup(self.fingerprint, self.key, [t], also=self.also).get(t)

    def _say_waiting(self, t: float) -> None:
        """Warn, once per process and claim holder, that a frame is waited for while another run describes it (a
        wait of up to ``claim_ttl`` seconds per frame said nothing), and how not to wait."""
        held = self.cache.holder(self.fingerprint, self.key, t)
        if held is None:
            return
        host, pid, owner, left, mine = held
        with _waits_lock:
            if (self.cache.path, host, pid if pid is not None else owner) in _waits:
                return
            _waits.add((self.cache.path, host, pid if pid is not None else owner))
        who = ("another describe of this process" if mine else f"process {pid} on {host}") if pid is not None \
            else f"claim {owner!r}"
        log.warning("waiting for another vidground run (%s) that is describing this video's frames with the same "
                    "describer, from the frame at %.1f s: each description it stores is used here, and a frame it has "
                    "not described within %.0f s is described here (--no-cache or cache=False does not wait)",
                    who, t, left)

    def describe(self, frames: Iterable[Frame], *, query: str | None = None) -> Iterator[FrameDescription]:
        """Yield descriptions in frame order: hits from the cache, misses from the wrapped
        describer, which sees one uninterrupted stream of the missed frames (so a describer that
        compares consecutive frames behaves as it does uncached)."""
        if self.mode == "aware":  # nothing to store (the query is in the prompt), but closed as the other path is:
            aware = self.inner.describe(frames, query=query)  # a stream stopped early sends no more requests
            try:
                for d in aware:
                    self.calls += 1
                    yield d
            finally:
                close = getattr(aware, "close", None)
                if close is not None:
                    close()
            return
        # time order; None marks a miss, _PRIMING a cached frame sent again only to set the describer's previous frame
        pending: deque[tuple[float, Any]] = deque()

        owner = f"{os.getpid()}-{threading.get_ident()}-{id(pending)}"
        unanswered: dict[int, float] = {}  # frames sent to the describer whose description is not stored yet

        def misses() -> Iterator[Frame]:
            before: Frame | None = None  # the previous frame, when it was answered by the cache
            for f in frames:
                hit = self.cache.lookup(self.fingerprint, self.key, [f.t], also=self.also).get(f.t)
                if hit is None:
                    hit = self._claim_or_wait(f.t, owner)
                if hit is None and before is not None:  # the describer compares f with the frame before it
                    pending.append((before.t, _PRIMING))
                    self.primed += 1
                    yield before
                pending.append((f.t, hit))
                if hit is None:
                    self.calls += 1
                    unanswered[_ms(f.t)] = f.t
                    yield f
                else:
                    self.saved += 1
                before = f if hit is not None and self.prime else None

        buffer: list[FrameDescription] = []  # described (paid), not stored yet
        failed: list[VidgroundError] = []  # a store that failed (a named cache): nothing more is stored, nor sent
        ended = False  # read to its end, or stopped by that failure: no other error is on its way out
        stream = self.inner.describe(misses(), query=query)
        try:
            for d in stream:
                hits = []
                while pending and pending[0][1] is not None and pending[0][1] is not _PRIMING:
                    hits.append(pending.popleft()[1])
                if pending and pending[0][1] is _PRIMING:  # its description was cached: this one is dropped
                    pending.popleft()
                    yield from hits  # type: ignore[misc]
                    continue
                t = pending.popleft()[0] if pending else d.t
                buffer.append(d.model_copy(update={"t": t}) if d.t != t else d)
                unanswered.pop(_ms(t), None)
                if not self._flush(buffer, failed):  # at once: another run may wait for this frame (and a Ctrl-C)
                    break  # the cache failed: no more frames are sent, those in flight are waited for (paid)
                yield from hits  # type: ignore[misc]
                yield d
            else:
                while pending:
                    t, hit = pending.popleft()
                    if hit is not None and hit is not _PRIMING:
                        yield hit
            ended = True
        finally:
            try:
                close = getattr(stream, "close", None)
                if close is not None:  # a stream stopped early waits for the requests in flight
                    close()
            finally:  # what they answered is paid: kept, even when a second Ctrl-C ends the wait
                buffer.extend(d for d in leftovers(stream) if _ms(d.t) in unanswered)
                self._flush(buffer, failed)
                try:
                    self.cache.release(self.fingerprint, self.key, owner)
                except VidgroundError as exc:  # the cache failed there too: the first failure says it
                    if not failed:
                        failed.append(exc)
                if failed and not ended:  # another error or an interrupt ends the stream: it is the one raised
                    log.warning("%s; %d description(s) paid for were not kept", failed[0], len(buffer))
        if failed:  # everything described and not handed over was paid: the error carries its usage
            error = failed[0]
            paid = sum((d.usage for d in buffer if d.usage is not None), Usage())
            if not paid.is_empty():
                error.usage = paid + error.usage if isinstance(error.usage, Usage) else paid
            raise error

    def _flush(self, buffer: list[FrameDescription], failed: list[VidgroundError]) -> bool:
        """Store ``buffer`` (emptied once stored); ``False``, ``buffer`` kept, when a store failed (the first failure
        is added to ``failed``; none is tried after it, so a cache that fails once does not fail again)."""
        if failed:
            return False
        if buffer:
            try:
                self.cache.store(self.fingerprint, self.key, buffer, settings={
                    "describer": self.name, "settings": self.inner.settings(), "extra": self.extra})
            except VidgroundError as exc:
                failed.append(exc)
                return False
            buffer.clear()
        return True
