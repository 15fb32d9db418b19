"""bench/scaling.py: a backlog queued while no cluster runs, drained by W workers, a round each."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import database_url
from tests.live import ROOT


def test_each_round_drains_its_backlog_and_reports_it(live_db, private_redis, tmp_path):
    url = database_url({**live_db, "NAME": f"mltrace_scaling_smoke_{os.getpid()}"})
    rounds = tmp_path / "rounds.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["MLTRACE_COMMIT_BATCH"] = "20"  # a few batches: a rate needs a first and a last commit
    subprocess.run(
        [
            sys.executable,
            "bench/scaling.py",
            "--workers",
            "1,2",
            "--runs",
            "60",
            "--no-wait",
            "--database-url",
            url,
            "--redis-url",
            private_redis.url,
            "--jsonl",
            str(rounds),
            "--out",
            str(tmp_path / "logs"),
            "--label",
            "smoke",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
    )

    results = [json.loads(line) for line in rounds.read_text().splitlines()]
    assert [(r["workers"], r["runs"], r["left_queued"], r["failed"]) for r in results] == [
        (1, 60, 0, 0),
        (2, 60, 0, 0),
    ]
    assert all(r["runs_per_s"] > 0 for r in results)
    table = subprocess.run(
        [sys.executable, "bench/scaling.py", "--table", str(rounds)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    assert [row[:3] for row in rows] == [["smoke", "1", "60"], ["smoke", "2", "60"]]
