"""The client stage of `make bench` (bench/run.py): bench/client_bench.py in a tight loop and
paced, each on a fresh database and server, with mltrace 0.17's log_component_run beside it
(bench/mltrace_baseline.py, or its saved results)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import client_bench  # noqa: E402
from bench.harness import PY, ROOT, CpuMeter, Sampler, commit_log_stats, fresh_server, log  # noqa: E402
from bench.report import client_chart  # noqa: E402

BASELINE_JSON = ROOT / "docs" / "benchmarks" / "mltrace-baseline.json"


def mltrace_baseline(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """mltrace 0.17's log_component_run on an empty database: measured in this run by
    bench/mltrace_baseline.py if bench/.mltrace-venv is set up, else its last saved results."""
    venv = ROOT / "bench" / ".mltrace-venv"
    if (venv / "bin" / "python").exists() and (venv / ".installed").exists():
        target = out / "mltrace-baseline.json"
        base = args.database_url.rsplit("/", 1)[0]
        log(
            f"mltrace 0.17: {args.baseline_runs} runs through its log_component_run (bench/mltrace_baseline.py)"
        )
        with open(out / "mltrace-baseline.log", "w") as baseline_log:
            proc = subprocess.run(
                [
                    PY,
                    str(ROOT / "bench" / "mltrace_baseline.py"),
                    "--db",
                    f"{base}/mltrace_baseline_client",
                    "--runs",
                    str(args.baseline_runs),
                    # Only the empty-database ingest is used here: the other parts kept small.
                    "--seed-runs",
                    "1000",
                    "--runs-at-size",
                    "5",
                    "--chain",
                    "20",
                    "--flagged",
                    "5",
                    "--repeat",
                    "1",
                    "--out",
                    str(target),
                ],
                cwd=ROOT,
                stdout=baseline_log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if proc.returncode == 0 and target.exists():
            results = json.loads(target.read_text())
            return {
                "measured": True,
                "source": f"measured in this run by bench/mltrace_baseline.py ({args.baseline_runs} runs "
                "of the etl, train, infer pipeline on an empty database)",
                **results,
            }
        log(
            f"mltrace 0.17: bench/mltrace_baseline.py failed (exit {proc.returncode}); using {BASELINE_JSON.name}"
        )
        why = "bench/mltrace_baseline.py failed in this run (see mltrace-baseline.log)"
    else:
        why = "there is no bench/.mltrace-venv; `python bench/mltrace_baseline.py --setup` makes it"
    results = json.loads(BASELINE_JSON.read_text())
    return {
        "measured": False,
        "source": f"not measured in this run ({why}): taken from docs/benchmarks/mltrace-baseline.json "
        f"({results['empty']['runs']} runs on an empty database, mltrace {results['mltrace_version']}, "
        f"Python {results['python']})",
        **results,
    }


def client_round(args: argparse.Namespace, env: dict[str, str], out: Path) -> dict[str, Any]:
    """bench/client_bench.py in a tight loop, then paced, each on a fresh database and server."""
    folder = out / "client"
    folder.mkdir(exist_ok=True)
    modes = [None] + ([args.client_rate] if args.client_rate else [])
    results = []
    for rate in modes:
        sub = folder / ("tight" if rate is None else f"paced-{rate:g}")
        sub.mkdir(exist_ok=True)
        server = fresh_server(args, env, sub)
        sampler = Sampler(env["DATABASE_URL"], server.web.pid, server.worker.pid)
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
        meter = CpuMeter(server.web.pid, server.worker.pid)
        meter.start()
        try:
            result = client_bench.measure(
                f"http://127.0.0.1:{args.port}",
                env["MLTRACE_TOKEN"],
                env["DATABASE_URL"],
                runs=args.client_runs,
                rate=rate,
                out=sub,
            )
            cpu = meter.stop()
        finally:
            sampler.stop.set()
            thread.join()
            server.stop()
        result["folder"] = str(sub.relative_to(out))
        result["server"] = {
            "cpu": cpu,
            "peak_web_rss_mb": max((s.web_rss for s in sampler.samples), default=0),
            "peak_worker_rss_mb": max((s.worker_rss for s in sampler.samples), default=0),
            "peak_queued": max((s.pending for s in sampler.samples), default=0),
            "commits": commit_log_stats(sub / "qcluster.log"),
            "samples": [s.__dict__ for s in sampler.samples],
        }
        (sub / "result.json").write_text(json.dumps(result, indent=1, default=str))
        results.append(result)
    baseline = mltrace_baseline(args, folder)
    return {
        "runs": args.client_runs,
        "web_workers": args.web_workers,
        "web_class": args.web_class,
        "queue_workers": args.queue_workers,
        "cpus": os.cpu_count(),
        "modes": results,
        "baseline": baseline,
        "charts": [client_chart(out, results)],
    }
