"""The database's vendor, asked in one place, and SQL composed with quoted identifiers.

PostgreSQL is production; SQLite is the embedded default. Raw SQL lives in runs/sql.py (the
domain's) and ingest/sql.py (the write log's); where it names a table or a column it is
composed here, with psycopg2.sql on PostgreSQL (SQLite quotes through Django), never by
pasting names into f-strings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import OperationalError, connection, transaction
from django.db.models import BigIntegerField, Func

logger = logging.getLogger(__name__)
T = TypeVar("T")

# PostgreSQL's SQLSTATEs for work that lost a lock race: retrying it may succeed.
DEADLOCK_DETECTED = "40P01"
LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout ran out


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a database error raised through Django (psycopg2's pgcode)."""
    return getattr(error.__cause__, "pgcode", None) or getattr(error, "pgcode", None)


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


def compose(template: str, **identifiers: str | list[str]) -> str:
    """`template` with each {name} replaced by that identifier, quoted, or by a list of them
    joined with commas; the %s placeholders stay for the parameters."""
    if on_postgres():
        from psycopg2 import sql

        def pg(value: str | list[str]) -> sql.Composable:
            if isinstance(value, str):
                return sql.Identifier(value)
            return sql.SQL(", ").join(sql.Identifier(v) for v in value)

        connection.ensure_connection()
        composed = sql.SQL(template).format(**{key: pg(value) for key, value in identifiers.items()})
        return composed.as_string(connection.connection)

    def lite(value: str | list[str]) -> str:
        names = [value] if isinstance(value, str) else value
        return ", ".join(connection.ops.quote_name(name) for name in names)

    return template.format(**{key: lite(value) for key, value in identifiers.items()})


def retry_once_on_deadlock(work: Callable[[], T]) -> T:
    """Runs `work` in a transaction; if PostgreSQL broke a deadlock by aborting it, once more.

    The caller's rows should already be locked in one order: this is for the deadlock that
    other work (an admin action, a DBA's statement) can still cause.
    """
    try:
        with transaction.atomic():
            return work()
    except OperationalError as error:
        if sqlstate(error) != DEADLOCK_DETECTED or transaction.get_connection().in_atomic_block:
            raise
        logger.warning("deadlock detected; retrying once: %s", error)
    with transaction.atomic():
        return work()


class StoredSize(Func):
    """Bytes a column's value takes on disk (PostgreSQL, without reading a TOASTed value)."""

    function = "pg_column_size"
    output_field = BigIntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return super().as_sql(compiler, connection, function="length", **extra)


class TextBytes(Func):
    """Bytes of a text column's value, uncompressed, as UTF-8 (PostgreSQL reads them from a
    TOASTed value's header, without fetching or decompressing it)."""

    function = "octet_length"
    output_field = BigIntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return super().as_sql(compiler, connection, template="length(CAST(%(expressions)s AS BLOB))", **extra)
