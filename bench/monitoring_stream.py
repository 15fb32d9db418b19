#!/usr/bin/env python
"""The monitoring scenario (issue 29, target B2): one process streams N outputs, then N
feedback for the same identifiers, through the client (`from mltrace import Task`), against a
live gunicorn and qcluster (bench/harness.py's Server on a fresh database).

The producer, a process of its own that imports only the client, times each logOutput and
logFeedback call with perf_counter_ns, then calls mltrace.flush(). The host half polls the
task's counts until outputs == N and pairs == N (the end-to-end time to all committed), then
checks that every write committed exactly once: no write failed or left queued, every committed
write is the one that set some row (a write accepted twice would leave its first copy naming no
row), and the task holds exactly N rows, N outputs, N feedback and N pairs.

Targets (the issue): at least 10,000 a second streamed, caller p50 under 50 µs, all committed
once. Reported, met or missed; nothing is asserted.

    python bench/monitoring_stream.py --items 1000000
    python bench/monitoring_stream.py --items 2000 --out /tmp/s.json    # a smoke run

Nothing at the top of this file imports the server, Django or psycopg2: the producer half runs
this same file with --produce.
"""

from __future__ import annotations

import argparse
import array
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TASK = "bench-stream"
TARGETS = {"p50_us": 50.0, "items_per_s": 10_000.0}
SERVER_PACKAGES = {"django", "rest_framework", "django_q", "mltrace_site", "runs", "monitoring", "psycopg2"}


def percentiles(values: array.array) -> dict[str, float]:
    """p50, p99, p99.9 and max of nanosecond durations, in microseconds (nearest rank)."""
    ordered = sorted(values)
    n = len(ordered)

    def rank(q: float) -> float:
        return ordered[min(n - 1, max(0, int(q * n + 0.999999) - 1))] / 1000

    return {"p50_us": rank(0.5), "p99_us": rank(0.99), "p999_us": rank(0.999), "max_us": ordered[-1] / 1000}


def produce(items: int) -> None:
    """The producer: N logOutput calls, then N logFeedback, each timed; then flush. Prints
    one JSON line."""
    import random

    import mltrace
    from mltrace import Task

    task = Task(TASK)
    identifiers = [f"id-{i}" for i in range(items)]
    rng = random.Random(29)
    outputs = [float(rng.random() < 0.5) for _ in range(items)]
    feedback = [o if rng.random() < 0.85 else 1.0 - o for o in outputs]
    clock = time.perf_counter_ns
    times = {}
    began = time.monotonic()
    for name, values, call in (
        ("logOutput", outputs, task.logOutput),
        ("logFeedback", feedback, task.logFeedback),
    ):
        spent = array.array("q", bytes(8 * items))
        for i in range(items):
            start = clock()
            call(values[i], identifiers[i])
            spent[i] = clock() - start
        times[name] = spent
    logged = time.monotonic() - began
    flushed = mltrace.flush(timeout=1800)
    accepted = time.monotonic() - began
    both = array.array("q", times["logOutput"])
    both.extend(times["logFeedback"])
    print(
        json.dumps(
            {
                "items": items,
                "logged_s": logged,
                "flushed": flushed,
                "flush_returned_s": accepted,
                "calls": {name: percentiles(spent) for name, spent in times.items()},
                "all_calls": percentiles(both),
                "caller_items_per_s": 2 * items / logged,
                "server_packages_imported": sorted(SERVER_PACKAGES & set(sys.modules)),
            }
        ),
        flush=True,
    )


def host(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from bench.harness import PY, CpuMeter, commit_log_stats, fresh_server, log, sql

    out = args.out.parent / (args.out.stem + "-logs")
    out.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "MLTRACE_QUEUE_NAME": os.environ.get("MLTRACE_QUEUE_NAME", "mltrace-monitoring-stream"),
        "DJANGO_SETTINGS_MODULE": "mltrace_site.settings",
        "PYTHONPATH": str(ROOT),
    }
    server = fresh_server(args, env, out)
    try:
        meter = CpuMeter(server.web.pid, server.worker.pid)
        meter.start()
        log(f"streaming {args.items:,} outputs then {args.items:,} feedback through the client")
        began = time.monotonic()
        producer_env = {
            k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "PYTHONPATH")
        }
        producer_env.update(
            {"MLTRACE_SERVER_URL": f"http://127.0.0.1:{args.port}", "MLTRACE_TOKEN": env["MLTRACE_TOKEN"]}
        )
        producer = subprocess.Popen(
            [PY, str(Path(__file__).resolve()), "--produce", str(args.items)],
            cwd="/",
            env=producer_env,
            stdout=subprocess.PIPE,
            stderr=open(out / "producer.log", "ab"),  # noqa: SIM115 - lives as long as the process
            text=True,
        )
        stdout, _ = producer.communicate(timeout=args.timeout)
        produced = json.loads(stdout.strip().splitlines()[-1])
        counts: tuple = ()
        while time.monotonic() - began < args.timeout:
            rows = sql(
                args.database_url,
                "SELECT output_count, feedback_count, pair_count FROM monitoring_task WHERE name = %s",
                (TASK,),
            )
            counts = rows[0] if rows else (0, 0, 0)
            if counts[0] >= args.items and counts[2] >= args.items:
                break
            time.sleep(0.2)
        committed_s = time.monotonic() - began
        cpu = meter.stop()
        writes = sql(
            args.database_url,
            "SELECT status, kind, COUNT(*) FROM runs_write GROUP BY status, kind ORDER BY status, kind",
        )
        rows, outputs, answered, pairs, output_writes, feedback_writes = sql(
            args.database_url,
            "SELECT COUNT(*), COUNT(output), COUNT(feedback), COUNT(*) FILTER (WHERE output IS NOT NULL"
            " AND feedback IS NOT NULL), COUNT(DISTINCT output_write), COUNT(DISTINCT feedback_write)"
            " FROM monitoring_prediction",
        )[0]
    finally:
        server.stop()
    committed = {k: int(n) for s, k, n in writes if s == "committed"}
    not_committed = sum(int(n) for s, _, n in writes if s != "committed")
    # A committed payload is dropped, so a write accepted twice shows as a write no row names:
    # the later copy replaces output_write (feedback_write) on every row the earlier one set.
    exact = (
        tuple(counts) == (args.items, args.items, args.items)
        and (rows, outputs, answered, pairs) == (args.items,) * 4
        and (output_writes, feedback_writes) == (committed.get("output"), committed.get("feedback"))
        and not_committed == 0
    )
    rate = 2 * args.items / committed_s
    p50 = produced["all_calls"]["p50_us"]
    return {
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "note": "shared cores", "load1_after": os.getloadavg()[0]},
        "items": args.items,
        "producer": produced,
        "committed_s": committed_s,
        "committed_items_per_s": rate,
        "task_counts": {"outputs": counts[0], "feedback": counts[1], "pairs": counts[2]},
        "predictions": {"rows": rows, "outputs": outputs, "feedback": answered, "pairs": pairs},
        "writes": [{"status": s, "kind": k, "writes": int(n)} for s, k, n in writes],
        "writes_named_by_rows": {"output": output_writes, "feedback": feedback_writes},
        "committed_exactly_once": exact,
        "cpu": cpu,
        "commits": commit_log_stats(out / "qcluster.log"),
        "targets": {
            "caller_p50_us": {"target": TARGETS["p50_us"], "value": p50, "met": p50 < TARGETS["p50_us"]},
            "caller_items_per_s": {
                "target": TARGETS["items_per_s"],
                "value": produced["caller_items_per_s"],
                "met": produced["caller_items_per_s"] >= TARGETS["items_per_s"],
            },
            "committed_items_per_s": {
                "target": TARGETS["items_per_s"],
                "value": rate,
                "met": rate >= TARGETS["items_per_s"],
            },
            "all_committed_once": {"met": exact},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1_000_000, help="outputs, and as much feedback")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mltrace_hmbench"),
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/1"))
    parser.add_argument("--port", type=int, default=8768)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-class", default="sync")
    parser.add_argument("--web-threads", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for all committed")
    parser.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    parser.add_argument(
        "--out", type=Path, help="the report's JSON (default bench/results/stream-<time>.json)"
    )
    parser.add_argument("--produce", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.produce is not None:
        produce(args.produce)
        return
    args.out = args.out or ROOT / "bench" / "results" / f"stream-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        report = host(args)
    finally:
        if not args.keep:
            import psycopg2

            admin = psycopg2.connect(args.database_url.rsplit("/", 1)[0] + "/postgres")
            admin.autocommit = True
            with admin.cursor() as cursor:
                name = args.database_url.rsplit("/", 1)[1]
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({k: report[k] for k in ("targets", "committed_s", "task_counts", "writes")}, indent=2))


if __name__ == "__main__":
    main()
