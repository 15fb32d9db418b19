"""bench/cpu_share.py: the CPU time of each process goes to its kind, and pinning is undone."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import psycopg2
import pytest

from bench import cpu_share
from bench.cpu_share import CpuShare, process_cpu, summary
from tests.live import wait_until


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
def test_each_process_s_cpu_time_goes_to_its_kind(url, worker_backend, monkeypatch):
    cursor, backend = worker_backend
    # The sampler counts from its first reading of /proc: the test's readings come after it.
    first_sample = threading.Event()

    def process_cpu_then_signal() -> dict[int, tuple[float, str]]:
        found = process_cpu()
        first_sample.set()
        return found

    monkeypatch.setattr(cpu_share, "process_cpu", process_cpu_then_signal)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        share = CpuShare(url, interval=0.2).start()
        try:
            wait_until(first_sample.is_set, timeout=30, what="the sampler's first reading")
            spun, queried = cpu_seconds(spinner.pid), cpu_seconds(backend)
            cursor.execute("SELECT count(*) FROM generate_series(1, 20000000)")
            # CPU time, not wall-clock time: a busy machine only takes longer to get there.
            wait_until(lambda: cpu_seconds(spinner.pid) - spun >= 0.5, timeout=60, what="the spinner to spin")
            spun, queried = cpu_seconds(spinner.pid) - spun, cpu_seconds(backend) - queried
        finally:
            result = share.stop()
    finally:
        spinner.kill()
        spinner.wait()

    assert result is not None
    seconds = {kind: cores * result["seconds"] for kind, cores in result["by_kind"].items()}
    # The sampler read each process before the test's first reading and after its last, from
    # the same /proc counters: it counted at least what each spent in between, to the float.
    assert seconds["postgres for workers"] >= queried - 1e-9 > 0
    assert seconds["other"] >= spun - 1e-9 > 0
    assert result["busy_cores"] > 0 and result["cpus"] == len(os.sched_getaffinity(0))
    assert summary(result).startswith(f"{result['busy_cores']:.2f} of {result['cpus']} cores busy")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="pinning needs two CPUs")
def test_pinning_gives_the_workers_a_cpu_of_their_own_and_is_undone(url, worker_backend):
    _, backend = worker_backend
    cpus = sorted(os.sched_getaffinity(0))
    share = CpuShare(url, interval=5, pin_workers=True).start()
    try:
        # The sampler pins every process of a kind in one pass: wait for the pass to reach both.
        wait_until(
            lambda: (os.sched_getaffinity(backend), os.sched_getaffinity(0)) == ({cpus[-1]}, set(cpus[:-1])),
            timeout=30,
            what="the worker's backend and this process to be pinned",
        )
        during = os.sched_getaffinity(backend), os.sched_getaffinity(0)
    finally:
        result = share.stop()

    assert result is not None
    assert during == ({cpus[-1]}, set(cpus[:-1]))
    assert os.sched_getaffinity(backend) == os.sched_getaffinity(0) == set(cpus)
    assert result["pinned_workers"] is True
