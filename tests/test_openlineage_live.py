"""OpenLineage intake against live processes: the real openlineage-python client sending to
gunicorn as shipped, and qcluster workers (1 and 3) committing every producer's events as
?sync=true does."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os

import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import error_message_run, parent_run

from ingest.queue import backlog_commit
from runs.models import OpenLineageEvent, Write
from tests.live import serves, wait_until
from tests.openlineage_api import all_scenarios, lineage_snapshot, reset, send, send_all
from tests.test_serving import _post_raw, gunicorn  # noqa: F401 - the fixture

pytestmark = pytest.mark.live

PRODUCER = "https://github.com/example/pipelines"


def client_for(server, *, how: str) -> OpenLineageClient:
    """The stock client, configured as a team would: by OPENLINEAGE_URL and
    OPENLINEAGE_API_KEY, or by a transport config that also compresses."""
    if how == "env":
        saved = dict(os.environ)
        os.environ.update(OPENLINEAGE_URL=server.url, OPENLINEAGE_API_KEY=server.token)
        try:
            return OpenLineageClient()
        finally:  # the client copies the two into variables of its own; none may leak
            os.environ.clear()
            os.environ.update(saved)
    transport = {
        "type": "http",
        "url": server.url,
        "auth": {"type": "api_key", "apiKey": server.token},
        "compression": "gzip",
    }
    return OpenLineageClient(config={"transport": transport})


def committed_all() -> None:
    last = Write.objects.order_by("-id").values_list("id", flat=True).first()
    backlog_commit(through_id=last)


@pytest.mark.parametrize("how", ["env", "gzip"])
def test_the_openlineage_python_client_sends_runs_that_trace(gunicorn, api, how):  # noqa: F811
    client = client_for(gunicorn, how=how)
    now = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    job = Job(namespace="pipelines", name="train")
    parent = parent_run.ParentRunFacet(
        run=parent_run.Run(runId="0190c4d4-0000-7000-8000-000000000001"),
        job=parent_run.Job(namespace="pipelines", name="nightly"),
    )
    run = Run(runId="0190c4d4-0000-7000-8000-000000000002", facets={"parent": parent})
    inputs = [InputDataset(namespace="s3://lake", name="features.parquet")]
    outputs = [OutputDataset(namespace="s3://models", name="churn.pkl")]
    client.emit(
        RunEvent(eventType=RunState.START, eventTime=now.isoformat(), run=run, job=job, producer=PRODUCER)
    )
    client.emit(
        RunEvent(
            eventType=RunState.COMPLETE,
            eventTime=(now + dt.timedelta(minutes=5)).isoformat(),
            run=run,
            job=job,
            inputs=inputs,
            outputs=outputs,
            producer=PRODUCER,
        )
    )
    failed = Run(
        runId="0190c4d4-0000-7000-8000-000000000003",
        facets={
            "errorMessage": error_message_run.ErrorMessageRunFacet(
                message="OOM", programmingLanguage="python"
            )
        },
    )
    client.emit(
        RunEvent(eventType=RunState.FAIL, eventTime=now.isoformat(), run=failed, job=job, producer=PRODUCER)
    )
    assert Write.objects.filter(kind="openlineage", status="queued").count() == 3
    committed_all()

    trace = api.get("/api/v1/trace/", {"output_id": "s3://models/churn.pkl"}).json()
    (node,) = trace["nodes"]
    body = node["run"]
    assert body["component"] == "pipelines:train"
    assert [p["name"] for p in body["inputs"]] == ["s3://lake/features.parquet"]
    assert body["openlineage"]["run_id"] == run.runId and body["openlineage"]["producer"] == PRODUCER
    assert body["openlineage"]["parent"] == {
        "run_id": parent.run.runId,
        "job": "pipelines:nightly",
        "run": None,
    }
    assert (
        body["start_timestamp"] == "2024-05-01T12:00:00Z" and body["end_timestamp"] == "2024-05-01T12:05:00Z"
    )
    fail = api.get("/api/v1/lineage/runs/", {"run_id": failed.runId}).json()["results"][0]
    assert fail["state"] == "FAIL" and api.get(f"/api/v1/runs/{fail['run']}/").json()["notes"] == "OOM"


def test_a_gzip_bomb_to_the_lineage_endpoint_is_413_and_the_server_goes_on(gunicorn):  # noqa: F811
    bomb = gzip.compress(
        b'{"eventTime": "2024-05-01T12:00:00Z"' + b" " * (11 * 2**20) + b"}", compresslevel=9
    )
    assert len(bomb) < 64 * 1024
    status, answer = _post_raw(gunicorn, "/api/v1/lineage", bomb, "Content-Encoding: gzip")
    assert status == 413, answer
    assert serves(f"{gunicorn.url}/healthz")
    assert not Write.objects.exists()


def test_a_gzip_batch_through_gunicorn_gets_the_spec_body(gunicorn):  # noqa: F811
    events = all_scenarios()[:4] + [{"eventTime": "soon"}]
    status, answer = _post_raw(
        gunicorn,
        "/api/v1/lineage/batch",
        gzip.compress(json.dumps(events).encode()),
        "Content-Encoding: gzip",
    )
    assert status == 200, answer
    assert answer["summary"] == {
        "received": 5,
        "successful": 4,
        "failed": 1,
        "retriable": 0,
        "non_retriable": 1,
    }
    assert answer["failed_events"][0]["index"] == 4


@pytest.mark.parametrize("cluster_workers", [1, 3])
def test_workers_commit_every_producers_events_as_sync_does(api, cluster):
    events = all_scenarios()
    for body in events:
        assert send(api, body).status_code == 202
    last = Write.objects.order_by("-id").values_list("id", flat=True).first()
    wait_until(
        lambda: not Write.objects.filter(id__lte=last).exclude(status="committed").exists(),
        timeout=60,
        what="the workers to commit every event",
    )
    by_workers = lineage_snapshot(api)
    assert OpenLineageEvent.objects.count() == len(events)
    reset()
    send_all(api, events, sync=True)
    assert lineage_snapshot(api) == by_workers
