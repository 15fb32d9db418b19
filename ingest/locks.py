"""The two PostgreSQL advisory locks that make asynchronous writes equal synchronous ones.

The accept lock makes ids visible in id order: an accept holds it from before it draws its
ids until its commit. The commit lock lets one transaction at a time commit queued writes,
oldest first. docs/ARCHITECTURE.md has the whole argument. On SQLite every transaction
begins IMMEDIATE, so writers already run one at a time and these do nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection

from common.db import on_postgres
from ingest import sql

logger = logging.getLogger(__name__)


# PostgreSQL advisory lock keys: one serializes commits, one serializes id assignment.
COMMIT_LOCK_KEY = 0x6D6C7472  # "mltr"
ACCEPT_LOCK_KEY = 0x6D6C7461  # "mlta"
# Errors that mean the database could not be reached: the write stays queued and is retried.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def commit_lock(*, timeout_ms: int | None = None, flush_wal: bool = True) -> None:
    """Waits until no other transaction is committing writes; held until this one ends.

    flush_wal=False lets the transaction's COMMIT return before its WAL reaches the disk
    (synchronous_commit off), for a worker's commit of queued writes. A database crash may
    then undo the last such commits, but only whole and only the newest: a write and its
    committed status are one transaction, so those writes are queued again and the sweep
    commits them again, to the same rows, since a commit depends only on the writes before
    it. Accepts and ?sync=true commits keep flushing: their answers promise durability.
    """
    sql.advisory_xact_lock(COMMIT_LOCK_KEY, timeout_ms=timeout_ms, synchronous_commit=flush_wal)


def commit_lock_try(*, flush_wal: bool = True) -> bool:
    """commit_lock without waiting: whether this transaction holds it now."""
    return sql.advisory_xact_lock_try(COMMIT_LOCK_KEY, synchronous_commit=flush_wal)


def commit_in_progress() -> bool:
    """Whether a transaction holds the commit lock now: a commit, however long, is running."""
    return sql.advisory_lock_held(COMMIT_LOCK_KEY)


def accept_lock(*, timeout_ms: int) -> None:
    """Waits until no other transaction is taking ids; held until this one ends."""
    sql.advisory_xact_lock(ACCEPT_LOCK_KEY, timeout_ms=timeout_ms)


@contextmanager
def accept_lock_released_early() -> Iterator[None]:
    """The accept lock held for a block only, not to the end of the transaction.

    The synchronous door holds the commit lock for its whole transaction; nobody can commit
    the writes accepted after it until it ends, so it may let accepts go on meanwhile.
    """
    if not on_postgres():  # SQLite: no lock to hold, none to release
        yield
        return
    sql.advisory_lock(ACCEPT_LOCK_KEY, timeout_ms=settings.MLTRACE_ACCEPT_LOCK_TIMEOUT_MS)
    try:
        yield
    finally:
        try:
            sql.advisory_unlock(ACCEPT_LOCK_KEY)
        except DatabaseError:
            # The block failed and aborted the transaction, where no unlock can run. A
            # session-level lock outlives ROLLBACK and would stop every accept: end the
            # session instead (the block's own error goes on propagating).
            logger.warning("could not release the accept lock; closing the database connection")
            connection.close()
