"""The harness of `make bench` (bench/run.py): what every stage stands on.

- log, ROOT, PY;
- /proc, read here and nowhere else in bench/ (bench/cpu_share.py reads through these
  functions; bench/client_bench.py's producer, a process that imports only the client, reads
  its own /proc/self/status): process trees and their memory, CPU time, the machine's;
- CpuMeter and Sampler, measuring the web and worker processes while a stage runs;
- Server: gunicorn and a qcluster, their logs; commit_log_stats reads the workers' log;
- the database: sql, the queue (pending, wait_drained), reset_database, seed, fresh_server
  (an empty database, a flushed Redis, a token, a server on them), machine_facts.

The stages (bench/locust_stage.py, client_stage.py, sustained_stage.py) import from here; this
module imports none of them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
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
sys.path.insert(0, str(ROOT))
from bench import pgcluster  # noqa: E402

PY = sys.executable


def log(message: str) -> None:
    print(f"[bench {dt.datetime.now():%H:%M:%S}] {message}", flush=True)


# --- /proc: the one reader of it ------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def all_pids() -> list[int]:
    """The pid of every process now (some may be gone by the time they are read)."""
    return [int(entry.name) for entry in os.scandir("/proc") if entry.name.isdigit()]


def pid_stat(pid: int) -> tuple[int, float]:
    """(parent's pid, user and system CPU seconds so far) of a process, from /proc/<pid>/stat.
    OSError if the process is gone."""
    # After the command name (in parentheses; it may hold spaces and parentheses) fields[0] is
    # the file's 3rd field, the state: the ppid is the 4th, utime and stime the 14th and 15th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def command_name(pid: int) -> str:
    """/proc/<pid>/comm: the executable's name. OSError if the process is gone."""
    return Path(f"/proc/{pid}/comm").read_text().strip()


def command_line(pid: int) -> str:
    """/proc/<pid>/cmdline, its arguments joined by spaces. OSError if the process is gone."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def thread_ids(pid: int) -> list[int]:
    """The ids of a process's threads, /proc/<pid>/task. OSError if the process is gone."""
    return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]


def machine_ticks() -> list[int]:
    """The whole machine's CPU time since boot, in ticks, from /proc/stat's first line: user
    nice system idle iowait irq softirq steal, then guest time (counted in user already)."""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def tree_rss_mb(root_pid: int) -> dict[int, float]:
    """Resident memory of a process and its descendants, by pid, in MB."""
    children: dict[int, list[int]] = {}
    for pid in all_pids():
        try:
            ppid = pid_stat(pid)[0]
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(pid)
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
        return pid_stat(pid)[1]
    except (OSError, IndexError):
        return 0.0


def postgres_pids() -> list[int]:
    pids = []
    for pid in all_pids():
        try:
            if command_name(pid) == "postgres":
                pids.append(pid)
        except OSError:
            continue
    return pids


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    ticks = machine_ticks()
    total = sum(ticks[:8])
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (total - idle) / TICK, total / TICK


# --- processes and measurements -------------------------------------------------------------


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


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


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


# --- the database and the queue -------------------------------------------------------------


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


# --- a fresh server, the machine ------------------------------------------------------------


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
