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


def test_the_comparison_reports_a_row_per_cluster_and_round(tmp_path):
    from bench import pg_compare

    part = {"wal_bytes": 3 * 2**30, "wal_fpi": 40_000, "checkpoints_timed": 0, "checkpoints_req": 1}
    results = [
        {
            "round": 1,
            "cluster": name,
            "settings": {"shared_buffers": buffers},
            "limit": {**part, "runs_per_s": rate},
            "sustained": {
                **part,
                "committed_runs_per_s": 1000.0,
                "lag_p50_s": 0.5,
                "lag_p99_s": 1.0,
                "queue_slope_writes_per_s": 0.1,
                "cpu": {"by_kind": {"other": 0.25}},
            },
        }
        for name, buffers, rate in (("machine", "128MB", 1737.0), ("compose", "4GB", 2196.0))
    ]
    (tmp_path / "command.txt").write_text("python bench/pg_compare.py --rounds 1\n")

    pg_compare.write_report(tmp_path, results)

    report = (tmp_path / "report.md").read_text()
    assert "`python bench/pg_compare.py --rounds 1`" in report
    assert (
        "| 1 | machine | 1,737 | 3,072 (40,000) | 0/1 | 1,000 | 0.50 / 1.00 | +0.1 | 3,072 | 0/1 | 0.25 |"
        in report
    )
    assert "| 1 | compose | 2,196 |" in report
    assert "- compose: {'shared_buffers': '4GB'}" in report
