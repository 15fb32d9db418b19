"""The domain's raw SQL: the recursive walks of lineage and the planner's statistics.

The ORM cannot say WITH RECURSIVE; everything else of the domain goes through it. Table
names are composed with quoted identifiers (common/db.py).
"""

from __future__ import annotations

from django.db import connection

from common.db import compose, on_postgres
from runs.models import IOPointer, Run, RunDependency, RunInput, RunOutput

EDGES = RunDependency._meta.db_table
INPUTS = RunInput._meta.db_table
OUTPUTS = RunOutput._meta.db_table
POINTERS = IOPointer._meta.db_table
RUNS = Run._meta.db_table


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


def _dependents_of(column: str) -> str:
    """A join to the runs that depend on the run whose id is `column` (rundependency_upstream_idx),
    for a recursive term; LATERAL with OFFSET 0 for the reason _dependencies_of gives."""
    if on_postgres():
        return f"CROSS JOIN LATERAL (SELECT run_id FROM {{edges}} WHERE depends_on_id = {column} OFFSET 0) d"
    return f"JOIN {{edges}} d ON d.depends_on_id = {column}"


def _downstream(
    select: str, *, seeds: list[int], from_pointers: bool, depth: int | None, params: tuple = ()
) -> list[tuple]:
    """Runs `select` after WITH RECURSIVE down(run_id, hop): the runs that read one of the
    pointers `seeds` (hop 1), or the seed run (hop 0), and every run that depends on one of
    them, transitively, within `depth` hops if given. `params` are the select's own.

    UNION keeps each (run, hop) once, so a run is expanded once per hop count at which it is
    met: the walk is bounded by runs x depths, never by paths.
    """
    if from_pointers:
        marks = ", ".join(["%s"] * len(seeds))
        # Through runs: a materialized write's links are written before its run (ingest/materialize.py).
        seed = (
            "SELECT DISTINCT i.run_id, 1 FROM {inputs} i JOIN {runs} r ON r.id = i.run_id"
            f" WHERE i.pointer_id IN ({marks})"
        )
    else:
        seed = "SELECT CAST(%s AS BIGINT), 0"
    bound = "WHERE e.hop < %s" if depth is not None else ""
    template = f"""
        WITH RECURSIVE down(run_id, hop) AS (
            {seed}
            UNION
            SELECT d.run_id, e.hop + 1 FROM down e {_dependents_of("e.run_id")} {bound}
        )
        {select}
    """
    names = {"edges": EDGES, "inputs": INPUTS, "outputs": OUTPUTS, "pointers": POINTERS, "runs": RUNS}
    with connection.cursor() as cursor:
        cursor.execute(compose(template, **names), [*seeds, *([depth] if depth is not None else []), *params])
        return cursor.fetchall()


def downstream_page_rows(
    *, seeds: list[int], from_pointers: bool, depth: int | None, after: tuple[int, int] | None, limit: int
) -> list[tuple[int, int]]:
    """(run, shortest hop) of the downstream runs, by hop then id, after the (hop, id) cursor."""
    having = "HAVING MIN(hop) > %s OR (MIN(hop) = %s AND run_id > %s)" if after else ""
    cursor = (after[0], after[0], after[1]) if after else ()
    return _downstream(
        f"SELECT run_id, MIN(hop) FROM down GROUP BY run_id {having} ORDER BY 2, 1 LIMIT %s",
        seeds=seeds,
        from_pointers=from_pointers,
        depth=depth,
        params=(*cursor, limit),
    )


def downstream_edge_rows(
    *, seeds: list[int], from_pointers: bool, depth: int | None, run_ids: list[int]
) -> list[tuple[int, int]]:
    """(run, dependency) for these runs' dependencies that are downstream runs too."""
    marks = ", ".join(["%s"] * len(run_ids))
    return _downstream(
        f"SELECT x.run_id, x.depends_on_id FROM {{edges}} x WHERE x.run_id IN ({marks}) "
        "AND x.depends_on_id IN (SELECT run_id FROM down) ORDER BY 1, 2",
        seeds=seeds,
        from_pointers=from_pointers,
        depth=depth,
        params=tuple(run_ids),
    )


def downstream_output_rows(
    *, seeds: list[int], from_pointers: bool, depth: int | None
) -> list[tuple[str, int]]:
    """(pointer type, distinct pointers) output by every downstream run."""
    return _downstream(
        "SELECT p.pointer_type, COUNT(DISTINCT p.id) FROM {outputs} o JOIN {pointers} p ON p.id = o.pointer_id "
        "WHERE o.run_id IN (SELECT run_id FROM down) GROUP BY p.pointer_type",
        seeds=seeds,
        from_pointers=from_pointers,
        depth=depth,
    )


def downstream_output_pointer_ids(*, seeds: list[int]) -> list[int]:
    """The ids of every pointer a run downstream of these pointers output, ascending."""
    rows = _downstream(
        "SELECT DISTINCT o.pointer_id FROM {outputs} o WHERE o.run_id IN (SELECT run_id FROM down) ORDER BY 1",
        seeds=seeds,
        from_pointers=True,
        depth=None,
    )
    return [row[0] for row in rows]


def downstream_count(*, seeds: list[int], from_pointers: bool, depth: int | None) -> int:
    """How many runs are downstream (each once)."""
    rows = _downstream(
        "SELECT COUNT(DISTINCT run_id) FROM down", seeds=seeds, from_pointers=from_pointers, depth=depth
    )
    return int(rows[0][0])
