#!/usr/bin/env python
"""Do workers add commit throughput? A backlog queued while no cluster runs, drained by a
qcluster of W workers, W in alternating rounds (default 1,2,3,3,2,1), a fresh database each.

Each round: an empty, migrated database and a flushed Redis database; --runs runs accepted
into the queue (the batch endpoint's accept door, bench/seed.py's way) while no cluster runs;
then `manage.py qcluster` with MLTRACE_WORKERS=W until nothing is queued. Committed runs/s
is the committed writes over the time from the first commit to the last (runs_write's
committed_at). The workers' "committed N writes in X ms" lines give the resolve batches.

--workload infer (default): inference runs only, each reading one model and logging 10
ENDPOINT predictions named by random uuids (bench/payloads.py's infer_run); the model is the
same for every run and no run produced it. --workload pipeline: bench/seed.py's stream
(etl, train, then 100 inference runs, again).

Before each round (and again before its cluster starts) it waits, polling every 30 s, while
a pytest run is going on the machine (`pgrep -af pytest`), so shared cores do not pollute the
numbers; a round during which one started is marked.

    python bench/scaling.py --postgres compose                  # docker-compose.yml's settings
    python bench/scaling.py --database-url postgres://postgres@127.0.0.1:5432/mltrace_wbench_scale
    python bench/scaling.py --workers 2 --jsonl out.jsonl       # one round, appended
    python bench/scaling.py --table out.jsonl                   # the table of those rounds
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import PY, commit_log_stats, log, reset_database, sql, wait_drained  # noqa: E402


def pytest_running() -> list[str]:
    """The command lines of pytest processes on the machine (pgrep -af pytest), but ours."""
    found = subprocess.run(["pgrep", "-af", "pytest"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in found if "scaling.py" not in line]


def wait_quiet(poll: float = 30.0, *, skip: bool = False) -> float:
    """Waits while a pytest run is going; returns the seconds waited."""
    began = time.monotonic()
    while not skip and (running := pytest_running()):
        log(f"pytest is running ({running[0][:100]}); waiting {poll:.0f} s")
        time.sleep(poll)
    return time.monotonic() - began


def inference_stream(predictions: int = 10):
    """Inference runs only: one model read by all, `predictions` ENDPOINT outputs each."""
    from bench.payloads import infer_run

    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    cycle = f"wbench_{os.getpid()}"
    for n in itertools.count():
        yield infer_run(cycle, start + dt.timedelta(milliseconds=20 * n), predictions=predictions)


def queue_runs(runs: int, workload: str, batch: int = 1000) -> None:
    """In the server's environment: accepts `runs` runs into the queue, as seed.py --queue."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mltrace_site.settings")
    import django

    django.setup()
    from api.serializers.runs import RunCreateSerializer, run_write_payload
    from bench.payloads import pipeline
    from ingest.accept import writes_accept
    from runs.models import Write

    if workload == "infer":
        stream = inference_stream()
    else:
        stream = pipeline(start=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=runs), predictions=10)
    validator = RunCreateSerializer()
    done, began = 0, time.perf_counter()
    while done < runs:
        size = min(batch, runs - done)
        payloads = [run_write_payload(validator.run_validation(p)) for p in itertools.islice(stream, size)]
        writes_accept(kind=Write.Kind.RUN, payloads=payloads)
        done += size
    print(f"queued {runs} {workload} runs in {time.perf_counter() - began:.1f} s", flush=True)


def one_round(args: argparse.Namespace, workers: int, out: Path) -> dict[str, Any]:
    import redis

    waited = wait_quiet(skip=args.no_wait)
    db_url = args.database_url
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": args.redis_url,
        "MLTRACE_QUEUE_NAME": "mltrace-wbench",
        "MLTRACE_WORKERS": str(workers),
        "DJANGO_SETTINGS_MODULE": "mltrace_site.settings",
        "PYTHONPATH": str(ROOT),
    }
    reset_database(db_url)
    redis.from_url(args.redis_url).flushdb()
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    stamp = dt.datetime.now().strftime("%H%M%S")
    log_path = out / f"scaling-{stamp}-{workers}w.log"
    with open(log_path, "ab") as round_log:
        subprocess.run(
            [PY, str(Path(__file__).resolve()), "--queue-only", str(args.runs), "--workload", args.workload],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=round_log,
            stderr=subprocess.STDOUT,
        )
        waited += wait_quiet(skip=args.no_wait)
        load_before = os.getloadavg()[0]
        share = None
        if args.cpu_share == workers:
            from bench import cpu_share

            share = cpu_share.CpuShare(db_url, interval=2.0).start()
        started = time.monotonic()
        cluster = subprocess.Popen(
            [PY, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=round_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_drained(db_url, args.drain_timeout)
            wall = time.monotonic() - started
        finally:
            cluster.send_signal(signal.SIGTERM)
            try:
                cluster.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(cluster.pid, signal.SIGKILL)
                cluster.wait(10)
        shares = share.stop() if share else None
    polluted = pytest_running()
    first, last, committed = sql(
        db_url,
        "SELECT MIN(committed_at), MAX(committed_at), COUNT(*) FROM runs_write WHERE status = 'committed'",
    )[0]
    queued, failed = sql(
        db_url,
        "SELECT COUNT(*) FILTER (WHERE status = 'queued'), COUNT(*) FILTER (WHERE status = 'failed')"
        " FROM runs_write",
    )[0]
    seconds = (last - first).total_seconds() if committed else 0.0
    stats = commit_log_stats(log_path)
    result = {
        "design": args.label,
        "workers": workers,
        "runs": committed,
        "left_queued": queued,
        "failed": failed,
        "seconds": seconds,
        "runs_per_s": committed / seconds if seconds else None,
        "wall_s": wall,
        "batches": stats["batches"],
        "resolve_ms_p50": stats["ms_per_batch_p50"],
        "resolve_ms_max": stats["ms_per_batch_max"],
        "writes_per_batch_mean": stats["writes_per_batch_mean"],
        "resolve_s_total": stats["commit_s"],
        "load1_before": load_before,
        "waited_for_pytest_s": waited,
        "pytest_after": polluted[:1],
        "log": str(log_path),
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if shares:
        from bench import cpu_share

        result["cpu_share"] = shares
        result["cpu_share_summary"] = cpu_share.summary(shares)
    log(
        f"{args.label}, {workers} worker(s): {committed} runs in {seconds:.1f} s,"
        f" {result['runs_per_s'] or 0:.0f} runs/s; resolve batches p50 {stats['ms_per_batch_p50']} ms"
    )
    return result


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: one row a round, with its ratio to the mean of its design's 1-worker rounds."""
    lines = [
        "| design | workers | runs | seconds | runs/s | ratio to 1-worker mean | resolve batches |"
        " resolve ms p50 / max | load1 before |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        ones = [
            r["runs_per_s"]
            for r in results
            if r["workers"] == 1 and r["design"] == result["design"] and r["runs_per_s"]
        ]
        base = sum(ones) / len(ones) if ones else None
        rate = result["runs_per_s"]
        ratio = f"{rate / base:.2f}" if base and rate else "-"
        mark = " (pytest running at its end)" if result.get("pytest_after") else ""
        lines.append(
            f"| {result['design']} | {result['workers']} | {result['runs']:,} | {result['seconds']:.1f} |"
            f" {rate or 0:,.0f}{mark} | {ratio} | {result['batches']} |"
            f" {result['resolve_ms_p50'] or 0:.0f} / {result['resolve_ms_max'] or 0:.0f} |"
            f" {result['load1_before']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", default="1,2,3,3,2,1", help="workers of each round, in order")
    parser.add_argument("--runs", type=int, default=30_000, help="the backlog of each round")
    parser.add_argument("--workload", choices=("infer", "pipeline"), default="infer")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mltrace_wbench_scale"
        ),
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5"))
    parser.add_argument(
        "--postgres",
        choices=("machine", "compose"),
        default="machine",
        help="machine: --database-url's server as configured; compose: a private cluster with"
        " docker-compose.yml's settings (bench/pgcluster.py), started and removed here",
    )
    parser.add_argument("--drain-timeout", type=float, default=1800)
    parser.add_argument("--label", default=ROOT.name, help="the design's name in the table")
    parser.add_argument("--cpu-share", type=int, default=0, help="sample CPU by kind in rounds of N workers")
    parser.add_argument("--out", type=Path, help="logs folder (default bench/results/scaling-<time>)")
    parser.add_argument("--jsonl", type=Path, help="append each round's result to this file")
    parser.add_argument("--table", type=Path, help="print the table of a --jsonl file and exit")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for pytest runs (smoke tests)")
    parser.add_argument("--queue-only", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.queue_only is not None:
        queue_runs(args.queue_only, args.workload)
        return
    if args.table:
        print(table([json.loads(line) for line in args.table.read_text().splitlines() if line.strip()]))
        return
    out = args.out or ROOT / "bench" / "results" / f"scaling-{dt.datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    private = None
    if args.postgres == "compose":
        from bench import pgcluster

        private = pgcluster.PrivatePostgres(log=out / "compose-postgres.log").start()
        args.database_url = private.url(args.database_url.rsplit("/", 1)[1])
    results = []
    try:
        for workers in [int(w) for w in args.workers.split(",")]:
            result = one_round(args, workers, out)
            results.append(result)
            if args.jsonl:
                with open(args.jsonl, "a") as handle:
                    handle.write(json.dumps(result, default=str) + "\n")
    finally:
        if private is None:
            admin_url = args.database_url.rsplit("/", 1)[0] + "/postgres"
            name = args.database_url.rsplit("/", 1)[1]
            import psycopg2

            admin = psycopg2.connect(admin_url)
            admin.autocommit = True
            with admin.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()
        else:
            private.stop()
    print(table(results))


if __name__ == "__main__":
    main()
