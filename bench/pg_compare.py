#!/usr/bin/env python
"""PostgreSQL as docker-compose.yml ships it, beside the machine's: a lighter stage of make bench.

Two clusters on the same machine and disk: the machine's PostgreSQL (--database-url, or
BENCH_DATABASE_URL: its configuration as it is, Debian's defaults here) and a private cluster
with exactly docker-compose.yml's postgres settings (bench/pgcluster.py), started for the run
and removed after it. Each of --rounds rounds measures both, the order alternating from round
to round (machine first in odd rounds), so that the machine's drift and the other load on it
fall on both:

- the limit at volume (bench/limit.py): COPY of --limit-runs pipeline runs, 1,000 a
  transaction, into freshly migrated tables: the database's write path alone, where
  shared_buffers, the checkpoints and the WAL show;
- a sustained load (bench/sustained.py): gunicorn and a qcluster on a fresh database, batches
  of 1,000 runs paced at --rate runs/s for --seconds: what the committer keeps up with beside
  the accepts on each configuration.

Around each part it reads the cluster's WAL (pg_stat_wal: bytes, full-page images) and
checkpoints (pg_stat_bgwriter: by time, by WAL volume; buffers the backends wrote
themselves). These counters are the whole cluster's: on the machine's they include whatever
else runs on it. It prints a table and writes results.json and report.md under --out.

    python bench/pg_compare.py --rounds 2 --limit-runs 200000 --rate 1300 --seconds 150

The full stages run on the private cluster too: `python bench/run.py --postgres compose ...`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import harness, limit, pgcluster, sustained  # noqa: E402

COUNTERS = """
SELECT w.wal_bytes::float8, w.wal_fpi, b.checkpoints_timed, b.checkpoints_req, b.buffers_backend
FROM pg_stat_wal w, pg_stat_bgwriter b
"""


def counters(url: str) -> dict[str, float]:
    row = harness.sql(url, COUNTERS)[0]
    return dict(
        zip(
            ("wal_bytes", "wal_fpi", "checkpoints_timed", "checkpoints_req", "buffers_backend"),
            row,
            strict=True,
        )
    )


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in before}


def settings(url: str) -> dict[str, str]:
    names = [*pgcluster.compose_settings(), "fsync", "synchronous_commit", "autovacuum", "server_version"]
    return {name: harness.sql(url, "SELECT current_setting(%s)", (name,))[0][0] for name in names}


def one(name: str, base: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Both parts on one cluster (base: its URL without a database)."""
    result: dict[str, Any] = {"cluster": name, "settings": settings(f"{base}/postgres")}
    admin = f"{base}/postgres"
    if args.limit_runs:
        url = f"{base}/mltrace_pgcompare_limit"
        before = counters(admin)
        harness.log(f"{name}: the limit, COPY of {args.limit_runs} runs")
        measured = limit.measure(url, runs=args.limit_runs, batch=1000, predictions=10, say=harness.log)
        result["limit"] = {**measured, **delta(before, counters(admin))}
        limit.drop(url)
        harness.log(f"{name}: the limit {measured['runs_per_s']:,.0f} runs/s")
    if args.seconds:
        folder = out / name.replace(", ", "-").replace("=", "-")
        folder.mkdir(parents=True, exist_ok=True)
        server_args = argparse.Namespace(
            database_url=f"{base}/mltrace_pgcompare",
            redis_url=args.redis_url,
            web_workers=args.web_workers,
            web_class="gevent",
            web_threads=1,
            port=args.port,
        )
        env = {
            **os.environ,
            "DATABASE_URL": server_args.database_url,
            "REDIS_URL": args.redis_url,
            "MLTRACE_QUEUE_NAME": args.queue_name,
            "MLTRACE_WORKERS": "2",
            "DJANGO_SETTINGS_MODULE": "mltrace_site.settings",
            "PYTHONPATH": str(harness.ROOT),
        }
        server = harness.fresh_server(server_args, env, folder)
        try:
            before = counters(admin)
            harness.log(f"{name}: sustained, {args.rate:.0f} runs/s for {args.seconds} s")
            measured = sustained.measure(
                port=args.port,
                token=env["MLTRACE_TOKEN"],
                database_url=server_args.database_url,
                rate=args.rate,
                seconds=args.seconds,
                say=harness.log,
            )
            after = counters(admin)
        finally:
            server.stop()
        harness.log(f"{name}: {sustained.summary(measured)}")
        result["sustained"] = {
            **{k: v for k, v in measured.items() if k != "samples"},
            **delta(before, after),
        }
        limit.drop(server_args.database_url)
    return result


def table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| round | cluster | limit runs/s | limit WAL MB (full-page images) | limit checkpoints time/WAL |"
        " sustained committed runs/s | lag p50 / p99 s | queue slope writes/s | sustained WAL MB |"
        " checkpoints time/WAL | other processes' cores |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lim, sus = r.get("limit") or {}, r.get("sustained") or {}
        cells = [str(r["round"]), r["cluster"]]
        if lim:
            cells += [
                f"{lim['runs_per_s']:,.0f}",
                f"{lim['wal_bytes'] / 2**20:,.0f} ({lim['wal_fpi']:,.0f})",
                f"{lim['checkpoints_timed']:.0f}/{lim['checkpoints_req']:.0f}",
            ]
        else:
            cells += ["-"] * 3
        if sus:
            cells += [
                f"{sus['committed_runs_per_s']:,.0f}",
                f"{sus['lag_p50_s']:.2f} / {sus['lag_p99_s']:.2f}",
                f"{sus['queue_slope_writes_per_s']:+.1f}",
                f"{sus['wal_bytes'] / 2**20:,.0f}",
                f"{sus['checkpoints_timed']:.0f}/{sus['checkpoints_req']:.0f}",
                # What else ran on the machine over the load (bench/cpu_share.py's "other").
                f"{(sus.get('cpu') or {}).get('by_kind', {}).get('other', 0):.2f}",
            ]
        else:
            cells += ["-"] * 6
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    harness.add_service_arguments(parser)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--limit-runs", type=int, default=200_000, help="runs COPYed for the limit (0: skip)")
    parser.add_argument("--rate", type=float, default=1300, help="runs/s of the sustained load")
    parser.add_argument("--seconds", type=int, default=150, help="the sustained load (0: skip)")
    parser.add_argument("--web-workers", type=int, default=2 * (os.cpu_count() or 1))
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--queue-name", default="mltrace-bench")
    parser.add_argument(
        "--vary", help="name=value[,name=value]: also a cluster of the compose settings with these changed"
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--report-only", type=Path, help="rewrite report.md of a results folder, measure nothing"
    )
    args = parser.parse_args()
    if args.report_only:
        write_report(args.report_only, json.loads((args.report_only / "results.json").read_text()))
        return
    out = args.out or harness.ROOT / "bench" / "results" / dt.datetime.now().strftime("pg-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    (out / "command.txt").write_text(f"python {' '.join(sys.argv)}\n")
    machine_base = args.database_url.rsplit("/", 1)[0]
    results: list[dict[str, Any]] = []
    # --vary name=value adds a third cluster, the compose file's settings with that one
    # changed: an experiment to tell one setting's share (or a difference from the machine's
    # configuration) apart, not what ships.
    varied = dict(part.split("=", 1) for part in args.vary.split(",")) if args.vary else None
    privates = [pgcluster.PrivatePostgres(log=out / "compose-postgres.log")]
    if varied:
        privates.append(
            pgcluster.PrivatePostgres({**pgcluster.compose_settings(), **varied}, log=out / "varied.log")
        )
    try:
        clusters = [("machine", machine_base)]
        for private in privates:
            private.start()
            name = "compose" if private is privates[0] else f"compose, {args.vary}"
            harness.log(f"results in {out}; {name} at {private.url()} ({private.settings})")
            clusters.append((name, private.url().rsplit("/", 1)[0]))
        for number in range(1, args.rounds + 1):
            for name, base in clusters if number % 2 else clusters[::-1]:
                results.append({"round": number, **one(name, base, args, out)})
                (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    finally:
        for private in privates:
            private.stop()
    write_report(out, results)


def write_report(out: Path, results: list[dict[str, Any]]) -> None:
    command = out / "command.txt"
    lines = [
        "# PostgreSQL as shipped, beside the machine's",
        "",
        *([f"`{command.read_text().strip()}`", ""] if command.exists() else []),
        *table(results),
        "",
        *(f"- {r['cluster']}: {r['settings']}" for r in results if r["round"] == 1),
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
