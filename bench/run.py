#!/usr/bin/env python
"""`make bench`: every Locust scenario against gunicorn and a qcluster on PostgreSQL and Redis.

For each database size (--sizes, runs in the database before measuring; 0 = empty), it seeds
the database up to that size through the workers (the queue), then runs each scenario
headless for --duration seconds with --users users, waits for the queue to drain, and
records: Locust's CSVs, requests/s, latency percentiles, failures, committed runs/s while
draining, accept-to-commit lag, peak RSS of the web and worker processes, and the size of
the database. It writes bench/results/<timestamp>/ with report.md and PNG charts.

    python bench/run.py --users 32 --duration 60 --sizes 0
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SCENARIOS = {
    "sync": ("SyncRunWriter", "one run per request, ?sync=true"),
    "async": ("AsyncRunWriter", "one run per request, 202"),
    "batch": ("BatchWriter", "100 runs per request, 202"),
    "components": ("ComponentWriter", "component writes, 202"),
    "readers": ("Reader", "trace, history, recent, review"),
}


def log(message: str) -> None:
    print(f"[bench {dt.datetime.now():%H:%M:%S}] {message}", flush=True)


# --- processes and measurements -------------------------------------------------------------


def tree_rss_mb(root_pid: int) -> dict[int, float]:
    """Resident memory of a process and its descendants, by pid, in MB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    result, stack = {}, [root_pid]
    while stack:
        pid = stack.pop()
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    result[pid] = int(line.split()[1]) / 1024
        except OSError:
            pass
        stack.extend(children.get(pid, []))
    return result


@dataclass
class Sample:
    t: float
    committed: int
    pending: int
    web_rss: float
    worker_rss: float


@dataclass
class Sampler:
    """Once a second: committed runs, pending writes, and the largest web and worker RSS."""

    db_url: str
    web_pid: int
    worker_pid: int
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        connection = psycopg2.connect(self.db_url)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT COALESCE(MAX(id), 0) FROM runs_run")
            mark = cursor.fetchone()[0]
        began = time.monotonic()
        while not self.stop.is_set():
            with connection.cursor() as cursor:
                cursor.execute("SELECT COUNT(*) FROM runs_write WHERE status = 'queued'")
                pending = cursor.fetchone()[0]
                # Only the runs committed since the scenario began: a range of the primary key,
                # not a count of a million-row table every second.
                cursor.execute("SELECT COUNT(*) FROM runs_run WHERE id > %s", [mark])
                committed = cursor.fetchone()[0]
            web = tree_rss_mb(self.web_pid)
            worker = tree_rss_mb(self.worker_pid)
            self.samples.append(
                Sample(
                    time.monotonic() - began,
                    committed,
                    pending,
                    max([v for p, v in web.items() if p != self.web_pid] or [0]),
                    max([v for p, v in worker.items() if p != self.worker_pid] or [0]),
                )
            )
            self.stop.wait(1)
        connection.close()


class Server:
    """gunicorn and a qcluster, logs under the results folder."""

    def __init__(
        self, env: dict[str, str], out: Path, *, web_workers: int, web_threads: int, port: int
    ) -> None:
        self.env, self.out, self.web_workers, self.port = env, out, web_workers, port
        self.web_threads = web_threads
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None

    def start(self) -> None:
        self.web = subprocess.Popen(
            [
                PY,
                "-m",
                "gunicorn",
                "mltrace_site.wsgi",
                "-w",
                str(self.web_workers),
                "-b",
                f"127.0.0.1:{self.port}",
                "--worker-class",
                "gthread" if self.web_threads > 1 else "sync",
                "--threads",
                str(self.web_threads),
                "--timeout",
                "120",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=open(self.out / "gunicorn.log", "ab"),  # noqa: SIM115 - lives as long as the process
            stderr=subprocess.STDOUT,
        )
        self.worker = subprocess.Popen(
            [PY, "manage.py", "qcluster"],
            cwd=ROOT,
            env=self.env,
            stdout=open(self.out / "qcluster.log", "ab"),  # noqa: SIM115 - lives as long as the process
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("the server did not become ready")

    def stop(self) -> None:
        for process in (self.web, self.worker):
            if process and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in (self.web, self.worker):
            if process:
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()


def sql(db_url: str, query: str, params: tuple = ()) -> list[tuple]:
    connection = psycopg2.connect(db_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def pending(db_url: str) -> int:
    return sql(db_url, "SELECT COUNT(*) FROM runs_write WHERE status = 'queued'")[0][0]


def wait_drained(db_url: str, timeout: float) -> float:
    began = time.monotonic()
    while pending(db_url) and time.monotonic() - began < timeout:
        time.sleep(0.5)
    return time.monotonic() - began


def run_count(db_url: str) -> int:
    return sql(db_url, "SELECT COUNT(*) FROM runs_run")[0][0]


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
           FROM runs_write WHERE id > %s AND status = 'committed' AND kind = 'run'""",
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


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


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


# --- charts and report ----------------------------------------------------------------------


def history(prefix: Path) -> list[dict[str, float]]:
    rows = []
    with open(f"{prefix}_stats_history.csv") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] != "Aggregated":
                continue
            try:
                rows.append(
                    {
                        "t": float(row["Timestamp"]),
                        "rps": float(row["Requests/s"]),
                        "p50": float(row["50%"]) if row["50%"] not in ("N/A", "") else None,
                        "p99": float(row["99%"]) if row["99%"] not in ("N/A", "") else None,
                    }
                )
            except ValueError:
                continue
    if rows:
        start = rows[0]["t"]
        for row in rows:
            row["t"] -= start
    return rows


def charts(out: Path, results: list[dict[str, Any]], label: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    writers = [r for r in results if r["scenario"] in ("sync", "async", "batch")]
    if writers:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
        for result in writers:
            rows = history(out / result["scenario"])
            top.plot([r["t"] for r in rows], [r["rps"] for r in rows], label=result["scenario"])
            bottom.plot([r["t"] for r in rows], [r["p50"] for r in rows], label=f"{result['scenario']} p50")
            bottom.plot(
                [r["t"] for r in rows], [r["p99"] for r in rows], "--", label=f"{result['scenario']} p99"
            )
        top.set_ylabel("requests/s")
        top.set_title(f"Writes, sync beside async ({label})")
        top.legend()
        bottom.set_ylabel("latency (ms)")
        bottom.set_yscale("log")
        bottom.set_xlabel("seconds")
        bottom.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "writes.png", dpi=110)
        plt.close(fig)
        made.append("writes.png")

    fig, axis = plt.subplots(figsize=(9, 4))
    for result in results:
        samples = result["samples"]
        if samples and result["runs_committed"]:
            first = samples[0]["committed"]
            axis.plot(
                [s["t"] for s in samples], [s["committed"] - first for s in samples], label=result["scenario"]
            )
    axis.set_xlabel("seconds since the scenario began (load, then draining)")
    axis.set_ylabel("runs committed")
    axis.set_title(f"Runs committed over time ({label})")
    axis.legend()
    fig.tight_layout()
    fig.savefig(out / "committed.png", dpi=110)
    plt.close(fig)
    made.append("committed.png")
    return made


def seed_chart(out: Path, seed: dict[str, Any], label: str) -> str:
    """Worker RSS against runs committed while the workers commit the seeding backlog."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = seed["worker_rss_series"]
    fig, axis = plt.subplots(figsize=(9, 4))
    axis.plot([committed for _, committed, _ in series], [rss for _, _, rss in series])
    axis.set_xlabel("runs committed by the workers")
    axis.set_ylabel("largest worker RSS (MB)")
    axis.set_ylim(bottom=0)
    axis.set_title(f"Worker memory while committing {seed['runs']:,} runs ({label})")
    fig.tight_layout()
    fig.savefig(out / "worker_memory.png", dpi=110)
    plt.close(fig)
    return "worker_memory.png"


def round_size(round_: dict[str, Any]) -> int:
    return int(round_["folder"].removeprefix("size-"))


def scale_rows(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per database size: accept latency, commit throughput and read latency."""
    rows = []
    for round_ in rounds:
        by_name = {r["scenario"]: r for r in round_["results"]}
        reads = by_name.get("readers", {}).get("endpoints", {})
        row: dict[str, Any] = {"size": round_size(round_)}
        for name in ("sync", "async", "batch"):
            if name in by_name:
                row[f"{name}_rps"] = by_name[name]["rps"]
                row[f"{name}_p50"] = by_name[name]["p50"]
                row[f"{name}_p99"] = by_name[name]["p99"]
        if "batch" in by_name:
            row["drain_runs_per_s"] = by_name["batch"]["committed_runs_per_s_draining"]
        for label, endpoint in (
            ("trace", "GET /trace/"),
            ("history", "GET /history/"),
            ("recent", "GET /runs/ (recent)"),
            ("review", "GET /review/"),
        ):
            if endpoint in reads:
                row[f"{label}_p50"] = reads[endpoint]["p50"]
                row[f"{label}_p99"] = reads[endpoint]["p99"]
        if round_.get("lineage"):
            row["chain_trace_ms"] = round_["lineage"]["trace_median_ms"]
        if round_.get("seed"):
            row["seed_runs_per_s"] = round_["seed"]["runs_per_s"]
            row["seed_worker_mb"] = round_["seed"]["peak_worker_rss_mb"]
        rows.append(row)
    return rows


def scale_chart(out: Path, rounds: list[dict[str, Any]]) -> str:
    """Accept latency, commit throughput and read latency against the size of the database."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = scale_rows(rounds)
    sizes = [max(row["size"], 1) for row in rows]
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(14, 4.2))
    for key, label in (
        ("async_p50", "async accept p50"),
        ("async_p99", "async accept p99"),
        ("sync_p50", "sync write p50"),
    ):
        left.plot(sizes, [row.get(key) for row in rows], marker="o", label=label)
    left.set_ylabel("ms")
    left.set_title("Write latency (32 users)")
    for key, label in (
        ("drain_runs_per_s", "runs/s committed draining a batch backlog"),
        ("seed_runs_per_s", "runs/s committed while seeding"),
    ):
        middle.plot(sizes, [row.get(key) for row in rows], marker="o", label=label)
    middle.set_ylabel("committed runs/s")
    middle.set_ylim(bottom=0)
    middle.set_title("Commit throughput (2 workers)")
    for key, label in (
        ("trace_p50", "trace"),
        ("history_p50", "history"),
        ("recent_p50", "recent"),
        ("review_p50", "review"),
        ("chain_trace_ms", "500-run chain trace, alone"),
    ):
        right.plot(sizes, [row.get(key) for row in rows], marker="o", label=label)
    right.set_ylabel("ms (p50 under 32 reading users; the chain alone)")
    right.set_title("Read latency")
    for axis in (left, middle, right):
        axis.set_xscale("log")
        axis.set_xlabel("runs in the database (0 plotted at 1)")
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "scale.png", dpi=110)
    plt.close(fig)
    return "scale.png"


def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def report(out: Path, run: dict[str, Any], rounds: list[dict[str, Any]], machine: dict[str, Any]) -> None:
    lines = [
        f"# mltrace server benchmark, {dt.datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"Machine: {machine['cpus']} cores, {machine['memory_gb']:.0f} GB; {machine['python']}; "
        f"{machine['postgres']}; Redis {machine['redis']}.",
        f"Command: `{run['command']}`. {run['users']} users, {run['duration']} s per scenario, gunicorn "
        f"{run['web_workers']} sync workers, qcluster {run['queue_workers']} workers, "
        f"MLTRACE_COMMIT_BATCH={run['commit_batch']}.",
        "",
    ]
    for round_ in rounds:
        results = round_["results"]
        lines += [
            f"## {round_['label']}",
            "",
            "| scenario | req/s | p50 ms | p95 ms | p99 ms | failures | runs committed | committed runs/s "
            "(draining) | lag p50 s | lag p99 s | peak web MB | peak worker MB | DB runs | DB MB |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in results:
            lines.append(
                f"| {r['scenario']} | {fmt(r['rps'])} | {fmt(r['p50'])} | {fmt(r['p95'])} | {fmt(r['p99'])} | "
                f"{fmt(r['failures'])} | {fmt(r['runs_committed'])} | "
                f"{fmt(r['committed_runs_per_s_overall'])} ({fmt(r['committed_runs_per_s_draining'])}) | "
                f"{fmt(r['lag_p50_s'], 2)} | {fmt(r['lag_p99_s'], 2)} | {fmt(r['peak_web_rss_mb'])} | "
                f"{fmt(r['peak_worker_rss_mb'])} | {fmt(r['db_runs'])} | {fmt(r['db_size_mb'])} |"
            )
        by_name = {r["scenario"]: r for r in results}
        if "sync" in by_name and "async" in by_name and by_name["sync"]["rps"]:
            lines += [
                "",
                f"Async accept / sync: **{by_name['async']['rps'] / by_name['sync']['rps']:.1f}x** req/s.",
            ]
        if "readers" in by_name:
            lines += ["", "| read | req/s | p50 ms | p99 ms |", "|---|---|---|---|"]
            for name, e in by_name["readers"]["endpoints"].items():
                if not name.startswith("(setup)"):
                    lines.append(f"| {name} | {fmt(e['rps'])} | {fmt(e['p50'])} | {fmt(e['p99'])} |")
        if round_.get("lineage"):
            lin = round_["lineage"]
            lines += [
                "",
                f"Trace of a {lin['chain']}-run chain ({lin['trace_nodes']} nodes): median "
                f"{lin['trace_median_ms']:.1f} ms, p90 {lin['trace_p90_ms']:.1f} ms. Review of {lin['flagged']} "
                f"flagged predictions ({lin['review_runs']} runs): median {lin['review_median_ms']:.1f} ms.",
            ]
        if round_.get("seed"):
            seed = round_["seed"]
            lines += [
                "",
                f"Seeding to this size through the queue: {fmt(seed['runs'])} runs committed by the workers at "
                f"{fmt(seed['runs_per_s'])} runs/s; peak worker RSS {fmt(seed['peak_worker_rss_mb'])} MB.",
            ]
        for chart in round_["charts"]:
            lines += ["", f"![{chart}]({round_['folder']}/{chart})"]
        lines.append("")
    if len(rounds) > 1:
        lines += [
            "## As the database grows",
            "",
            "| runs in DB | sync req/s | async req/s | async p50 / p99 ms | batch draining runs/s | "
            "seeding runs/s | trace p50 ms | history p50 ms | recent p50 ms | review p50 ms | "
            "500-run chain trace ms | worker MB after seeding |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in scale_rows(rounds):
            lines.append(
                f"| {fmt(row['size'])} | {fmt(row.get('sync_rps'))} | {fmt(row.get('async_rps'))} | "
                f"{fmt(row.get('async_p50'))} / {fmt(row.get('async_p99'))} | {fmt(row.get('drain_runs_per_s'))} | "
                f"{fmt(row.get('seed_runs_per_s'))} | {fmt(row.get('trace_p50'))} | {fmt(row.get('history_p50'))} | "
                f"{fmt(row.get('recent_p50'))} | {fmt(row.get('review_p50'))} | {fmt(row.get('chain_trace_ms'), 1)} | "
                f"{fmt(row.get('seed_worker_mb'))} |"
            )
        lines += ["", f"![scale.png]({scale_chart(out, rounds)})", ""]
    (out / "report.md").write_text("\n".join(lines))


def machine_facts(env: dict[str, str]) -> dict[str, Any]:
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    postgres = sql(env["DATABASE_URL"], "SHOW server_version")[0][0]
    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True
    ).stdout.split()[2]
    return {
        "cpus": os.cpu_count(),
        "memory_gb": memory,
        "python": f"Python {sys.version.split()[0]}",
        "postgres": f"PostgreSQL {postgres}",
        "redis": redis_version.removeprefix("v="),
    }


# --- main -----------------------------------------------------------------------------------


def reset_database(db_url: str) -> None:
    import dj_database_url

    name = dj_database_url.parse(db_url)["NAME"]
    admin = psycopg2.connect(db_url.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def seed(env: dict[str, str], runs: int, server: Server, out: Path) -> dict[str, Any]:
    """Queues `runs` pipeline runs and waits for the workers to commit them."""
    db_url = env["DATABASE_URL"]
    before = run_count(db_url)
    sampler = Sampler(db_url, server.web.pid, server.worker.pid)
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    log(f"seeding {runs} runs through the queue")
    began = time.monotonic()
    with open(out / "seed.log", "a") as seed_log:
        subprocess.run(
            [PY, "manage.py", "seed_bench", "--runs", str(runs), "--queue"],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=seed_log,
            stderr=subprocess.STDOUT,
        )
    wait_drained(db_url, 3600)
    seconds = time.monotonic() - began
    sampler.stop.set()
    thread.join()
    # What autovacuum would do soon after a bulk load; measurements should not hang on when.
    vacuum = psycopg2.connect(db_url)
    vacuum.autocommit = True
    vacuum.cursor().execute("VACUUM ANALYZE")
    vacuum.close()
    committed = run_count(db_url) - before
    log(f"seeded {committed} runs in {seconds:.0f} s ({committed / seconds:.0f} runs/s)")
    return {
        "runs": committed,
        "seconds": seconds,
        "runs_per_s": committed / seconds,
        "peak_worker_rss_mb": max((s.worker_rss for s in sampler.samples), default=0),
        "worker_rss_series": [(s.t, s.committed, s.worker_rss) for s in sampler.samples],
    }


def fresh_server(args: argparse.Namespace, env: dict[str, str], out: Path) -> Server:
    """An empty, migrated database, a flushed Redis, a token, and gunicorn and qcluster on them."""
    import redis

    reset_database(args.database_url)
    redis.from_url(args.redis_url).flushdb()
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    env["MLTRACE_TOKEN"] = subprocess.run(
        [PY, "manage.py", "create_api_token", "bench"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    server = Server(env, out, web_workers=args.web_workers, web_threads=args.web_threads, port=args.port)
    server.start()
    return server


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
        "--web-threads", type=int, default=1, help="threads per gunicorn worker (>1: gthread, keep-alive)"
    )
    parser.add_argument("--queue-workers", type=int, default=2)
    parser.add_argument("--drain-timeout", type=float, default=1800)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mltrace_bench"),
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"))
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--report-only",
        type=Path,
        help="rewrite report.md and scale.png of a results folder, measure nothing",
    )
    args = parser.parse_args()
    if args.report_only:
        folder = args.report_only
        saved = json.loads((folder / "run.json").read_text())
        report(folder, saved["run"], json.loads((folder / "results.json").read_text()), saved["machine"])
        return
    run = {
        "command": " ".join(sys.argv),
        "users": args.users,
        "duration": args.duration,
        "web_workers": args.web_workers,
        "queue_workers": args.queue_workers,
        "commit_batch": os.environ.get("MLTRACE_COMMIT_BATCH", "1000"),
    }

    out = args.out or ROOT / "bench" / "results" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
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
    rounds = []
    for size in [int(s) for s in args.sizes.split(",")]:
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
        report(out, run, rounds, machine)
    log(f"report: {out / 'report.md'}")
    latest = ROOT / "bench" / "results" / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink() if latest.is_symlink() else shutil.rmtree(latest)
    if out.parent == latest.parent:
        latest.symlink_to(out.name)


if __name__ == "__main__":
    main()
