#!/usr/bin/env python
"""The original mltrace 0.17 (the PyPI library this server replaces), measured as a baseline.

mltrace 0.17 does not run on Python 3.11+, so this file has two halves. The host half runs on
the project's Python: it creates bench/.mltrace-venv with Python 3.9 and the pins below
(--setup), creates the database, then runs this same file inside that venv with --driver. The
driver half only calls mltrace's public API (and psycopg2 to seed its tables) and measures:

  empty        log_component_run on an empty database: runs/s, latency, SQL statements and new
               connections per call;
  trace_chain  Store(uri).trace() and the client's backtrace() of the last output of a chain
               of runs, each reading the previous run's output;
  at_size      log_component_run after --seed-runs pipeline runs were bulk-loaded (COPY) into
               mltrace's own tables, rows as log_component_run writes them;
  review       review_flagged_outputs() on that database, with the last --flagged predictions
               flagged.

The pipeline is that of bench/payloads.py: etl -> train -> 100 infer runs, each inference
reading the current model and logging one ENDPOINT prediction. Results go to --out (JSON).

    .venv/bin/python bench/mltrace_baseline.py --setup --quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import itertools
import json
import os
import pickle
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.payloads import INFERENCES_PER_MODEL  # noqa: E402

VENV = ROOT / "bench" / ".mltrace-venv"
PYTHON39 = "/root/.pyenv/versions/3.9.18/bin/python"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/mltrace_baseline"
# Found to work together on Python 3.9; pandas and joblib are imported by mltrace but not declared,
# and mltrace needs SQLAlchemy 1.4. alembic is pinned so that it does not ask for SQLAlchemy 2.
PINS = [
    "mltrace==0.17",
    "SQLAlchemy==1.4.54",
    "alembic==1.16.5",
    "psycopg2-binary==2.9.12",
    "pandas==2.3.3",
    "numpy==2.0.2",
    "joblib==1.5.3",
    "GitPython==3.2.1",
    "python-dateutil==3.0.0",
    "Flask==3.1.3",
]
QUICK = {"runs": 20, "seed_runs": 5000, "runs_at_size": 10, "chain": 50, "flagged": 5, "repeat": 3}
EPOCH = dt.datetime(2024, 1, 1)  # mltrace stores naive timestamps


def log(message: str) -> None:
    print(f"[mltrace-baseline {dt.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --- runs to log: the pipeline of bench/payloads.py and a lineage chain ---------------------


@dataclass
class RunSpec:
    """One run as the client would log it; inputs and outputs are (name, pointer type)."""

    component: str
    inputs: list[tuple[str, str]]
    outputs: list[tuple[str, str]]
    start: dt.datetime
    end: dt.datetime
    git_hash: str | None = None


def pipeline_specs(start: dt.datetime = EPOCH) -> Iterator[RunSpec]:
    """Endless etl, train, INFERENCES_PER_MODEL x infer cycles, one second apart."""
    clock = (start + dt.timedelta(seconds=n) for n in itertools.count())
    for n in itertools.count():
        cycle = f"{n}_{uuid.uuid4().hex[:6]}"
        data, model = f"s3://features/clean_data_{cycle}.csv", f"s3://models/model_{cycle}.pkl"
        t = next(clock)
        raw = [(f"s3://events/raw_{cycle}.parquet", "DATA")]
        yield RunSpec("etl", raw, [(data, "DATA")], t, t + dt.timedelta(seconds=30), "9f1c2ab")
        t = next(clock)
        yield RunSpec("train", [(data, "DATA")], [(model, "MODEL")], t, t + dt.timedelta(seconds=60))
        for _ in range(INFERENCES_PER_MODEL):
            t = next(clock)
            prediction = (f"prediction_{uuid.uuid4().hex[:12]}_0", "ENDPOINT")
            yield RunSpec("infer", [(model, "MODEL")], [prediction], t, t + dt.timedelta(milliseconds=20))


def chain_specs(length: int, start: dt.datetime = EPOCH) -> list[RunSpec]:
    """`length` transform runs; run i reads run i-1's output, so the last output's trace has them all."""
    names = ["s3://chain/source.csv"] + [f"s3://chain/step_{i}.csv" for i in range(length)]
    return [
        RunSpec(
            "transform",
            [(names[i], "DATA")],
            [(names[i + 1], "DATA")],
            start + dt.timedelta(seconds=i),
            start + dt.timedelta(seconds=i, milliseconds=500),
        )
        for i in range(length)
    ]


# --- driver half: runs inside the Python 3.9 venv, imports mltrace --------------------------


class SqlCounter:
    """Counts SQL statements and new DBAPI connections, over every SQLAlchemy engine."""

    def __init__(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
        from sqlalchemy.pool import Pool

        self.statements = self.connections = 0
        event.listen(Engine, "before_cursor_execute", self._statement)
        event.listen(Pool, "connect", self._connection)

    def _statement(self, *args: Any) -> None:
        self.statements += 1

    def _connection(self, *args: Any) -> None:
        self.connections += 1

    def reset(self) -> None:
        self.statements = self.connections = 0


def log_spec(spec: RunSpec) -> Callable[[], None]:
    """A ComponentRun built from `spec`, returned as the log_component_run call to time."""
    from mltrace import log_component_run
    from mltrace.db import PointerTypeEnum
    from mltrace.entities import ComponentRun, IOPointer

    run = ComponentRun(spec.component)
    run.set_start_timestamp(spec.start)
    run.set_end_timestamp(spec.end)
    run.git_hash = spec.git_hash
    # IOPointer objects, not strings: add_inputs("name") would store the pointer type as the value.
    run.add_inputs([IOPointer(name, pointer_type=PointerTypeEnum(kind)) for name, kind in spec.inputs])
    run.add_outputs([IOPointer(name, pointer_type=PointerTypeEnum(kind)) for name, kind in spec.outputs])
    return lambda: log_component_run(run)


def percentile(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1] if len(values) > 1 else values[0]


def measure_ingest(specs: Iterable[RunSpec], counter: SqlCounter) -> dict[str, Any]:
    """Logs each spec through log_component_run, one after the other; times and counts each call."""
    latencies: list[float] = []
    statements: list[int] = []
    connections: list[int] = []
    started = time.perf_counter()
    for spec in specs:
        call = log_spec(spec)
        counter.reset()
        t0 = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t0)
        statements.append(counter.statements)
        connections.append(counter.connections)
    elapsed = time.perf_counter() - started
    ms = [s * 1000 for s in latencies]
    return {
        "runs": len(ms),
        "seconds": round(elapsed, 2),
        "runs_per_s": round(len(ms) / elapsed, 2),
        "p50_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms), 1),
        "statements_per_run": round(statistics.mean(statements), 1),
        "connections_per_run": round(statistics.mean(connections), 1),
    }


def measure_calls(call: Callable[[], Any], repeat: int, counter: SqlCounter) -> tuple[dict[str, Any], Any]:
    """Median wall time and SQL statements of `call` over `repeat` timed calls after one warm-up
    call, and the warm-up call's result."""
    result = call()
    times, statements = [], []
    for _ in range(repeat):
        counter.reset()
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
        statements.append(counter.statements)
    stats = {
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
        "statements": int(statistics.median(statements)),
    }
    return stats, result


def bulk_insert(dsn: str, specs: Iterable[RunSpec]) -> int:
    """COPYs runs into mltrace's (empty, freshly created) tables, row for row as log_component_run
    writes them: io_pointers (value b'', its pointer type, flag false), component_runs (notes '',
    NULL git_tags and code_snapshot, stale = pickled []), input and output association rows, and a
    dependency on the latest run that produced each input. Returns the number of runs."""
    empty, null = r"\\x", r"\N"  # COPY text format: bytea b'' and NULL
    stale = empty + pickle.dumps([], pickle.HIGHEST_PROTOCOL).hex()  # PickleType's bytes for []
    tables = {
        "io_pointers": "(name, value, pointer_type, flag)",
        "component_runs": "(id, component_name, notes, git_hash, git_tags, code_snapshot, "
        "start_timestamp, end_timestamp, stale)",
        "component_runs_inputs": "(input_path_name, input_path_value, component_run_id)",
        "component_runs_outputs": "(output_path_name, output_path_value, component_run_id)",
        "component_run_dependencies": "(component_run_id, depends_on_component_run_id)",
    }
    rows = {table: io.StringIO() for table in tables}
    pointers: set[str] = set()
    producer: dict[str, int] = {}
    run_id = 0
    for run_id, spec in enumerate(specs, start=1):
        for name, kind in spec.inputs + spec.outputs:
            if name not in pointers:
                pointers.add(name)
                rows["io_pointers"].write(f"{name}\t{empty}\t{kind}\tf\n")
        rows["component_runs"].write(
            f"{run_id}\t{spec.component}\t\t{spec.git_hash or null}\t{null}\t{null}\t"
            f"{spec.start.isoformat()}\t{spec.end.isoformat()}\t{stale}\n"
        )
        for upstream in sorted({producer[name] for name, _ in spec.inputs if name in producer}):
            rows["component_run_dependencies"].write(f"{run_id}\t{upstream}\n")
        for name, _ in spec.inputs:
            rows["component_runs_inputs"].write(f"{name}\t{empty}\t{run_id}\n")
        for name, _ in spec.outputs:
            rows["component_runs_outputs"].write(f"{name}\t{empty}\t{run_id}\n")
            producer[name] = run_id
    conn = psycopg2.connect(dsn)
    with conn, conn.cursor() as cur:
        cur.execute("SET session_replication_role = replica")  # skip FK triggers: rows are consistent
        for table, columns in tables.items():
            rows[table].seek(0)
            cur.copy_expert(f"COPY {table} {columns} FROM STDIN", rows[table])
        cur.execute("SELECT setval('component_runs_id_seq', GREATEST(%s, 1))", [run_id])
    conn.close()
    sql(dsn, "ANALYZE")
    return run_id


def sql(dsn: str, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """One autocommitted statement on its own connection; its rows, if any."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(query, params)
        rows = cur.fetchall() if cur.description else []
    conn.close()
    return rows


def fresh_database(uri: str, components: Iterable[str]) -> None:
    """mltrace's clean_db() (drop and recreate its tables), then its create_component for each name:
    with SQLAlchemy 1.4, log_component_run fails on a component that does not exist yet."""
    import mltrace

    mltrace.set_db_uri(uri)
    mltrace.clean_db()
    for name in components:
        mltrace.create_component(name, "", "")


def drive(config: dict[str, Any]) -> dict[str, Any]:
    """The measurements, inside the venv; returns the results as a dict."""
    import logging
    from importlib.metadata import version

    import mltrace
    from mltrace.db import Store

    logging.getLogger().setLevel(logging.ERROR)  # mltrace logs each commit at INFO, staleness at WARNING
    uri, dsn = config["uri"], config["dsn"]
    counter = SqlCounter()
    results: dict[str, Any] = {
        "python": sys.version.split()[0],
        "mltrace_version": version("mltrace"),
        "sqlalchemy_version": version("SQLAlchemy"),
        "postgres_version": sql(dsn, "SHOW server_version")[0][0],
    }

    log(f"empty: {config['runs']} runs through log_component_run")
    fresh_database(uri, ["etl", "train", "infer"])
    results["empty"] = measure_ingest(itertools.islice(pipeline_specs(), config["runs"]), counter)

    log(f"trace_chain: a chain of {config['chain']} runs, bulk-loaded")
    fresh_database(uri, ["transform"])
    chain = chain_specs(config["chain"])
    bulk_insert(dsn, chain)
    last_output = chain[-1].outputs[0][0]
    store_trace, trace = measure_calls(lambda: Store(uri).trace(last_output), config["repeat"], counter)
    assert len(trace) == config["chain"], trace
    try:
        backtrace, _ = measure_calls(lambda: mltrace.backtrace(last_output), config["repeat"], counter)
    except RecursionError:  # backtrace() deep-copies each run's __dict__, dependencies included
        backtrace = {"error": "RecursionError"}
    results["trace_chain"] = {"length": config["chain"], **store_trace, "client_backtrace": backtrace}

    log(f"at_size: bulk-loading {config['seed_runs']} pipeline runs")
    fresh_database(uri, ["etl", "train", "infer"])
    specs = pipeline_specs()
    t0 = time.perf_counter()
    seeded = bulk_insert(dsn, itertools.islice(specs, config["seed_runs"]))
    seed_seconds = round(time.perf_counter() - t0, 1)
    log(f"at_size: seeded in {seed_seconds} s; {config['runs_at_size']} more runs")
    ingest = measure_ingest(itertools.islice(specs, config["runs_at_size"]), counter)
    results["at_size"] = {"db_runs": seeded, "seed_seconds": seed_seconds, **ingest}

    log(f"review: {config['flagged']} most recent predictions flagged")
    sql(
        dsn,
        "UPDATE io_pointers SET flag = true WHERE name IN (SELECT o.output_path_name"
        " FROM component_runs_outputs o JOIN component_runs r ON r.id = o.component_run_id"
        " WHERE r.component_name = 'infer' ORDER BY r.id DESC LIMIT %s)",
        [config["flagged"]],
    )
    review, (flagged, _) = measure_calls(mltrace.review_flagged_outputs, config["repeat"], counter)
    assert len(flagged) == config["flagged"], flagged
    results["review"] = {"flagged": config["flagged"], "db_runs": seeded + config["runs_at_size"], **review}
    results["at_size"]["db_mb"] = round(sql(dsn, "SELECT pg_database_size(current_database())")[0][0] / 2**20)
    return results


# --- host half: the project's Python ---------------------------------------------------------


def ensure_venv(python: str) -> Path:
    """Creates bench/.mltrace-venv with `python` and installs PINS, unless already done."""
    venv_python, stamp = VENV / "bin" / "python", VENV / ".installed"
    if venv_python.exists() and stamp.exists() and stamp.read_text() == "\n".join(PINS):
        log(f"{VENV.relative_to(ROOT)} is up to date")
        return venv_python
    if not Path(python).exists():
        raise SystemExit(f"{python} not found: mltrace 0.17 needs Python 3.9 or 3.10 (--python)")
    if not venv_python.exists():
        log(f"creating {VENV.relative_to(ROOT)} with {python}")
        subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    log("installing " + " ".join(PINS))
    subprocess.run([str(venv_python), "-m", "pip", "install", "--quiet", *PINS], check=True)
    stamp.write_text("\n".join(PINS))
    return venv_python


def ensure_database(url: str) -> None:
    """Creates the database of `url` if it is missing (mltrace creates its tables itself)."""
    base, name = url.rsplit("/", 1)
    conn = psycopg2.connect(f"{base}/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cur.fetchone() is None:
            log(f"creating database {name}")
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def print_summary(results: dict[str, Any]) -> None:
    empty, size, chain, review = (results[k] for k in ("empty", "at_size", "trace_chain", "review"))
    backtrace = chain["client_backtrace"]
    lines = [
        f"mltrace {results['mltrace_version']} on Python {results['python']}, SQLAlchemy "
        f"{results['sqlalchemy_version']}, PostgreSQL {results['postgres_version']}",
        f"  ingest, empty db    {empty['runs']:>7} runs  {empty['runs_per_s']:>8} runs/s  p50 {empty['p50_ms']} ms"
        f"  p95 {empty['p95_ms']} ms  p99 {empty['p99_ms']} ms  {empty['statements_per_run']} statements"
        f" and {empty['connections_per_run']} connections per run",
        f"  ingest at {size['db_runs']:>7} runs  {size['runs']:>4} runs  {size['runs_per_s']:>8} runs/s  p50 "
        f"{size['p50_ms']} ms  p95 {size['p95_ms']} ms  p99 {size['p99_ms']} ms  "
        f"{size['statements_per_run']} statements per run  ({size['db_mb']} MB)",
        f"  trace, chain of {chain['length']}   Store.trace {chain['median_ms']} ms ({chain['statements']} statements)"
        + (
            f"; backtrace() {backtrace['median_ms']} ms ({backtrace['statements']} statements)"
            if "median_ms" in backtrace
            else f"; backtrace() failed: {backtrace['error']}"
        ),
        f"  review, {review['flagged']} flagged  {review['median_ms']} ms ({review['statements']} statements)"
        f" at {review['db_runs']} runs",
    ]
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--setup", action="store_true", help="create the venv and install the pins if needed")
    parser.add_argument("--quick", action="store_true", help="smoke run: " + json.dumps(QUICK))
    parser.add_argument("--db", default=os.environ.get("MLTRACE_BASELINE_DB", DEFAULT_DB))
    parser.add_argument("--python", default=PYTHON39, help="interpreter for the venv (3.9 or 3.10)")
    parser.add_argument("--runs", type=int, default=200, help="runs logged on an empty database")
    parser.add_argument("--seed-runs", type=int, default=300_000, help="runs bulk-loaded before at_size")
    parser.add_argument("--runs-at-size", type=int, default=30, help="runs logged after seeding")
    parser.add_argument("--chain", type=int, default=500, help="length of the traced chain")
    parser.add_argument("--flagged", type=int, default=50, help="predictions flagged for review")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls of trace and review")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "mltrace-baseline.json")
    parser.add_argument("--driver", help=argparse.SUPPRESS)  # JSON config: run the driver half
    args = parser.parse_args()

    if args.driver:
        print(json.dumps(drive(json.loads(args.driver))))
        return
    venv_python = VENV / "bin" / "python"
    if args.setup:
        ensure_venv(args.python)
    elif not venv_python.exists():
        raise SystemExit(f"no {VENV.relative_to(ROOT)}: run with --setup first")
    sizes = {k: getattr(args, k) for k in ("runs", "seed_runs", "runs_at_size", "chain", "flagged", "repeat")}
    config = {**sizes, **(QUICK if args.quick else {})}
    config["dsn"] = args.db
    config["uri"] = "postgresql://" + args.db.split("://", 1)[1]  # mltrace only accepts postgresql://
    ensure_database(args.db)
    env = {**os.environ, "DB_URI": config["uri"]}  # else mltrace warns at import about its default URI
    proc = subprocess.run(
        [str(venv_python), __file__, "--driver", json.dumps(config)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    if proc.returncode:
        raise SystemExit(f"the driver failed (exit {proc.returncode})")
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    results["quick"] = args.quick
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_summary(results)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
