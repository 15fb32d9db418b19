#!/usr/bin/env python3
"""Logs a three-step ML pipeline to an mltrace server over HTTP, then traces a bad prediction.

    etl -> train -> infer (one inference run per batch, each logging its predictions)

Then it flags one prediction, prints the trace of that prediction and the review of flagged
outputs. Only the standard library is used, so any Python 3.11 runs it:

    python examples/pipeline.py --url http://127.0.0.1:8000 --token <API token>

(`make run` prints the token; MLTRACE_URL and MLTRACE_TOKEN work too.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any


class Client:
    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = self.call(method, path, body)
        if status >= 400:
            sys.exit(f"{method} {path} answered {status}: {payload}")
        return payload

    def wait_committed(self, run_ids: list[int], timeout: float = 60) -> None:
        """Writes are asynchronous: wait until a worker has committed these runs."""
        deadline = time.monotonic() + timeout
        pending = set(run_ids)
        while pending:
            for run_id in sorted(pending):
                run = self.ok("GET", f"/api/v1/runs/{run_id}/")
                if run["status"] == "committed":
                    pending.discard(run_id)
                elif run["status"] == "failed":
                    sys.exit(f"run {run_id} failed: {run.get('error')}")
            if pending and time.monotonic() > deadline:
                sys.exit(
                    f"runs {sorted(pending)} were not committed within {timeout} s; is a worker running?"
                )
            if pending:
                time.sleep(0.2)


def iso(moment: dt.datetime) -> str:
    return moment.isoformat()


def log_pipeline(client: Client, *, batches: int, predictions: int) -> list[str]:
    now = dt.datetime.now(dt.UTC)
    client.ok(
        "POST",
        "/api/v1/components/",
        {"name": "etl", "description": "Cleans raw events", "owner": "data", "tags": ["example"]},
    )
    client.ok(
        "POST",
        "/api/v1/components/",
        {"name": "train", "description": "Trains the model", "owner": "ml", "tags": ["example"]},
    )
    client.ok(
        "POST",
        "/api/v1/components/",
        {"name": "infer", "description": "Serves predictions", "owner": "ml", "tags": ["example"]},
    )

    etl = client.ok(
        "POST",
        "/api/v1/runs/",
        {
            "component": "etl",
            "start_timestamp": iso(now),
            "end_timestamp": iso(now + dt.timedelta(minutes=5)),
            "inputs": ["raw_events.parquet"],
            "outputs": ["clean_data.csv"],
            "git_hash": "1f2e3d4",
        },
    )
    train = client.ok(
        "POST",
        "/api/v1/runs/",
        {
            "component": "train",
            "start_timestamp": iso(now + dt.timedelta(minutes=6)),
            "end_timestamp": iso(now + dt.timedelta(minutes=30)),
            "inputs": ["clean_data.csv"],
            "outputs": ["model.pkl"],
            "test_results": {"accuracy": 0.93},
        },
    )
    # The inference service logs every prediction it makes: a batch endpoint write per batch.
    prediction_ids = []
    infer_runs = []
    for batch in range(batches):
        start = now + dt.timedelta(minutes=31 + batch)
        ids = [f"prediction_{batch}_{i}" for i in range(predictions)]
        prediction_ids.extend(ids)
        infer_runs.append(
            {
                "component": "infer",
                "start_timestamp": iso(start),
                "end_timestamp": iso(start + dt.timedelta(seconds=1)),
                "inputs": ["model.pkl"],
                "outputs": [{"name": p, "pointer_type": "ENDPOINT"} for p in ids],
            }
        )
    accepted = client.ok("POST", "/api/v1/runs/batch/", {"runs": infer_runs})["runs"]
    client.wait_committed([etl["id"], train["id"], *[r["id"] for r in accepted]])
    print(f"logged etl run {etl['id']}, train run {train['id']} and {len(accepted)} inference runs")
    return prediction_ids


def print_trace(client: Client, output_id: str) -> None:
    trace = client.ok("GET", f"/api/v1/trace/?output_id={output_id}")
    print(f"\ntrace of {output_id}:")
    for node in trace["nodes"]:
        run = node["run"]
        inputs = ", ".join(p["name"] for p in run["inputs"]) or "-"
        print(f"{'    ' * node['depth']}{run['component']} (run {run['id']}) read: {inputs}")
        for message in run["stale"]:
            print(f"{'    ' * node['depth']}  stale: {message}")


def print_review(client: Client) -> None:
    review = client.ok("GET", "/api/v1/review/")
    print(f"\nreview of flagged outputs {review['flagged']}:")
    for item in review["runs"]:
        run = item["run"]
        print(f"  {item['count']} flagged output(s) trace back to {run['component']} run {run['id']}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=os.environ.get("MLTRACE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("MLTRACE_TOKEN"))
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--predictions", type=int, default=5, help="predictions per inference run")
    args = parser.parse_args()
    if not args.token:
        parser.error("an API token is needed: --token or MLTRACE_TOKEN (make run prints one)")

    client = Client(args.url, args.token)
    predictions = log_pipeline(client, batches=args.batches, predictions=args.predictions)
    bad = predictions[len(predictions) // 2]
    client.ok("POST", "/api/v1/flag/", {"output_id": bad})
    print(f"flagged {bad}")
    print_trace(client, bad)
    print_review(client)


if __name__ == "__main__":
    main()
