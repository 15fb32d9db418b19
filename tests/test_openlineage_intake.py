"""POST /api/v1/lineage: what an event must hold, what is read leniently, and the event kept as
received.
"""

from __future__ import annotations

import pytest

from api.exceptions import NO_SUCH_ENDPOINT
from runs.models import OpenLineageEvent, Write
from runs.openlineage import NOT_AN_EVENT, NOT_AN_OBJECT
from tests.openlineage_api import send, send_all
from tests.openlineage_events import at, event, run_uuid, spark_job

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda e: e.pop("eventTime"), "eventTime"),
        (lambda e: e.update(eventTime="yesterday"), "eventTime"),
        (lambda e: e.update(eventTime="2024-13-01T00:00:00Z"), "eventTime"),
        (lambda e: e["run"].pop("runId"), "run.runId"),
        (lambda e: e["run"].update(runId=""), "run.runId"),
        (lambda e: e["run"].update(runId="x" * 256), "run.runId"),
        (lambda e: e["job"].pop("namespace"), "job.namespace"),
        (lambda e: e["job"].pop("name"), "job.name"),
        (lambda e: e["job"].update(name=7), "job.name"),
        (lambda e: e.update(job="etl"), "job"),
        (lambda e: e.update(eventType="FINISHED"), "eventType"),
        (lambda e: e.update(inputs={"name": "x"}), "inputs"),
        (lambda e: e.update(outputs=[{"namespace": "pg"}]), "outputs.0.name"),
        (lambda e: e.update(producer="nul\x00"), "producer"),
    ],
)
def test_a_bad_event_is_a_400_naming_the_field_and_nothing_is_recorded(api, change, field):
    body = event("START", run_uuid("bad"), "j", 0)
    change(body)
    response = send(api, body)
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert not Write.objects.exists()


def test_a_body_that_is_no_event_is_a_400(api):
    not_an_object = send(api, [1, 2])
    assert not_an_object.status_code == 400
    assert not_an_object.json() == {"event": [NOT_AN_OBJECT]}
    response = send(api, {"eventTime": at(0)})
    assert response.status_code == 400 and response.json() == {"run": [NOT_AN_EVENT]}
    assert not Write.objects.exists()


@pytest.mark.parametrize(
    ("event_time", "expected"),
    [
        ("2024-05-01T12:00:00", "2024-05-01T12:00:00Z"),
        ("2024-05-01T12:00:00.1", "2024-05-01T12:00:00.100000Z"),
        ("2024-05-01T12:00:00.123456789Z", "2024-05-01T12:00:00.123456Z"),
        ("2024-05-01T14:00:00.5+02:00", "2024-05-01T12:00:00.500000Z"),
        ("2024-05-01T07:30:00-0430", "2024-05-01T12:00:00Z"),
        ("2024-05-01 12:00:00Z", "2024-05-01T12:00:00Z"),
    ],
)
def test_event_times_are_read_leniently_and_converted_to_utc(api, event_time, expected):
    body = event("COMPLETE", "not-a-uuid", "j", 0)
    body["eventTime"] = event_time
    response = send(api, body, sync=True)
    assert response.status_code == 201, response.content
    run = response.json()["run"]
    assert run["run_id"] == "not-a-uuid"
    assert run["end_timestamp"] == expected


def test_producer_schema_url_and_event_type_may_be_missing_or_odd(api):
    body = event(None, run_uuid("lenient"), "j", 0)
    body.pop("producer")
    body["schemaURL"] = 42
    body["run"]["facets"] = {"parent": "not an object", "errorMessage": []}
    body["job"]["facets"] = None
    response = send(api, body, sync=True)
    assert response.status_code == 201, response.content
    assert response.json()["run"]["state"] == "OTHER" and response.json()["run"]["open"]


def test_every_event_is_kept_as_received(api):
    events = spark_job()
    send_all(api, events, sync=False)
    assert [e.body for e in OpenLineageEvent.objects.order_by("id")] == events


def test_the_endpoints_are_served_exactly_without_a_trailing_slash(api):
    response = send(api, event("START", run_uuid("s"), "j", 0), path="/api/v1/lineage/")
    assert response.status_code == 404
    assert response.json() == {"detail": NO_SUCH_ENDPOINT.format(path="/api/v1/lineage/")}
    assert send(api, [event("START", run_uuid("s"), "j", 0)], path="/api/v1/lineage/batch").status_code == 200


def test_bearer_tokens_are_accepted_and_no_token_is_a_401(api, anon, token):
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert send(anon, event("START", run_uuid("b"), "j", 0)).status_code == 202
    anon.credentials()
    assert send(anon, event("START", run_uuid("c"), "j", 0)).status_code == 401


def test_an_unknown_query_parameter_is_a_400(api):
    response = send(api, event("START", run_uuid("q"), "j", 0), path="/api/v1/lineage?snyc=true")
    assert response.status_code == 400 and "snyc" in response.json()
