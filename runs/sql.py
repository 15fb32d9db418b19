"""The domain's raw SQL: the recursive walks of lineage and the planner's statistics.

The ORM cannot say WITH RECURSIVE; everything else of the domain goes through it. Table
names are composed with quoted identifiers (common/db.py).
"""

from __future__ import annotations

from django.db import connection

from common.db import compose, on_postgres
from runs.models import RunDependency

EDGES = RunDependency._meta.db_table


def _dependencies_of(column: str) -> str:
    """A join to the dependencies of the run whose id is `column`, for a recursive term.

    PostgreSQL plans a recursive term once, before it knows the work table holds a handful of
    rows, and picked hash and merge joins that scan every edge on every hop (4 s for a
    500-run chain on a freshly loaded table). LATERAL with OFFSET 0 (which keeps the planner
    from flattening it) makes it an index probe per row: 12 ms. SQLite only does nested
    loops, and has no LATERAL. `column` is one of this module's own aliases, never input.
    """
    if on_postgres():
        return f"CROSS JOIN LATERAL (SELECT run_id, depends_on_id FROM {{edges}} WHERE run_id = {column} OFFSET 0) d"
    return f"JOIN {{edges}} d ON d.run_id = {column}"


def upstream_edge_rows(root: int, depth: int | None) -> list[tuple[int, int]]:
    """(run, dependency) of every edge upstream of root, within depth hops if given.

    UNION drops an edge met again, so each run's dependencies are expanded once (unbounded),
    or once per hop count at which it is met (bounded, which the bound keeps small).
    """
    if depth is None:
        template = f"""
            WITH RECURSIVE walk(run_id, dep) AS (
                SELECT d.run_id, d.depends_on_id FROM {{edges}} d WHERE d.run_id = %s
                UNION
                SELECT d.run_id, d.depends_on_id FROM walk e {_dependencies_of("e.dep")}
            )
            SELECT run_id, dep FROM walk
        """
        params: list[int] = [root]
    else:
        template = f"""
            WITH RECURSIVE walk(run_id, dep, hop) AS (
                SELECT d.run_id, d.depends_on_id, 1 FROM {{edges}} d WHERE d.run_id = %s
                UNION
                SELECT d.run_id, d.depends_on_id, e.hop + 1 FROM walk e {_dependencies_of("e.dep")}
                WHERE e.hop < %s
            )
            SELECT DISTINCT run_id, dep FROM walk
        """
        params = [root, depth]
    with connection.cursor() as cursor:
        cursor.execute(compose(template, edges=EDGES), params)
        return cursor.fetchall()


def trace_membership_rows(roots: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(run, how many of these traces hold it) for (trace number, root run) pairs, in one
    recursive query; UNION keeps each (trace, run) once."""
    values = ", ".join(["(CAST(%s AS BIGINT), CAST(%s AS BIGINT))"] * len(roots))
    template = f"""
        WITH RECURSIVE reach(origin, id) AS (
            SELECT * FROM (VALUES {values}) AS seeds
            UNION
            SELECT r.origin, d.depends_on_id FROM reach r {_dependencies_of("r.id")}
        )
        SELECT id, COUNT(*) FROM reach GROUP BY id
    """
    with connection.cursor() as cursor:
        cursor.execute(compose(template, edges=EDGES), [value for pair in roots for value in pair])
        return cursor.fetchall()


def tables_grown(tables: list[str], *, min_changes: int) -> list[str]:
    """Which of these tables changed by half (and min_changes rows) since their last ANALYZE
    (PostgreSQL's statistics; SQLite: none)."""
    if not on_postgres():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(%s) "
            "AND n_mod_since_analyze > GREATEST(%s, n_live_tup / 2)",
            [tables, min_changes],
        )
        return [row[0] for row in cursor.fetchall()]


def analyze(table: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(compose("ANALYZE {table}", table=table))
