#!/usr/bin/env python3
"""A three-step ML pipeline instrumented with mltrace, logging to an mltrace server.

    etl -> train -> infer (one run per batch of requests, each logging its predictions)

Then it flags a bad prediction, prints the runs it traces back to, and the review of flagged
outputs: what `mltrace trace` and `mltrace review` print too. It is plain mltrace code; the
client sends the runs in the background, and reads wait until they are committed.

    make run                                    # in another terminal: a server, and the client
    export MLTRACE_SERVER_URL=http://127.0.0.1:8000 MLTRACE_TOKEN=...   # as make run prints
    .venv/bin/python examples/pipeline.py
"""

from __future__ import annotations

import argparse
import os
import random

import mltrace
from mltrace import Component, Test, register


class HasRows(Test):
    """Runs after etl, with etl's variables: a step that cleaned nothing is a failure."""

    def testNotEmpty(self, rows: list):  # noqa: N802 (mltrace calls methods named test*)
        if not rows:
            raise ValueError("etl produced no rows")


etl = Component("etl", owner="data", description="Cleans raw events", tags=["example"], afterTests=[HasRows])


@etl.run(input_vars=["source"], output_vars=["destination"])
def clean(source: str) -> list:
    destination = "clean_data.csv"  # noqa: F841 (read by the decorator: output_vars)
    rows = [{"feature": random.random()} for _ in range(100)]
    return rows


@register("train", input_vars=["data_file"], output_vars=["model_file"])
def train(data_file: str, rows: list) -> str:
    model_file = "model.pkl"
    return model_file


@register("infer", input_vars=["model_file"], output_vars=["prediction_ids"], endpoint=True)
def infer(model_file: str, batch: int, requests: int) -> list:
    # The inference service logs every prediction it makes: one ENDPOINT output each.
    prediction_ids = [f"prediction_{batch}_{i}" for i in range(requests)]
    return prediction_ids


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="the server (default: MLTRACE_SERVER_URL, else http://127.0.0.1:8000)")
    parser.add_argument("--token", help="an API token (default: MLTRACE_TOKEN; make run prints one)")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--predictions", type=int, default=5, help="predictions per inference run")
    args = parser.parse_args()
    if args.url or args.token:
        mltrace.set_server(args.url or mltrace.get_server(), args.token)
    if not (args.token or os.environ.get("MLTRACE_TOKEN")):
        parser.error("an API token is needed: --token or MLTRACE_TOKEN (make run prints one)")

    rows = clean("raw_events.parquet")
    model = train("clean_data.csv", rows)
    predictions = [p for batch in range(args.batches) for p in infer(model, batch, args.predictions)]

    # A read waits until this process's runs are committed, as with mltrace's own database.
    (etl_run,) = mltrace.get_history("etl", limit=1)
    (train_run,) = mltrace.get_history("train", limit=1)
    infer_runs = mltrace.get_history("infer", limit=args.batches)
    print(f"logged etl run {etl_run.id}, train run {train_run.id} and {len(infer_runs)} inference runs")

    bad = predictions[len(predictions) // 2]
    mltrace.flag_output_id(bad)
    print(f"flagged {bad}")

    print(f"\ntrace of {bad}:")
    for depth, run in mltrace.backtrace(bad):
        inputs = ", ".join(pointer.name for pointer in run.inputs) or "-"
        print(f"{'    ' * depth}{run.component_name} (run {run.id}) read: {inputs}")
        for message in run.stale:
            print(f"{'    ' * depth}  stale: {message}")

    flagged, ranked = mltrace.review_flagged_outputs()
    print(f"\nreview of flagged outputs {flagged}:")
    for run, count in ranked:
        print(f"  {count} flagged output(s) trace back to {run.component_name} run {run.id}")


if __name__ == "__main__":
    main()
