#!/usr/bin/env python
"""Sustained ingest: writers post batches at a steady rate for minutes.

Against a server already running (gunicorn and a qcluster on PostgreSQL and Redis), --writers
threads post batches of --batch pipeline runs (bench/payloads.py: etl, train, then inference
runs with 10 ENDPOINT predictions each) to POST /api/v1/runs/batch/, paced together at --rate
runs/s for --seconds. A writer that falls behind its schedule posts at once and the time it
fell behind is counted. Once a second a sampler records runs accepted, runs committed, writes
queued and the commit lag (accept to committed) of the writes committed in that second.

After the load it waits for the queue to drain and checks that every run was committed once.
It prints, and with --json writes: accepted and committed runs/s, the queue's slope, lag
p50/p99/max, and the per-second series; --chart draws them.

    python bench/sustained.py --port 8801 --token TOKEN --rate 1000 --seconds 300 --chart out.png

`make bench` (bench/run.py) runs it beside the limit (bench/limit.py) and the ceiling.
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
from typing import Any

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import cpu_share, payloads  # noqa: E402

# Commit lag the target allows at p99, and how much the queue may grow over a run: what that
# lag holds at the rate (a queue deeper than rate x 2 s cannot keep the lag under 2 s).
LAG_P99_TARGET_S = 2.0


def batch_request(port: int | str, token: str, runs: list[dict]) -> urllib.request.Request:
    """POST /api/v1/runs/batch/ of these runs, with a token."""
    return urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/runs/batch/",
        data=json.dumps({"runs": runs}).encode(),
        method="POST",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )


class Database:
    """The server's database, read by one autocommit connection."""

    def __init__(self, url: str) -> None:
        self.connection = psycopg2.connect(url)
        self.connection.autocommit = True

    def one(self, query: str, params: tuple = ()) -> Any:
        with self.connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchone()

    def close(self) -> None:
        self.connection.close()


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t, y) points; 0 for fewer than two."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (y - mean_y) for t, y in points) / var if var else 0.0


def measure(
    *,
    port: int,
    token: str,
    database_url: str,
    rate: float,
    seconds: float,
    writers: int = 2,
    batch: int = 1000,
    drain_timeout: float = 1800,
    say: Any = print,
    pin_workers: bool = False,
) -> dict[str, Any]:
    """Posts `rate` runs/s for `seconds`, samples every second, drains, checks; the result.

    Over the load it also measures where the machine's cores go (bench/cpu_share.py);
    pin_workers runs that module's experiment of a core for the workers alone."""
    db = Database(database_url)
    mark = db.one("SELECT COALESCE(MAX(id), 0) FROM runs_write")[0]
    stop = threading.Event()
    sent = [0]
    behind = [0.0]
    failures: list[str] = []
    lock = threading.Lock()
    interval = batch * writers / rate  # seconds between one writer's posts

    # Every body is built before the clock starts: the writers then only send, and take as
    # little of the machine's two cores from the server as they can.
    posts = int(seconds / interval) + 2
    bodies = []
    for k in range(writers):
        stream = payloads.pipeline(start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=k))
        bodies.append(
            [batch_request(port, token, [next(stream) for _ in range(batch)]) for _ in range(posts)]
        )
    say(f"sustained: {writers * posts} bodies of {batch} runs built")
    cores: cpu_share.CpuShare | None = cpu_share.CpuShare(database_url, pin_workers=pin_workers).start()
    cpu: dict[str, Any] | None = None
    began = time.monotonic()
    deadline = began + seconds

    def writer(k: int) -> None:
        requests = iter(bodies[k])
        due = began + k * interval / writers
        while not stop.is_set():
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            elif wait < -0.001:
                with lock:
                    behind[0] += -wait
            if time.monotonic() >= deadline:
                return
            request = next(requests)
            try:
                with urllib.request.urlopen(request, timeout=120) as response:
                    response.read()
            except OSError as error:
                with lock:
                    failures.append(str(error))
                return
            with lock:
                sent[0] += batch
            due += interval

    threads = [threading.Thread(target=writer, args=(k,), daemon=True) for k in range(writers)]
    for thread in threads:
        thread.start()
    samples: list[dict[str, float]] = []
    # Runs are committed in id order, so the runs up to the newest are the committed ones:
    # each second counts only the runs committed since the last. (Counting every run since
    # the start took a parallel scan of 40-70 ms in three processes at 265,000 runs, every
    # second, from the server it measures.)
    committed_through = mark
    committed = 0
    next_sample = began + 1
    try:
        while True:
            time.sleep(max(0.0, next_sample - time.monotonic()))
            next_sample += 1
            now = time.monotonic() - began
            queued = db.one("SELECT COUNT(*) FROM runs_write WHERE status = 'queued'")[0]
            newest = db.one("SELECT COALESCE(MAX(id), %s) FROM runs_run", (mark,))[0]
            committed += db.one(
                "SELECT COUNT(*) FROM runs_run WHERE id > %s AND id <= %s", (committed_through, newest)
            )[0]
            lag_p99, lag_max = db.one(
                "SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM committed_at - accepted_at)),"
                " MAX(EXTRACT(EPOCH FROM committed_at - accepted_at))"
                " FROM runs_write WHERE id > %s AND id <= %s AND status = 'committed'",
                (committed_through, newest),
            )
            committed_through = newest
            samples.append(
                {
                    "t": round(now, 2),
                    "accepted": sent[0],
                    "committed": committed,
                    "queued": queued,
                    "lag_p99_s": float(lag_p99) if lag_p99 is not None else None,
                    "lag_max_s": float(lag_max) if lag_max is not None else None,
                    "loading": now <= seconds,
                }
            )
            if len(samples) % 30 == 0:
                say(
                    f"sustained: {now:.0f} s, {sent[0]} runs accepted, {committed} committed, {queued} writes queued,"
                    f" lag p99 this second {samples[-1]['lag_p99_s']}"
                )
            loaded = now > seconds and all(not t.is_alive() for t in threads)
            if now > seconds and cores is not None:
                cpu = cores.stop()
                cores = None
                if cpu is not None:
                    say(f"sustained: over the load, {cpu_share.summary(cpu)}")
            if loaded and (not queued or now > seconds + drain_timeout):
                break
    finally:
        if cores is not None:  # the load failed: the sampler stops all the same, and unpins
            cpu = cores.stop()
    stop.set()
    load_samples = [s for s in samples if s["loading"]]
    load = min(seconds, time.monotonic() - began)
    in_load = load_samples[-1] if load_samples else samples[-1]
    accepted_runs = sent[0]
    runs, distinct, writes_committed, writes_other = db.one(
        "SELECT (SELECT COUNT(*) FROM runs_run WHERE id > %s), (SELECT COUNT(DISTINCT id) FROM runs_run WHERE id > %s),"
        " (SELECT COUNT(*) FROM runs_write WHERE id > %s AND status = 'committed'),"
        " (SELECT COUNT(*) FROM runs_write WHERE id > %s AND status <> 'committed')",
        (mark, mark, mark, mark),
    )
    lag = db.one(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM committed_at - accepted_at)),"
        " percentile_cont(0.99) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM committed_at - accepted_at)),"
        " MAX(EXTRACT(EPOCH FROM committed_at - accepted_at))"
        " FROM runs_write WHERE id > %s AND status = 'committed'",
        (mark,),
    )
    db.close()
    # The queue's trend over the load, skipping the first 10 s of warming up.
    queue_slope = slope([(s["t"], s["queued"]) for s in load_samples if s["t"] >= 10])
    result = {
        "rate": rate,
        "seconds": seconds,
        "writers": writers,
        "batch": batch,
        "accepted_runs": accepted_runs,
        "accepted_runs_per_s": accepted_runs / load if load else 0.0,
        "committed_runs_in_load": in_load["committed"],
        "committed_runs_per_s": in_load["committed"] / load if load else 0.0,
        "behind_schedule_s": behind[0],
        "failures": failures[:5],
        "queue_slope_writes_per_s": queue_slope,
        "queue_max": max((s["queued"] for s in load_samples), default=0),
        "queue_flat": queue_slope * seconds <= rate * LAG_P99_TARGET_S,
        "drain_s": samples[-1]["t"] - seconds,
        "lag_p50_s": float(lag[0]) if lag[0] is not None else None,
        "lag_p99_s": float(lag[1]) if lag[1] is not None else None,
        "lag_max_s": float(lag[2]) if lag[2] is not None else None,
        "runs_committed": runs,
        "committed_once": runs == distinct == accepted_runs == writes_committed and not writes_other,
        "cpu": cpu,
        "samples": samples,
    }
    result["met"] = bool(
        result["committed_once"]
        and result["queue_flat"]
        and not failures
        and result["lag_p99_s"] is not None
        and result["lag_p99_s"] <= LAG_P99_TARGET_S
        and result["accepted_runs_per_s"] >= 0.98 * rate
    )
    return result


def summary(result: dict[str, Any]) -> str:
    return (
        f"asked {result['rate']:.0f} runs/s for {result['seconds']:.0f} s: accepted {result['accepted_runs_per_s']:.0f}"
        f" runs/s, committed {result['committed_runs_per_s']:.0f} runs/s during the load; queue slope"
        f" {result['queue_slope_writes_per_s']:+.1f} writes/s (max {result['queue_max']}); lag p50"
        f" {result['lag_p50_s']:.2f} s, p99 {result['lag_p99_s']:.2f} s, max {result['lag_max_s']:.2f} s;"
        f" every run committed once: {result['committed_once']}; drained {result['drain_s']:.0f} s after"
    )


def chart(result: dict[str, Any], path: Path, title: str) -> None:
    """Runs accepted/s and committed/s, writes queued, and commit lag, over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["samples"]
    t = [s["t"] for s in samples]

    def per_second(key: str) -> list[float]:
        values = [s[key] for s in samples]
        out = [0.0]
        for i in range(1, len(values)):
            out.append((values[i] - values[i - 1]) / max(t[i] - t[i - 1], 1e-9))
        return out

    def smooth(values: list[float], width: int = 10) -> list[float]:
        return [
            sum(values[max(0, i - width + 1) : i + 1]) / len(values[max(0, i - width + 1) : i + 1])
            for i in range(len(values))
        ]

    fig, (rates, queue, lag) = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    rates.plot(t, smooth(per_second("accepted")), label="runs accepted/s (10 s mean)")
    rates.plot(t, smooth(per_second("committed")), label="runs committed/s (10 s mean)")
    rates.axhline(result["rate"], color="grey", linestyle=":", label=f"asked: {result['rate']:.0f} runs/s")
    rates.set_ylabel("runs/s")
    rates.set_title(title)
    rates.legend(fontsize=8)
    queue.plot(t, [s["queued"] for s in samples], color="tab:red")
    queue.set_ylabel("writes queued")
    # A second in which no commit ended has no lag: points, not a line with gaps.
    lag.plot(
        t,
        [s["lag_p99_s"] for s in samples],
        ".",
        markersize=3,
        label="p99 of the writes committed that second",
    )
    lag.plot(t, [s["lag_max_s"] for s in samples], "x", markersize=2, alpha=0.5, label="max")
    lag.axhline(LAG_P99_TARGET_S, color="grey", linestyle=":", label="target p99: 2 s")
    lag.set_ylabel("commit lag (s)")
    lag.set_xlabel(f"seconds (load for {result['seconds']:.0f} s, then draining)")
    lag.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8801)
    parser.add_argument("--token", required=True)
    parser.add_argument("--rate", type=float, default=1000, help="runs/s, all writers together")
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1000, help="runs per request")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/mltrace_bench")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--chart", type=Path)
    parser.add_argument(
        "--pin-workers",
        action="store_true",
        help="an experiment: the workers and their backends on a core of their own (bench/cpu_share.py)",
    )
    args = parser.parse_args()
    result = measure(
        port=args.port,
        token=args.token,
        database_url=args.database_url,
        rate=args.rate,
        seconds=args.seconds,
        writers=args.writers,
        batch=args.batch,
        pin_workers=args.pin_workers,
    )
    print(summary(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if args.chart:
        chart(result, args.chart, f"Sustained ingest at {args.rate:.0f} runs/s")


if __name__ == "__main__":
    main()
