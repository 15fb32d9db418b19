#!/usr/bin/env python
"""Where a commit's time goes, in process, beside the limit's COPY of the same runs.

On a database of its own, dropped and migrated afresh:
1. COPYs --seed-runs pipeline runs the limit's way (bench/limit.py), so the indexes start
   at a size;
2. queues --batches batches of --batch runs through the accept door (bench/seed.py's
   payloads, validated as the API validates them);
3. commits them a batch per transaction through the workers' path (ingest/queue.py), and
   times each batch: the whole, its SQL statements by kind, its COPYs, its COMMIT (the
   deferred foreign-key checks), and the WAL it wrote (pg_current_wal_insert_lsn);
4. COPYs as many runs again the limit's way, ids drawn from the tables' sequences, and times
   and weighs each batch of them the same way.

What the statements and COPYs leave of a batch is Python (py-spy shows which).

    python bench/commit_profile.py --seed-runs 300000 --batches 10
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import limit, payloads  # noqa: E402


def seed_by_copy(db_url: str, *, runs: int, predictions: int, say: Callable[[str], None]) -> None:
    """A fresh database holding `runs` pipeline runs COPYed in, its sequences and component
    counts as the commit would have left them, analyzed."""
    if not runs:
        limit.migrate(db_url)
        return
    limit.measure(db_url, runs=runs, batch=1000, predictions=predictions, say=say)
    connection = psycopg2.connect(db_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        for table in (
            "runs_write",
            "runs_iopointer",
            "runs_runinput",
            "runs_runoutput",
            "runs_rundependency",
        ):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
            )
        cursor.execute(
            "UPDATE components_component c SET"
            " run_count = (SELECT COUNT(*) FROM runs_run r WHERE r.component_id = c.id),"
            " last_run_at = (SELECT MAX(start_timestamp) FROM runs_run r WHERE r.component_id = c.id)"
        )
        cursor.execute("ANALYZE")
    connection.close()


def _wal_position() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()")
        return cursor.fetchone()[0]


def _wal_since(position: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", [position])
        return int(cursor.fetchone()[0])


@contextmanager
def _timed(seconds: dict[str, float]) -> Iterator[None]:
    """Times, into `seconds`, every statement by its first words, each COPY of the commit
    (wrapping the write path's calls of ingest/sql.py) and every COMMIT."""
    from django.db import connection, connections

    from ingest import batch, materialize, pointers

    inside = [0]  # statements within a wrapped call count towards that call only

    def statement(execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            if not inside[0]:
                seconds["SQL: " + re.sub(r"\s+", " ", sql).strip()[:60]] += time.perf_counter() - started

    def timing(label: str, function: Callable) -> Callable:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            inside[0] += 1
            try:
                return function(*args, **kwargs)
            finally:
                inside[0] -= 1
                seconds[label] += time.perf_counter() - started

        return timed

    wrapped = {
        (batch, "copy_rows"): "COPY: run rows",
        (batch, "copy_id_pairs"): "COPY: dependency edges",
        (materialize, "copy_id_pairs"): "COPY: links",
        (materialize, "update_rows"): "UPDATE: materialized forms",
        (pointers, "insert_new_returning"): "new pointers: stage COPY and INSERT",
    }
    originals = {where: getattr(*where) for where in wrapped}
    wrapper_class = type(connections["default"])
    commit = wrapper_class._commit
    for (module, name), label in wrapped.items():
        setattr(module, name, timing(label, originals[(module, name)]))
    wrapper_class._commit = timing("COMMIT", commit)
    try:
        with connection.execute_wrapper(statement):
            yield
    finally:
        for (module, name), function in originals.items():
            setattr(module, name, function)
        wrapper_class._commit = commit


def queue_runs(*, batches: int, batch: int, predictions: int) -> None:
    """Queues batches of pipeline runs through the accept door, starting after every run
    committed so far (so no run is stale for starting among older ones)."""
    from django.db.models import Max
    from django.utils import timezone

    from api.serializers.runs import RunCreateSerializer, run_write_payload
    from ingest.accept import writes_accept
    from runs.models import Run, Write

    last = Run.objects.aggregate(last=Max("start_timestamp"))["last"] or timezone.now()
    stream = payloads.pipeline(start=last + dt.timedelta(days=1), predictions=predictions)
    validator = RunCreateSerializer()
    for _ in range(batches):
        runs = [run_write_payload(validator.run_validation(p)) for p in itertools.islice(stream, batch)]
        writes_accept(kind=Write.Kind.RUN, payloads=runs)


def commit_batches(*, batch: int) -> list[dict[str, Any]]:
    """Commits the queue a batch at a time, as one worker does: materializes a range, then
    resolves it, each in a transaction of its own; each batch's numbers, the two steps' among
    its parts ("step: ...")."""
    from django.conf import settings

    from ingest.materialize import materialize_next
    from ingest.queue import _next_batch_transaction

    settings.MLTRACE_COMMIT_BATCH = batch
    measured = []
    while True:
        seconds: dict[str, float] = defaultdict(float)
        position = _wal_position()
        started = time.perf_counter()
        with _timed(seconds):
            materialize_next(through_id=2**62)
            seconds["step: materialize"] = time.perf_counter() - started
            resolve_started = time.perf_counter()
            writes = _next_batch_transaction(None, wait=False, isolate=False)
            seconds["step: resolve"] = time.perf_counter() - resolve_started
        if not writes:
            return measured
        measured.append(
            {
                "writes": writes,
                "seconds": time.perf_counter() - started,
                "wal_bytes": _wal_since(position),
                "parts": dict(seconds),
            }
        )


def _ids_past(table: str, count: int) -> int:
    """Moves the table's id sequence on by `count`; ids first + 1 .. first + count are then
    free for rows inserted with explicit ids. Returns first."""
    from django.db import connection

    sequence = f"pg_get_serial_sequence('{table}', 'id')"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT setval({sequence}, nextval({sequence}) + %s)", [count])
        return cursor.fetchone()[0] - count


def copy_like_the_limit(*, batches: int, batch: int, predictions: int) -> list[dict[str, Any]]:
    """The limit's COPY of batches x batch runs into the same tables, a batch a transaction,
    with ids past every id taken so far (the sequences are moved on first)."""
    from django.db import connection, transaction

    from components.models import Component

    # Ours committed the same pipeline from its start, so every component named is there.
    components = dict(Component.objects.values_list("name", "id"))
    built = list(limit.build(batches * batch, predictions=predictions, components=components))
    runs_from = _ids_past("runs_write", len(built))
    pointers_from = _ids_past("runs_iopointer", sum(len(rows.get("runs_iopointer", ())) for rows in built))
    shift = {
        "runs_write": lambda r: (r[0] + runs_from, *r[1:]),
        "runs_run": lambda r: (r[0] + runs_from, *r[1:]),
        "runs_iopointer": lambda r: (r[0] + pointers_from, *r[1:]),
        "runs_runinput": lambda r: (r[0] + runs_from, r[1] + pointers_from),
        "runs_runoutput": lambda r: (r[0] + runs_from, r[1] + pointers_from),
        "runs_rundependency": lambda r: (r[0] + runs_from, r[1] + runs_from),
    }
    _, sql = limit.server()
    measured = []
    for first in range(0, len(built), batch):
        chunk = built[first : first + batch]
        position = _wal_position()
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            for table, columns in limit.TABLES.items():
                lines = [shift[table](row) for rows in chunk for row in rows.get(table, ())]
                if lines:
                    cursor.cursor.copy_expert(
                        f"COPY {table} ({', '.join(columns)}) FROM STDIN", sql.copy_text(lines)
                    )
        measured.append(
            {"runs": len(chunk), "seconds": time.perf_counter() - started, "wal_bytes": _wal_since(position)}
        )
    return measured


def profile(*, batches: int, batch: int, predictions: int) -> dict[str, Any]:
    """Steps 2-4 on Django's database: ours, then the limit, at the size it holds now."""
    queue_runs(batches=batches, batch=batch, predictions=predictions)
    ours = commit_batches(batch=batch)
    theirs = copy_like_the_limit(batches=batches, batch=batch, predictions=predictions)
    parts: dict[str, float] = defaultdict(float)
    for measured in ours:
        for name, seconds in measured["parts"].items():
            parts[name] += seconds / len(ours)
    return {
        "batch": batch,
        "predictions": predictions,
        "ours": ours,
        "limit": theirs,
        "ours_parts_mean": parts,
    }


def report(result: dict[str, Any]) -> str:
    ours, theirs = result["ours"], result["limit"]
    lines = [
        f"{len(ours)} batches of {result['batch']} runs: ours, then the limit's COPY of as many",
        "batch | ours ms | ours WAL MB | limit ms | limit WAL MB",
    ]
    for n, (a, b) in enumerate(itertools.zip_longest(ours, theirs, fillvalue=None), start=1):
        left = f"{a['seconds'] * 1000:7.0f} | {a['wal_bytes'] / 1e6:6.1f}" if a else "- | -"
        right = f"{b['seconds'] * 1000:7.0f} | {b['wal_bytes'] / 1e6:6.1f}" if b else "- | -"
        lines.append(f"{n:5} | {left} | {right}")
    lines.append(
        f"median ms: ours {statistics.median(a['seconds'] for a in ours) * 1000:.0f},"
        f" the limit {statistics.median(b['seconds'] for b in theirs) * 1000:.0f}"
    )
    parts = result["ours_parts_mean"]
    steps = {name: seconds for name, seconds in parts.items() if name.startswith("step: ")}
    if steps.get("step: resolve"):
        lines.append(
            f"ours by step, ms: materialize {steps.get('step: materialize', 0) * 1000:.0f},"
            f" resolve {steps['step: resolve'] * 1000:.0f}: the ordered step alone resolves"
            f" {result['batch'] / steps['step: resolve']:,.0f} runs/s"
        )
    lines.append("ours, a batch on average, ms:")
    inside = {name: seconds for name, seconds in parts.items() if name not in steps}
    for name, seconds in sorted(inside.items(), key=lambda item: -item[1])[:15]:
        lines.append(f"  {seconds * 1000:8.1f}  {name}")
    accounted = sum(inside.values())
    mean = statistics.mean(a["seconds"] for a in ours)
    lines.append(f"  {(mean - accounted) * 1000:8.1f}  the rest: Python")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/mltrace_profile")
    parser.add_argument("--seed-runs", type=int, default=300_000)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--predictions", type=int, default=payloads.PREDICTIONS_PER_INFERENCE)
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    # The server's code on this database; tasks go to django-q's ORM broker there, and no
    # cluster reads them: this process commits the queue itself.
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["REDIS_URL"] = ""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mltrace_site.settings")
    say = lambda line: print(line, flush=True)  # noqa: E731
    say(f"seeding {args.seed_runs} runs by COPY into {args.database_url}")
    seed_by_copy(args.database_url, runs=args.seed_runs, predictions=args.predictions, say=say)
    import django

    django.setup()
    say(f"queueing and committing {args.batches} batches of {args.batch} runs")
    result = profile(batches=args.batches, batch=args.batch, predictions=args.predictions)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
