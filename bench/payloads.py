"""Payloads shaped like a real pipeline, shared by the Locust users and `bench/seed.py`.

    etl (raw events -> clean data) -> train (clean data -> model) -> infer x N

Each inference run reads the current model and logs its predictions as ENDPOINT outputs:
an inference service logging every prediction it serves. Plain Python, no Django.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Any

PREDICTIONS_PER_INFERENCE = 10
INFERENCES_PER_MODEL = 100


def iso(moment: dt.datetime) -> str:
    return moment.isoformat()


def etl_run(cycle: str, start: dt.datetime) -> dict[str, Any]:
    return {
        "component": "etl",
        "start_timestamp": iso(start),
        "end_timestamp": iso(start + dt.timedelta(seconds=30)),
        "inputs": [f"s3://events/raw_{cycle}.parquet"],
        "outputs": [f"s3://features/clean_data_{cycle}.csv"],
        "git_hash": "9f1c2ab",
    }


def train_run(cycle: str, start: dt.datetime) -> dict[str, Any]:
    return {
        "component": "train",
        "start_timestamp": iso(start),
        "end_timestamp": iso(start + dt.timedelta(seconds=60)),
        "inputs": [f"s3://features/clean_data_{cycle}.csv"],
        "outputs": [f"s3://models/model_{cycle}.pkl"],
        "test_results": {"accuracy": 0.93},
    }


def infer_run(
    cycle: str, start: dt.datetime, *, predictions: int = PREDICTIONS_PER_INFERENCE
) -> dict[str, Any]:
    batch = uuid.uuid4().hex[:12]
    return {
        "component": "infer",
        "start_timestamp": iso(start),
        "end_timestamp": iso(start + dt.timedelta(milliseconds=20)),
        "inputs": [f"s3://models/model_{cycle}.pkl"],
        "outputs": [
            {"name": f"prediction_{batch}_{i}", "pointer_type": "ENDPOINT"} for i in range(predictions)
        ],
    }


def pipeline(
    *,
    start: dt.datetime,
    step: dt.timedelta = dt.timedelta(seconds=1),
    inferences: int = INFERENCES_PER_MODEL,
    predictions: int = PREDICTIONS_PER_INFERENCE,
):
    """An endless stream of run payloads: etl, train, then `inferences` inference runs, again."""
    clock = itertools.count()
    for n in itertools.count():
        cycle = f"{n}_{uuid.uuid4().hex[:6]}"
        yield etl_run(cycle, start + step * next(clock))
        yield train_run(cycle, start + step * next(clock))
        for _ in range(inferences):
            yield infer_run(cycle, start + step * next(clock), predictions=predictions)


OPENLINEAGE_PRODUCER = "https://github.com/loglabs/mltrace-server/bench"


def _dataset(namespace: str, name: str) -> dict[str, Any]:
    return {"namespace": namespace, "name": name}


def openlineage_events(*, start: dt.datetime, step: dt.timedelta = dt.timedelta(seconds=1)):
    """The same pipeline as OpenLineage events: for each run a START, then a COMPLETE with its
    inputs and outputs (as Airflow sends them), one event at a time."""
    for run in pipeline(start=start, step=step, predictions=1):
        run_id = str(uuid.uuid4())
        job = {"namespace": "bench", "name": run["component"]}
        base = {"producer": OPENLINEAGE_PRODUCER, "run": {"runId": run_id}, "job": job}
        yield {**base, "eventType": "START", "eventTime": run["start_timestamp"]}
        yield {
            **base,
            "eventType": "COMPLETE",
            "eventTime": run["end_timestamp"],
            "inputs": [_dataset("s3://bench", _name(p)) for p in run["inputs"]],
            "outputs": [_dataset("s3://bench", _name(p)) for p in run["outputs"]],
        }


def _name(pointer: Any) -> str:
    return pointer if isinstance(pointer, str) else pointer["name"]
