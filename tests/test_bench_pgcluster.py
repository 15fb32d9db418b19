"""bench/pgcluster.py: the bench's private PostgreSQL runs with exactly docker-compose.yml's
settings, and stopping it leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg2
import pytest

from bench import pgcluster

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        pgcluster.bindir() is None,
        reason="initdb not found: PostgreSQL's server binaries are not installed (pg_config --bindir)",
    ),
]


def processes_using(folder: Path) -> list[int]:
    """Pids of the processes whose command line names the folder (postgres -D folder/data ...)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmdline = (
                    Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:
                continue
            if str(folder) in cmdline:
                found.append(int(entry.name))
    return found


def test_the_private_cluster_runs_with_exactly_the_compose_settings_and_stops_without_a_trace():
    expected = pgcluster.compose_settings()
    assert expected  # the compose file sets some

    cluster = pgcluster.PrivatePostgres().start()
    try:
        folder, pid = cluster.folder, cluster.process.pid
        assert folder is not None and folder.exists()
        connection = psycopg2.connect(cluster.url())
        with connection.cursor() as cursor:
            for name, value in expected.items():
                cursor.execute(f"SHOW {name}")
                assert cursor.fetchone()[0] == value, name
            # Nothing the compose file leaves alone is weakened by the bench.
            for name in ("fsync", "synchronous_commit", "full_page_writes"):
                cursor.execute(f"SHOW {name}")
                assert cursor.fetchone()[0] == "on", name
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
        connection.close()
        assert processes_using(folder), "the postmaster names its data folder"
    finally:
        cluster.stop()

    assert cluster.process.poll() is not None
    assert not folder.exists()
    assert processes_using(folder) == []
    assert not Path(f"/proc/{pid}").exists() and not Path(f"/proc/{backend}").exists()
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(cluster.url(), connect_timeout=5)
