"""Where the machine's cores go while a benchmark runs: CPU time by kind of process (Linux).

Every few seconds it reads each process's CPU time from /proc (through bench/harness.py, the
one reader of /proc in bench/) and PostgreSQL's backends from pg_stat_activity, and adds the
difference to the kind the process is:
- web, worker: gunicorn's processes, the qcluster's;
- postgres for web, postgres for workers: backends by their application_name, which the
  server sets to "mltrace web pid N" or "mltrace qcluster pid N" (mltrace_site/apps.py);
- postgres, other clients; postgres, background (checkpointer, WAL writer, postmaster...);
- redis; this benchmark (its own process: the writers and the sampler); other.
Beside those, from /proc/stat, how many cores the whole machine kept busy and waited on I/O.

pin_workers is an experiment, not a way to deploy: it keeps the workers and their backends on
the last CPU and every other process of those kinds on the rest, and lets them all run
anywhere again when it stops. It tells whether what the committer loses beside the load is
the load's CPU time or the sharing of both cores with it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import TICK, all_pids, command_line, machine_ticks, pid_stat, thread_ids  # noqa: E402

WEB_APP, WORKER_APP = "mltrace web pid", "mltrace qcluster pid"


def process_cpu() -> dict[int, tuple[float, str]]:
    """{pid: (CPU seconds so far, command line)} of every process readable now."""
    found = {}
    for pid in all_pids():
        try:
            seconds = pid_stat(pid)[1]
            cmdline = command_line(pid)
        except OSError:
            continue
        found[pid] = (seconds, cmdline.strip())
    return found


def machine_cpu() -> tuple[float, float]:
    """(busy, iowait) CPU seconds of the whole machine so far, from /proc/stat."""
    values = machine_ticks()
    # user nice system idle iowait irq softirq steal (guest time is counted in user already)
    return (sum(values[:8]) - values[3] - values[4]) / TICK, values[4] / TICK


def _set_affinity(pid: int, cpus: set[int]) -> None:
    """Every thread of the process on these CPUs (an affinity set by pid holds for one thread)."""
    try:
        threads = thread_ids(pid)
    except OSError:
        return
    for tid in threads:
        try:
            if os.sched_getaffinity(tid) != cpus:
                os.sched_setaffinity(tid, cpus)
        except OSError:
            pass


class CpuShare:
    """Samples in a thread between start() and stop(); stop() returns the shares in cores."""

    def __init__(self, database_url: str, *, interval: float = 5.0, pin_workers: bool = False) -> None:
        self.database_url, self.interval, self.pin_workers = database_url, interval, pin_workers
        self.totals: dict[str, float] = {}
        self.pinned: dict[int, set[int]] = {}  # pid: its affinity before
        self.cpus = os.sched_getaffinity(0)  # this process's, before any pinning
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.result: dict[str, Any] | None = None

    def start(self) -> CpuShare:
        self.thread.start()
        return self

    def stop(self) -> dict[str, Any] | None:
        """The shares, or None if sampling failed (its error is on stderr)."""
        self.done.set()
        self.thread.join()
        return self.result

    def _kinds(self, cursor: Any, processes: dict[int, tuple[float, str]]) -> dict[int, str]:
        cursor.execute("SELECT pid, backend_type, application_name FROM pg_stat_activity")
        backends = {pid: (backend_type, app) for pid, backend_type, app in cursor.fetchall()}
        me = os.getpid()
        kinds = {}
        for pid, (_, cmdline) in processes.items():
            if pid in backends:
                backend_type, app = backends[pid]
                if backend_type != "client backend":
                    kinds[pid] = "postgres, background"
                elif app.startswith(WEB_APP):
                    kinds[pid] = "postgres for web"
                elif app.startswith(WORKER_APP):
                    kinds[pid] = "postgres for workers"
                else:
                    kinds[pid] = "postgres, other clients"
            elif cmdline.startswith("postgres") or "bin/postgres " in cmdline:
                kinds[pid] = "postgres, background"
            elif pid == me:
                kinds[pid] = "this benchmark"
            elif "gunicorn" in cmdline:
                kinds[pid] = "web"
            elif "qcluster" in cmdline:
                kinds[pid] = "worker"
            elif "redis-server" in cmdline:
                kinds[pid] = "redis"
            else:
                kinds[pid] = "other"
        return kinds

    def _pin(self, kinds: dict[int, str]) -> None:
        cpus = sorted(self.cpus)
        if len(cpus) < 2:
            return
        alone, rest = {cpus[-1]}, set(cpus[:-1])
        for pid, kind in kinds.items():
            if kind == "other":
                continue
            if pid not in self.pinned:
                try:
                    self.pinned[pid] = os.sched_getaffinity(pid)
                except OSError:
                    continue
            _set_affinity(pid, alone if kind in ("worker", "postgres for workers") else rest)

    def _unpin(self) -> None:
        for pid, before in self.pinned.items():
            _set_affinity(pid, before)

    def _run(self) -> None:
        connection = psycopg2.connect(self.database_url)
        connection.autocommit = True
        cursor = connection.cursor()
        began = time.monotonic()
        before = process_cpu()
        machine_before = machine_cpu()
        # Pinning looks every half second, for the backends each new connection forks.
        step = 0.5 if self.pin_workers else self.interval
        try:
            while True:
                stopping = self.done.wait(step)
                after = process_cpu()
                kinds = self._kinds(cursor, after)
                for pid, (seconds, _) in after.items():
                    # A process born since the last sample counts from zero.
                    spent = seconds - (before[pid][0] if pid in before else 0.0)
                    self.totals[kinds[pid]] = self.totals.get(kinds[pid], 0.0) + max(spent, 0.0)
                before = after
                if self.pin_workers:
                    self._pin(kinds)
                if stopping:
                    break
        finally:
            if self.pin_workers:
                self._unpin()
            connection.close()
        span = time.monotonic() - began
        busy, iowait = (b - a for a, b in zip(machine_before, machine_cpu(), strict=True))
        self.result = {
            "seconds": span,
            "cpus": len(self.cpus),
            "busy_cores": busy / span,
            "iowait_cores": iowait / span,
            "by_kind": {
                kind: seconds / span for kind, seconds in sorted(self.totals.items(), key=lambda kv: -kv[1])
            },
            "pinned_workers": self.pin_workers,
        }


def summary(result: dict[str, Any]) -> str:
    """One line: the machine's busy cores, then each kind's, largest first."""
    kinds = ", ".join(f"{kind} {cores:.2f}" for kind, cores in result["by_kind"].items() if cores >= 0.005)
    pinned = "; workers pinned to a core of their own" if result["pinned_workers"] else ""
    return (
        f"{result['busy_cores']:.2f} of {result['cpus']} cores busy, {result['iowait_cores']:.2f} waiting"
        f" on I/O{pinned}: {kinds}"
    )
