"""The write log's raw SQL: the advisory locks, the one-statement accept, bulk inserts and
COPY, and the staleness windows of a batch. Everything else goes through the ORM.

Table and column names are composed with quoted identifiers (common/db.py); values are
always parameters. lock_timeout takes no parameter in PostgreSQL: it is an int() here.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import psycopg2.extensions
from django.db import connection

from common.db import compose, on_postgres


def _lock_timeout(timeout_ms: int | None) -> str:
    return "" if timeout_ms is None else f"SET LOCAL lock_timeout = {int(timeout_ms)}; "


def advisory_xact_lock(key: int, *, timeout_ms: int | None = None, synchronous_commit: bool = True) -> None:
    """A transaction-level advisory lock, waiting at most timeout_ms (then OperationalError),
    in one round trip with the transaction's SET LOCALs. On SQLite every transaction begins
    IMMEDIATE, so writers already run one at a time: nothing to take."""
    if not on_postgres():
        return
    settings_sql = "" if synchronous_commit else "SET LOCAL synchronous_commit = off; "
    with connection.cursor() as cursor:
        cursor.execute(f"{_lock_timeout(timeout_ms)}{settings_sql}SELECT pg_advisory_xact_lock(%s)", [key])


def advisory_xact_lock_try(key: int, *, synchronous_commit: bool = True) -> bool:
    """advisory_xact_lock without waiting: whether it was taken. SQLite: always."""
    if not on_postgres():
        return True
    settings_sql = "" if synchronous_commit else "SET LOCAL synchronous_commit = off; "
    with connection.cursor() as cursor:
        cursor.execute(f"{settings_sql}SELECT pg_try_advisory_xact_lock(%s)", [key])
        return bool(cursor.fetchone()[0])


def synchronous_commit_off() -> None:
    """This transaction's COMMIT returns before its WAL reaches the disk (PostgreSQL only)."""
    if on_postgres():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


def advisory_lock(key: int, *, timeout_ms: int) -> None:
    """A session-level advisory lock (released by advisory_unlock or the session); SQLite: none."""
    if not on_postgres():
        return
    with connection.cursor() as cursor:
        cursor.execute(f"{_lock_timeout(timeout_ms)}SELECT pg_advisory_lock(%s)", [key])


def advisory_lock_held(key: int) -> bool:
    """Whether some session of this database holds this advisory lock now (pg_locks lists
    the whole cluster's, and splits a bigint key into classid, its high 32 bits, and objid,
    its low 32, with objsubid 1); SQLite: never."""
    if not on_postgres():
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = %s AND objid = %s AND objsubid = 1)",
            [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF],
        )
        return bool(cursor.fetchone()[0])


def advisory_unlock(key: int) -> None:
    if not on_postgres():
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def accept_rows(
    table: str,
    *,
    lock_key: int,
    timeout_ms: int,
    kind: str,
    status: str,
    accepted_at: dt.datetime,
    payloads: list[str],
    accepted_by: int | None = None,
) -> list[int]:
    """PostgreSQL: lock, insert and commit the writes in one statement; their ids, ascending.

    The accept lock is held from before the ids are drawn until the commit; the ids follow
    the payloads' order (ORDER BY ordinality). payloads are JSON texts, stored as they are.
    """
    template = f"""
        {_lock_timeout(timeout_ms)}
        WITH locked AS (SELECT pg_advisory_xact_lock(%s))
        INSERT INTO {{table}} (kind, status, payload, payload_bytes, error, accepted_at, accepted_by_id)
        SELECT %s, %s, p.payload, octet_length(p.payload), '', %s, %s
        FROM locked, unnest(%s::text[]) WITH ORDINALITY AS p (payload, n)
        ORDER BY p.n
        RETURNING id
    """
    with connection.cursor() as cursor:
        cursor.execute(
            compose(template, table=table), [lock_key, kind, status, accepted_at, accepted_by, payloads]
        )
        return sorted(row[0] for row in cursor.fetchall())


def insert_rows(
    table: str,
    columns: list[str],
    rows: list[tuple],
    *,
    returning: list[str] | None = None,
    on_conflict: str = "",
) -> list[tuple]:
    """INSERT many rows in few statements; with `returning` on PostgreSQL, the returned rows.

    on_conflict names a unique column: rows that would duplicate it are skipped.

    Django's bulk_create builds a model instance and prepares every value of every row; for
    the tens of thousands of link rows of a batch of inference runs that cost more than the
    database. Values must already be in the database's form: JSON as text, datetimes adapted.
    """
    if not rows:
        return []
    conflict = " ON CONFLICT ({conflict}) DO NOTHING" if on_conflict else ""
    names: dict[str, str | list[str]] = {"table": table, "columns": columns}
    if on_conflict:
        names["conflict"] = on_conflict
    with connection.cursor() as cursor:
        if on_postgres():
            from psycopg2.extras import execute_values

            if returning:
                names["returning"] = returning
            template = (
                "INSERT INTO {table} ({columns}) VALUES %s"
                + conflict
                + (" RETURNING {returning}" if returning else "")
            )
            sql = compose(template, **names)
            return execute_values(cursor.cursor, sql, rows, page_size=2000, fetch=bool(returning)) or []
        marks = ", ".join(["%s"] * len(columns))
        cursor.executemany(
            compose("INSERT INTO {table} ({columns}) VALUES (" + marks + ")" + conflict, **names), rows
        )
        return []


def update_rows(table: str, key: str, columns: list[str], types: list[str], rows: list[tuple]) -> None:
    """UPDATE many rows by key in few statements: each row is (key, *values of columns).

    `types` are the columns' SQL types (key's first), for the casts PostgreSQL needs on a
    VALUES list. Django's bulk_update writes a CASE per column over every row: for 500 runs
    of 16 columns it cost seconds a batch. Values must already be in the database's form.
    """
    if not rows:
        return
    names: dict[str, str | list[str]] = {"table": table, "key": key}
    if on_postgres():
        from psycopg2.extras import execute_values

        aliases = [f"c{i}" for i in range(len(columns))]
        assignments = ", ".join(f"{{col{i}}} = v.{alias}" for i, alias in enumerate(aliases))
        names.update({f"col{i}": column for i, column in enumerate(columns)})
        sql = compose(
            "UPDATE {table} AS t SET "
            + assignments
            + " FROM (VALUES %s) AS v(k, "
            + ", ".join(aliases)
            + ") WHERE t.{key} = v.k",
            **names,
        )
        template = "(" + ", ".join(f"%s::{sql_type}" for sql_type in types) + ")"
        with connection.cursor() as cursor:
            execute_values(cursor.cursor, sql, rows, template=template, page_size=1000)
        return
    names["columns"] = columns
    assignments = ", ".join(f"{{col{i}}} = %s" for i in range(len(columns)))
    names.update({f"col{i}": column for i, column in enumerate(columns)})
    with connection.cursor() as cursor:
        cursor.executemany(
            compose("UPDATE {table} SET " + assignments + " WHERE {key} = %s", **names),
            [(*row[1:], row[0]) for row in rows],
        )


def _can_copy() -> bool:
    """Whether COPY is possible here: PostgreSQL, and no wait callback set. psycopg2 refuses
    COPY while one is (gunicorn's gevent workers set one, for a ?sync=true write's commit)."""
    return on_postgres() and psycopg2.extensions.get_wait_callback() is None


def _copy_field(value: Any) -> str:
    """One field in COPY's text format: \\N for NULL, backslash escapes for the rest."""
    if value is None:
        return "\\N"
    text = value if isinstance(value, str) else str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _copy_line(row: tuple) -> str:
    """A row in COPY's text format. Most rows need no escape: joined as they are, they hold a
    tab between fields and nothing else COPY reads specially (a third faster than escaping
    every field of the ten thousand pointer rows of a batch)."""
    if None not in row:
        line = "\t".join(map(str, row))
        if line.count("\t") == len(row) - 1 and "\\" not in line and "\n" not in line and "\r" not in line:
            return line
    return "\t".join(map(_copy_field, row))


def copy_text(rows: list[tuple]) -> io.StringIO:
    """Rows as COPY FROM STDIN reads them in its text format (bench/limit.py uses it too)."""
    return io.StringIO("".join([_copy_line(row) + "\n" for row in rows]))


def copy_rows(table: str, columns: list[str], rows: list[tuple]) -> None:
    """insert_rows, with COPY where it can (a third of execute_values' time for a run row).

    Values as insert_rows takes them; datetimes as adapt_datetimefield_value gives them.
    """
    if not rows:
        return
    if not _can_copy():
        insert_rows(table, columns, rows)
        return
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(
            compose("COPY {table} ({columns}) FROM STDIN", table=table, columns=columns), copy_text(rows)
        )


def insert_new_returning(
    table: str, columns: list[str], rows: list[tuple], *, on_conflict: str, returning: list[str]
) -> list[tuple]:
    """insert_rows(..., returning=..., on_conflict=...): the rows that were new, as `returning`.

    On PostgreSQL the rows are staged with COPY in a temporary table of this session, then
    moved in one INSERT ... SELECT, in their order: about half of execute_values' time for
    the ten thousand new pointers of a batch of inference runs. The statement empties the
    stage as it reads it, so a transaction may call this again (a batch retried write by
    write, each in a savepoint), and every commit truncates it (ON COMMIT DELETE ROWS): a
    DELETE leaves its rows dead and nothing vacuums a temporary table, so a worker's stage
    grew with every batch (50 MB each after five minutes of sustained ingest) and every
    DELETE scanned all of it.
    """
    if not rows or not _can_copy():
        return insert_rows(table, columns, rows, returning=returning, on_conflict=on_conflict)
    names: dict[str, str | list[str]] = {
        "table": table,
        "stage": f"stage_{table}",
        "columns": columns,
        "conflict": on_conflict,
        "returning": returning,
    }
    numbered = [(n, *row) for n, row in enumerate(rows)]
    with connection.cursor() as cursor:
        cursor.execute(
            compose(
                "CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS"
                " SELECT 0::bigint AS n, {columns} FROM {table} WITH NO DATA",
                **names,
            )
        )
        cursor.cursor.copy_expert(
            compose("COPY {stage} (n, {columns}) FROM STDIN", **names), copy_text(numbered)
        )
        cursor.execute(
            compose(
                "WITH staged AS (DELETE FROM {stage} RETURNING *)"
                " INSERT INTO {table} ({columns}) SELECT {columns} FROM staged ORDER BY n"
                " ON CONFLICT ({conflict}) DO NOTHING RETURNING {returning}",
                **names,
            )
        )
        return cursor.fetchall()


def copy_id_pairs(table: str, columns: list[str], rows: list[tuple[int, int]]) -> None:
    """Inserts rows of two integers; on PostgreSQL with COPY, which needs no SQL text per row
    (execute_values formats every row, the larger share of a link table's insert).

    Where COPY is refused (a wait callback, _can_copy) the rows go in as two array literals
    and unnest(), one statement at about 1.6 times COPY's time (200,000 pairs: 170-270 ms,
    COPY 110-160 ms).
    """
    if not rows or not on_postgres():
        insert_rows(table, columns, rows)
        return
    if not _can_copy():
        firsts = "{" + ",".join(str(a) for a, _ in rows) + "}"
        seconds = "{" + ",".join(str(b) for _, b in rows) + "}"
        with connection.cursor() as cursor:
            sql = "INSERT INTO {table} ({columns}) SELECT * FROM unnest(%s::bigint[], %s::bigint[])"
            cursor.execute(compose(sql, table=table, columns=columns), [firsts, seconds])
        return
    text = io.StringIO("".join(f"{a}\t{b}\n" for a, b in rows))
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(
            compose("COPY {table} ({columns}) FROM STDIN", table=table, columns=columns), text
        )


def pointers_by_key(table: str, keys: list[str]) -> list[tuple[str, int, int]]:
    """(key, id, first_write) of the pointers of `table` with these keys."""
    marks = ", ".join(["%s"] * len(keys))
    with connection.cursor() as cursor:
        cursor.execute(
            compose("SELECT key, id, first_write FROM {table} WHERE key IN (" + marks + ")", table=table),
            keys,
        )
        return cursor.fetchall()


def pointer_first_write_lower(table: str, key: str, pointer_type: str, write_id: int) -> None:
    """Gives the pointer `key` this type and first_write, if its first_write is higher; the
    condition is checked again on the row as it is once locked, so the lowest id wins."""
    with connection.cursor() as cursor:
        cursor.execute(
            compose(
                "UPDATE {table} SET pointer_type = %s, first_write = %s WHERE key = %s AND first_write > %s",
                table=table,
            ),
            [pointer_type, write_id, key, write_id],
        )


def runs_in_windows(
    run_table: str, component_table: str, windows: list[tuple[str, Any, Any]], *, before_id: int
) -> list[tuple[int, int]]:
    """For each (component name, low, high), by position: its committed runs below before_id
    that started in [low, high]. Bounds adapted for the database already.

    The row comparison, which PostgreSQL can only answer from run_component_start_idx, makes
    that the index it reads: with `component_id = ... AND start_timestamp BETWEEN ...` alone
    it can walk run_start_idx and filter every run since the window's start by
    component (it cannot see the VALUES bounds), 28 ms a window at 95,000 runs, half a minute
    for a batch of 1,000 runs that share a dependency (docs/benchmarks/2026-12-01-scale-mltrace-
    client.md). The plain conditions bound the scan: PostgreSQL 15 starts a scan at `component_id =` rather than at the row
    comparison, and stops at a row comparison's upper bound only where component_id changes,
    so a window of row comparisons alone reads the component's runs from the window's start
    to its last run (at a million runs 70-90 index pages a window, 100-200 ms a batch, against
    3-10 pages and 11-20 ms so).
    """
    values = ", ".join(["(%s, %s, %s, %s)"] * len(windows))
    # VALUES columns are column1..4 in PostgreSQL and SQLite alike: (n, name, low, high).
    template = f"""
        SELECT w.column1, (
            SELECT COUNT(*) FROM {{runs}} r
            WHERE (r.component_id, r.start_timestamp) >= (c.id, w.column3)
              AND r.component_id = c.id AND r.start_timestamp >= w.column3
              AND r.start_timestamp <= w.column4 AND r.id < %s
        )
        FROM (VALUES {values}) AS w LEFT JOIN {{components}} c ON c.name = w.column2
    """
    params: list[Any] = [before_id]
    for n, (name, low, high) in enumerate(windows):
        params += [n, name, low, high]
    with connection.cursor() as cursor:
        cursor.execute(compose(template, runs=run_table, components=component_table), params)
        return cursor.fetchall()


def upsert_rows(table: str, columns: list[str], rows: list[tuple], *, conflict: list[str]) -> None:
    """INSERT rows, replacing the columns not in `conflict` of any row whose `conflict` columns
    match one already stored (ON CONFLICT ... DO UPDATE). No two rows may share those columns.

    Django's bulk_create(update_conflicts=True) builds a model instance and prepares every
    value of every row: for the 30,000 predictions of a batch of outputs, two thirds of its
    commit. On PostgreSQL the rows are staged with COPY (as insert_new_returning's), then
    moved in one INSERT ... SELECT in their order; where COPY is refused, execute_values; on
    SQLite (3.24 or later) an executemany of the same upsert. Values must already be in the
    database's form: datetimes as adapt_datetimefield_value gives them.
    """
    if not rows:
        return
    updated = [column for column in columns if column not in conflict]
    assignments = ", ".join(f"{{u{i}}} = EXCLUDED.{{u{i}}}" for i in range(len(updated)))
    names: dict[str, str | list[str]] = {
        "table": table,
        "stage": f"stage_{table}",
        "columns": columns,
        "conflict": conflict,
        **{f"u{i}": column for i, column in enumerate(updated)},
    }
    upsert = " ON CONFLICT ({conflict}) DO UPDATE SET " + assignments
    with connection.cursor() as cursor:
        if _can_copy():
            cursor.execute(
                compose(
                    "CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS"
                    " SELECT 0::bigint AS n, {columns} FROM {table} WITH NO DATA",
                    **names,
                )
            )
            cursor.cursor.copy_expert(
                compose("COPY {stage} (n, {columns}) FROM STDIN", **names),
                copy_text([(n, *row) for n, row in enumerate(rows)]),
            )
            cursor.execute(
                compose(
                    "WITH staged AS (DELETE FROM {stage} RETURNING *)"
                    " INSERT INTO {table} ({columns}) SELECT {columns} FROM staged ORDER BY n" + upsert,
                    **names,
                )
            )
            return
        if on_postgres():
            from psycopg2.extras import execute_values

            sql = compose("INSERT INTO {table} ({columns}) VALUES %s" + upsert, **names)
            execute_values(cursor.cursor, sql, rows, page_size=2000)
            return
        marks = ", ".join(["%s"] * len(columns))
        cursor.executemany(
            compose("INSERT INTO {table} ({columns}) VALUES (" + marks + ")" + upsert, **names), rows
        )


def rows_of_keys(
    table: str, columns: list[str], *, scope: str, scope_value: Any, key: str, keys: list
) -> list[tuple]:
    """(key, *columns) of the rows of `table` where `scope` = scope_value and `key` is one of
    `keys`, as the driver gives them (no ORM conversion: SQLite's datetimes naive UTC, as
    stored). One array parameter on PostgreSQL; on SQLite one per key (keep keys to CHUNK)."""
    if not keys:
        return []
    names: dict[str, str | list[str]] = {"table": table, "columns": columns, "scope": scope, "key": key}
    select = "SELECT {key}, {columns} FROM {table} WHERE {scope} = %s AND "
    with connection.cursor() as cursor:
        if on_postgres():
            cursor.execute(compose(select + "{key} = ANY(%s)", **names), [scope_value, list(keys)])
        else:
            marks = ", ".join(["%s"] * len(keys))
            cursor.execute(compose(select + "{key} IN (" + marks + ")", **names), [scope_value, *keys])
        return cursor.fetchall()
