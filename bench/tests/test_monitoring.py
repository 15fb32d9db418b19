"""bench/monitoring.py: at a tiny size it seeds, times every read in process and over HTTP, and
writes a report of the expected shape. Its timings are reported, never asserted."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from monitoring.metrics import METRICS
from tests.conftest import database_url
from tests.live import ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_it_seeds_the_pairs_and_reports_each_read_with_its_target(live_db, private_redis, tmp_path):
    url = database_url({**live_db, "NAME": f"mltrace_monitoring_smoke_{os.getpid()}"})
    report_path = tmp_path / "monitoring.json"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    finished = subprocess.run(
        [
            sys.executable,
            "bench/monitoring.py",
            "--pairs",
            "2000",
            "--repeat",
            "2",
            "--database-url",
            url,
            "--redis-url",
            private_redis.url,
            "--port",
            str(free_port()),
            "--web-workers",
            "1",
            "--out",
            str(report_path),
        ],
        cwd=ROOT,
        env=env,
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]

    report = json.loads(report_path.read_text())
    assert report["seed"]["rows"] == 2200
    assert (report["seed"]["pairs"], report["seed"]["unanswered"]) == (2000, 200)
    for where in ("in_process", "http"):
        metrics = report[where]["metrics"]
        assert set(metrics) == set(METRICS)
        assert all(m["pairs"] == 2000 and len(m["runs_s"]) == 2 for m in metrics.values())
        assert 0.8 < metrics["accuracy"]["value"] < 0.9  # --agree 0.85 of binary pairs
        assert {"target_s", "met"} <= set(metrics["accuracy"])
        series = report[where]["series"]["accuracy_hour_day"]
        assert series["pairs"] == 2000
        assert series["buckets"] in (24, 25)  # a day of outputs, by the hour, from now's hour back
        assert isinstance(series["met"], bool)
    assert set(report["explain"]) == {"accuracy_window_pairs", "series_hour_day"}
    assert "Execution Time" in report["explain"]["accuracy_window_pairs"]
    assert "| accuracy, window_pairs=2,000 |" in report["summary"]
    # The database is dropped afterwards: a million pairs are not left behind.
    from bench.harness import sql

    admin = url.rsplit("/", 1)[0] + "/postgres"
    assert not sql(admin, "SELECT 1 FROM pg_database WHERE datname = %s", (url.rsplit("/", 1)[1],))


def test_the_stream_commits_every_output_and_feedback_once_and_reports_the_caller(
    live_db, private_redis, tmp_path
):
    url = database_url({**live_db, "NAME": f"mltrace_stream_smoke_{os.getpid()}"})
    report_path = tmp_path / "stream.json"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    finished = subprocess.run(
        [
            sys.executable,
            "bench/monitoring_stream.py",
            "--items",
            "2000",
            "--database-url",
            url,
            "--redis-url",
            private_redis.url,
            "--port",
            str(free_port()),
            "--web-workers",
            "1",
            "--timeout",
            "120",
            "--out",
            str(report_path),
        ],
        cwd=ROOT,
        env=env,
        timeout=300,
        capture_output=True,
        text=True,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]

    report = json.loads(report_path.read_text())
    assert report["task_counts"] == {"outputs": 2000, "feedback": 2000, "pairs": 2000}
    assert report["predictions"] == {"rows": 2000, "outputs": 2000, "feedback": 2000, "pairs": 2000}
    assert report["committed_exactly_once"] is True
    assert {w["status"] for w in report["writes"]} == {"committed"}
    producer = report["producer"]
    assert producer["flushed"] is True
    assert producer["server_packages_imported"] == []  # the producer is the client alone
    assert set(producer["calls"]) == {"logOutput", "logFeedback"}
    assert {"p50_us", "p99_us", "p999_us", "max_us"} <= set(producer["all_calls"])
    assert set(report["targets"]) == {
        "caller_p50_us",
        "caller_items_per_s",
        "committed_items_per_s",
        "all_committed_once",
    }
    assert all(isinstance(t["met"], bool) for t in report["targets"].values())
