#!/usr/bin/env python
"""The client scenario: one process logs N inference runs through mltrace's log_component_run.

Each run is component "infer", input "model.pkl" (MODEL) and one ENDPOINT output of a name
of its own. One "train" run that outputs model.pkl is logged and committed before the clock
starts, so each inference run's dependency is inferred as in a real pipeline (and as in
bench/mltrace_baseline.py). The producer is a process of its own that imports only the
client (`mltrace`, client/): it builds each ComponentRun, then times the log_component_run
call alone with perf_counter_ns, then calls mltrace.flush() and records when every run was
accepted and when every run was committed. --rate paces it (a producer the server keeps up
with); without it, it logs in a tight loop (what the pipeline can carry end to end).

Afterwards the host half reads the server's database: exactly N runs of the scenario, N
distinct outputs, each run once; when the server accepted and committed them.

Against a server that is already running (bench/run.py starts its own for `make bench`):

    python bench/client_bench.py --server-url http://127.0.0.1:8765 --token TOKEN \\
        --database-url postgres://postgres@127.0.0.1:5432/mltrace_bench --runs 100000 --rate 2000

Nothing at the top of this file imports the server or Django: the producer half runs this
same file with --produce, and the host half imports psycopg2 only when it reads the database.
"""

from __future__ import annotations

import argparse
import array
import datetime as dt
import json
import logging
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COMPONENT = "infer"
MODEL = "model.pkl"
# The server's top-level packages and its frameworks: the producer must import none of them.
SERVER_PACKAGES = {"django", "rest_framework", "django_q", "mltrace_site", "runs", "components"}
# The targets of this scenario on the 2-core machine (BENCHMARKS.md, "Client overhead").
TARGETS = {"p50_us": 50.0, "p99_us": 1000.0, "committed_runs_per_s": 2000.0}


def log(message: str) -> None:
    print(f"[client-bench {dt.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def percentiles(values: array.array) -> dict[str, float]:
    """p50, p90, p99, p99.9 and max of nanosecond durations, in microseconds (nearest rank)."""
    ordered = sorted(values)
    n = len(ordered)

    def rank(q: float) -> float:
        return ordered[min(n - 1, max(0, int(q * n + 0.999999) - 1))] / 1000

    return {
        "p50_us": rank(0.50),
        "p90_us": rank(0.90),
        "p99_us": rank(0.99),
        "p999_us": rank(0.999),
        "max_us": ordered[-1] / 1000,
        "mean_us": sum(ordered) / n / 1000,
    }


def rss_mb() -> dict[str, float]:
    """This process's resident memory now and at its peak (VmRSS, VmHWM), in MB."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            found[line.split(":")[0]] = int(line.split()[1]) / 1024
    return {"rss_mb": found.get("VmRSS", 0.0), "peak_rss_mb": found.get("VmHWM", 0.0)}


# --- producer half: a process of its own, the client only ------------------------------------


class WarningCounter(logging.Handler):
    """Counts the client's warnings (a full buffer, an outage) and keeps the first few."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.first) < 5:
            self.first.append(record.getMessage())


def instrument(sender: Any) -> dict[str, Any]:
    """Times, without changing what they do, the client's wait for room in a full buffer and
    the sending thread's requests. Measurement only: a perf_counter_ns around three methods of
    this process's Sender (private to the client; the benchmark knows them)."""
    stats: dict[str, Any] = {"blocked_ns": 0, "blocked_calls": 0, "blocked_max_ns": 0, "posts": []}
    missing = [name for name in ("_wait_for_room", "_post", "_send") if not hasattr(sender, name)]
    if missing:
        raise SystemExit(f"the client's Sender has no {', '.join(missing)}: update instrument() to match it")
    wait_for_room, post, send = sender._wait_for_room, sender._post, sender._send
    busy = {"ns": 0, "batches": 0, "runs": 0}

    def timed_wait_for_room() -> None:
        began = time.perf_counter_ns()
        wait_for_room()
        took = time.perf_counter_ns() - began
        stats["blocked_ns"] += took
        stats["blocked_calls"] += 1
        stats["blocked_max_ns"] = max(stats["blocked_max_ns"], took)

    def timed_post(path: str, body: bytes) -> Any:
        began = time.perf_counter_ns()
        response = post(path, body)
        stats["posts"].append((time.perf_counter_ns() - began, len(body), response.status))
        return response

    def timed_send(batch: list) -> Any:
        began = time.perf_counter_ns()
        result = send(batch)
        busy["ns"] += time.perf_counter_ns() - began
        busy["batches"] += 1
        busy["runs"] += len(batch)
        return result

    sender._wait_for_room = timed_wait_for_room
    sender._post = timed_post
    sender._send = timed_send
    stats["busy"] = busy
    return stats


def produce(runs: int, rate: float | None, tag: str) -> dict[str, Any]:
    """Logs `runs` inference runs, timing each log_component_run call; then flushes."""
    import mltrace
    from mltrace import ComponentRun, IOPointer, PointerTypeEnum
    from mltrace import _state as client_state

    warnings = WarningCounter()
    logging.getLogger("mltrace").addHandler(warnings)
    server_modules = sorted({m.split(".")[0] for m in sys.modules} & SERVER_PACKAGES)
    settings = client_state.settings
    result: dict[str, Any] = {
        "runs": runs,
        "rate": rate,
        "tag": tag,
        "python": sys.version.split()[0],
        "client_version": mltrace.__version__,
        "client_file": mltrace.__file__,
        "server_modules_imported": server_modules,
        "buffer_size": settings.buffer_size,
        "batch_runs": settings.batch_runs,
        "rss_at_start": rss_mb(),
    }

    # The model the inference runs read, committed before the clock starts. This also starts
    # the sending thread and opens its connection.
    train = ComponentRun("train")
    train.set_start_timestamp()
    train.add_input(IOPointer(f"features_{tag}.csv", pointer_type=PointerTypeEnum.DATA))
    train.add_output(IOPointer(MODEL, pointer_type=PointerTypeEnum.MODEL))
    train.set_end_timestamp()
    mltrace.log_component_run(train)
    if not mltrace.flush(timeout=120):
        raise SystemExit("the train run was not committed within 120 s")

    sender = client_state.sender()
    stats = instrument(sender)
    durations = array.array("q", bytes(8 * runs))
    interval_ns = int(1e9 / rate) if rate else 0
    log_component_run, perf_counter_ns, sleep = mltrace.log_component_run, time.perf_counter_ns, time.sleep
    behind_max_ns = 0
    began = perf_counter_ns()
    for i in range(runs):
        if interval_ns:
            due = began + i * interval_ns
            now = perf_counter_ns()
            if now < due:
                sleep((due - now) / 1e9)  # releases the GIL: never a spin that starves the sender
            else:
                behind_max_ns = max(behind_max_ns, now - due)
        run = ComponentRun(COMPONENT)
        run.set_start_timestamp()
        run.add_input(IOPointer(MODEL, pointer_type=PointerTypeEnum.MODEL))
        run.add_output(IOPointer(f"prediction_{tag}_{i}", pointer_type=PointerTypeEnum.ENDPOINT))
        run.set_end_timestamp()
        t0 = perf_counter_ns()
        log_component_run(run)
        durations[i] = perf_counter_ns() - t0
    logged = perf_counter_ns()
    result["rss_after_logging"] = rss_mb()
    sender.wait_sent()  # every write accepted (202) by the server
    accepted = perf_counter_ns()
    if not mltrace.flush(timeout=3600):
        raise SystemExit("mltrace.flush() gave up after an hour")
    committed = perf_counter_ns()

    posts = stats["posts"]
    post_ns = array.array("q", [p[0] for p in posts]) if posts else array.array("q", [0])
    seconds = (committed - began) / 1e9
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result.update(
        {
            "call": percentiles(durations),
            "calls_over_1ms": sum(1 for d in durations if d > 1_000_000),
            "total_call_s": sum(durations) / 1e9,
            "blocked_s": stats["blocked_ns"] / 1e9,
            "blocked_calls": stats["blocked_calls"],
            "blocked_max_ms": stats["blocked_max_ns"] / 1e6,
            "warnings": warnings.count,
            "first_warnings": warnings.first,
            "log_s": (logged - began) / 1e9,
            "log_runs_per_s": runs / ((logged - began) / 1e9),
            "behind_schedule_max_ms": behind_max_ns / 1e6 if rate else None,
            "accept_s": (accepted - began) / 1e9,
            "commit_s": seconds,
            "drain_after_accept_s": (committed - accepted) / 1e9,
            "committed_runs_per_s": runs / seconds,
            "accepted_runs_per_s": runs / ((accepted - began) / 1e9),
            "requests": len(posts),
            "request_statuses": sorted({p[2] for p in posts}),
            "request_body_kb_mean": sum(p[1] for p in posts) / max(len(posts), 1) / 1024,
            "request_runs_mean": stats["busy"]["runs"] / max(stats["busy"]["batches"], 1),
            "request_ms": {k.replace("_us", "_ms"): v / 1000 for k, v in percentiles(post_ns).items()},
            "sender_busy_s": stats["busy"]["ns"] / 1e9,
            "sender_busy_share": stats["busy"]["ns"] / max(accepted - began, 1),
            "sender_post_s": sum(p[0] for p in posts) / 1e9,
            "rss_at_end": rss_mb(),
            "maxrss_mb": usage.ru_maxrss / 1024,
            "cpu_s": usage.ru_utime + usage.ru_stime,
        }
    )
    return result


# --- host half: starts the producer, reads the database --------------------------------------


def run_producer(
    server_url: str, token: str, *, runs: int, rate: float | None, out: Path | None = None
) -> dict[str, Any]:
    """Runs the producer in a process of its own; its results (JSON)."""
    tag = uuid.uuid4().hex[:10]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
    env.update({"MLTRACE_SERVER_URL": server_url, "MLTRACE_TOKEN": token})
    command = [sys.executable, str(Path(__file__).resolve()), "--produce", "--runs", str(runs), "--tag", tag]
    if rate:
        command += ["--rate", str(rate)]
    stderr = open(out / f"client-{tag}.log", "w") if out else None  # noqa: SIM115 - closed below
    try:
        # From a folder outside the repository: the producer cannot import the server by accident.
        proc = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd="/")
    finally:
        if stderr:
            stderr.close()
    if proc.returncode:
        raise RuntimeError(f"the producer failed (exit {proc.returncode}); see its log")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def verify(db_url: str, tag: str, runs: int) -> dict[str, Any]:
    """What the database holds of the scenario `tag`: runs, distinct outputs, and timings."""
    import psycopg2

    connection = psycopg2.connect(db_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT COUNT(*), COUNT(DISTINCT r.id), COUNT(DISTINCT p.name), COUNT(DISTINCT p.id),
                       COUNT(*) FILTER (WHERE p.pointer_type = 'ENDPOINT'), COUNT(*) FILTER (WHERE c.name = %s),
                       MIN(w.accepted_at), MAX(w.accepted_at), MAX(w.committed_at),
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM w.committed_at - w.accepted_at)),
                       percentile_cont(0.99) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM w.committed_at - w.accepted_at)),
                       MAX(EXTRACT(EPOCH FROM w.committed_at - w.accepted_at))
                FROM runs_runoutput o
                JOIN runs_iopointer p ON p.id = o.pointer_id
                JOIN runs_run r ON r.id = o.run_id
                JOIN components_component c ON c.id = r.component_id
                JOIN runs_write w ON w.id = r.id
                WHERE p.name LIKE %s
                """,
                [COMPONENT, f"prediction_{tag}_%"],
            )
            (
                rows,
                distinct_runs,
                distinct_names,
                distinct_pointers,
                endpoints,
                of_component,
                first_accept,
                last_accept,
                last_commit,
                lag_p50,
                lag_p99,
                lag_max,
            ) = cursor.fetchone()
            # Each run of the scenario: one input, model.pkl, and a dependency on the train run.
            cursor.execute(
                """
                SELECT COUNT(*) FILTER (WHERE i.n = 1 AND i.model = 1), COUNT(*) FILTER (WHERE d.n = 1)
                FROM (SELECT DISTINCT o.run_id FROM runs_runoutput o JOIN runs_iopointer p ON p.id = o.pointer_id
                      WHERE p.name LIKE %s) s
                LEFT JOIN LATERAL (SELECT COUNT(*) AS n, COUNT(*) FILTER (WHERE q.name = %s
                                   AND q.pointer_type = 'MODEL') AS model
                                   FROM runs_runinput ri JOIN runs_iopointer q ON q.id = ri.pointer_id
                                   WHERE ri.run_id = s.run_id) i ON true
                LEFT JOIN LATERAL (SELECT COUNT(*) AS n FROM runs_rundependency rd WHERE rd.run_id = s.run_id) d ON true
                """,
                [f"prediction_{tag}_%", MODEL],
            )
            with_model_input, with_dependency = cursor.fetchone()
            cursor.execute("SELECT status, COUNT(*) FROM runs_write GROUP BY status")
            statuses = dict(cursor.fetchall())
            cursor.execute(
                "SELECT COUNT(*) FROM runs_run r JOIN components_component c ON c.id = r.component_id"
                " WHERE c.name = %s",
                [COMPONENT],
            )
            component_runs = cursor.fetchone()[0]
    finally:
        connection.close()
    ok = rows == distinct_runs == distinct_names == distinct_pointers == endpoints == of_component == runs
    return {
        "expected": runs,
        "runs": distinct_runs,
        "output_rows": rows,
        "distinct_outputs": distinct_names,
        "endpoint_outputs": endpoints,
        "runs_of_component": of_component,
        "component_runs_in_database": component_runs,
        "runs_reading_model": with_model_input,
        "runs_with_dependency": with_dependency,
        "write_statuses": statuses,
        "all_committed_once": ok and not statuses.get("queued") and not statuses.get("failed"),
        "server_accept_s": (last_accept - first_accept).total_seconds() if first_accept else None,
        "server_first_accept_to_last_commit_s": (last_commit - first_accept).total_seconds()
        if first_accept
        else None,
        "lag_p50_s": None if lag_p50 is None else float(lag_p50),
        "lag_p99_s": None if lag_p99 is None else float(lag_p99),
        "lag_max_s": None if lag_max is None else float(lag_max),
    }


def measure(
    server_url: str, token: str, db_url: str, *, runs: int, rate: float | None, out: Path | None = None
) -> dict[str, Any]:
    """The producer's numbers, the database's check of them, and the targets met or missed."""
    mode = f"paced at {rate:,.0f} runs/s" if rate else "tight loop"
    log(f"{mode}: {runs:,} runs through log_component_run")
    produced = run_producer(server_url, token, runs=runs, rate=rate, out=out)
    checked = verify(db_url, produced["tag"], runs)
    result = {"mode": mode, "producer": produced, "database": checked, "targets": judge(produced, checked)}
    call = produced["call"]
    log(
        f"{mode}: call p50 {call['p50_us']:.1f} us, p99 {call['p99_us']:.1f} us, max {call['max_us']:.0f} us; "
        f"blocked {produced['blocked_s']:.2f} s; accepted in {produced['accept_s']:.2f} s, committed in "
        f"{produced['commit_s']:.2f} s ({produced['committed_runs_per_s']:,.0f} runs/s); "
        f"{checked['runs']:,} runs, {checked['distinct_outputs']:,} distinct outputs in the database; "
        f"peak RSS {produced['rss_at_end']['peak_rss_mb']:.0f} MB"
    )
    return result


def judge(produced: dict[str, Any], checked: dict[str, Any]) -> dict[str, bool | None]:
    """Each target: met (True), missed (False), or None where this mode cannot say."""
    return {
        "p50": produced["call"]["p50_us"] <= TARGETS["p50_us"],
        "p99": produced["call"]["p99_us"] <= TARGETS["p99_us"],
        # A producer paced below the target cannot reach it: only the tight loop measures it.
        "committed_runs_per_s": None
        if produced["rate"] and produced["rate"] < TARGETS["committed_runs_per_s"] * 1.05
        else produced["committed_runs_per_s"] >= TARGETS["committed_runs_per_s"],
        "all_committed_once": bool(checked["all_committed_once"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--rate", type=float, help="runs/s to pace the producer at (default: a tight loop)")
    parser.add_argument("--server-url", default=os.environ.get("MLTRACE_SERVER_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("MLTRACE_TOKEN"))
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mltrace_bench"),
        help="the server's database, to check what was committed",
    )
    parser.add_argument("--out", type=Path, help="write the results here (JSON)")
    parser.add_argument("--produce", action="store_true", help=argparse.SUPPRESS)  # the producer half
    parser.add_argument("--tag", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.produce:
        print(json.dumps(produce(args.runs, args.rate, args.tag or uuid.uuid4().hex[:10])))
        return
    if not args.token:
        raise SystemExit("--token (or MLTRACE_TOKEN) is needed")
    result = measure(
        args.server_url,
        args.token,
        args.database_url,
        runs=args.runs,
        rate=args.rate,
        out=args.out.parent if args.out else None,
    )
    text = json.dumps(result, indent=1, default=str)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
