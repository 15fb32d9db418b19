#!/usr/bin/env python
"""Sustained batch ingest, first cut (issue 14): writers post 1,000-run batches for a while.

Against a server already running (gunicorn and a qcluster on PostgreSQL and Redis), each of
--writers threads posts batches of 1,000 pipeline runs (bench/payloads.py: etl, train, then
inference runs with 10 predictions) back to back for --seconds. Every 10 s it samples runs
accepted, runs committed and writes queued; after the load it waits for the queue to drain
and prints runs accepted/s, runs committed/s and the accept-to-commit lag p99.

    python bench/sustained.py --port 8801 --token TOKEN --seconds 60 --writers 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import payloads  # noqa: E402


def batch_request(port: int | str, token: str, runs: list[dict]) -> urllib.request.Request:
    """POST /api/v1/runs/batch/ of these runs, with a token."""
    return urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/runs/batch/",
        data=json.dumps({"runs": runs}).encode(),
        method="POST",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8801)
    parser.add_argument("--token", required=True)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/mltrace_sus")
    args = parser.parse_args()
    db = psycopg2.connect(args.database_url)
    db.autocommit = True
    cursor = db.cursor()

    def one(query: str, params: tuple = ()) -> int:
        cursor.execute(query, params)
        return cursor.fetchone()[0]

    sent = [0]
    lock = threading.Lock()
    stop = time.monotonic() + args.seconds

    def writer(k: int) -> None:
        stream = payloads.pipeline(start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=k))
        while time.monotonic() < stop:
            request = batch_request(args.port, args.token, [next(stream) for _ in range(1000)])
            with urllib.request.urlopen(request) as response:
                response.read()
            with lock:
                sent[0] += 1000

    mark = one("SELECT COALESCE(MAX(id), 0) FROM runs_write")
    runs_before = one("SELECT COUNT(*) FROM runs_run")
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(args.writers)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    samples = []
    while time.monotonic() < stop:
        time.sleep(10)
        queued = one("SELECT COUNT(*) FROM runs_write WHERE status = 'queued'")
        committed = one("SELECT COUNT(*) FROM runs_run") - runs_before
        samples.append((round(time.monotonic() - began), sent[0], committed, queued))
    for thread in threads:
        thread.join()
    load = time.monotonic() - began
    committed_in_load = one("SELECT COUNT(*) FROM runs_run") - runs_before
    while one("SELECT COUNT(*) FROM runs_write WHERE status = 'queued'"):
        time.sleep(0.5)
    total = time.monotonic() - began
    lag = one(
        "SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM committed_at - accepted_at))"
        " FROM runs_write WHERE id > %s",
        (mark,),
    )
    print("t s, runs accepted, runs committed, writes queued:", samples)
    print(
        f"accepted {sent[0] / load:.0f} runs/s over {load:.0f} s; committed {committed_in_load / load:.0f} runs/s "
        f"during the load; drained at {total:.0f} s ({sent[0] / total:.0f} runs/s overall); lag p99 {lag:.1f} s"
    )


if __name__ == "__main__":
    main()
