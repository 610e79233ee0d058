"""A Ctrl-C that lands just after the description cache's COMMIT is the KeyboardInterrupt it is, not an
OperationalError from a ROLLBACK with no transaction (a CI-style run: 'vidground: internal error: OperationalError:
cannot rollback - no transaction is active', exit 1 instead of 130); one just after BEGIN leaves no transaction
open on the connection, in every transaction the cache runs (store, store_plan, claim, the settings' redaction).
The embedding cache's store runs in the same helper (vidground.transactions.Transaction) and is held to the same."""

from __future__ import annotations

import json
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
