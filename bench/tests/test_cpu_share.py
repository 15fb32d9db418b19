"""bench/cpu_share.py: the CPU time of each process goes to its kind, and pinning is undone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest

from bench.cpu_share import CpuShare, summary


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def url(live_db):
    s = live_db
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def worker_backend(url):
    """A session named as a worker's is (mltrace_site/apps.py), and its backend's pid."""
    connection = psycopg2.connect(url)
    connection.autocommit = True
    cursor = connection.cursor()
    cursor.execute("SET application_name = 'mltrace qcluster pid 1'; SELECT pg_backend_pid()")
    yield cursor, cursor.fetchone()[0]
    connection.close()


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads /proc (Linux)")
def test_each_process_s_cpu_time_goes_to_its_kind(url, worker_backend):
    cursor, backend = worker_backend
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        share = CpuShare(url, interval=0.2).start()
        try:
            cursor.execute("SELECT count(*) FROM generate_series(1, 20000000)")
            time.sleep(0.5)
            spun, queried = cpu_seconds(spinner.pid), cpu_seconds(backend)
        finally:
            result = share.stop()
    finally:
        spinner.kill()
        spinner.wait()

    assert result is not None
    seconds = {kind: cores * result["seconds"] for kind, cores in result["by_kind"].items()}
    # Counted from start(): at least what each spent since, less a tick or two of /proc's rounding.
    assert seconds["postgres for workers"] >= 0.9 * queried - 0.05 > 0
    assert seconds["other"] >= 0.9 * spun - 0.05 > 0
    assert result["busy_cores"] > 0 and result["cpus"] == len(os.sched_getaffinity(0))
    assert summary(result).startswith(f"{result['busy_cores']:.2f} of {result['cpus']} cores busy")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning needs two CPUs")
def test_pinning_gives_the_workers_a_cpu_of_their_own_and_is_undone(url, worker_backend):
    _, backend = worker_backend
    cpus = sorted(os.sched_getaffinity(0))
    share = CpuShare(url, interval=5, pin_workers=True).start()
    try:
        deadline = time.monotonic() + 10
        while os.sched_getaffinity(backend) != {cpus[-1]} and time.monotonic() < deadline:
            time.sleep(0.1)
        during = os.sched_getaffinity(backend), os.sched_getaffinity(0)
    finally:
        result = share.stop()

    assert result is not None
    assert during == ({cpus[-1]}, set(cpus[:-1]))
    assert os.sched_getaffinity(backend) == os.sched_getaffinity(0) == set(cpus)
    assert result["pinned_workers"] is True
