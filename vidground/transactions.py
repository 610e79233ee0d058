"""One write transaction on a SQLite connection opened with ``isolation_level=None``, safe against a Ctrl-C at any
statement: the description cache (``frame_describer.cache``) and the embedding cache
(``temporal_reasoner.embedding_store``) both write through :func:`run_in_transaction`."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def rollback(conn: sqlite3.Connection) -> None:
    """Undo the transaction open on ``conn``, if one is: a Ctrl-C that lands just after COMMIT (or before BEGIN took)
    leaves none, and a ROLLBACK then raised OperationalError ("no transaction is active") over the interrupt, which
    the command line reported as an internal error (exit 1, not 130)."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:  # the interrupt or error being raised is what the caller must see
            pass


def run_in_transaction(conn: sqlite3.Connection, work: Callable[[], T],
                       on_commit: Callable[[T], None] | None = None) -> T:
    """Run ``work()`` in one ``BEGIN IMMEDIATE`` .. ``COMMIT`` on ``conn`` and return what it returns; roll back
    however it fails, a Ctrl-C included, and call ``on_commit(result)`` once the COMMIT took, even when an
    interrupt follows it (that interrupt is then raised as it is).

    BEGIN, the body and COMMIT run inside this one function's ``try``: CPython runs a pending signal handler at a
    Python function's first instruction, so the ``with Transaction(conn):`` this replaces lost a Ctrl-C handled as
    its ``__exit__`` started (before that method's ``try``), which left the transaction open, holding the database's
    write lock, with neither COMMIT nor ROLLBACK (250 of 16,507 real SIGALRM interrupts; 0 of 9,839 in this form).
    A transaction some earlier interrupt left open on ``conn`` all the same is rolled back before BEGIN, which
    would otherwise fail ("cannot start a transaction within a transaction") on every later write of the thread."""
    done = reported = False
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.execute("BEGIN IMMEDIATE")
        result = work()
        done = True
        conn.execute("COMMIT")
        if on_commit is not None:
            on_commit(result)
            reported = True
        return result
    except BaseException as err:
        if conn.in_transaction:  # inline, not rollback(): no function entry between the interrupt and ROLLBACK
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:  # the interrupt or error being raised is what the caller must see
                pass
        elif done and not reported and on_commit is not None and not isinstance(err, sqlite3.Error):
            on_commit(result)  # an interrupt just after COMMIT (the only statement that ends it without an error)
        raise
