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
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import client_bench, cpu_share, pgcluster  # noqa: E402

PY = sys.executable
BASELINE_JSON = ROOT / "docs" / "benchmarks" / "mltrace-baseline.json"
SCENARIOS = {
    "sync": ("SyncRunWriter", "one run per request, ?sync=true"),
    "async": ("AsyncRunWriter", "one run per request, 202"),
    "batch": ("BatchWriter", "100 runs per request, 202"),
    "components": ("ComponentWriter", "component writes, 202"),
    "openlineage": ("OpenLineageWriter", "OpenLineage events one per request (START, COMPLETE), 202"),
    "openlineage_batch": ("OpenLineageBatchWriter", "100 OpenLineage events (50 runs) per request, 200"),
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


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a live process has used (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(ticks[:8])
    idle = ticks[3] + ticks[4]  # idle, iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (total - idle) / hz, total / hz


class CpuMeter:
    """CPU seconds used between start() and stop() by the web and worker process trees, by
    PostgreSQL's processes (a backend that exits meanwhile is lost), and by the whole machine."""

    def __init__(self, web_pid: int, worker_pid: int) -> None:
        self.roots = {"web": web_pid, "workers": worker_pid}

    def _snapshot(self) -> dict[str, dict[int, float]]:
        groups = {name: {p: cpu_seconds(p) for p in tree_rss_mb(pid)} for name, pid in self.roots.items()}
        groups["postgres"] = {p: cpu_seconds(p) for p in postgres_pids()}
        return groups

    def start(self) -> None:
        self.began, self.first, self.machine = time.monotonic(), self._snapshot(), machine_busy()

    def stop(self) -> dict[str, float]:
        last, (busy, total) = self._snapshot(), machine_busy()
        used = {
            f"{name}_cpu_s": sum(v - self.first[name].get(p, 0.0) for p, v in pids.items())
            for name, pids in last.items()
        }
        used["wall_s"] = time.monotonic() - self.began
        used["machine_busy_cpu_s"] = busy - self.machine[0]
        used["machine_busy_share"] = (busy - self.machine[0]) / max(total - self.machine[1], 1e-9)
        return used


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
        self, env: dict[str, str], out: Path, *, web_workers: int, web_class: str, web_threads: int, port: int
    ) -> None:
        self.env, self.out, self.web_workers, self.port = env, out, web_workers, port
        self.web_class, self.web_threads = web_class, web_threads
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
                self.web_class,
                "--threads",
                str(self.web_threads),
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
           FROM runs_write WHERE id > %s AND status = 'committed' AND kind IN ('run', 'lineage')""",
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


# --- the client scenario --------------------------------------------------------------------


def commit_log_stats(log_path: Path) -> dict[str, Any]:
    """The workers' "committed N writes in X ms" lines: batches, writes, and time in commits."""
    import re

    pattern = re.compile(r"committed (\d+) writes in ([\d.]+) ms")
    sizes, millis = [], []
    if log_path.exists():
        for line in log_path.read_text(errors="replace").splitlines():
            found = pattern.search(line)
            if found:
                sizes.append(int(found.group(1)))
                millis.append(float(found.group(2)))
    total_ms = sum(millis)
    return {
        "batches": len(sizes),
        "writes": sum(sizes),
        "commit_s": total_ms / 1000,
        "writes_per_commit_s": sum(sizes) / (total_ms / 1000) if total_ms else None,
        "ms_per_batch_p50": median(millis) if millis else None,
        "ms_per_batch_max": max(millis, default=None),
        "writes_per_batch_mean": sum(sizes) / len(sizes) if sizes else None,
    }


def mltrace_baseline(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """mltrace 0.17's log_component_run on an empty database: measured now by
    bench/mltrace_baseline.py if bench/.mltrace-venv is set up, else its last saved results."""
    venv = ROOT / "bench" / ".mltrace-venv"
    if (venv / "bin" / "python").exists() and (venv / ".installed").exists():
        target = out / "mltrace-baseline.json"
        base = args.database_url.rsplit("/", 1)[0]
        log(
            f"mltrace 0.17: {args.baseline_runs} runs through its log_component_run (bench/mltrace_baseline.py)"
        )
        with open(out / "mltrace-baseline.log", "w") as baseline_log:
            proc = subprocess.run(
                [
                    PY,
                    str(ROOT / "bench" / "mltrace_baseline.py"),
                    "--db",
                    f"{base}/mltrace_baseline_client",
                    "--runs",
                    str(args.baseline_runs),
                    # Only the empty-database ingest is used here: the other parts kept small.
                    "--seed-runs",
                    "1000",
                    "--runs-at-size",
                    "5",
                    "--chain",
                    "20",
                    "--flagged",
                    "5",
                    "--repeat",
                    "1",
                    "--out",
                    str(target),
                ],
                cwd=ROOT,
                stdout=baseline_log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if proc.returncode == 0 and target.exists():
            results = json.loads(target.read_text())
            return {
                "measured": True,
                "source": f"measured in this run by bench/mltrace_baseline.py ({args.baseline_runs} runs "
                "of the etl, train, infer pipeline on an empty database)",
                **results,
            }
        log(
            f"mltrace 0.17: bench/mltrace_baseline.py failed (exit {proc.returncode}); using {BASELINE_JSON.name}"
        )
        why = "bench/mltrace_baseline.py failed in this run (see mltrace-baseline.log)"
    else:
        why = "there is no bench/.mltrace-venv; `python bench/mltrace_baseline.py --setup` makes it"
    results = json.loads(BASELINE_JSON.read_text())
    return {
        "measured": False,
        "source": f"not measured in this run ({why}): taken from docs/benchmarks/mltrace-baseline.json "
        f"({results['empty']['runs']} runs on an empty database, mltrace {results['mltrace_version']}, "
        f"Python {results['python']})",
        **results,
    }


def client_round(args: argparse.Namespace, env: dict[str, str], out: Path) -> dict[str, Any]:
    """bench/client_bench.py in a tight loop, then paced, each on a fresh database and server."""
    folder = out / "client"
    folder.mkdir(exist_ok=True)
    modes = [None] + ([args.client_rate] if args.client_rate else [])
    results = []
    for rate in modes:
        sub = folder / ("tight" if rate is None else f"paced-{rate:g}")
        sub.mkdir(exist_ok=True)
        server = fresh_server(args, env, sub)
        sampler = Sampler(env["DATABASE_URL"], server.web.pid, server.worker.pid)
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
        meter = CpuMeter(server.web.pid, server.worker.pid)
        meter.start()
        try:
            result = client_bench.measure(
                f"http://127.0.0.1:{args.port}",
                env["MLTRACE_TOKEN"],
                env["DATABASE_URL"],
                runs=args.client_runs,
                rate=rate,
                out=sub,
            )
            cpu = meter.stop()
        finally:
            sampler.stop.set()
            thread.join()
            server.stop()
        result["folder"] = str(sub.relative_to(out))
        result["server"] = {
            "cpu": cpu,
            "peak_web_rss_mb": max((s.web_rss for s in sampler.samples), default=0),
            "peak_worker_rss_mb": max((s.worker_rss for s in sampler.samples), default=0),
            "peak_queued": max((s.pending for s in sampler.samples), default=0),
            "commits": commit_log_stats(sub / "qcluster.log"),
            "samples": [s.__dict__ for s in sampler.samples],
        }
        (sub / "result.json").write_text(json.dumps(result, indent=1, default=str))
        results.append(result)
    baseline = mltrace_baseline(args, folder)
    return {
        "runs": args.client_runs,
        "web_workers": args.web_workers,
        "web_class": args.web_class,
        "queue_workers": args.queue_workers,
        "cpus": os.cpu_count(),
        "modes": results,
        "baseline": baseline,
        "charts": [client_chart(out, results)],
    }


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


def client_chart(out: Path, modes: list[dict[str, Any]]) -> str:
    """Runs committed and writes queued over time, for each mode of the client scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for mode in modes:
        samples = mode["server"]["samples"]
        top.plot([s["t"] for s in samples], [s["committed"] for s in samples], label=mode["mode"])
        bottom.plot([s["t"] for s in samples], [s["pending"] for s in samples], label=mode["mode"])
    top.set_ylabel("runs committed")
    top.set_title(f"The client scenario: {modes[0]['producer']['runs']:,} runs through log_component_run")
    top.legend()
    bottom.set_ylabel("writes accepted, not committed")
    bottom.set_xlabel("seconds since the server was up")
    bottom.legend()
    fig.tight_layout()
    fig.savefig(out / "client.png", dpi=110)
    plt.close(fig)
    return "client.png"


def us(value: float | None) -> str:
    """Microseconds as µs below a millisecond, else as ms."""
    if value is None:
        return "-"
    if value < 1000:
        return f"{value:,.1f} µs"
    return f"{value / 1000:,.2f} ms"


def verdict(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not judged"}[met]


def client_section(client: dict[str, Any]) -> list[str]:
    """report.md's section on the client scenario: every number, the targets met or missed."""
    modes = client["modes"]
    baseline = client["baseline"]
    empty = baseline["empty"]
    targets = client_bench.TARGETS
    runs = client["runs"]

    def row(label: str, cells: list[str], target: str = "", mltrace: str = "") -> str:
        return f"| {label} | " + " | ".join(cells) + f" | {target} | {mltrace} |"

    def each(get: Any) -> list[str]:
        return [get(m["producer"], m["database"], m) for m in modes]

    def judged(text: str, key: str) -> Any:
        return lambda p, d, m: f"{text.format(p=p, d=d)} ({verdict(m['targets'][key])})"

    lines = [
        f"## Client: {runs:,} inference runs through log_component_run",
        "",
        f"One process (`bench/client_bench.py`) imports only the client (`mltrace`, client/) and logs "
        f"{runs:,} runs of component `infer`, each with input `{client_bench.MODEL}` (MODEL, the output of "
        "one `train` run logged and committed before the clock starts) and one ENDPOINT output of its own "
        "name. Each ComponentRun is built first; the `log_component_run` call alone is timed "
        "(perf_counter_ns). Then `mltrace.flush()` waits until the server has committed every run. The "
        "database is then checked: the scenario's runs, their distinct outputs, each run once. Each mode "
        f"runs against a fresh database and server (gunicorn {client['web_workers']} {client.get('web_class', 'sync')} workers, qcluster "
        f"{client['queue_workers']} workers, as above), on the same 2 cores as the producer.",
        "",
        f"mltrace 0.17's `log_component_run`: {baseline['source']}.",
        "",
        "| | " + " | ".join(m["mode"] for m in modes) + " | target | mltrace 0.17 |",
        "|---|" + "---|" * len(modes) + "---|---|",
        row(
            "caller's cost per call, p50",
            each(judged("{p[call][p50_us]:.1f} µs", "p50")),
            f"≤ {targets['p50_us']:.0f} µs",
            f"{empty['p50_ms']:,.1f} ms",
        ),
        row("p90", each(lambda p, d, m: us(p["call"]["p90_us"]))),
        row(
            "p99",
            [f"{us(m['producer']['call']['p99_us'])} ({verdict(m['targets']['p99'])})" for m in modes],
            f"≤ {us(targets['p99_us'])}",
            f"{empty['p99_ms']:,.1f} ms",
        ),
        row("p99.9", each(lambda p, d, m: us(p["call"]["p999_us"]))),
        row("max", each(lambda p, d, m: us(p["call"]["max_us"])), "", f"{empty['max_ms']:,.1f} ms"),
        row("mean", each(lambda p, d, m: us(p["call"]["mean_us"]))),
        row("calls over 1 ms", each(lambda p, d, m: f"{p['calls_over_1ms']:,}")),
        row(
            "time blocked on a full buffer",
            each(
                lambda p, d, m: (
                    f"{p['blocked_s']:.2f} s in {p['blocked_calls']:,} calls (longest "
                    f"{p['blocked_max_ms']:,.0f} ms); {p['warnings']} warnings"
                )
            ),
            f"buffer {modes[0]['producer']['buffer_size']:,} writes",
        ),
        row(
            "time to make all the calls",
            each(lambda p, d, m: f"{p['log_s']:.2f} s ({p['log_runs_per_s']:,.0f} calls/s)"),
        ),
        row("time until all accepted", each(lambda p, d, m: f"{p['accept_s']:.2f} s")),
        row(
            "time until all committed (flush returned)",
            each(
                lambda p, d, m: (
                    f"{p['commit_s']:.2f} s ({p['drain_after_accept_s']:.2f} s after the last accept)"
                )
            ),
        ),
        row(
            "committed runs/s, end to end",
            each(judged("{p[committed_runs_per_s]:,.0f}", "committed_runs_per_s")),
            f"≥ {targets['committed_runs_per_s']:,.0f}",
            f"{empty['runs_per_s']:,.1f}",
        ),
        row(
            "in the database: runs / distinct outputs",
            each(
                lambda p, d, m: (
                    f"{d['runs']:,} / {d['distinct_outputs']:,} "
                    f"({verdict(m['targets']['all_committed_once'])})"
                )
            ),
            f"{runs:,} / {runs:,}, once",
        ),
        row(
            "runs reading model.pkl / with their dependency on train",
            each(lambda p, d, m: f"{d['runs_reading_model']:,} / {d['runs_with_dependency']:,}"),
        ),
        row(
            "peak RSS of the producer",
            each(
                lambda p, d, m: (
                    f"{p['rss_at_end']['peak_rss_mb']:,.0f} MB ({p['rss_at_start']['rss_mb']:,.0f} MB at start)"
                )
            ),
        ),
        row(
            "requests (runs per request): round trip p50 / p99",
            each(
                lambda p, d, m: (
                    f"{p['requests']:,} ({p['request_runs_mean']:,.0f}): {p['request_ms']['p50_ms']:,.0f} / "
                    f"{p['request_ms']['p99_ms']:,.0f} ms"
                )
            ),
        ),
        row(
            "sending thread busy, share of the time to accept",
            each(
                lambda p, d, m: (
                    f"{p['sender_busy_s']:.1f} s ({p['sender_busy_share']:.0%}), {p['sender_post_s']:.1f} s in POSTs"
                )
            ),
        ),
        row(
            "accept to commit lag p50 / p99 / max",
            each(lambda p, d, m: f"{d['lag_p50_s']:.2f} / {d['lag_p99_s']:.2f} / {d['lag_max_s']:.2f} s"),
        ),
        row(
            "worker commits: batches, writes per second of commit",
            [
                f"{c['batches']:,} ({fmt(c['writes_per_batch_mean'])} writes, p50 {fmt(c['ms_per_batch_p50'])} ms): "
                f"{fmt(c['writes_per_commit_s'])}/s"
                for c in (m["server"]["commits"] for m in modes)
            ],
        ),
        row(
            "CPU seconds: producer / web / workers / PostgreSQL (machine busy)",
            [
                f"{m['producer']['cpu_s']:.1f} / {m['server']['cpu']['web_cpu_s']:.1f} / "
                f"{m['server']['cpu']['workers_cpu_s']:.1f} / {m['server']['cpu']['postgres_cpu_s']:.1f} s "
                f"in {m['server']['cpu']['wall_s']:.0f} s ({m['server']['cpu']['machine_busy_share']:.0%} of "
                f"{client.get('cpus', os.cpu_count())} cores)"
                for m in modes
            ],
        ),
        row(
            "most writes queued at once",
            [f"{m['server']['peak_queued']:,}" for m in modes],
        ),
        row(
            "peak web / worker RSS",
            [
                f"{fmt(m['server']['peak_web_rss_mb'])} / {fmt(m['server']['peak_worker_rss_mb'])} MB"
                for m in modes
            ],
        ),
    ]
    for m in modes:
        p, commits = m["producer"], m["server"]["commits"]
        paced_s = p["runs"] / p["rate"] if p["rate"] else 0.0
        if p["drain_after_accept_s"] > 0.2 * p["accept_s"]:
            limit = (
                f"the commit limited it: {p['drain_after_accept_s']:.1f} s of commits after the last accept "
                f"(the workers committed {fmt(commits['writes_per_commit_s'])} writes per second of commit "
                f"transaction, slowest batch {fmt(commits['ms_per_batch_max'])} ms)"
            )
        elif p["rate"] and p["accept_s"] < 1.05 * paced_s + 1:
            limit = (
                f"the pace limited it: every run was accepted {p['accept_s'] - paced_s:.2f} s after the "
                f"{paced_s:,.0f} s its calls took, in {p['requests']:,} POSTs of {p['request_runs_mean']:,.0f} "
                f"runs on average, and committed {p['drain_after_accept_s']:.2f} s after the last accept: the "
                "server kept up"
            )
        elif p["sender_busy_share"] > 0.9:
            limit = (
                f"the accept limited it: the one sending thread was busy {p['sender_busy_share']:.0%} of the time "
                f"to accept, {p['sender_post_s'] / max(p['sender_busy_s'], 1e-9):.0%} of that waiting for POSTs "
                f"of {p['request_runs_mean']:,.0f} runs (p50 {p['request_ms']['p50_ms']:,.0f} ms each); the commit "
                f"ended {p['drain_after_accept_s']:.1f} s after the last accept"
            )
        else:
            limit = "the producer limited it: the server kept up"
        lines += ["", f"{m['mode']}: {limit}."]
    paced = [m for m in modes if m["producer"]["rate"]]
    for m in paced:
        p = m["producer"]
        lines += [
            "",
            f"{m['mode']}: the producer fell at most {p['behind_schedule_max_ms']:,.1f} ms behind its schedule; "
            "its committed runs/s cannot exceed the pace, so that target is judged on the tight loop only.",
        ]
    lines += [
        "",
        f"The producer imported no server module ({', '.join(modes[0]['producer']['server_modules_imported']) or 'none'} "
        f"imported); client {modes[0]['producer']['client_version']} from {modes[0]['producer']['client_file']}.",
    ]
    for chart in client["charts"]:
        lines += ["", f"![{chart}]({chart})"]
    lines.append("")
    return lines


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


def openlineage_lines(by_name: dict[str, dict[str, Any]]) -> list[str]:
    """OpenLineage intake beside the native run endpoints: events/s and runs/s accepted (an
    OpenLineage run is two events, START and COMPLETE)."""
    if "openlineage" not in by_name and "openlineage_batch" not in by_name:
        return []
    size = int(os.environ.get("BENCH_BATCH_SIZE", "100"))
    rows = [  # scenario, events per request, events per run
        ("async", 1, 1, "POST /runs/ (native, 1 run)"),
        ("batch", size, 1, f"POST /runs/batch/ (native, {size} runs)"),
        ("openlineage", 1, 2, "POST /lineage (1 event)"),
        ("openlineage_batch", size, 2, f"POST /lineage/batch ({size} events)"),
    ]
    lines = [
        "",
        "| path | req/s | events/s | runs/s accepted | p50 ms | p99 ms | runs committed/s overall |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, per_request, per_run, label in rows:
        if name in by_name:
            r = by_name[name]
            events = r["rps"] * per_request
            lines.append(
                f"| {label} | {fmt(r['rps'])} | {fmt(events) if per_run == 2 else '-'} | {fmt(events / per_run)} | "
                f"{fmt(r['p50'])} | {fmt(r['p99'])} | {fmt(r['committed_runs_per_s_overall'])} |"
            )
    return lines


def report(
    out: Path,
    run: dict[str, Any],
    rounds: list[dict[str, Any]],
    machine: dict[str, Any],
    client: dict[str, Any] | None = None,
    sustained: dict[str, Any] | None = None,
) -> None:
    lines = [
        f"# mltrace server benchmark, {dt.datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"Machine: {machine['cpus']} cores, {machine['memory_gb']:.0f} GB; {machine['python']}; "
        f"{machine['postgres']}; Redis {machine['redis']}.",
        f"Command: `{run['command']}`. "
        + (f"{run['users']} users, {run['duration']} s per scenario, " if rounds else "")
        + f"gunicorn {run['web_workers']} {run.get('web_class', 'sync')} workers, qcluster {run['queue_workers']} workers, "
        f"MLTRACE_COMMIT_BATCH={run['commit_batch']}.",
        "",
    ]
    if client:
        lines += client_section(client)
    if sustained:
        lines += sustained_section(sustained)
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
        lines += openlineage_lines(by_name)
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
    # What PostgreSQL ran with, for the settings docker-compose.yml sets (bench/pgcluster.py).
    names = [*pgcluster.compose_settings(), "autovacuum"]
    configured = {
        name: sql(env["DATABASE_URL"], "SELECT current_setting(%s)", (name,))[0][0] for name in names
    }
    return {
        "cpus": os.cpu_count(),
        "memory_gb": memory,
        "python": f"Python {sys.version.split()[0]}",
        "postgres": f"PostgreSQL {postgres} ({', '.join(f'{k}={v}' for k, v in configured.items())})",
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
            [PY, "bench/seed.py", "--runs", str(runs), "--queue"],
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


def add_service_arguments(parser: argparse.ArgumentParser) -> None:
    """--database-url and --redis-url: the bench's own database and Redis database."""
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mltrace_bench"),
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"))


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
    server = Server(
        env,
        out,
        web_workers=args.web_workers,
        web_class=args.web_class,
        web_threads=args.web_threads,
        port=args.port,
    )
    server.start()
    return server


# --- sustained ingest beside the limit and the ceiling (issue 14) ----------------------------


def wrk_installed() -> str | None:
    """wrk's path, or None (logged: the accept comparison is then skipped)."""
    exe = shutil.which("wrk")
    if exe is None:
        log("wrk is not installed (apt-get install wrk): the accept comparison is skipped")
    return exe


def wrk_accepts(url: str, token: str, seconds: int, out: Path, name: str) -> dict[str, Any] | None:
    """wrk -t2 -c32 posting one inference run a request (bench/accept_run.lua): req/s and
    latency percentiles in ms, or None where wrk is not installed."""
    import re

    exe = wrk_installed()
    if exe is None:
        return None
    script = ROOT / "bench" / "accept_run.lua"
    command = [exe, "-t2", "-c32", f"-d{seconds}s", "-s", str(script), "--latency", url]
    proc = subprocess.run(
        command, env={**os.environ, "TOKEN": token}, capture_output=True, text=True, check=True
    )
    (out / f"wrk-{name}.txt").write_text(proc.stdout + proc.stderr)
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    percentiles = {
        f"p{int(float(q))}": float(value) * units[unit]
        for q, value, unit in re.findall(r"^\s+(\d+(?:\.\d+)?)%\s+([\d.]+)(us|ms|s)\s*$", proc.stdout, re.M)
    }
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", proc.stdout).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", proc.stdout)
    errors = re.search(r"Socket errors: (.*)", proc.stdout)
    result = {
        "rps": rps,
        **percentiles,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
    }
    log(f"wrk, {name}: {rps:.0f} req/s, p50 {result.get('p50', 0):.0f} ms, p99 {result.get('p99', 0):.0f} ms")
    return result


def ceiling_accepts(args: argparse.Namespace, env: dict[str, str], out: Path) -> dict[str, Any] | None:
    """The ceiling: a minimal Django + DRF endpoint doing one INSERT (bench/ceiling/), served
    by as many gevent workers as ours, loaded by the same wrk script."""
    if wrk_installed() is None:
        return None
    from bench.ceiling import CREATE_TABLE

    reset_database(args.database_url)
    connection = psycopg2.connect(args.database_url)
    connection.autocommit = True
    connection.cursor().execute(CREATE_TABLE)
    connection.close()
    port = args.port + 1
    ceiling_env = {
        **env,
        "DJANGO_SETTINGS_MODULE": "bench.ceiling.settings",
        "WEB_CONCURRENCY": str(args.web_workers),
    }
    with open(out / "ceiling.log", "ab") as ceiling_log:
        web = subprocess.Popen(
            [
                PY,
                "-m",
                "gunicorn",
                "-c",
                str(ROOT / "bench" / "ceiling" / "gunicorn.conf.py"),
                "-b",
                f"127.0.0.1:{port}",
            ],
            cwd=ROOT,
            env=ceiling_env,
            stdout=ceiling_log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(
                        urllib.request.Request(
                            f"http://127.0.0.1:{port}/api/v1/runs/", data=b"{}", method="POST"
                        ),
                        timeout=2,
                    )
                    break
                except urllib.error.HTTPError:
                    break  # it answers
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the ceiling did not start") from None
                    time.sleep(0.5)
            return wrk_accepts(f"http://127.0.0.1:{port}", "none", args.wrk_seconds, out, "ceiling")
        finally:
            web.send_signal(signal.SIGTERM)
            web.wait(60)


def commit_scaling(args: argparse.Namespace, env: dict[str, str], out: Path, workers: int) -> dict[str, Any]:
    """Committed runs/s of a backlog of --scaling-runs pipeline runs, queued before a qcluster
    of `workers` workers starts: from its first commit to its last."""
    import redis

    reset_database(args.database_url)
    redis.from_url(args.redis_url).flushdb()
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    with open(out / f"scaling-{workers}.log", "ab") as scaling_log:
        subprocess.run(
            [PY, "bench/seed.py", "--runs", str(args.scaling_runs), "--queue", "--predictions", "10"],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=scaling_log,
            stderr=subprocess.STDOUT,
        )
        cluster = subprocess.Popen(
            [PY, "manage.py", "qcluster"],
            cwd=ROOT,
            env={**env, "MLTRACE_WORKERS": str(workers)},
            stdout=scaling_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_drained(args.database_url, args.drain_timeout)
        finally:
            cluster.send_signal(signal.SIGTERM)
            cluster.wait(60)
    first, last, committed = sql(
        args.database_url,
        "SELECT MIN(committed_at), MAX(committed_at), COUNT(*) FROM runs_write WHERE status = 'committed'",
    )[0]
    stats = commit_log_stats(out / f"scaling-{workers}.log")
    seconds = (last - first).total_seconds()
    result = {
        "workers": workers,
        "runs": committed,
        "seconds": seconds,
        # The first batch's own time is not between the first and the last commit.
        "runs_per_s": committed / (seconds + (stats["ms_per_batch_p50"] or 0) / 1000),
        "ms_per_1000_run_commit_p50": stats["ms_per_batch_p50"],
    }
    log(
        f"commit scaling, {workers} worker(s): {committed} runs in {seconds:.1f} s, {result['runs_per_s']:.0f} runs/s"
    )
    return result


def sustained_round(args: argparse.Namespace, env: dict[str, str], out: Path) -> dict[str, Any]:
    """The limit, the ceiling and ours beside it, a 1,000-run batch's latency, the sustained
    run at each --sizes, and 1/2/3-worker commit scaling."""
    from bench import batch_accept, limit, sustained

    out.mkdir(exist_ok=True)
    result: dict[str, Any] = {"rounds": []}
    base = args.database_url.rsplit("/", 1)[0]
    # The limit twice: into empty tables, and for as many runs as the sustained run writes
    # (its indexes then outgrow shared_buffers, as the server's do during that run).
    result["limits"] = []
    for runs in (args.limit_runs, args.limit_volume_runs):
        if not runs:
            continue
        log(f"the limit: COPY of the rows of {runs} pipeline runs (bench/limit.py)")
        measured = limit.measure(f"{base}/mltrace_limit", runs=runs, batch=1000, predictions=10, say=log)
        log(f"the limit: {measured['rows_per_s']:,.0f} rows/s, {measured['runs_per_s']:,.0f} runs/s")
        result["limits"].append(measured)
    limit.drop(f"{base}/mltrace_limit")
    result["limit"] = min(result["limits"], key=lambda measured: measured["runs_per_s"])
    rate = args.sustained_rate or min(10_000, result["limit"]["runs_per_s"] / 2)
    result["rate"] = rate = float(int(rate // 10 * 10))
    result["ceiling"] = ceiling_accepts(args, env, out)
    for size in [int(s) for s in args.sizes.split(",")]:
        label = f"{size:,} runs in the database" if size else "empty database"
        folder = out / f"size-{size}"
        folder.mkdir(exist_ok=True)
        server = fresh_server(args, env, folder)
        round_: dict[str, Any] = {"size": size, "label": label, "folder": f"{out.name}/{folder.name}"}
        try:
            if size:
                round_["seed"] = {
                    k: v for k, v in seed(env, size, server, folder).items() if "series" not in k
                }
            else:
                log("one 1,000-run batch accept, 20 times (bench/batch_accept.py)")
                round_["batch_accept"] = batch_accept.latencies(server.port, env["MLTRACE_TOKEN"], 20)
                log(f"1,000-run batch accept: median {round_['batch_accept']['median_ms']:.0f} ms")
                round_["ours"] = wrk_accepts(
                    f"http://127.0.0.1:{server.port}", env["MLTRACE_TOKEN"], args.wrk_seconds, folder, "ours"
                )
                wait_drained(args.database_url, args.drain_timeout)
            log(f"sustained, {label}: {rate:.0f} runs/s for {args.sustained_seconds} s")
            measured = sustained.measure(
                port=server.port,
                token=env["MLTRACE_TOKEN"],
                database_url=args.database_url,
                rate=rate,
                seconds=args.sustained_seconds,
                drain_timeout=args.drain_timeout,
                say=log,
                pin_workers=args.pin_workers,
            )
            log(f"sustained, {label}: {sustained.summary(measured)}")
            sustained.chart(
                measured, folder / "sustained.png", f"Sustained ingest at {rate:.0f} runs/s ({label})"
            )
            (folder / "sustained.json").write_text(json.dumps(measured, indent=1))
            round_["sustained"] = {k: v for k, v in measured.items() if k != "samples"}
        finally:
            server.stop()
        result["rounds"].append(round_)
    result["scaling"] = [commit_scaling(args, env, out, n) for n in (1, 2, 3)]
    return result


def sustained_section(result: dict[str, Any]) -> list[str]:
    """report.md's part for the sustained stage: the targets of issue 14, each judged."""
    lim = result["limit"]
    limits = result.get("limits") or [lim]
    rate = result["rate"]
    lines = [
        "## Sustained ingest, beside the limit and the ceiling",
        "",
        "The limit (`bench/limit.py`): COPY of the rows that N pipeline runs make "
        f"({lim['rows_per_run']:.1f} rows a run: write-log row, run row, links, new pointers), "
        f"{fmt(lim['batch'])} runs a transaction, into a freshly migrated database: the server's tables "
        "with their indexes and deferred foreign-key checks.",
        "",
        "| N runs | rows/s | runs/s | " + " | ".join(lim["tables"]) + " |",
        "|---|---|---|" + "---|" * len(lim["tables"]),
    ]
    for measured in limits:
        seconds = " | ".join(f"{part['seconds']:.1f} s" for part in measured["tables"].values())
        lines.append(
            f"| {fmt(measured['runs'])} | {fmt(measured['rows_per_s'])} | **{fmt(measured['runs_per_s'])}** | {seconds} |"
        )
    target = min(10_000, lim["runs_per_s"] / 2)
    lines += [
        "",
        f"Target 1: at least min(10,000, half the lower limit) = {fmt(target)} runs/s sustained; asked "
        f"{fmt(rate)} runs/s in batches of 1,000 runs from 2 writers.",
        "",
        "| database | accepted runs/s | committed runs/s | of each limit | queue slope writes/s (max) | "
        "lag p50 / p99 / max s | every run once | drained after s | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for round_ in result["rounds"]:
        s = round_.get("sustained")
        if not s:
            continue
        ratios = " / ".join(f"{s['committed_runs_per_s'] / m['runs_per_s']:.2f}" for m in limits)
        lines.append(
            f"| {round_['label']} | {fmt(s['accepted_runs_per_s'])} | {fmt(s['committed_runs_per_s'])} | "
            f"{ratios} | {s['queue_slope_writes_per_s']:+.1f} ({fmt(s['queue_max'])}) | "
            f"{fmt(s['lag_p50_s'], 2)} / {fmt(s['lag_p99_s'], 2)} / {fmt(s['lag_max_s'], 2)} | "
            f"{'yes' if s['committed_once'] else 'NO'} | {fmt(s['drain_s'])} | "
            f"{verdict(s['met'] and s['committed_runs_per_s'] >= 0.98 * target)} |"
        )
    cores = [
        (r["label"], r["sustained"]["cpu"]) for r in result["rounds"] if (r.get("sustained") or {}).get("cpu")
    ]
    if cores:
        lines += ["", "Where the cores went over each load (`bench/cpu_share.py`), in cores:", ""]
        lines += [f"- {label}: {cpu_share.summary(cpu)}." for label, cpu in cores]
    for round_ in result["rounds"]:
        if round_.get("sustained"):
            lines += ["", f"![sustained, {round_['label']}]({round_['folder']}/sustained.png)"]
    ceiling = result.get("ceiling")
    ours = next((r.get("ours") for r in result["rounds"] if r.get("ours")), None)
    lines += ["", "Single-run accepts, `wrk -t2 -c32` on `bench/accept_run.lua`:", ""]
    if ceiling and ours:
        ratio = ours["rps"] / ceiling["rps"]
        lines += [
            "| endpoint | req/s | p50 ms | p99 ms | non-2xx |",
            "|---|---|---|---|---|",
            f"| the ceiling (`bench/ceiling/`: Django + DRF, one INSERT) | {fmt(ceiling['rps'])} | "
            f"{fmt(ceiling.get('p50'), 1)} | {fmt(ceiling.get('p99'), 1)} | {ceiling['non_2xx']} |",
            f"| ours, `POST /api/v1/runs/` (workers committing) | {fmt(ours['rps'])} | {fmt(ours.get('p50'), 1)} | "
            f"{fmt(ours.get('p99'), 1)} | {ours['non_2xx']} |",
            "",
            f"Target 3: ours / ceiling **{ratio:.2f}** (target 0.7), p99 {fmt(ours.get('p99'))} ms (target 100): "
            f"{verdict(ratio >= 0.7 and (ours.get('p99') or 1e9) <= 100)}.",
        ]
    else:
        lines.append("Not measured: wrk is not installed (`apt-get install wrk`).")
    batch = next((r.get("batch_accept") for r in result["rounds"] if r.get("batch_accept")), None)
    if batch:
        lines += [
            "",
            f"Target 4: one {fmt(batch['size'])}-run batch ({batch['body_kb']:.0f} KB) accepted in a median of "
            f"{batch['median_ms']:.0f} ms (p90 {batch['p90_ms']:.0f}, min {batch['min_ms']:.0f}; {batch['count']} "
            f"sequential posts), target 50 ms: {verdict(batch['median_ms'] <= 50)}.",
        ]
    lines += [
        "",
        "Target 5, commit workers: a backlog of pipeline runs queued first, then a qcluster of N workers:",
        "",
        "| workers | runs | committed runs/s | 1,000-run commit p50 ms |",
        "|---|---|---|---|",
    ]
    for row in result["scaling"]:
        lines.append(
            f"| {row['workers']} | {fmt(row['runs'])} | {fmt(row['runs_per_s'])} | {fmt(row['ms_per_1000_run_commit_p50'])} |"
        )
    lines.append("")
    return lines


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
