"""The sustained stage of `make bench` (bench/run.py): the limit (bench/limit.py),
the ceiling (bench/ceiling/) and ours beside it under wrk, a 1,000-run batch's accept
latency, the sustained run (bench/sustained.py) at each database size, and commit_scaling:
a queued backlog committed by qclusters of 1, 2 and 3 workers."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import (  # noqa: E402
    PY,
    ROOT,
    commit_log_stats,
    fresh_server,
    log,
    reset_database,
    seed,
    sql,
    wait_drained,
)


def wrk_installed() -> str | None:
    """wrk's path, or None (logged: the accept comparison is then skipped)."""
    exe = shutil.which("wrk")
    if exe is None:
        log("wrk is not installed (apt-get install wrk): the accept comparison is skipped")
    return exe


def wrk_accepts(url: str, token: str, seconds: int, out: Path, name: str) -> dict[str, Any] | None:
    """wrk -t2 -c32 posting one inference run a request (bench/accept_run.lua): req/s and
    latency percentiles in ms, or None where wrk is not installed."""
    import re

    exe = wrk_installed()
    if exe is None:
        return None
    script = ROOT / "bench" / "accept_run.lua"
    command = [exe, "-t2", "-c32", f"-d{seconds}s", "-s", str(script), "--latency", url]
    proc = subprocess.run(
        command, env={**os.environ, "TOKEN": token}, capture_output=True, text=True, check=True
    )
    (out / f"wrk-{name}.txt").write_text(proc.stdout + proc.stderr)
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    percentiles = {
        f"p{int(float(q))}": float(value) * units[unit]
        for q, value, unit in re.findall(r"^\s+(\d+(?:\.\d+)?)%\s+([\d.]+)(us|ms|s)\s*$", proc.stdout, re.M)
    }
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", proc.stdout).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", proc.stdout)
    errors = re.search(r"Socket errors: (.*)", proc.stdout)
    result = {
        "rps": rps,
        **percentiles,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
    }
    log(f"wrk, {name}: {rps:.0f} req/s, p50 {result.get('p50', 0):.0f} ms, p99 {result.get('p99', 0):.0f} ms")
    return result


def ceiling_accepts(args: argparse.Namespace, env: dict[str, str], out: Path) -> dict[str, Any] | None:
    """The ceiling: a minimal Django + DRF endpoint doing one INSERT (bench/ceiling/), served
    by as many gevent workers as ours, loaded by the same wrk script."""
    if wrk_installed() is None:
        return None
    from bench.ceiling import CREATE_TABLE

    reset_database(args.database_url)
    connection = psycopg2.connect(args.database_url)
    connection.autocommit = True
    connection.cursor().execute(CREATE_TABLE)
    connection.close()
    port = args.port + 1
    ceiling_env = {
        **env,
        "DJANGO_SETTINGS_MODULE": "bench.ceiling.settings",
        "WEB_CONCURRENCY": str(args.web_workers),
    }
    with open(out / "ceiling.log", "ab") as ceiling_log:
        web = subprocess.Popen(
            [
                PY,
                "-m",
                "gunicorn",
                "-c",
                str(ROOT / "bench" / "ceiling" / "gunicorn.conf.py"),
                "-b",
                f"127.0.0.1:{port}",
            ],
            cwd=ROOT,
            env=ceiling_env,
            stdout=ceiling_log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(
                        urllib.request.Request(
                            f"http://127.0.0.1:{port}/api/v1/runs/", data=b"{}", method="POST"
                        ),
                        timeout=2,
                    )
                    break
                except urllib.error.HTTPError:
                    break  # it answers
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the ceiling did not start") from None
                    time.sleep(0.5)
            return wrk_accepts(f"http://127.0.0.1:{port}", "none", args.wrk_seconds, out, "ceiling")
        finally:
            web.send_signal(signal.SIGTERM)
            web.wait(60)


def commit_scaling(args: argparse.Namespace, env: dict[str, str], out: Path, workers: int) -> dict[str, Any]:
    """Committed runs/s of a backlog of --scaling-runs pipeline runs, queued before a qcluster
    of `workers` workers starts: from its first commit to its last."""
    import redis

    reset_database(args.database_url)
    redis.from_url(args.redis_url).flushdb()
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    with open(out / f"scaling-{workers}.log", "ab") as scaling_log:
        subprocess.run(
            [PY, "bench/seed.py", "--runs", str(args.scaling_runs), "--queue", "--predictions", "10"],
            cwd=ROOT,
            env=env,
            check=True,
            stdout=scaling_log,
            stderr=subprocess.STDOUT,
        )
        cluster = subprocess.Popen(
            [PY, "manage.py", "qcluster"],
            cwd=ROOT,
            env={**env, "MLTRACE_WORKERS": str(workers)},
            stdout=scaling_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_drained(args.database_url, args.drain_timeout)
        finally:
            cluster.send_signal(signal.SIGTERM)
            cluster.wait(60)
    first, last, committed = sql(
        args.database_url,
        "SELECT MIN(committed_at), MAX(committed_at), COUNT(*) FROM runs_write WHERE status = 'committed'",
    )[0]
    stats = commit_log_stats(out / f"scaling-{workers}.log")
    seconds = (last - first).total_seconds()
    result = {
        "workers": workers,
        "runs": committed,
        "seconds": seconds,
        # The first batch's own time is not between the first and the last commit.
        "runs_per_s": committed / (seconds + (stats["ms_per_batch_p50"] or 0) / 1000),
        "ms_per_1000_run_commit_p50": stats["ms_per_batch_p50"],
    }
    log(
        f"commit scaling, {workers} worker(s): {committed} runs in {seconds:.1f} s, {result['runs_per_s']:.0f} runs/s"
    )
    return result


def sustained_round(args: argparse.Namespace, env: dict[str, str], out: Path) -> dict[str, Any]:
    """The limit, the ceiling and ours beside it, a 1,000-run batch's latency, the sustained
    run at each --sizes, and 1/2/3-worker commit scaling."""
    from bench import batch_accept, limit, sustained

    out.mkdir(exist_ok=True)
    result: dict[str, Any] = {"rounds": []}
    base = args.database_url.rsplit("/", 1)[0]
    # The limit twice: into empty tables, and for as many runs as the sustained run writes
    # (its indexes then outgrow shared_buffers, as the server's do during that run).
    result["limits"] = []
    for runs in (args.limit_runs, args.limit_volume_runs):
        if not runs:
            continue
        log(f"the limit: COPY of the rows of {runs} pipeline runs (bench/limit.py)")
        measured = limit.measure(f"{base}/mltrace_limit", runs=runs, batch=1000, predictions=10, say=log)
        log(f"the limit: {measured['rows_per_s']:,.0f} rows/s, {measured['runs_per_s']:,.0f} runs/s")
        result["limits"].append(measured)
    limit.drop(f"{base}/mltrace_limit")
    result["limit"] = min(result["limits"], key=lambda measured: measured["runs_per_s"])
    rate = args.sustained_rate or min(10_000, result["limit"]["runs_per_s"] / 2)
    result["rate"] = rate = float(int(rate // 10 * 10))
    result["ceiling"] = ceiling_accepts(args, env, out)
    for size in [int(s) for s in args.sizes.split(",")]:
        label = f"{size:,} runs in the database" if size else "empty database"
        folder = out / f"size-{size}"
        folder.mkdir(exist_ok=True)
        server = fresh_server(args, env, folder)
        round_: dict[str, Any] = {"size": size, "label": label, "folder": f"{out.name}/{folder.name}"}
        try:
            if size:
                round_["seed"] = {
                    k: v for k, v in seed(env, size, server, folder).items() if "series" not in k
                }
            else:
                log("one 1,000-run batch accept, 20 times (bench/batch_accept.py)")
                round_["batch_accept"] = batch_accept.latencies(server.port, env["MLTRACE_TOKEN"], 20)
                log(f"1,000-run batch accept: median {round_['batch_accept']['median_ms']:.0f} ms")
                round_["ours"] = wrk_accepts(
                    f"http://127.0.0.1:{server.port}", env["MLTRACE_TOKEN"], args.wrk_seconds, folder, "ours"
                )
                wait_drained(args.database_url, args.drain_timeout)
            log(f"sustained, {label}: {rate:.0f} runs/s for {args.sustained_seconds} s")
            measured = sustained.measure(
                port=server.port,
                token=env["MLTRACE_TOKEN"],
                database_url=args.database_url,
                rate=rate,
                seconds=args.sustained_seconds,
                drain_timeout=args.drain_timeout,
                say=log,
                pin_workers=args.pin_workers,
            )
            log(f"sustained, {label}: {sustained.summary(measured)}")
            sustained.chart(
                measured, folder / "sustained.png", f"Sustained ingest at {rate:.0f} runs/s ({label})"
            )
            (folder / "sustained.json").write_text(json.dumps(measured, indent=1))
            round_["sustained"] = {k: v for k, v in measured.items() if k != "samples"}
        finally:
            server.stop()
        result["rounds"].append(round_)
    result["scaling"] = [commit_scaling(args, env, out, n) for n in (1, 2, 3)]
    return result
