"""Monitoring reads at scale (issue 29, target B1): metrics over the last N pairs and an
hour-bucketed series over a day, on a task seeded with N pairs.

Seeding is direct: one task and its predictions written with COPY straight into
monitoring_prediction (N pairs, plus --unanswered outputs without feedback, interleaved), the
task's counts set to match, then VACUUM ANALYZE (what autovacuum does soon after a bulk load),
so a million pairs take seconds rather than the write path. Output times are spread evenly over
the last 24 h; outputs and feedback are binary, feedback equal to the output for --agree of
the pairs.

Then each read is timed, median of --repeat runs after one warm-up:
- in process: the selector alone (monitoring.selectors.task_metric with window_pairs=N for
  every metric of monitoring.metrics.METRICS, task_series for accuracy per hour over the
  last day), Django set up on the same database;
- over HTTP: GET .../metrics/?metric=M&window_pairs=N and .../series/?metric=accuracy&
  bucket=hour&start=&end= against gunicorn (the real app, --web-workers sync workers),
  unless --skip-http;
- EXPLAIN (ANALYZE, BUFFERS) of the accuracy query and of the series query, saved in the
  report.
The issue's target is 1 s for accuracy over the last 1,000,000 pairs and for the hour series
over a day; each timing is reported with it, met or missed. Nothing is asserted.

    python bench/monitoring.py                                   # 1,000,000 pairs
    python bench/monitoring.py --pairs 2000 --skip-http --out /tmp/m.json
    python bench/monitoring.py --keep ...                        # keep the database afterwards

The database (--database-url, BENCH_DATABASE_URL) is dropped and made
again at the start, and dropped at the end unless --keep.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import PY, log, reset_database  # noqa: E402

TASK = "bench-monitoring"
TARGET_S = 1.0
COPY_ROWS = 100_000  # rows a COPY statement
COLUMNS = (
    "task_id",
    "identifier",
    "output",
    "output_at",
    "output_write",
    "feedback",
    "feedback_at",
    "feedback_write",
)


def seed(db_url: str, *, pairs: int, unanswered: int, agree: float, now: dt.datetime) -> dict[str, Any]:
    """One task, `pairs` pairs and `unanswered` outputs without feedback, by COPY; then VACUUM
    ANALYZE. Returns the counts and the seconds each part took."""
    import psycopg2

    from ingest.sql import copy_text

    rows = pairs + unanswered
    rng = random.Random(29)
    start = now - dt.timedelta(days=1)
    step = dt.timedelta(days=1) / max(rows, 1)
    # Which rows lack feedback: `unanswered` of them, spread at random.
    no_feedback = set(rng.sample(range(rows), unanswered))
    connection = psycopg2.connect(db_url)
    began = time.perf_counter()
    with connection, connection.cursor() as cursor:
        last = start + step * (rows - 1) if rows else None
        cursor.execute(
            "INSERT INTO monitoring_task (name, created_at, output_count, feedback_count, pair_count,"
            " last_output_at) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            [TASK, start, rows, pairs, pairs, last],
        )
        (task_id,) = cursor.fetchone()
        for first in range(0, rows, COPY_ROWS):
            batch = []
            for i in range(first, min(first + COPY_ROWS, rows)):
                at = start + step * i
                output = float(rng.random() < 0.5)
                if i in no_feedback:
                    batch.append((task_id, f"id-{i}", output, at.isoformat(), None, None, None, None))
                else:
                    feedback = output if rng.random() < agree else 1.0 - output
                    answered = (at + dt.timedelta(minutes=5)).isoformat()
                    batch.append((task_id, f"id-{i}", output, at.isoformat(), None, feedback, answered, None))
            cursor.copy_expert(
                f"COPY monitoring_prediction ({', '.join(COLUMNS)}) FROM STDIN", copy_text(batch)
            )
    copied = time.perf_counter() - began
    connection.autocommit = True
    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE monitoring_prediction")
        cursor.execute("VACUUM ANALYZE monitoring_task")
        cursor.execute(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE feedback IS NOT NULL AND output IS NOT NULL),"
            " pg_size_pretty(pg_total_relation_size('monitoring_prediction'))"
            " FROM monitoring_prediction"
        )
        total, paired, size = cursor.fetchone()
        cursor.execute("SELECT pg_size_pretty(pg_relation_size('prediction_pair_idx'))")
        (pair_index,) = cursor.fetchone()
    vacuumed = time.perf_counter() - began
    connection.close()
    return {
        "rows": total,
        "pairs": paired,
        "unanswered": total - paired,
        "copy_s": copied,
        "vacuum_analyze_s": vacuumed,
        "table_size": size,
        "pair_index_size": pair_index,
    }


def timed(call: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """One warm-up call, then `repeat` timed ones: (their seconds, the last answer)."""
    answer = call()
    seconds = []
    for _ in range(repeat):
        began = time.perf_counter()
        answer = call()
        seconds.append(time.perf_counter() - began)
    return seconds, answer


def verdict(seconds: list[float], target: float | None) -> dict[str, Any]:
    median = statistics.median(seconds)
    result: dict[str, Any] = {
        "median_s": median,
        "min_s": min(seconds),
        "max_s": max(seconds),
        "runs_s": seconds,
    }
    if target is not None:
        result["target_s"] = target
        result["met"] = median <= target
    return result


def day_range(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The last day, whole hours: [the hour 24 h before now's, the hour after now's)."""
    end = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    return end - dt.timedelta(hours=25), end


def in_process(pairs: int, repeat: int, now: dt.datetime) -> dict[str, Any]:
    """The selectors alone, for every metric over window_pairs and the hour series."""
    from monitoring.metrics import METRICS
    from monitoring.selectors import Window, task_metric, task_series

    results: dict[str, Any] = {"metrics": {}, "series": {}}
    for metric in METRICS:
        seconds, answer = timed(
            lambda m=metric: task_metric(task=TASK, metric=m, window=Window(pairs=pairs)), repeat
        )
        results["metrics"][metric] = {
            **verdict(seconds, TARGET_S if metric == "accuracy" else None),
            "value": answer.value,
            "pairs": answer.pairs,
            "reason": answer.reason,
        }
    start, end = day_range(now)
    seconds, points = timed(
        lambda: task_series(task=TASK, metric="accuracy", bucket="hour", start=start, end=end), repeat
    )
    results["series"]["accuracy_hour_day"] = {
        **verdict(seconds, TARGET_S),
        "buckets": len(points),
        "pairs": sum(p.metric.pairs for p in points),
        "start": start.isoformat(),
        "end": end.isoformat(),
    }
    return results


def explain(pairs: int, now: dt.datetime) -> dict[str, str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the accuracy query over window_pairs and of the series
    query, built as monitoring.metrics builds them."""
    from django.db import connection

    from monitoring.metrics import _SUMS, LARGEST_VALUE, _inner
    from monitoring.selectors import _TRUNCATE, _pairs_of, task_get

    task = task_get(name=TASK)
    window = _pairs_of(task).order_by("-output_at", "-id")[:pairs].values("output", "feedback")
    start, end = day_range(now)
    series = (
        _pairs_of(task)
        .filter(output_at__gte=start, output_at__lt=end)
        .annotate(bucket=_TRUNCATE["hour"]("output_at", tzinfo=dt.UTC))
        .values("output", "feedback", "bucket")
    )
    plans = {}
    for name, query, grouped in (("accuracy_window_pairs", window, False), ("series_hour_day", series, True)):
        inner, params = _inner(query)
        sql = _SUMS.format(
            inner=inner,
            largest=LARGEST_VALUE,
            m_key="bucket," if grouped else "",
            m_group="GROUP BY bucket" if grouped else "",
            p_key="p.bucket," if grouped else "",
            join="JOIN m ON m.bucket = p.bucket" if grouped else "CROSS JOIN m",
            p_group="GROUP BY p.bucket ORDER BY p.bucket" if grouped else "",
        )
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plans[name] = "\n".join(row[0] for row in cursor.fetchall())
    return plans


def over_http(env: dict[str, str], args: argparse.Namespace, now: dt.datetime, out: Path) -> dict[str, Any]:
    """The same reads through gunicorn and the real app, with an API token."""
    from monitoring.metrics import METRICS

    token = subprocess.run(
        [PY, "manage.py", "create_api_token", "bench-monitoring"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    base = f"http://127.0.0.1:{args.port}"
    web = subprocess.Popen(
        [
            PY,
            "-m",
            "gunicorn",
            "mltrace_site.wsgi",
            "-w",
            str(args.web_workers),
            "-b",
            f"127.0.0.1:{args.port}",
            "--timeout",
            "120",
        ],
        cwd=ROOT,
        env=env,
        stdout=open(out, "ab"),  # noqa: SIM115 - lives as long as the process
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/readyz", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or web.poll() is not None:
                    raise RuntimeError("gunicorn did not become ready") from None
                time.sleep(0.3)

        def get(path: str, query: dict[str, Any]) -> dict[str, Any]:
            url = f"{base}/api/v1/tasks/{TASK}/{path}/?{urllib.parse.urlencode(query)}"
            request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
            with urllib.request.urlopen(request, timeout=120) as response:
                return json.loads(response.read())

        results: dict[str, Any] = {"metrics": {}, "series": {}, "web_workers": args.web_workers}
        for metric in METRICS:
            query = {"metric": metric, "window_pairs": args.pairs}
            seconds, answer = timed(lambda q=query: get("metrics", q), args.repeat)
            results["metrics"][metric] = {
                **verdict(seconds, TARGET_S if metric == "accuracy" else None),
                "value": answer.get("value"),
                "pairs": answer.get("pairs"),
            }
        start, end = day_range(now)
        query = {"metric": "accuracy", "bucket": "hour", "start": start.isoformat(), "end": end.isoformat()}
        seconds, answer = timed(lambda: get("series", query), args.repeat)
        results["series"]["accuracy_hour_day"] = {
            **verdict(seconds, TARGET_S),
            "buckets": len(answer["results"]),
            "pairs": sum(point["pairs"] for point in answer["results"]),
        }
        return results
    finally:
        web.send_signal(signal.SIGTERM)
        try:
            web.wait(30)
        except subprocess.TimeoutExpired:
            web.kill()
            web.wait(10)


def summary(report: dict[str, Any]) -> str:
    """Markdown: one row a read, in process and over HTTP, with the target where there is one."""
    lines = [
        "| read | in process, median s | over HTTP, median s | target | met |",
        "|---|---:|---:|---:|---|",
    ]
    http = report.get("http") or {"metrics": {}, "series": {}}
    reads = [
        (f"{m}, window_pairs={report['seed']['pairs']:,}", "metrics", m)
        for m in report["in_process"]["metrics"]
    ]
    reads.append(("accuracy per hour over the last day", "series", "accuracy_hour_day"))
    for label, kind, key in reads:
        own = report["in_process"][kind][key]
        served = http[kind].get(key)
        target = own.get("target_s")
        met = "-"
        if target is not None:
            verdicts = [own["met"]] + ([served["met"]] if served else [])
            met = "met" if all(verdicts) else "missed"
        served_s = f"{served['median_s']:.3f}" if served else "-"
        target_s = f"≤ {target:g} s" if target is not None else "-"
        lines.append(f"| {label} | {own['median_s']:.3f} | {served_s} | {target_s} | {met} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument(
        "--unanswered", type=float, default=0.1, help="outputs without feedback, a share of --pairs"
    )
    parser.add_argument(
        "--agree", type=float, default=0.85, help="share of pairs whose feedback equals the output"
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each read, after one warm-up")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mltrace_hmbench"),
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/1"))
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--skip-http", action="store_true", help="time the selectors in process only")
    parser.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    parser.add_argument(
        "--out", type=Path, help="the report's JSON (default bench/results/monitoring-<time>.json)"
    )
    args = parser.parse_args()

    out = args.out or ROOT / "bench" / "results" / f"monitoring-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "MLTRACE_QUEUE_NAME": os.environ.get("MLTRACE_QUEUE_NAME", "mltrace-monitoring-bench"),
        "DJANGO_SETTINGS_MODULE": "mltrace_site.settings",
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(env)
    reset_database(args.database_url)
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    import django

    django.setup()
    try:
        now = dt.datetime.now(dt.UTC)
        unanswered = int(args.pairs * args.unanswered)
        log(f"seeding {args.pairs:,} pairs and {unanswered:,} unanswered outputs by COPY")
        seeded = seed(args.database_url, pairs=args.pairs, unanswered=unanswered, agree=args.agree, now=now)
        log(f"seeded in {seeded['copy_s']:.1f} s, VACUUM ANALYZE {seeded['vacuum_analyze_s']:.1f} s")
        report: dict[str, Any] = {
            "at": now.isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "load1_before": os.getloadavg()[0], "note": "shared cores"},
            "seed": seeded,
            "target_s": TARGET_S,
        }
        log("timing the selectors in process")
        report["in_process"] = in_process(args.pairs, args.repeat, now)
        report["explain"] = explain(args.pairs, now)
        report["http"] = None
        if not args.skip_http:
            log(f"timing over HTTP (gunicorn, {args.web_workers} sync workers)")
            report["http"] = over_http(env, args, now, out.with_suffix(".gunicorn.log"))
        report["load1_after"] = os.getloadavg()[0]
        report["summary"] = summary(report)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            import psycopg2

            admin = psycopg2.connect(args.database_url.rsplit("/", 1)[0] + "/postgres")
            admin.autocommit = True
            with admin.cursor() as cursor:
                name = args.database_url.rsplit("/", 1)[1]
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()
    out.write_text(json.dumps(report, indent=2, default=str))
    print(report["summary"])
    for name, plan in report["explain"].items():
        print(f"\nEXPLAIN (ANALYZE, BUFFERS) {name}:\n{plan}")
    log(f"report: {out}")


if __name__ == "__main__":
    main()
