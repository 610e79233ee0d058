"""One write transaction on a SQLite connection opened with ``isolation_level=None``, safe against a Ctrl-C at any
statement: the description cache (``frame_describer.cache``) and the embedding cache
(``temporal_reasoner.embedding_store``) both write through :func:`run_in_transaction`."""

from __future__ import annotations

import dis
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# the id of each connection a run_in_transaction is under way on: a second call on it (inside the first's work, or
# from another thread meanwhile) is refused. Changed by set.add/discard only (C calls: no Python function entry
# where an interrupt could land between the change and the flag that undoes it)
_inside: set[int] = set()


class NestedTransactionError(RuntimeError):
    """:func:`run_in_transaction` called on a connection one is under way on (inside its ``work``, or from another
    thread meanwhile): SQLite has one transaction per connection, so the second call would roll back the first's
    writes (taking its transaction for one an interrupt left open) and commit its own, and the first's COMMIT would
    then fail. A bug in the caller."""


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
    would otherwise fail ("cannot start a transaction within a transaction") on every later write of the thread.

    ``on_commit`` is called once: the flag that says it was is set before the call, so an interrupt (or an error)
    inside it does not have it called again; one that lands as it starts, before its first line ran, does.
    A call on a connection another call is under way on (inside its ``work``) raises
    :class:`NestedTransactionError`, the outer's transaction left as it is (its own ``except`` rolls it back)."""
    key = id(conn)
    if key in _inside:
        raise NestedTransactionError("run_in_transaction called on a connection another run_in_transaction is under "
                                     "way on (nested in its work, or from another thread): it would roll back the "
                                     "other's writes; do the inner work inside the outer's work instead")
    done = reported = marked = False
    try:
        marked = True  # first: an interrupt between the two leaves discard() a key not added, not a key left behind
        _inside.add(key)
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.execute("BEGIN IMMEDIATE")
        result = work()
        done = True
        conn.execute("COMMIT")
        if on_commit is not None:
            reported = True  # first: an interrupt inside on_commit does not have it called again below
            on_commit(result)
        return result
    except BaseException as err:
        if conn.in_transaction:  # inline, not in a helper: no function entry between the interrupt and ROLLBACK
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:  # the interrupt or error being raised is what the caller must see
                pass
        elif (done and on_commit is not None and not isinstance(err, sqlite3.Error)
              and (not reported or _stopped_at_entry(err, on_commit))):
            # an interrupt just after COMMIT (the only statement that ends it without an error), or as on_commit
            # started, before its first line (CPython runs a pending signal handler there)
            reported = True
            on_commit(result)
        raise
    finally:
        if marked:
            _inside.discard(key)


def _stopped_at_entry(err: BaseException, fn: Any) -> bool:
    """Whether ``err`` was raised in a frame of ``fn`` (a Python function or bound method) before its first line: at
    its ``RESUME`` instruction, where CPython runs a pending signal handler as a function starts."""
    code = getattr(fn, "__code__", None)
    tb = err.__traceback__
    while tb is not None and code is not None:
        if tb.tb_frame.f_code is code:
            resume = next((i.offset for i in dis.get_instructions(code) if i.opname == "RESUME"), 0)
            return tb.tb_lasti <= resume
        tb = tb.tb_next
    return False
