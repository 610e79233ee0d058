"""A Ctrl-C that lands just after the description cache's COMMIT is the KeyboardInterrupt it is, not an
OperationalError from a ROLLBACK with no transaction (a CI-style run: 'vidground: internal error: OperationalError:
cannot rollback - no transaction is active', exit 1 instead of 130)."""

from __future__ import annotations

import sqlite3

import pytest

from frame_describer.cache import DescriptionCache
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
