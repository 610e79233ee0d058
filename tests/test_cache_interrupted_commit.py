"""A Ctrl-C that lands just after the description cache's COMMIT is the KeyboardInterrupt it is, not an
OperationalError from a ROLLBACK with no transaction (a CI-style run: 'vidground: internal error: OperationalError:
cannot rollback - no transaction is active', exit 1 instead of 130); one just after BEGIN leaves no transaction
open on the connection, in every transaction the cache runs (store, store_plan, claim, the settings' redaction).
The embedding cache's store runs in the same helper (vidground.transactions.run_in_transaction) and is held to the same."""

from __future__ import annotations

import json
import sys
import sqlite3

import numpy as np
import pytest

from frame_describer.cache import DescriptionCache
from temporal_reasoner.embedding_store import EmbeddingStore
from vidground.types import FrameDescription


class InterruptAfter:
    """A connection that raises KeyboardInterrupt right after executing ``sql`` (it did run)."""

    def __init__(self, conn: sqlite3.Connection, sql: str):
        self.conn, self.sql = conn, sql

    def execute(self, sql, *args):
        out = self.conn.execute(sql, *args)
        if sql == self.sql:
            raise KeyboardInterrupt
        return out

    def __getattr__(self, name):
        return getattr(self.conn, name)


@pytest.mark.parametrize("after, kept", [("COMMIT", 2), ("BEGIN IMMEDIATE", 0)])
def test_an_interrupt_around_the_transaction_is_itself_and_keeps_what_was_committed(tmp_path, after, kept):
    cache = DescriptionCache(tmp_path / "c.sqlite")
    real = cache._connect()
    cache._local.conn = InterruptAfter(real, after)
    with pytest.raises(KeyboardInterrupt):
        cache.store("fp", "k", [FrameDescription(t=1.0, text="a"), FrameDescription(t=2.0, text="b")])
    cache._local.conn = real
    assert not real.in_transaction
    assert cache.count() == kept and cache.stored == kept


def _plan(cache, conn):
    cache.store_plan("fp", "k", {"times": [1.0, 2.0], "duration": 3.0})


def _claim(cache, conn):
    assert cache.claim("fp", "k", 1.0, "me", 60.0) is None


def _redact(cache, conn):
    DescriptionCache._redact_stored_settings(conn)


def _planned(cache, real):
    return cache.plan("fp", "k") is not None


def _claimed(cache, real):
    return real.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 1


def _redacted(cache, real):
    return "sk-" not in real.execute("SELECT payload FROM settings").fetchone()[0]


@pytest.mark.parametrize("run, done", [(_plan, _planned), (_claim, _claimed), (_redact, _redacted)],
                         ids=["store_plan", "claim", "redact"])
@pytest.mark.parametrize("after, kept", [("BEGIN IMMEDIATE", False), ("COMMIT", True)])
def test_every_transaction_survives_an_interrupt_just_after_begin_or_commit(tmp_path, run, done, after, kept):
    """store_plan and claim (and the settings' redaction) ran BEGIN before their try: an interrupt just after it
    left the transaction open on the thread's connection, so that thread's next writes joined it, uncommitted."""
    cache = DescriptionCache(tmp_path / "c.sqlite")
    real = cache._connect()
    real.execute("INSERT INTO settings VALUES (?, ?)", ("k", json.dumps({"api_key": "sk-abcdefghijklmnopqrstuv"})))
    cache._local.conn = InterruptAfter(real, after)
    with pytest.raises(KeyboardInterrupt):
        run(cache, cache._local.conn)
    cache._local.conn = real
    assert not real.in_transaction
    assert done(cache, real) is kept


@pytest.mark.parametrize("after, kept", [("BEGIN IMMEDIATE", 0), ("COMMIT", 2)])
def test_the_embedding_store_survives_an_interrupt_just_after_begin_or_commit(tmp_path, after, kept):
    """The embedding cache ran BEGIN before its try and a ROLLBACK with no transaction open: an interrupt just after
    BEGIN left the transaction open on the store's one connection (every later lookup and store ran inside it,
    uncommitted), and one just after COMMIT became 'cannot rollback - no transaction is active', which disabled the
    cache and swallowed the Ctrl-C."""
    store = EmbeddingStore(tmp_path / "emb.sqlite")
    real = store._conn()
    store._connection = InterruptAfter(real, after)
    vec = np.ones(4, dtype=np.float32) / 2
    with pytest.raises(KeyboardInterrupt):
        store.store("m", [("a cat", vec), ("a dog", vec)])
    store._connection = real
    assert not real.in_transaction
    assert store.broken is None
    assert len(store) == kept and store.stored == kept
    assert real.execute("SELECT value FROM meta WHERE name = 'rows'").fetchone()[0] == kept
    store.store("m", [("a bird", vec)])  # the store goes on working after the interrupt
    assert set(store.lookup("m", ["a cat", "a dog", "a bird"])) == {"a bird"} | ({"a cat", "a dog"} if kept else set())


class InterruptAtCall:
    """A trace function that raises KeyboardInterrupt as the ``n``-th Python function call starts (``n=0``: never):
    where CPython runs a pending SIGINT handler, at a function's first instruction. ``with Transaction(conn):`` lost
    one that landed as its ``__exit__`` started, before that method's try: neither COMMIT nor ROLLBACK ran and the
    transaction stayed open on the connection, holding the database's write lock (reviewer RV3: 250 of 16,507 real
    SIGALRM interrupts)."""

    def __init__(self, n: int):
        self.n, self.calls = n, 0

    def __call__(self, frame, event, arg):
        if event == "call":
            self.calls += 1
            if self.calls == self.n:
                sys.settrace(None)
                raise KeyboardInterrupt
        return None


def _traced(op, tracer) -> bool:
    """Run ``op`` under ``tracer``; whether it was interrupted."""
    before = sys.gettrace()
    sys.settrace(tracer)
    try:
        op()
        return False
    except KeyboardInterrupt:
        return True
    finally:
        sys.settrace(before)


def _description_cache(folder):
    cache = DescriptionCache(folder / "c.sqlite")
    real = cache._connect()
    real.execute("INSERT INTO settings VALUES (?, ?)", ("k", json.dumps({"api_key": "sk-abcdefghijklmnopqrstuv"})))
    return cache, real


def _store(folder):
    cache, real = _description_cache(folder)
    op = lambda: cache.store("fp", "k", [FrameDescription(t=1.0, text="a"), FrameDescription(t=2.0, text="b")])  # noqa: E731
    return op, real, lambda: cache.count() in (0, 2) and cache.stored == cache.count()


def _store_plan(folder):
    cache, real = _description_cache(folder)
    return lambda: _plan(cache, real), real, lambda: cache.plan("fp", "k") in (None, {"times": [1.0, 2.0], "duration": 3.0})


def _claim_one(folder):
    cache, real = _description_cache(folder)
    return (lambda: cache.claim("fp", "k", 1.0, "me", 60.0), real,
            lambda: real.execute("SELECT COUNT(*) FROM claims").fetchone()[0] in (0, 1))


def _redact_one(folder):
    cache, real = _description_cache(folder)
    return lambda: _redact(cache, real), real, lambda: real.execute("SELECT COUNT(*) FROM settings").fetchone()[0] == 1


def _embed(folder):
    store = EmbeddingStore(folder / "emb.sqlite")
    real = store._conn()
    vec = np.ones(4, dtype=np.float32) / 2

    def consistent():
        rows = real.execute("SELECT value FROM meta WHERE name = 'rows'").fetchone()[0]
        return store.broken is None and len(store) == rows == store.stored and rows in (0, 2)

    return lambda: store.store("m", [("a cat", vec), ("a dog", vec)]), real, consistent


@pytest.mark.parametrize("setup", [_store, _store_plan, _claim_one, _redact_one, _embed],
                         ids=["store", "store_plan", "claim", "redact", "embedding store"])
def test_an_interrupt_as_any_function_starts_leaves_no_transaction_open(tmp_path, setup):
    """One KeyboardInterrupt at the start of each Python function the write calls in turn (its transaction helper's
    included, the n-th call for every n): the write is done or not done, never half, its count says which, no
    transaction stays open on the connection and another connection can write at once."""
    for name in ("warm", "count"):
        (tmp_path / name).mkdir()
    setup(tmp_path / "warm")[0]()  # imports and first-use set-up out of the way: each run below makes the same calls
    counter = InterruptAtCall(0)
    assert not _traced(setup(tmp_path / "count")[0], counter)
    assert counter.calls > 3
    for n in range(1, counter.calls + 1):
        folder = tmp_path / str(n)
        folder.mkdir()
        op, real, consistent = setup(folder)
        assert _traced(op, InterruptAtCall(n)), n
        assert not real.in_transaction, f"call {n} of {counter.calls}"
        assert consistent(), f"call {n} of {counter.calls}"
        other = sqlite3.connect(real_path(real), timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the write lock is free
        other.execute("ROLLBACK")
        other.close()
        op()  # the same write goes on working
        assert not real.in_transaction


def real_path(conn: sqlite3.Connection) -> str:
    return conn.execute("PRAGMA database_list").fetchone()[2]


@pytest.mark.parametrize("setup", [_store, _store_plan, _claim_one, _redact_one, _embed],
                         ids=["store", "store_plan", "claim", "redact", "embedding store"])
def test_a_transaction_left_open_on_the_connection_is_rolled_back_before_the_next_write(tmp_path, setup):
    """A transaction some interrupt left open (half a write, the write lock held) made every later write of the
    thread fail with 'cannot start a transaction within a transaction'; it is now rolled back first, its half write
    with it, and the write runs in its own transaction."""
    op, real, consistent = setup(tmp_path)
    real.execute("BEGIN IMMEDIATE")
    real.execute("CREATE TABLE half_written (x)")
    op()
    assert not real.in_transaction and consistent()
    assert real.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'half_written'").fetchone()[0] == 0
