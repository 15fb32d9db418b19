"""The Locust stage of `make bench` (bench/run.py): each scenario of bench/locustfile.py run
headless against the server, then the queue drained; and the lineage reads (a trace over a
long chain, a review of flagged predictions) timed alone on known shapes."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import (  # noqa: E402
    PY,
    ROOT,
    Sampler,
    Server,
    log,
    median,
    pending,
    run_count,
    sql,
    wait_drained,
)

SCENARIOS = {
    "sync": ("SyncRunWriter", "one run per request, ?sync=true"),
    "async": ("AsyncRunWriter", "one run per request, 202"),
    "batch": ("BatchWriter", "100 runs per request, 202"),
    "components": ("ComponentWriter", "component writes, 202"),
    "openlineage": ("OpenLineageWriter", "OpenLineage events one per request (START, COMPLETE), 202"),
    "openlineage_batch": ("OpenLineageBatchWriter", "100 OpenLineage events (50 runs) per request, 200"),
    "readers": ("Reader", "trace, history, recent, review"),
}


# --- one scenario ---------------------------------------------------------------------------


def locust_stats(prefix: Path) -> dict[str, Any]:
    with open(f"{prefix}_stats.csv") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    total = rows["Aggregated"]
    return {
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "rps": float(total["Requests/s"]),
        "p50": float(total["50%"]),
        "p95": float(total["95%"]),
        "p99": float(total["99%"]),
        "names": {name: row for name, row in rows.items() if name != "Aggregated"},
    }


def run_scenario(
    name: str, args: argparse.Namespace, env: dict[str, str], server: Server, out: Path
) -> dict[str, Any]:
    user_class, _ = SCENARIOS[name]
    db_url = env["DATABASE_URL"]
    mark_write = sql(db_url, "SELECT COALESCE(MAX(id), 0) FROM runs_write")[0][0]
    runs_before = run_count(db_url)
    sampler = Sampler(db_url, server.web.pid, server.worker.pid)
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    prefix = out / name
    log(f"{name}: {args.users} users for {args.duration} s")
    began = time.monotonic()
    with open(out / f"{name}.locust.log", "w") as locust_log:
        subprocess.run(
            [
                PY,
                "-m",
                "locust",
                "-f",
                str(ROOT / "bench" / "locustfile.py"),
                "--headless",
                "-u",
                str(args.users),
                "-r",
                str(args.users),
                "-t",
                f"{args.duration}s",
                "--host",
                f"http://127.0.0.1:{server.port}",
                "--csv",
                str(prefix),
                "--csv-full-history",
                "--only-summary",
                "--stop-timeout",
                "10",
                user_class,
            ],
            cwd=ROOT,
            env=env,
            stdout=locust_log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    load_seconds = time.monotonic() - began
    backlog = pending(db_url)
    drain_seconds = wait_drained(db_url, args.drain_timeout)
    time.sleep(1.5)
    sampler.stop.set()
    thread.join()
    runs_after = run_count(db_url)
    committed = runs_after - runs_before
    lag = sql(
        db_url,
        """SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM committed_at - accepted_at)),
                  percentile_cont(0.99) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM committed_at - accepted_at)),
                  COUNT(*)
           FROM runs_write WHERE id > %s AND status = 'committed' AND kind IN ('run', 'openlineage')""",
        (mark_write,),
    )[0]
    stats = locust_stats(prefix)
    result = {
        "scenario": name,
        "user_class": user_class,
        **{k: v for k, v in stats.items() if k != "names"},
        "endpoints": {
            n: {"rps": float(r["Requests/s"]), "p50": float(r["50%"]), "p99": float(r["99%"])}
            for n, r in stats["names"].items()
        },
        "runs_committed": committed,
        "committed_runs_per_s_overall": committed / (load_seconds + drain_seconds) if committed else 0.0,
        "backlog_at_end_of_load": backlog,
        "drain_seconds": drain_seconds,
        "committed_runs_per_s_draining": (backlog / drain_seconds)
        if backlog and drain_seconds > 0.5
        else None,
        "lag_p50_s": lag[0],
        "lag_p99_s": lag[1],
        "peak_web_rss_mb": max((s.web_rss for s in sampler.samples), default=0),
        "peak_worker_rss_mb": max((s.worker_rss for s in sampler.samples), default=0),
        "db_runs": runs_after,
        "db_size_mb": sql(db_url, "SELECT pg_database_size(current_database())")[0][0] / 2**20,
        "samples": [s.__dict__ for s in sampler.samples],
    }
    log(
        f"{name}: {stats['rps']:.0f} req/s, p50 {stats['p50']:.0f} ms, p99 {stats['p99']:.0f} ms, "
        f"{stats['failures']} failures; {committed} runs committed; drained in {drain_seconds:.1f} s"
    )
    return result


# --- lineage reads on known shapes ----------------------------------------------------------


def api(
    server: Server, env: dict[str, str], method: str, path: str, body: Any = None
) -> tuple[int, Any, float]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Token {env['MLTRACE_TOKEN']}", "Content-Type": "application/json"},
    )
    began = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as response:
        payload = json.loads(response.read())
        return response.status, payload, (time.perf_counter() - began) * 1000


def lineage_timings(
    env: dict[str, str], server: Server, *, chain: int = 500, flagged: int = 50
) -> dict[str, Any]:
    """A trace over a `chain`-run chain and a review of `flagged` flagged predictions, timed.

    The same shapes as bench/mltrace_baseline.py measures for mltrace 0.17.
    """
    tag = f"{time.time_ns()}"
    base = dt.datetime.now(dt.UTC)
    runs = [
        {
            "component": "chain",
            "start_timestamp": (base + dt.timedelta(seconds=i)).isoformat(),
            "end_timestamp": (base + dt.timedelta(seconds=i)).isoformat(),
            "inputs": [f"chain_{tag}_{i - 1}"] if i else [],
            "outputs": [f"chain_{tag}_{i}"],
        }
        for i in range(chain)
    ]
    api(server, env, "POST", "/api/v1/runs/batch/?sync=true", {"runs": runs})
    last = f"chain_{tag}_{chain - 1}"
    api(server, env, "GET", f"/api/v1/trace/?output_id={last}")
    trace_ms, nodes = [], 0
    for _ in range(20):
        _, body, ms = api(server, env, "GET", f"/api/v1/trace/?output_id={last}")
        trace_ms.append(ms)
        nodes = len(body["nodes"])
    recent = api(server, env, "GET", f"/api/v1/runs/?component=infer&limit={flagged}")[1]["results"]
    api(server, env, "POST", "/api/v1/unflag/", {"all": True})
    names = [run["outputs"][0]["name"] for run in recent if run["outputs"]][:flagged]
    for name in names:
        api(server, env, "POST", "/api/v1/flag/", {"output_id": name})
    review_ms, review_runs = [], 0
    for _ in range(10):
        _, body, ms = api(server, env, "GET", "/api/v1/review/")
        review_ms.append(ms)
        review_runs = len(body["runs"])
    result = {
        "chain": chain,
        "trace_nodes": nodes,
        "trace_median_ms": median(trace_ms),
        "trace_p90_ms": sorted(trace_ms)[int(len(trace_ms) * 0.9) - 1],
        "flagged": len(names),
        "review_runs": review_runs,
        "review_median_ms": median(review_ms),
    }
    log(
        f"lineage: trace of a {chain}-run chain {result['trace_median_ms']:.1f} ms; review of {len(names)} "
        f"flagged outputs ({review_runs} runs) {result['review_median_ms']:.1f} ms"
    )
    return result
