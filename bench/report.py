"""The report of `make bench` (bench/run.py): report.md's tables, one section per stage, and
the PNG charts (matplotlib, imported only when a chart is drawn). It measures nothing:
`python bench/run.py --report-only FOLDER` rewrites a report from the saved JSON."""

from __future__ import annotations

import csv
import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import client_bench, cpu_share  # noqa: E402

# --- charts ---------------------------------------------------------------------------------


def history(prefix: Path) -> list[dict[str, float]]:
    rows = []
    with open(f"{prefix}_stats_history.csv") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] != "Aggregated":
                continue
            try:
                rows.append(
                    {
                        "t": float(row["Timestamp"]),
                        "rps": float(row["Requests/s"]),
                        "p50": float(row["50%"]) if row["50%"] not in ("N/A", "") else None,
                        "p99": float(row["99%"]) if row["99%"] not in ("N/A", "") else None,
                    }
                )
            except ValueError:
                continue
    if rows:
        start = rows[0]["t"]
        for row in rows:
            row["t"] -= start
    return rows


def charts(out: Path, results: list[dict[str, Any]], label: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    writers = [r for r in results if r["scenario"] in ("sync", "async", "batch")]
    if writers:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
        for result in writers:
            rows = history(out / result["scenario"])
            top.plot([r["t"] for r in rows], [r["rps"] for r in rows], label=result["scenario"])
            bottom.plot([r["t"] for r in rows], [r["p50"] for r in rows], label=f"{result['scenario']} p50")
            bottom.plot(
                [r["t"] for r in rows], [r["p99"] for r in rows], "--", label=f"{result['scenario']} p99"
            )
        top.set_ylabel("requests/s")
        top.set_title(f"Writes, sync beside async ({label})")
        top.legend()
        bottom.set_ylabel("latency (ms)")
        bottom.set_yscale("log")
        bottom.set_xlabel("seconds")
        bottom.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "writes.png", dpi=110)
        plt.close(fig)
        made.append("writes.png")

    fig, axis = plt.subplots(figsize=(9, 4))
    for result in results:
        samples = result["samples"]
        if samples and result["runs_committed"]:
            first = samples[0]["committed"]
            axis.plot(
                [s["t"] for s in samples], [s["committed"] - first for s in samples], label=result["scenario"]
            )
    axis.set_xlabel("seconds since the scenario began (load, then draining)")
    axis.set_ylabel("runs committed")
    axis.set_title(f"Runs committed over time ({label})")
    axis.legend()
    fig.tight_layout()
    fig.savefig(out / "committed.png", dpi=110)
    plt.close(fig)
    made.append("committed.png")
    return made


def seed_chart(out: Path, seed: dict[str, Any], label: str) -> str:
    """Worker RSS against runs committed while the workers commit the seeding backlog."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = seed["worker_rss_series"]
    fig, axis = plt.subplots(figsize=(9, 4))
    axis.plot([committed for _, committed, _ in series], [rss for _, _, rss in series])
    axis.set_xlabel("runs committed by the workers")
    axis.set_ylabel("largest worker RSS (MB)")
    axis.set_ylim(bottom=0)
    axis.set_title(f"Worker memory while committing {seed['runs']:,} runs ({label})")
    fig.tight_layout()
    fig.savefig(out / "worker_memory.png", dpi=110)
    plt.close(fig)
    return "worker_memory.png"


def client_chart(out: Path, modes: list[dict[str, Any]]) -> str:
    """Runs committed and writes queued over time, for each mode of the client scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    for mode in modes:
        samples = mode["server"]["samples"]
        top.plot([s["t"] for s in samples], [s["committed"] for s in samples], label=mode["mode"])
        bottom.plot([s["t"] for s in samples], [s["pending"] for s in samples], label=mode["mode"])
    top.set_ylabel("runs committed")
    top.set_title(f"The client scenario: {modes[0]['producer']['runs']:,} runs through log_component_run")
    top.legend()
    bottom.set_ylabel("writes accepted, not committed")
    bottom.set_xlabel("seconds since the server was up")
    bottom.legend()
    fig.tight_layout()
    fig.savefig(out / "client.png", dpi=110)
    plt.close(fig)
    return "client.png"


def round_size(round_: dict[str, Any]) -> int:
    return int(round_["folder"].removeprefix("size-"))


def scale_rows(rounds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per database size: accept latency, commit throughput and read latency."""
    rows = []
    for round_ in rounds:
        by_name = {r["scenario"]: r for r in round_["results"]}
        reads = by_name.get("readers", {}).get("endpoints", {})
        row: dict[str, Any] = {"size": round_size(round_)}
        for name in ("sync", "async", "batch"):
            if name in by_name:
                row[f"{name}_rps"] = by_name[name]["rps"]
                row[f"{name}_p50"] = by_name[name]["p50"]
                row[f"{name}_p99"] = by_name[name]["p99"]
        if "batch" in by_name:
            row["drain_runs_per_s"] = by_name["batch"]["committed_runs_per_s_draining"]
        for label, endpoint in (
            ("trace", "GET /trace/"),
            ("history", "GET /history/"),
            ("recent", "GET /runs/ (recent)"),
            ("review", "GET /review/"),
        ):
            if endpoint in reads:
                row[f"{label}_p50"] = reads[endpoint]["p50"]
                row[f"{label}_p99"] = reads[endpoint]["p99"]
        if round_.get("lineage"):
            row["chain_trace_ms"] = round_["lineage"]["trace_median_ms"]
        if round_.get("seed"):
            row["seed_runs_per_s"] = round_["seed"]["runs_per_s"]
            row["seed_worker_mb"] = round_["seed"]["peak_worker_rss_mb"]
        rows.append(row)
    return rows


def scale_chart(out: Path, rounds: list[dict[str, Any]]) -> str:
    """Accept latency, commit throughput and read latency against the size of the database."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = scale_rows(rounds)
    sizes = [max(row["size"], 1) for row in rows]
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(14, 4.2))
    for key, label in (
        ("async_p50", "async accept p50"),
        ("async_p99", "async accept p99"),
        ("sync_p50", "sync write p50"),
    ):
        left.plot(sizes, [row.get(key) for row in rows], marker="o", label=label)
    left.set_ylabel("ms")
    left.set_title("Write latency (32 users)")
    for key, label in (
        ("drain_runs_per_s", "runs/s committed draining a batch backlog"),
        ("seed_runs_per_s", "runs/s committed while seeding"),
    ):
        middle.plot(sizes, [row.get(key) for row in rows], marker="o", label=label)
    middle.set_ylabel("committed runs/s")
    middle.set_ylim(bottom=0)
    middle.set_title("Commit throughput (2 workers)")
    for key, label in (
        ("trace_p50", "trace"),
        ("history_p50", "history"),
        ("recent_p50", "recent"),
        ("review_p50", "review"),
        ("chain_trace_ms", "500-run chain trace, alone"),
    ):
        right.plot(sizes, [row.get(key) for row in rows], marker="o", label=label)
    right.set_ylabel("ms (p50 under 32 reading users; the chain alone)")
    right.set_title("Read latency")
    for axis in (left, middle, right):
        axis.set_xscale("log")
        axis.set_xlabel("runs in the database (0 plotted at 1)")
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "scale.png", dpi=110)
    plt.close(fig)
    return "scale.png"


# --- report.md ------------------------------------------------------------------------------


def us(value: float | None) -> str:
    """Microseconds as µs below a millisecond, else as ms."""
    if value is None:
        return "-"
    if value < 1000:
        return f"{value:,.1f} µs"
    return f"{value / 1000:,.2f} ms"


def verdict(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not judged"}[met]


def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def client_section(client: dict[str, Any]) -> list[str]:
    """report.md's section on the client scenario: every number, the targets met or missed."""
    modes = client["modes"]
    baseline = client["baseline"]
    empty = baseline["empty"]
    targets = client_bench.TARGETS
    runs = client["runs"]

    def row(label: str, cells: list[str], target: str = "", mltrace: str = "") -> str:
        return f"| {label} | " + " | ".join(cells) + f" | {target} | {mltrace} |"

    def each(get: Any) -> list[str]:
        return [get(m["producer"], m["database"], m) for m in modes]

    def judged(text: str, key: str) -> Any:
        return lambda p, d, m: f"{text.format(p=p, d=d)} ({verdict(m['targets'][key])})"

    lines = [
        f"## Client: {runs:,} inference runs through log_component_run",
        "",
        f"One process (`bench/client_bench.py`) imports only the client (`mltrace`, client/) and logs "
        f"{runs:,} runs of component `infer`, each with input `{client_bench.MODEL}` (MODEL, the output of "
        "one `train` run logged and committed before the clock starts) and one ENDPOINT output of its own "
        "name. Each ComponentRun is built first; the `log_component_run` call alone is timed "
        "(perf_counter_ns). Then `mltrace.flush()` waits until the server has committed every run. The "
        "database is then checked: the scenario's runs, their distinct outputs, each run once. Each mode "
        f"runs against a fresh database and server (gunicorn {client['web_workers']} {client.get('web_class', 'sync')} workers, qcluster "
        f"{client['queue_workers']} workers, as above), on the same 2 cores as the producer.",
        "",
        f"mltrace 0.17's `log_component_run`: {baseline['source']}.",
        "",
        "| | " + " | ".join(m["mode"] for m in modes) + " | target | mltrace 0.17 |",
        "|---|" + "---|" * len(modes) + "---|---|",
        row(
            "caller's cost per call, p50",
            each(judged("{p[call][p50_us]:.1f} µs", "p50")),
            f"≤ {targets['p50_us']:.0f} µs",
            f"{empty['p50_ms']:,.1f} ms",
        ),
        row("p90", each(lambda p, d, m: us(p["call"]["p90_us"]))),
        row(
            "p99",
            [f"{us(m['producer']['call']['p99_us'])} ({verdict(m['targets']['p99'])})" for m in modes],
            f"≤ {us(targets['p99_us'])}",
            f"{empty['p99_ms']:,.1f} ms",
        ),
        row("p99.9", each(lambda p, d, m: us(p["call"]["p999_us"]))),
        row("max", each(lambda p, d, m: us(p["call"]["max_us"])), "", f"{empty['max_ms']:,.1f} ms"),
        row("mean", each(lambda p, d, m: us(p["call"]["mean_us"]))),
        row("calls over 1 ms", each(lambda p, d, m: f"{p['calls_over_1ms']:,}")),
        row(
            "time blocked on a full buffer",
            each(
                lambda p, d, m: (
                    f"{p['blocked_s']:.2f} s in {p['blocked_calls']:,} calls (longest "
                    f"{p['blocked_max_ms']:,.0f} ms); {p['warnings']} warnings"
                )
            ),
            f"buffer {modes[0]['producer']['buffer_size']:,} writes",
        ),
        row(
            "time to make all the calls",
            each(lambda p, d, m: f"{p['log_s']:.2f} s ({p['log_runs_per_s']:,.0f} calls/s)"),
        ),
        row("time until all accepted", each(lambda p, d, m: f"{p['accept_s']:.2f} s")),
        row(
            "time until all committed (flush returned)",
            each(
                lambda p, d, m: (
                    f"{p['commit_s']:.2f} s ({p['drain_after_accept_s']:.2f} s after the last accept)"
                )
            ),
        ),
        row(
            "committed runs/s, end to end",
            each(judged("{p[committed_runs_per_s]:,.0f}", "committed_runs_per_s")),
            f"≥ {targets['committed_runs_per_s']:,.0f}",
            f"{empty['runs_per_s']:,.1f}",
        ),
        row(
            "in the database: runs / distinct outputs",
            each(
                lambda p, d, m: (
                    f"{d['runs']:,} / {d['distinct_outputs']:,} "
                    f"({verdict(m['targets']['all_committed_once'])})"
                )
            ),
            f"{runs:,} / {runs:,}, once",
        ),
        row(
            "runs reading model.pkl / with their dependency on train",
            each(lambda p, d, m: f"{d['runs_reading_model']:,} / {d['runs_with_dependency']:,}"),
        ),
        row(
            "peak RSS of the producer",
            each(
                lambda p, d, m: (
                    f"{p['rss_at_end']['peak_rss_mb']:,.0f} MB ({p['rss_at_start']['rss_mb']:,.0f} MB at start)"
                )
            ),
        ),
        row(
            "requests (runs per request): round trip p50 / p99",
            each(
                lambda p, d, m: (
                    f"{p['requests']:,} ({p['request_runs_mean']:,.0f}): {p['request_ms']['p50_ms']:,.0f} / "
                    f"{p['request_ms']['p99_ms']:,.0f} ms"
                )
            ),
        ),
        row(
            "sending thread busy, share of the time to accept",
            each(
                lambda p, d, m: (
                    f"{p['sender_busy_s']:.1f} s ({p['sender_busy_share']:.0%}), {p['sender_post_s']:.1f} s in POSTs"
                )
            ),
        ),
        row(
            "accept to commit lag p50 / p99 / max",
            each(lambda p, d, m: f"{d['lag_p50_s']:.2f} / {d['lag_p99_s']:.2f} / {d['lag_max_s']:.2f} s"),
        ),
        row(
            "worker commits: batches, writes per second of commit",
            [
                f"{c['batches']:,} ({fmt(c['writes_per_batch_mean'])} writes, p50 {fmt(c['ms_per_batch_p50'])} ms): "
                f"{fmt(c['writes_per_commit_s'])}/s"
                for c in (m["server"]["commits"] for m in modes)
            ],
        ),
        row(
            "CPU seconds: producer / web / workers / PostgreSQL (machine busy)",
            [
                f"{m['producer']['cpu_s']:.1f} / {m['server']['cpu']['web_cpu_s']:.1f} / "
                f"{m['server']['cpu']['workers_cpu_s']:.1f} / {m['server']['cpu']['postgres_cpu_s']:.1f} s "
                f"in {m['server']['cpu']['wall_s']:.0f} s ({m['server']['cpu']['machine_busy_share']:.0%} of "
                f"{client.get('cpus', os.cpu_count())} cores)"
                for m in modes
            ],
        ),
        row(
            "most writes queued at once",
            [f"{m['server']['peak_queued']:,}" for m in modes],
        ),
        row(
            "peak web / worker RSS",
            [
                f"{fmt(m['server']['peak_web_rss_mb'])} / {fmt(m['server']['peak_worker_rss_mb'])} MB"
                for m in modes
            ],
        ),
    ]
    for m in modes:
        p, commits = m["producer"], m["server"]["commits"]
        paced_s = p["runs"] / p["rate"] if p["rate"] else 0.0
        if p["drain_after_accept_s"] > 0.2 * p["accept_s"]:
            limit = (
                f"the commit limited it: {p['drain_after_accept_s']:.1f} s of commits after the last accept "
                f"(the workers committed {fmt(commits['writes_per_commit_s'])} writes per second of commit "
                f"transaction, slowest batch {fmt(commits['ms_per_batch_max'])} ms)"
            )
        elif p["rate"] and p["accept_s"] < 1.05 * paced_s + 1:
            limit = (
                f"the pace limited it: every run was accepted {p['accept_s'] - paced_s:.2f} s after the "
                f"{paced_s:,.0f} s its calls took, in {p['requests']:,} POSTs of {p['request_runs_mean']:,.0f} "
                f"runs on average, and committed {p['drain_after_accept_s']:.2f} s after the last accept: the "
                "server kept up"
            )
        elif p["sender_busy_share"] > 0.9:
            limit = (
                f"the accept limited it: the one sending thread was busy {p['sender_busy_share']:.0%} of the time "
                f"to accept, {p['sender_post_s'] / max(p['sender_busy_s'], 1e-9):.0%} of that waiting for POSTs "
                f"of {p['request_runs_mean']:,.0f} runs (p50 {p['request_ms']['p50_ms']:,.0f} ms each); the commit "
                f"ended {p['drain_after_accept_s']:.1f} s after the last accept"
            )
        else:
            limit = "the producer limited it: the server kept up"
        lines += ["", f"{m['mode']}: {limit}."]
    paced = [m for m in modes if m["producer"]["rate"]]
    for m in paced:
        p = m["producer"]
        lines += [
            "",
            f"{m['mode']}: the producer fell at most {p['behind_schedule_max_ms']:,.1f} ms behind its schedule; "
            "its committed runs/s cannot exceed the pace, so that target is judged on the tight loop only.",
        ]
    lines += [
        "",
        f"The producer imported no server module ({', '.join(modes[0]['producer']['server_modules_imported']) or 'none'} "
        f"imported); client {modes[0]['producer']['client_version']} from {modes[0]['producer']['client_file']}.",
    ]
    for chart in client["charts"]:
        lines += ["", f"![{chart}]({chart})"]
    lines.append("")
    return lines


def openlineage_lines(by_name: dict[str, dict[str, Any]]) -> list[str]:
    """OpenLineage intake beside the native run endpoints: events/s and runs/s accepted (an
    OpenLineage run is two events, START and COMPLETE)."""
    if "openlineage" not in by_name and "openlineage_batch" not in by_name:
        return []
    size = int(os.environ.get("BENCH_BATCH_SIZE", "100"))
    rows = [  # scenario, events per request, events per run
        ("async", 1, 1, "POST /runs/ (native, 1 run)"),
        ("batch", size, 1, f"POST /runs/batch/ (native, {size} runs)"),
        ("openlineage", 1, 2, "POST /lineage (1 event)"),
        ("openlineage_batch", size, 2, f"POST /lineage/batch ({size} events)"),
    ]
    lines = [
        "",
        "| path | req/s | events/s | runs/s accepted | p50 ms | p99 ms | runs committed/s overall |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, per_request, per_run, label in rows:
        if name in by_name:
            r = by_name[name]
            events = r["rps"] * per_request
            lines.append(
                f"| {label} | {fmt(r['rps'])} | {fmt(events) if per_run == 2 else '-'} | {fmt(events / per_run)} | "
                f"{fmt(r['p50'])} | {fmt(r['p99'])} | {fmt(r['committed_runs_per_s_overall'])} |"
            )
    return lines


def sustained_section(result: dict[str, Any]) -> list[str]:
    """report.md's part for the sustained stage: its targets, each judged."""
    lim = result["limit"]
    limits = result.get("limits") or [lim]
    rate = result["rate"]
    lines = [
        "## Sustained ingest, beside the limit and the ceiling",
        "",
        "The limit (`bench/limit.py`): COPY of the rows that N pipeline runs make "
        f"({lim['rows_per_run']:.1f} rows a run: write-log row, run row, links, new pointers), "
        f"{fmt(lim['batch'])} runs a transaction, into a freshly migrated database: the server's tables "
        "with their indexes and deferred foreign-key checks.",
        "",
        "| N runs | rows/s | runs/s | " + " | ".join(lim["tables"]) + " |",
        "|---|---|---|" + "---|" * len(lim["tables"]),
    ]
    for measured in limits:
        seconds = " | ".join(f"{part['seconds']:.1f} s" for part in measured["tables"].values())
        lines.append(
            f"| {fmt(measured['runs'])} | {fmt(measured['rows_per_s'])} | **{fmt(measured['runs_per_s'])}** | {seconds} |"
        )
    target = min(10_000, lim["runs_per_s"] / 2)
    lines += [
        "",
        f"Target 1: at least min(10,000, half the lower limit) = {fmt(target)} runs/s sustained; asked "
        f"{fmt(rate)} runs/s in batches of 1,000 runs from 2 writers.",
        "",
        "| database | accepted runs/s | committed runs/s | of each limit | queue slope writes/s (max) | "
        "lag p50 / p99 / max s | every run once | drained after s | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for round_ in result["rounds"]:
        s = round_.get("sustained")
        if not s:
            continue
        ratios = " / ".join(f"{s['committed_runs_per_s'] / m['runs_per_s']:.2f}" for m in limits)
        lines.append(
            f"| {round_['label']} | {fmt(s['accepted_runs_per_s'])} | {fmt(s['committed_runs_per_s'])} | "
            f"{ratios} | {s['queue_slope_writes_per_s']:+.1f} ({fmt(s['queue_max'])}) | "
            f"{fmt(s['lag_p50_s'], 2)} / {fmt(s['lag_p99_s'], 2)} / {fmt(s['lag_max_s'], 2)} | "
            f"{'yes' if s['committed_once'] else 'NO'} | {fmt(s['drain_s'])} | "
            f"{verdict(s['met'] and s['committed_runs_per_s'] >= 0.98 * target)} |"
        )
    cores = [
        (r["label"], r["sustained"]["cpu"]) for r in result["rounds"] if (r.get("sustained") or {}).get("cpu")
    ]
    if cores:
        lines += ["", "Where the cores went over each load (`bench/cpu_share.py`), in cores:", ""]
        lines += [f"- {label}: {cpu_share.summary(cpu)}." for label, cpu in cores]
    for round_ in result["rounds"]:
        if round_.get("sustained"):
            lines += ["", f"![sustained, {round_['label']}]({round_['folder']}/sustained.png)"]
    ceiling = result.get("ceiling")
    ours = next((r.get("ours") for r in result["rounds"] if r.get("ours")), None)
    lines += ["", "Single-run accepts, `wrk -t2 -c32` on `bench/accept_run.lua`:", ""]
    if ceiling and ours:
        ratio = ours["rps"] / ceiling["rps"]
        lines += [
            "| endpoint | req/s | p50 ms | p99 ms | non-2xx |",
            "|---|---|---|---|---|",
            f"| the ceiling (`bench/ceiling/`: Django + DRF, one INSERT) | {fmt(ceiling['rps'])} | "
            f"{fmt(ceiling.get('p50'), 1)} | {fmt(ceiling.get('p99'), 1)} | {ceiling['non_2xx']} |",
            f"| ours, `POST /api/v1/runs/` (workers committing) | {fmt(ours['rps'])} | {fmt(ours.get('p50'), 1)} | "
            f"{fmt(ours.get('p99'), 1)} | {ours['non_2xx']} |",
            "",
            f"Target 3: ours / ceiling **{ratio:.2f}** (target 0.7), p99 {fmt(ours.get('p99'))} ms (target 100): "
            f"{verdict(ratio >= 0.7 and (ours.get('p99') or 1e9) <= 100)}.",
        ]
    else:
        lines.append("Not measured: wrk is not installed (`apt-get install wrk`).")
    batch = next((r.get("batch_accept") for r in result["rounds"] if r.get("batch_accept")), None)
    if batch:
        lines += [
            "",
            f"Target 4: one {fmt(batch['size'])}-run batch ({batch['body_kb']:.0f} KB) accepted in a median of "
            f"{batch['median_ms']:.0f} ms (p90 {batch['p90_ms']:.0f}, min {batch['min_ms']:.0f}; {batch['count']} "
            f"sequential posts), target 50 ms: {verdict(batch['median_ms'] <= 50)}.",
        ]
    lines += [
        "",
        "Target 5, commit workers: a backlog of pipeline runs queued first, then a qcluster of N workers:",
        "",
        "| workers | runs | committed runs/s | 1,000-run commit p50 ms |",
        "|---|---|---|---|",
    ]
    for row in result["scaling"]:
        lines.append(
            f"| {row['workers']} | {fmt(row['runs'])} | {fmt(row['runs_per_s'])} | {fmt(row['ms_per_1000_run_commit_p50'])} |"
        )
    lines.append("")
    return lines


def report(
    out: Path,
    run: dict[str, Any],
    rounds: list[dict[str, Any]],
    machine: dict[str, Any],
    client: dict[str, Any] | None = None,
    sustained: dict[str, Any] | None = None,
) -> None:
    lines = [
        f"# mltrace server benchmark, {dt.datetime.now():%Y-%m-%d %H:%M}",
        "",
        f"Machine: {machine['cpus']} cores, {machine['memory_gb']:.0f} GB; {machine['python']}; "
        f"{machine['postgres']}; Redis {machine['redis']}.",
        f"Command: `{run['command']}`. "
        + (f"{run['users']} users, {run['duration']} s per scenario, " if rounds else "")
        + f"gunicorn {run['web_workers']} {run.get('web_class', 'sync')} workers, qcluster {run['queue_workers']} workers, "
        f"MLTRACE_COMMIT_BATCH={run['commit_batch']}.",
        "",
    ]
    if client:
        lines += client_section(client)
    if sustained:
        lines += sustained_section(sustained)
    for round_ in rounds:
        results = round_["results"]
        lines += [
            f"## {round_['label']}",
            "",
            "| scenario | req/s | p50 ms | p95 ms | p99 ms | failures | runs committed | committed runs/s "
            "(draining) | lag p50 s | lag p99 s | peak web MB | peak worker MB | DB runs | DB MB |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in results:
            lines.append(
                f"| {r['scenario']} | {fmt(r['rps'])} | {fmt(r['p50'])} | {fmt(r['p95'])} | {fmt(r['p99'])} | "
                f"{fmt(r['failures'])} | {fmt(r['runs_committed'])} | "
                f"{fmt(r['committed_runs_per_s_overall'])} ({fmt(r['committed_runs_per_s_draining'])}) | "
                f"{fmt(r['lag_p50_s'], 2)} | {fmt(r['lag_p99_s'], 2)} | {fmt(r['peak_web_rss_mb'])} | "
                f"{fmt(r['peak_worker_rss_mb'])} | {fmt(r['db_runs'])} | {fmt(r['db_size_mb'])} |"
            )
        by_name = {r["scenario"]: r for r in results}
        if "sync" in by_name and "async" in by_name and by_name["sync"]["rps"]:
            lines += [
                "",
                f"Async accept / sync: **{by_name['async']['rps'] / by_name['sync']['rps']:.1f}x** req/s.",
            ]
        lines += openlineage_lines(by_name)
        if "readers" in by_name:
            lines += ["", "| read | req/s | p50 ms | p99 ms |", "|---|---|---|---|"]
            for name, e in by_name["readers"]["endpoints"].items():
                if not name.startswith("(setup)"):
                    lines.append(f"| {name} | {fmt(e['rps'])} | {fmt(e['p50'])} | {fmt(e['p99'])} |")
        if round_.get("lineage"):
            lin = round_["lineage"]
            lines += [
                "",
                f"Trace of a {lin['chain']}-run chain ({lin['trace_nodes']} nodes): median "
                f"{lin['trace_median_ms']:.1f} ms, p90 {lin['trace_p90_ms']:.1f} ms. Review of {lin['flagged']} "
                f"flagged predictions ({lin['review_runs']} runs): median {lin['review_median_ms']:.1f} ms.",
            ]
        if round_.get("seed"):
            seed = round_["seed"]
            lines += [
                "",
                f"Seeding to this size through the queue: {fmt(seed['runs'])} runs committed by the workers at "
                f"{fmt(seed['runs_per_s'])} runs/s; peak worker RSS {fmt(seed['peak_worker_rss_mb'])} MB.",
            ]
        for chart in round_["charts"]:
            lines += ["", f"![{chart}]({round_['folder']}/{chart})"]
        lines.append("")
    if len(rounds) > 1:
        lines += [
            "## As the database grows",
            "",
            "| runs in DB | sync req/s | async req/s | async p50 / p99 ms | batch draining runs/s | "
            "seeding runs/s | trace p50 ms | history p50 ms | recent p50 ms | review p50 ms | "
            "500-run chain trace ms | worker MB after seeding |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in scale_rows(rounds):
            lines.append(
                f"| {fmt(row['size'])} | {fmt(row.get('sync_rps'))} | {fmt(row.get('async_rps'))} | "
                f"{fmt(row.get('async_p50'))} / {fmt(row.get('async_p99'))} | {fmt(row.get('drain_runs_per_s'))} | "
                f"{fmt(row.get('seed_runs_per_s'))} | {fmt(row.get('trace_p50'))} | {fmt(row.get('history_p50'))} | "
                f"{fmt(row.get('recent_p50'))} | {fmt(row.get('review_p50'))} | {fmt(row.get('chain_trace_ms'), 1)} | "
                f"{fmt(row.get('seed_worker_mb'))} |"
            )
        lines += ["", f"![scale.png]({scale_chart(out, rounds)})", ""]
    (out / "report.md").write_text("\n".join(lines))
