"""The components OpenLineage jobs make: their names, description and owner, and which of them
the component list shows.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from runs.models import OpenLineageEvent
from runs.openlineage import component_name, pointer_name
from tests.openlineage_api import send, send_all
from tests.openlineage_events import (
    AIRFLOW,
    STATEMENTS,
    airflow_owners,
    at,
    dataset,
    dbt_structured_logs,
    event,
    failing_task,
    never_ends,
    run_uuid,
)

pytestmark = pytest.mark.django_db


def test_job_names_map_to_distinct_component_names():
    assert component_name("a:b", "c") != component_name("a", "b:c")
    assert component_name("s3://bucket", "path/job") == "s3%3A%2F%2Fbucket:path%2Fjob"
    assert component_name("100%", "x") != component_name("100%25", "x")
    long = component_name("ns", "x" * 400)
    assert len(long) == 255 and long != component_name("ns", "x" * 401)
    assert pointer_name("postgres://db:5432", "public.orders") == "postgres://db:5432/public.orders"
    assert pointer_name("hdfs://nn:8020", "/warehouse/orders") == "hdfs://nn:8020/warehouse/orders"
    assert pointer_name("bigquery", "project.dataset.table") == "bigquery:project.dataset.table"
    assert pointer_name("file", "/srv/data.csv") == "file:/srv/data.csv"


def test_a_job_name_with_a_slash_makes_a_component_the_api_can_serve(api):
    send_all(api, [event("COMPLETE", run_uuid("slash"), "dir/job", 0, namespace="s3://b")], sync=True)
    name = component_name("s3://b", "dir/job")
    assert "/" not in name
    assert api.get(f"/api/v1/components/{quote(name, safe='')}/history/").json()["results"][0]["openlineage"][
        "job"
    ] == {
        "namespace": "s3://b",
        "name": "dir/job",
    }


def test_job_and_dataset_events_are_recorded_and_a_job_event_updates_its_component(api):
    job_event = {
        "eventTime": at(0),
        "producer": AIRFLOW,
        "job": {
            "namespace": "airflow",
            "name": "etl.extract",
            "facets": {
                "documentation": {"description": "Extracts the orders."},
                "ownership": {"owners": [{"name": "team:data", "type": "TEAM"}, {"name": "ana"}]},
            },
        },
    }
    dataset_event = {"eventTime": at(1), "producer": AIRFLOW, "dataset": dataset("public.orders")}
    assert send(api, job_event, sync=True).json()["outcome"] == "applied"
    assert send(api, dataset_event, sync=True).json()["outcome"] == "recorded"
    component = api.get("/api/v1/components/airflow:etl.extract/").json()
    assert (component["description"], component["owner"]) == ("Extracts the orders.", "team:data, ana")
    assert list(OpenLineageEvent.objects.order_by("id").values_list("kind", flat=True)) == ["job", "dataset"]
    assert OpenLineageEvent.objects.get(kind="dataset").body == dataset_event


def test_the_ownership_facet_of_run_events_sets_the_owner_in_acceptance_order(api):
    owners = []
    for body in airflow_owners():
        assert send(api, body, sync=True).status_code == 201
        owners.append(api.get("/api/v1/components/airflow:reports.build/").json()["owner"])
    # START (ana), JobEvent (team:bi), COMPLETE (ana, bo), a second run (cy, cy), then a
    # COMPLETE after the end of the first run: recorded, and its owner is not taken.
    assert owners == ["ana", "team:bi", "ana, bo", "cy", "cy", "cy"]
    assert OpenLineageEvent.objects.order_by("-id").first().outcome == "after end"


def test_an_owner_from_a_run_event_queued_before_a_patch_does_not_undo_it(api):
    events = airflow_owners()
    assert send(api, events[0]).status_code == 202  # owner ana, queued
    response = api.patch("/api/v1/components/airflow:reports.build/", {"owner": "dana"}, format="json")
    assert response.status_code == 200 and response.json()["owner"] == "dana"
    send_all(api, [], sync=False)
    assert api.get("/api/v1/components/airflow:reports.build/").json()["owner"] == "dana"
    assert send(api, events[3], sync=True).status_code == 201  # accepted after the PATCH: cy
    assert api.get("/api/v1/components/airflow:reports.build/").json()["owner"] == "cy"


# --- which components the list shows ----------------------------------------------------


def component_names(api, **query: str) -> list[str]:
    response = api.get("/api/v1/components/", {"limit": 1000, **query})
    assert response.status_code == 200, response.content
    return [c["name"] for c in response.json()["results"]]


def test_jobs_whose_runs_name_no_dataset_leave_the_component_list_and_stay_served(api):
    send_all(api, dbt_structured_logs(), sync=False)
    statements = [f"dbt:jaffle.orders.sql.{n}" for n in range(1, len(STATEMENTS) + 1)]
    assert component_names(api) == ["dbt:jaffle.orders"]
    assert component_names(api, all="true") == ["dbt:dbt-run-jaffle", "dbt:jaffle.orders", *statements]
    hidden = api.get(f"/api/v1/components/{statements[0]}/")
    assert hidden.status_code == 200 and hidden.json()["listed"] is False and hidden.json()["run_count"] == 1
    history = api.get(f"/api/v1/components/{statements[0]}/history/").json()["results"]
    assert [r["openlineage"]["parent"]["job"] for r in history] == ["dbt:jaffle.orders"]
    (record,) = api.get("/api/v1/lineage/runs/", {"component": statements[0]}).json()["results"]
    assert record["parent"]["run_id"] == run_uuid("dbt-logs-orders") and record["state"] == "COMPLETE"
    # A blank filter is refused, as every blank query parameter is: it never lists everything.
    blank = api.get("/api/v1/components/", {"owner": "", "tag": "", "all": "true"})
    assert blank.status_code == 400 and set(blank.json()) == {"owner", "tag"}


def test_a_native_component_with_no_runs_and_one_of_a_run_naming_a_dataset_are_listed(api):
    response = api.post("/api/v1/components/?sync=true", {"name": "etl"}, format="json")
    assert response.status_code == 201 and response.json()["listed"] is True
    failed = failing_task()[:2]  # a FAIL that named its output: committed without it, listed
    stuck = never_ends()  # open, its RUNNING named an input
    later = [
        event("START", run_uuid("quiet"), "quiet", 0),
        event("COMPLETE", run_uuid("quiet"), "quiet", 1),
        event("RUNNING", run_uuid("quiet"), "quiet", 2, inputs=[dataset("late.in")]),  # after the end
    ]
    send_all(api, failed + stuck + later, sync=False)
    assert component_names(api) == ["airflow:scores.compute", "airflow:stuck.job", "etl"]
    assert "airflow:quiet" in component_names(api, all="1")


@pytest.mark.parametrize(
    "native",
    [
        lambda api: api.post("/api/v1/components/", {"name": "airflow:quiet"}, format="json"),
        lambda api: api.post(
            "/api/v1/runs/",
            {"component": "airflow:quiet", "start_timestamp": at(5), "end_timestamp": at(6)},
            format="json",
        ),
        lambda api: send(api, event("COMPLETE", run_uuid("quiet-2"), "quiet", 5, outputs=[dataset("o")])),
    ],
    ids=["component", "native run", "a later run naming a dataset"],
)
def test_a_hidden_job_is_listed_from_a_native_write_or_a_run_naming_a_dataset_on(api, native):
    send_all(api, [event("COMPLETE", run_uuid("quiet"), "quiet", 0)], sync=False)
    assert component_names(api) == []
    assert native(api).status_code == 202
    send_all(api, [event("COMPLETE", run_uuid("quiet-3"), "quiet", 9)], sync=False)  # names none
    assert component_names(api) == ["airflow:quiet"]


@pytest.mark.parametrize("value", ["", "yes", "2"])
def test_a_bad_all_parameter_is_a_400_naming_it(api, value):
    response = api.get("/api/v1/components/", {"all": value})
    assert response.status_code == 400
    assert response.json() == {"all": ["Must be true, false, 1 or 0."]}
