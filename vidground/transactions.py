"""One write transaction on a SQLite connection opened with ``isolation_level=None``, safe against a Ctrl-C at any
statement: the description cache (``frame_describer.cache``) and the embedding cache
(``temporal_reasoner.embedding_store``) both write through :class:`Transaction`."""

from __future__ import annotations

import sqlite3
from types import TracebackType


def rollback(conn: sqlite3.Connection) -> None:
    """Undo the transaction open on ``conn``, if one is: a Ctrl-C that lands just after COMMIT (or before BEGIN took)
    leaves none, and a ROLLBACK then raised OperationalError ("no transaction is active") over the interrupt, which
    the command line reported as an internal error (exit 1, not 130)."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:  # the interrupt or error being raised is what the caller must see
            pass


class Transaction:
    """``with Transaction(conn):`` runs its body in one ``BEGIN IMMEDIATE`` .. ``COMMIT`` on ``conn``, and rolls
    back (when a transaction is open: :func:`rollback`) however it fails, a Ctrl-C included: one that lands just
    after BEGIN does not leave the transaction open on the connection (every later statement of this thread would
    then run inside it), one that lands just after COMMIT is raised as it is. :attr:`committed` says whether the
    COMMIT took, even when such an interrupt followed it (the only statement that ends the transaction without an
    error is COMMIT)."""

    __slots__ = ("conn", "committed")

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.committed = False

    def __enter__(self) -> Transaction:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            return self
        except BaseException:
            rollback(self.conn)
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None:
            rollback(self.conn)
            return
        try:
            self.conn.execute("COMMIT")
            self.committed = True
        except BaseException as err:
            if not self.conn.in_transaction and not isinstance(err, sqlite3.Error):
                self.committed = True  # an interrupt just after COMMIT: the rows are in
            else:
                rollback(self.conn)
            raise
