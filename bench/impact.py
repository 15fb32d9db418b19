#!/usr/bin/env python
"""Downstream lineage at scale: the impact of a model read by 100,000 inference
runs on a database of a million runs, first page and full stream, beside the upstream trace
of the same size.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mltrace_bench python bench/impact.py

It seeds the database up to --runs with pipeline-shaped runs (bench/seed.py), then adds:
a model read by --fan-out inference runs, each with one prediction; and, for the trace of the
same size, a chain of --fan-out runs, each reading the output of the one before. Results:
stdout, and bench/results/impact.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def payload(component: str, moment: dt.datetime, inputs: list, outputs: list) -> dict:
    from api.serializers.runs import RunCreateSerializer, run_write_payload

    body = {
        "component": component,
        "start_timestamp": moment.isoformat(),
        "end_timestamp": moment.isoformat(),
    }
    return run_write_payload(
        RunCreateSerializer().run_validation({**body, "inputs": inputs, "outputs": outputs})
    )


def timed(label: str, work) -> tuple[float, object]:
    began = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - began
    print(f"{label}: {seconds:.3f} s", flush=True)
    return seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1_000_000, help="runs in the database before the fan-out")
    parser.add_argument("--fan-out", type=int, default=100_000)
    parser.add_argument(
        "--reuse", action="store_true", help="measure the model and chain an earlier run added"
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mltrace_site.settings")
    import django

    django.setup()
    from bench.seed import commit_now, seed
    from runs.models import IOPointer, Run

    def latest(prefix: str) -> str:
        return (
            IOPointer.objects.filter(name__startswith=prefix)
            .order_by("-id")
            .values_list("name", flat=True)[0]
        )

    existing = Run.objects.count()
    if args.reuse:
        model, report = latest("impact_model_"), latest("impact_chain_")
    else:
        model, report = add_fan_out_and_chain(args, existing, commit_now, seed, payload)
    measure(args, model, report, Run.objects.count())


def add_fan_out_and_chain(args, existing, commit_now, seed, payload) -> tuple[str, str]:
    from django.db import connection

    if existing < args.runs:
        seed(
            runs=args.runs - existing,
            say=lambda line: print(line, flush=True) if line.endswith("s") else None,
        )
    tag = f"{int(time.time())}"
    model = f"impact_model_{tag}.pkl"
    t0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    commit_now([payload("impact_train", t0, [f"impact_features_{tag}.csv"], [model])])
    predictions = []
    began = time.perf_counter()
    for start in range(0, args.fan_out, 1000):
        batch = []
        for i in range(start, min(start + 1000, args.fan_out)):
            name = f"impact_prediction_{tag}_{i}"
            predictions.append(name)
            batch.append(
                payload(
                    "impact_infer",
                    t0 + dt.timedelta(seconds=i + 1),
                    [model],
                    [{"name": name, "pointer_type": "ENDPOINT"}],
                )
            )
        commit_now(batch)
    print(
        f"{args.fan_out} inference runs read {model}: committed in {time.perf_counter() - began:.1f} s",
        flush=True,
    )
    # The upstream trace of the same size: a chain of fan-out runs, each reading the output
    # of the one before (a trace's cost is its runs and edges, whatever their shape).
    began = time.perf_counter()
    previous = f"impact_chain_{tag}_0"
    for start in range(0, args.fan_out, 1000):
        batch = []
        for i in range(start, min(start + 1000, args.fan_out)):
            output = f"impact_chain_{tag}_{i + 1}"
            batch.append(payload("impact_chain", t0 + dt.timedelta(days=1, seconds=i), [previous], [output]))
            previous = output
        commit_now(batch)
    report = previous
    print(f"a chain of {args.fan_out} runs: committed in {time.perf_counter() - began:.1f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return model, report


def measure(args, model: str, report: str, total_runs: int) -> None:
    from api.json_stream import trace_json
    from runs import lineage
    from runs.selectors import run_bodies

    print(f"database: {total_runs} runs", flush=True)

    seeds = lineage.impact_seeds_of_output(model)
    results: dict[str, object] = {"runs_in_database": total_runs, "fan_out": args.fan_out}

    def first_page():
        page = lineage.impact_page(seeds=seeds, from_pointers=True, depth=None, after=None, limit=1000)
        return page, run_bodies([run_id for run_id, _ in page.nodes])

    for attempt in range(3):
        seconds, (page, bodies) = timed(f"impact first page (1,000 runs) #{attempt + 1}", first_page)
        results.setdefault("impact_first_page_s", []).append(round(seconds, 3))

    def full_stream():
        after, listed = None, 0
        while True:
            page = lineage.impact_page(seeds=seeds, from_pointers=True, depth=None, after=after, limit=1000)
            listed += len(run_bodies([run_id for run_id, _ in page.nodes]))
            if page.next_cursor is None:
                return listed
            after = page.next_cursor

    seconds, listed = timed("impact, every page of 1,000", full_stream)
    results.update(impact_full_s=round(seconds, 2), impact_runs_listed=listed)

    def trace_stream():
        plan = lineage.trace_plan(output_id=report)
        return len(plan.order), sum(len(piece) for piece in trace_json(plan))

    seconds, (traced, size) = timed("upstream trace of the chain's last output, streamed whole", trace_stream)
    results.update(trace_full_s=round(seconds, 2), trace_runs=traced, trace_bytes=size)
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(results, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "impact.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
