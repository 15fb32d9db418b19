"""Locust users for the mltrace server, treated as a black box over HTTP.

    MLTRACE_TOKEN=... locust -f bench/locustfile.py --host http://127.0.0.1:8000 AsyncRunWriter

Writers send pipeline-shaped runs (etl -> train -> inference runs that each read the current
model and log their predictions as ENDPOINT outputs); each user has its own pipeline.
`make bench` (bench/run.py) runs every scenario and writes the report.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sys
from pathlib import Path

from locust import FastHttpUser, constant, task

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.payloads import openlineage_events, pipeline  # noqa: E402

PREDICTIONS = int(os.environ.get("BENCH_PREDICTIONS", "1"))
BATCH_SIZE = int(os.environ.get("BENCH_BATCH_SIZE", "100"))


class MltraceUser(FastHttpUser):
    abstract = True
    wait_time = constant(0)  # closed loop: each user sends its next request on an answer

    def on_start(self) -> None:
        self.headers = {"Authorization": f"Token {os.environ['MLTRACE_TOKEN']}"}
        self.runs = pipeline(
            start=dt.datetime.now(dt.UTC), step=dt.timedelta(milliseconds=10), predictions=PREDICTIONS
        )

    def post(self, path: str, body: dict, name: str, expect: int) -> None:
        with self.client.post(
            path, json=body, headers=self.headers, name=name, catch_response=True
        ) as response:
            if response.status_code != expect:
                response.failure(f"{response.status_code}: {response.text[:200]}")


class SyncRunWriter(MltraceUser):
    """One run per request, committed before the answer (?sync=true)."""

    @task
    def log_run(self) -> None:
        self.post("/api/v1/runs/?sync=true", next(self.runs), "POST /runs/?sync=true", 201)


class AsyncRunWriter(MltraceUser):
    """One run per request, answered 202 and committed by the workers."""

    @task
    def log_run(self) -> None:
        self.post("/api/v1/runs/", next(self.runs), "POST /runs/", 202)


class BatchWriter(MltraceUser):
    """BENCH_BATCH_SIZE (100) runs per request to the batch endpoint."""

    @task
    def log_batch(self) -> None:
        body = {"runs": [next(self.runs) for _ in range(BATCH_SIZE)]}
        self.post("/api/v1/runs/batch/", body, f"POST /runs/batch/ ({BATCH_SIZE})", 202)


class OpenLineageWriter(MltraceUser):
    """OpenLineage events one per request (a START, then the COMPLETE), answered 202."""

    def on_start(self) -> None:
        super().on_start()
        self.headers = {"Authorization": f"Bearer {os.environ['MLTRACE_TOKEN']}"}
        self.events = openlineage_events(start=dt.datetime.now(dt.UTC), step=dt.timedelta(milliseconds=10))

    @task
    def send_event(self) -> None:
        self.post("/api/v1/lineage", next(self.events), "POST /lineage", 202)


class OpenLineageBatchWriter(OpenLineageWriter):
    """BENCH_BATCH_SIZE (100) OpenLineage events per request to /lineage/batch (50 runs)."""

    @task
    def send_event(self) -> None:
        body = [next(self.events) for _ in range(BATCH_SIZE)]
        with self.client.post(
            "/api/v1/lineage/batch",
            json=body,
            headers=self.headers,
            name=f"POST /lineage/batch ({BATCH_SIZE})",
            catch_response=True,
        ) as response:
            if response.status_code != 200 or response.json()["summary"]["failed"]:
                response.failure(f"{response.status_code}: {response.text[:200]}")


class ComponentWriter(MltraceUser):
    """Component writes: re-creations of a few components with new tags and owners."""

    @task
    def create_component(self) -> None:
        body = {
            "name": random.choice(["etl", "train", "infer", "evaluate", "monitor"]),
            "owner": random.choice(["", "data-team", "ml-team"]),
            "tags": random.sample(["prod", "staging", "gpu", "nightly", "v2"], 2),
        }
        self.post("/api/v1/components/", body, "POST /components/", 202)


class Reader(MltraceUser):
    """What people read: the trace of a prediction, a component's history, recent runs, review."""

    def on_start(self) -> None:
        super().on_start()
        recent = self.client.get(
            "/api/v1/runs/?component=infer&limit=200", headers=self.headers, name="(setup) recent"
        ).json()["results"]
        self.predictions = [p["name"] for run in recent for p in run["outputs"]] or ["none"]

    @task(4)
    def trace(self) -> None:
        output_id = random.choice(self.predictions)
        self.client.get(f"/api/v1/trace/?output_id={output_id}", headers=self.headers, name="GET /trace/")

    @task(2)
    def history(self) -> None:
        self.client.get(
            "/api/v1/components/infer/history/?limit=10", headers=self.headers, name="GET /history/"
        )

    @task(2)
    def recent(self) -> None:
        self.client.get("/api/v1/runs/?limit=50", headers=self.headers, name="GET /runs/ (recent)")

    @task(1)
    def review(self) -> None:
        self.client.get("/api/v1/review/", headers=self.headers, name="GET /review/")
