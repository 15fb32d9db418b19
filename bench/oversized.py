"""Oversized work against gunicorn and a qcluster: what the limits bound, measured.

    python bench/oversized.py    # a few minutes; writes bench/results/<timestamp>-oversized/

1. A batch like the audit's, 1,000 runs of 1,000 pointers (9.4 MiB): the time to its answer.
2. --batches batches of 100 runs of 1,000 pointers each (100,000 pointers, the batch limit):
   the time to accept each, then the drain, with the qcluster's peak memory sampled every
   0.2 s. Meanwhile one ?sync=true run a second: each answer's status and time.
3. Reads of what that left: GET /api/v1/runs/?limit=1000 (bytes, time), and the trace of a
   chain of 30 runs of 1,000 pointers. The web processes' peak memory over the whole run.
4. The worker log: lock timeouts and failed tasks (a sweep mistaking the long commit for a
   lost task gave both).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.harness import ROOT as _ROOT  # noqa: E402
from bench.harness import add_service_arguments, fresh_server, log, tree_rss_mb, wait_drained  # noqa: E402

assert _ROOT == ROOT


def request(method: str, url: str, token: str, body: Any = None) -> tuple[int, bytes, float]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, data, headers, method=method), timeout=600
        ) as r:
            return r.status, r.read(), time.perf_counter() - started
    except urllib.error.HTTPError as error:
        return error.code, error.read(), time.perf_counter() - started
    except (urllib.error.URLError, ConnectionError) as error:  # e.g. a 413 sent before the body was read
        return 0, str(error).encode(), time.perf_counter() - started


def runs(count: int, pointers: int, tag: str) -> list[dict[str, Any]]:
    moment = dt.datetime(2024, 1, 1, tzinfo=dt.UTC).isoformat()
    half = pointers // 2
    return [
        {
            "component": "big",
            "start_timestamp": moment,
            "end_timestamp": moment,
            "inputs": [f"{tag}{n}" for n in range(half)],  # shared by the runs of a batch
            "outputs": [f"{tag}{i}:{n}" for n in range(pointers - half)],
        }
        for i in range(count)
    ]


class PeakRss:
    """The peaks of a process tree's summed RSS and of its largest process, every 0.2 s."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.largest, self.running = pid, 0.0, 0.0, True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while self.running:
            sizes = tree_rss_mb(self.pid).values()
            self.peak = max(self.peak, sum(sizes))
            self.largest = max(self.largest, max(sizes, default=0.0))
            time.sleep(0.2)

    def stop(self) -> dict[str, float]:
        self.running = False
        self.thread.join()
        return {"tree_mb": round(self.peak, 1), "largest_process_mb": round(self.largest, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--port", type=int, default=8766)
    add_service_arguments(parser)
    args = parser.parse_args()
    args.web_workers, args.web_class, args.web_threads = 2, "gevent", 1
    out = ROOT / "bench" / "results" / f"{dt.datetime.now():%Y%m%d-%H%M%S}-oversized"
    out.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "MLTRACE_QUEUE_NAME": "mltrace-bench",
        "DJANGO_SETTINGS_MODULE": "mltrace_site.settings",
        "PYTHONPATH": str(ROOT),
    }
    server = fresh_server(args, env, out)
    token, base = env["MLTRACE_TOKEN"], f"http://127.0.0.1:{args.port}"
    result: dict[str, Any] = {"command": "python bench/oversized.py " + " ".join(sys.argv[1:])}
    try:
        assert server.web and server.worker
        web = PeakRss(server.web.pid)
        status, body, seconds = request(
            "POST", f"{base}/api/v1/runs/batch/", token, {"runs": runs(1000, 1000, "a")}
        )
        result["audit_batch"] = {
            "status": status,
            "seconds": round(seconds, 2),
            "answer": body[:200].decode(),
        }
        log(f"1,000 x 1,000 batch: {status} in {seconds:.2f} s")

        worker = PeakRss(server.worker.pid)
        stop = threading.Event()
        sync: list[tuple[int, float]] = []

        def sync_writes() -> None:
            while not stop.is_set():
                status, _, seconds = request(
                    "POST", f"{base}/api/v1/runs/?sync=true", token, runs(1, 2, "s")[0]
                )
                sync.append((status, round(seconds, 3)))
                time.sleep(1)

        writer = threading.Thread(target=sync_writes, daemon=True)
        writer.start()
        accepts = []
        for batch in range(args.batches):
            status, _, seconds = request(
                "POST", f"{base}/api/v1/runs/batch/", token, {"runs": runs(100, 1000, f"b{batch}")}
            )
            accepts.append((status, round(seconds, 2)))
        drain = wait_drained(args.database_url, 1800)
        stop.set()
        writer.join()
        result["batches"] = {
            "batches": args.batches,
            "runs_each": 100,
            "pointers_each": 100_000,
            "accepts": accepts,
            "drain_seconds_after_last_accept": round(drain, 1),
            "worker_peak_rss_mb": worker.stop(),
            "sync_writes": {
                "count": len(sync),
                "statuses": sorted({s for s, _ in sync}),
                "max_seconds": max((t for _, t in sync), default=None),
            },
        }
        log(f"batches: {result['batches']}")

        status, body, seconds = request("GET", f"{base}/api/v1/runs/?limit=1000", token)
        page = json.loads(body)
        result["runs_page"] = {
            "status": status,
            "runs": len(page["results"]),
            "mb": round(len(body) / 2**20, 2),
            "seconds": round(seconds, 2),
        }
        # A chain of 30 runs of 1,000 pointers, each reading the one before's outputs.
        previous: list[str] = []
        for step in range(30):
            run = runs(1, 1000, f"c{step}-")[0]
            run["component"], run["inputs"] = f"step{step % 3}", previous
            request("POST", f"{base}/api/v1/runs/?sync=true", token, run)
            previous = run["outputs"][:500]
        status, body, seconds = request("GET", f"{base}/api/v1/trace/?output_id={previous[0]}", token)
        nodes = len(json.loads(body)["nodes"]) if status == 200 else 0
        result["trace"] = {
            "status": status,
            "runs": nodes,
            "mb": round(len(body) / 2**20, 2),
            "seconds": round(seconds, 2),
        }
        result["web_peak_rss_mb"] = web.stop()
        log(f"reads: {result['runs_page']}, {result['trace']}, web peak {result['web_peak_rss_mb']} MB")
    finally:
        server.stop()
    worker_log = (out / "qcluster.log").read_text(errors="replace")
    result["worker_log"] = {
        "lock_timeouts": worker_log.count("lock timeout"),
        "failed_tasks": worker_log.count("Failed ["),
        "commit_lines": [
            line.split("INFO ingest.queue ")[1][:60]
            for line in worker_log.splitlines()
            if "committed" in line and "ingest.queue" in line
        ][:30],
    }
    path = out / "oversized.json"
    path.write_text(json.dumps(result, indent=1))
    log(f"wrote {path}")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
