#!/usr/bin/env python
"""`make bench`: every Locust scenario against gunicorn and a qcluster on PostgreSQL and Redis.

For each database size (--sizes, runs in the database before measuring; 0 = empty), it seeds
the database up to that size through the workers (the queue), then runs each scenario
headless for --duration seconds with --users users, waits for the queue to drain, and
records: Locust's CSVs, requests/s, latency percentiles, failures, committed runs/s while
draining, accept-to-commit lag, peak RSS of the web and worker processes, and the size of
the database. It writes bench/results/<timestamp>/ with report.md and PNG charts.

It also runs the client scenario first (bench/client_bench.py, its own fresh database for
each mode): one process logs --client-runs inference runs through the mltrace client's
log_component_run, in a tight loop and paced at --client-rate runs/s, with mltrace 0.17's
log_component_run beside it. --only client (or --only locust) runs one half alone.

    python bench/run.py --users 32 --duration 60 --sizes 0
    python bench/run.py --only client --client-runs 100000 --client-rate 2000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

# The stages live beside this file, each on bench/harness.py (servers, databases, /proc):
# locust_stage.py, client_stage.py, sustained_stage.py; report.py writes report.md and the
# charts. This file is the command line: the arguments, and main() running the stages.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import pgcluster  # noqa: E402
from bench.client_stage import client_round  # noqa: E402
from bench.harness import (  # noqa: E402
    PY,
    ROOT,
    add_service_arguments,
    commit_log_stats,
    fresh_server,
    log,
    machine_facts,
    reset_database,
    seed,
    sql,
    wait_drained,
)
from bench.locust_stage import SCENARIOS, lineage_timings, run_scenario  # noqa: E402
from bench.report import charts, report, seed_chart  # noqa: E402
from bench.sustained_stage import commit_scaling, sustained_round  # noqa: E402

# What other scripts import from here (bench/scaling.py), as when all of it lived in this file.
__all__ = [
    "PY",
    "ROOT",
    "commit_log_stats",
    "commit_scaling",
    "log",
    "main",
    "reset_database",
    "sql",
    "wait_drained",
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=int(os.environ.get("BENCH_USERS", 32)))
    parser.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", 60)))
    parser.add_argument(
        "--sizes", default=os.environ.get("BENCH_SIZES", "0"), help="comma-separated run counts"
    )
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--web-workers", type=int, default=2 * (os.cpu_count() or 1))
    parser.add_argument(
        "--web-class",
        default="gevent",
        choices=["gevent", "sync", "gthread"],
        help="gunicorn's worker class (gevent: gunicorn.conf.py's, as shipped)",
    )
    parser.add_argument("--web-threads", type=int, default=1, help="threads per gthread worker")
    parser.add_argument("--queue-workers", type=int, default=2)
    parser.add_argument("--drain-timeout", type=float, default=1800)
    parser.add_argument("--port", type=int, default=8765)
    add_service_arguments(parser)
    parser.add_argument(
        "--postgres",
        choices=("machine", "compose"),
        default="machine",
        help="machine: the PostgreSQL of --database-url as it is configured; compose: a private cluster"
        " with docker-compose.yml's settings (bench/pgcluster.py), started and removed by the run",
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--only",
        choices=("client", "locust", "sustained"),
        help="run only the client scenario, the Locust ones, or the sustained stage",
    )
    parser.add_argument(
        "--sustained-seconds", type=int, default=int(os.environ.get("BENCH_SUSTAINED_SECONDS", 300))
    )
    parser.add_argument(
        "--sustained-rate",
        type=float,
        default=0,
        help="runs/s of the sustained stage (0: min(10,000, half the limit measured first))",
    )
    parser.add_argument(
        "--limit-runs", type=int, default=20_000, help="runs COPYed into empty tables (the limit)"
    )
    parser.add_argument(
        "--limit-volume-runs",
        type=int,
        default=300_000,
        help="runs COPYed for the limit at the sustained run's volume (0: skip)",
    )
    parser.add_argument(
        "--scaling-runs", type=int, default=30_000, help="backlog of the 1/2/3-worker scaling"
    )
    parser.add_argument("--wrk-seconds", type=int, default=20, help="wrk's load for the ceiling and ours")
    parser.add_argument(
        "--pin-workers",
        action="store_true",
        help="sustained stage, an experiment: the workers and their backends on a core of their own",
    )
    parser.add_argument(
        "--client-runs",
        type=int,
        default=int(os.environ.get("BENCH_CLIENT_RUNS", 100_000)),
        help="client scenario",
    )
    parser.add_argument(
        "--client-rate",
        type=float,
        default=float(os.environ.get("BENCH_CLIENT_RATE", 2000)),
        help="runs/s of the client scenario's paced mode (0: the tight loop only)",
    )
    parser.add_argument(
        "--baseline-runs",
        type=int,
        default=200,
        help="mltrace 0.17 log_component_run calls beside the client",
    )
    parser.add_argument(
        "--report-only",
        type=Path,
        help="rewrite report.md and scale.png of a results folder, measure nothing",
    )
    args = parser.parse_args()
    if args.report_only:
        folder = args.report_only
        saved = json.loads((folder / "run.json").read_text())
        rounds = (
            json.loads((folder / "results.json").read_text()) if (folder / "results.json").exists() else []
        )
        client = (
            json.loads((folder / "client.json").read_text()) if (folder / "client.json").exists() else None
        )
        sustained = (
            json.loads((folder / "sustained.json").read_text())
            if (folder / "sustained.json").exists()
            else None
        )
        report(folder, saved["run"], rounds, saved["machine"], client, sustained)
        return
    run = {
        "command": " ".join(sys.argv),
        "users": args.users,
        "duration": args.duration,
        "web_workers": args.web_workers,
        "web_class": args.web_class,
        "queue_workers": args.queue_workers,
        "commit_batch": os.environ.get("MLTRACE_COMMIT_BATCH", "1000"),
    }

    out = args.out or ROOT / "bench" / "results" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    private = None
    if args.postgres == "compose":
        # The database of that name, in a cluster configured as docker-compose.yml ships it.
        private = pgcluster.PrivatePostgres(log=out / "compose-postgres.log").start()
        args.database_url = private.url(args.database_url.rsplit("/", 1)[1])
        run["postgres"] = f"private cluster with docker-compose.yml's settings: {private.settings}"
    try:
        env = {
            **os.environ,
            "DATABASE_URL": args.database_url,
            "REDIS_URL": args.redis_url,
            "MLTRACE_QUEUE_NAME": "mltrace-bench",
            "MLTRACE_WORKERS": str(args.queue_workers),
            "DJANGO_SETTINGS_MODULE": "mltrace_site.settings",
            "PYTHONPATH": str(ROOT),
        }
        log(f"results in {out}")
        rounds: list[dict[str, Any]] = []
        client = sustained = None
        if args.only in (None, "client"):
            client = client_round(args, env, out)
            (out / "client.json").write_text(json.dumps(client, indent=1, default=str))
            machine = machine_facts(env)
            (out / "run.json").write_text(json.dumps({"run": run, "machine": machine}))
            report(out, run, rounds, machine, client, sustained)
        if args.only in (None, "sustained"):
            sustained = sustained_round(args, env, out / "sustained")
            (out / "sustained.json").write_text(json.dumps(sustained, indent=1, default=str))
            machine = machine_facts(env)
            (out / "run.json").write_text(json.dumps({"run": run, "machine": machine}))
            report(out, run, rounds, machine, client, sustained)
        sizes = [int(s) for s in args.sizes.split(",")] if args.only in (None, "locust") else []
        for size in sizes:
            # Each size starts from an empty database seeded to exactly that size: the write
            # scenarios of one size would otherwise inflate the next.
            label = f"{size:,} runs in the database" if size else "empty database"
            folder = out / f"size-{size}"
            folder.mkdir(exist_ok=True)
            server = fresh_server(args, env, folder)
            try:
                seeded = seed(env, size, server, folder) if size else None
                results = []
                lineage = None
                for name in args.scenarios.split(","):
                    if name == "readers":
                        # Timed alone, before readers load the machine; leaves 50 outputs flagged.
                        lineage = lineage_timings(env, server)
                    results.append(run_scenario(name, args, env, server, folder))
            finally:
                server.stop()
            rounds.append(
                {
                    "label": label,
                    "folder": folder.name,
                    "results": results,
                    "seed": seeded,
                    "lineage": lineage,
                    "charts": charts(folder, results, label)
                    + ([seed_chart(folder, seeded, label)] if seeded else []),
                }
            )
            (out / "results.json").write_text(json.dumps(rounds, indent=1, default=str))
            machine = machine_facts(env)
            (out / "run.json").write_text(json.dumps({"run": run, "machine": machine}))
            report(out, run, rounds, machine, client, sustained)
        log(f"report: {out / 'report.md'}")
        latest = ROOT / "bench" / "results" / "latest"
        if latest.is_symlink() or latest.exists():
            latest.unlink() if latest.is_symlink() else shutil.rmtree(latest)
        if out.parent == latest.parent:
            latest.symlink_to(out.name)
    finally:
        if private:
            private.stop()


if __name__ == "__main__":
    main()
