#!/usr/bin/env python
"""The limit: COPY of the rows that N runs produce, into the server's own tables.

What the commit of N pipeline runs (bench/payloads.py: etl, train, then inference runs with
--predictions ENDPOINT outputs each) leaves in PostgreSQL, written the fastest way there is:
COPY, a transaction per --batch runs, into a freshly migrated database, so with the same
indexes, constraints and deferred foreign-key checks the server's tables have. Per run:

- its write-log row, payload included (what the accept writes; the commit clears it),
- its run row, its input and output link rows, its dependency rows,
- the pointers it names for the first time.

Nothing is resolved here: the rows are built in Python before the clock starts (ids
included) and only the COPYs and COMMITs are timed. Prints rows/s and runs/s, and what each
table took; with --json, writes them to a file as well.

    python bench/limit.py --database-url postgres://postgres@127.0.0.1:5432/mltrace_limit --runs 20000
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import payloads  # noqa: E402

# The tables in the order a commit writes them, with the columns COPY fills.
TABLES = {
    "runs_write": [
        "id",
        "kind",
        "status",
        "payload",
        "error",
        "accepted_at",
        "committed_at",
        "payload_bytes",
    ],
    "runs_iopointer": ["id", "name", "value", "pointer_type", "flag", "name_hash", "key"],
    "runs_run": [],  # ingest/batch.py's RUN_COLUMNS, set by server()
    "runs_runinput": ["run_id", "pointer_id"],
    "runs_runoutput": ["run_id", "pointer_id"],
    "runs_rundependency": ["run_id", "depends_on_id"],
}


def server() -> Any:
    """The server's own pieces the rows are made with: its run columns, pointer digests and
    COPY text (Django is set up for them; no database is opened)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mltrace_site.settings")
    import django

    django.setup()
    from ingest import batch, sql
    from runs import models

    TABLES["runs_run"] = batch.RUN_COLUMNS
    return models, sql


def build(runs: int, *, predictions: int, components: dict[str, int]) -> Iterator[dict[str, list[tuple]]]:
    """The rows of `runs` pipeline runs, one dict of table -> rows per run, ids assigned."""
    models, _ = server()
    stream = payloads.pipeline(start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), predictions=predictions)
    pointer_ids: dict[tuple[str, str], int] = {}
    producers: dict[str, int] = {}
    now = dt.datetime.now(dt.UTC).isoformat()
    for run_id in range(1, runs + 1):
        payload = next(stream)
        rows: dict[str, list[tuple]] = defaultdict(list)
        text = json.dumps(payload)
        rows["runs_write"].append((run_id, "run", "committed", text, "", now, now, len(text)))
        names = [p if isinstance(p, str) else p["name"] for p in payload["inputs"] + payload["outputs"]]
        kinds = ["inputs"] * len(payload["inputs"]) + ["outputs"] * len(payload["outputs"])
        depends = {
            producers[n] for n, kind in zip(names, kinds, strict=True) if kind == "inputs" and n in producers
        }
        for name, kind in zip(names, kinds, strict=True):
            key = (name, "")
            if key not in pointer_ids:
                pointer_ids[key] = len(pointer_ids) + 1
                pointer_type = "ENDPOINT" if name.startswith("prediction_") else "UNKNOWN"
                rows["runs_iopointer"].append(
                    (
                        pointer_ids[key],
                        name,
                        "",
                        pointer_type,
                        "f",
                        models.pointer_name_hash(name),
                        models.pointer_key(name, ""),
                    )
                )
            table = "runs_runinput" if kind == "inputs" else "runs_runoutput"
            rows[table].append((run_id, pointer_ids[key]))
            if kind == "outputs":
                producers[name] = run_id
        rows["runs_run"].append(
            (
                run_id,
                components[payload["component"]],
                payload["start_timestamp"],
                payload["end_timestamp"],
                "",
                payload.get("git_hash", ""),
                "[]",
                "",
                json.dumps(payload["test_results"]) if "test_results" in payload else None,
                "[]",
                "f",
                "[]",
                now,
            )
        )
        rows["runs_rundependency"].extend((run_id, d) for d in sorted(depends))
        yield rows


def drop(db_url: str, *, create: bool = False) -> None:
    """Drops the database of this URL (and creates it afresh, with create)."""
    base, name = db_url.rsplit("/", 1)
    admin = psycopg2.connect(f"{base}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def migrate(db_url: str) -> None:
    """A fresh database of this name, migrated: the server's tables, indexes and constraints."""
    drop(db_url, create=True)
    env = {**os.environ, "DATABASE_URL": db_url, "DJANGO_SETTINGS_MODULE": "mltrace_site.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


def measure(db_url: str, *, runs: int, batch: int, predictions: int, say: Any = print) -> dict[str, Any]:
    """COPYs the rows of `runs` runs in transactions of `batch` runs; rows/s, runs/s, per table."""
    migrate(db_url)
    connection = psycopg2.connect(db_url)
    with connection.cursor() as cursor:
        components = {}
        for name in ("etl", "train", "infer"):
            cursor.execute(
                "INSERT INTO components_component (name, description, owner, created_at, run_count)"
                " VALUES (%s, '', '', now(), 0) RETURNING id",
                [name],
            )
            components[name] = cursor.fetchone()[0]
    connection.commit()
    _, sql = server()
    built = build(runs, predictions=predictions, components=components)
    seconds: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    began = time.perf_counter()
    for first in range(0, runs, batch):
        if first and first % (100 * batch) == 0:
            say(f"the limit: {first} of {runs} runs copied ({first / sum(seconds.values()):,.0f} runs/s)")
        # Built before its clock starts, a batch at a time (300,000 runs at once took 2.6 GB).
        chunk = list(itertools.islice(built, batch))
        with connection.cursor() as cursor:
            for table, columns in TABLES.items():
                lines = [row for rows in chunk for row in rows.get(table, ())]
                if not lines:
                    continue
                text = sql.copy_text(lines)
                started = time.perf_counter()
                cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", text)
                seconds[table] += time.perf_counter() - started
                counts[table] += len(lines)
        started = time.perf_counter()
        connection.commit()  # the deferred foreign-key checks run here
        seconds["COMMIT"] += time.perf_counter() - started
    elapsed = time.perf_counter() - began
    connection.close()
    rows = sum(counts.values())
    return {
        "runs": runs,
        "batch": batch,
        "predictions": predictions,
        "rows": rows,
        "rows_per_run": rows / runs,
        "copy_seconds": sum(seconds.values()),
        "wall_seconds": elapsed,
        "rows_per_s": rows / sum(seconds.values()),
        "runs_per_s": runs / sum(seconds.values()),
        "tables": {t: {"rows": counts.get(t, 0), "seconds": s} for t, s in seconds.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/mltrace_limit")
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--predictions", type=int, default=payloads.PREDICTIONS_PER_INFERENCE)
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    result = measure(args.database_url, runs=args.runs, batch=args.batch, predictions=args.predictions)
    for table, part in result["tables"].items():
        print(f"{table:>20}: {part['rows']:>8} rows in {part['seconds'] * 1000:7.0f} ms")
    print(
        f"COPY of {result['runs']} runs ({result['rows']} rows, {result['rows_per_run']:.1f} a run) in "
        f"{result['copy_seconds']:.2f} s: {result['rows_per_s']:,.0f} rows/s, {result['runs_per_s']:,.0f} runs/s"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
