"""OpenLineage intake: POST /api/v1/lineage and /lineage/batch, and the runs events make.

The sequences follow real producers (tests/openlineage_events.py). What they make is asserted
through the API a user reads: trace, history, staleness, review and the runs' bodies; and
async ingestion must give what ?sync=true gives.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection
from django.test import override_settings

from components.models import Component
from ingest.queue import backlog_commit
from runs.models import OpenLineageEvent, OpenLineageRun, Run, Write
from runs.openlineage import component_name, pointer_name
from tests.openlineage_events import (
    AIRFLOW,
    MODEL_SQL,
    PG,
    SCENARIOS,
    STATEMENTS,
    airflow_dag,
    airflow_owners,
    airflow_rerun,
    at,
    complete_before_start,
    dataset,
    dbt_run,
    dbt_structured_logs,
    event,
    failing_task,
    never_ends,
    run_uuid,
    spark_job,
    sql_facet,
)
from tests.test_ordering import TABLES

pytestmark = pytest.mark.django_db


def send(api, body: Any, *, sync: bool = False, path: str = "/api/v1/lineage", **kwargs: Any):
    return api.post(path + ("?sync=true" if sync else ""), body, format="json", **kwargs)


def send_all(api, events: list[dict], *, sync: bool) -> None:
    for body in events:
        response = send(api, body, sync=sync)
        assert response.status_code == (201 if sync else 202), response.content
    if not sync:
        backlog_commit(through_id=Write.objects.order_by("-id").values_list("id", flat=True).first())
        assert not Write.objects.exclude(status="committed").exists()


def trace(api, output_id: str) -> dict:
    response = api.get("/api/v1/trace/", {"output_id": output_id})
    assert response.status_code == 200, response.content
    return response.json()


def ol_run(api, label: str) -> dict:
    response = api.get("/api/v1/lineage/runs/", {"run_id": run_uuid(label)})
    assert response.status_code == 200, response.content
    (body,) = response.json()["results"]
    return body


# --- what events make ---------------------------------------------------------------------


def test_an_airflow_dag_makes_a_chain_of_three_task_runs_inside_its_dag_run(api):
    send_all(api, airflow_dag(), sync=True)

    body = trace(api, "snowflake://acct/warehouse.orders")
    chain = [(node["depth"], node["run"]["component"]) for node in body["nodes"]]
    assert chain == [(0, "airflow:etl.load"), (1, "airflow:etl.transform"), (2, "airflow:etl.extract")]
    dag = ol_run(api, "etl-dag-0")
    assert dag["state"] == "COMPLETE" and dag["run"] is not None and not dag["open"]
    for node in body["nodes"]:
        run = node["run"]
        assert run["openlineage"]["parent"] == {
            "run_id": run_uuid("etl-dag-0"),
            "job": "airflow:etl",
            "run": dag["run"],
        }
        assert run["openlineage"]["state"] == "COMPLETE"
        assert run["openlineage"]["producer"] == AIRFLOW
        assert run["git_hash"] == "abc0"
    load = body["nodes"][0]["run"]
    assert load["openlineage"]["run_id"] == run_uuid("etl-load-0")
    assert load["openlineage"]["job"] == {"namespace": "airflow", "name": "etl.load"}
    assert [p["name"] for p in load["inputs"]] == [f"{PG}/public.clean_orders"]
    assert load["start_timestamp"] == at(21) and load["end_timestamp"] == at(29)
    # The DAG run contains its tasks; it does not depend on them, nor they on it.
    dag_run = api.get(f"/api/v1/runs/{dag['run']}/").json()
    assert (
        dag_run["dependencies"] == [] and dag_run["inputs"] == [] and dag_run["openlineage"]["parent"] is None
    )
    assert all(dag["run"] not in node["run"]["dependencies"] for node in body["nodes"])


def test_a_run_is_committed_in_its_terminal_events_place_in_acceptance_order(api):
    events = airflow_dag()
    send_all(api, events, sync=False)
    extract = ol_run(api, "etl-extract-0")
    terminal = OpenLineageEvent.objects.get(run_uuid=run_uuid("etl-extract-0"), event_type="COMPLETE")
    assert extract["run"] == terminal.id
    assert extract["events"] == 3 and extract["first_event_id"] < extract["run"] == extract["last_event_id"]


def test_a_spark_job_completes_without_start_and_its_reader_depends_on_the_latest_writer(api):
    send_all(api, spark_job(), sync=True)
    table = "hdfs://namenode:8020/warehouse/orders"
    first, second = ol_run(api, "spark-1"), ol_run(api, "spark-2")
    # COMPLETE without START: the run starts at its earliest event.
    assert first["start_timestamp"] == at(0) and first["end_timestamp"] == at(5)
    assert second["start_timestamp"] == at(10)
    body = trace(api, table)
    assert body["root"] == second["run"]
    reader = ol_run(api, "spark-reader")
    reader_run = api.get(f"/api/v1/runs/{reader['run']}/").json()
    assert reader_run["dependencies"] == [second["run"]]
    # RUNNING events with empty inputs add nothing; COMPLETE's inputs are the run's.
    assert [p["name"] for p in api.get(f"/api/v1/runs/{first['run']}/").json()["inputs"]] == [
        "s3://lake/raw/a.parquet"
    ]
    history = api.get(
        f"/api/v1/components/{component_name('spark', 'orders_app.execute_insert_into_hadoop_fs_relation_command')}/history/"
    )
    assert [r["id"] for r in history.json()["results"]] == [second["run"], first["run"]]


def test_a_dbt_run_of_three_models_traces_through_both_staging_models(api):
    send_all(api, dbt_run(), sync=True)
    body = trace(api, f"{PG}/jaffle.public.customers")
    components = sorted(node["run"]["component"] for node in body["nodes"])
    assert components == ["dbt:jaffle.customers", "dbt:jaffle.stg_customers", "dbt:jaffle.stg_orders"]
    assert len(body["edges"]) == 2
    parent = ol_run(api, "dbt-run")
    assert all(node["run"]["openlineage"]["parent"]["run"] == parent["run"] for node in body["nodes"])


def test_the_sql_facet_is_the_code_snapshot_of_dbt_models_and_their_statements(api):
    send_all(api, dbt_structured_logs(), sync=True)
    model = api.get(f"/api/v1/runs/{ol_run(api, 'dbt-logs-orders')['run']}/").json()
    assert model["component"] == "dbt:jaffle.orders" and model["code_snapshot"] == MODEL_SQL
    statement = api.get(f"/api/v1/runs/{ol_run(api, 'dbt-logs-orders-sql-2')['run']}/").json()
    assert statement["component"] == "dbt:jaffle.orders.sql.2" and statement["code_snapshot"] == STATEMENTS[1]


def test_a_source_code_facet_wins_over_the_sql_facet_whichever_event_carries_it(api):
    source = {"sourceCode": {"language": "python", "sourceCode": "def load(): ..."}}
    both = {**source, **sql_facet("select 1")}
    runs = {
        "both-in-one": [event("COMPLETE", run_uuid("both-in-one"), "j", 1, job_facets=both)],
        "source-first": [
            event("START", run_uuid("source-first"), "j", 0, job_facets=source),
            event("COMPLETE", run_uuid("source-first"), "j", 1, job_facets=sql_facet("select 2")),
        ],
        "sql-first": [
            event("START", run_uuid("sql-first"), "j", 0, job_facets=sql_facet("select 3")),
            event("COMPLETE", run_uuid("sql-first"), "j", 1, job_facets=source),
        ],
        "sql-only": [
            event("START", run_uuid("sql-only"), "j", 0, job_facets=sql_facet("select 4")),
            event("COMPLETE", run_uuid("sql-only"), "j", 1, job_facets={"sql": {"query": 4}}),
        ],
    }
    for events in runs.values():
        send_all(api, events, sync=False)
    code = {
        label: api.get(f"/api/v1/runs/{ol_run(api, label)['run']}/").json()["code_snapshot"] for label in runs
    }
    assert code == {
        "both-in-one": "def load(): ...",
        "source-first": "def load(): ...",
        "sql-first": "def load(): ...",
        "sql-only": "select 4",  # a query that is not a string is ignored, not refused
    }


def test_the_same_event_twice_changes_nothing_the_second_time(api):
    events = airflow_dag()
    send_all(api, events, sync=True)
    before = (Run.objects.count(), list(OpenLineageRun.objects.order_by("id").values()))
    for body in (events[3], events[0], events[-1]):  # a COMPLETE, a START, the DAG's COMPLETE
        response = send(api, copy.deepcopy(body), sync=True)
        assert response.status_code == 201
        assert response.json()["outcome"] == "duplicate"
    assert (Run.objects.count(), list(OpenLineageRun.objects.order_by("id").values())) == before
    assert OpenLineageEvent.objects.filter(outcome="duplicate").count() == 3


def test_an_airflow_retry_with_a_new_run_id_is_a_new_run(api):
    first = event("FAIL", run_uuid("try-1"), "etl.extract", 0, outputs=[dataset("public.out")])
    retry = event("COMPLETE", run_uuid("try-2"), "etl.extract", 5, outputs=[dataset("public.out")])
    send_all(api, [first, retry], sync=True)
    assert Run.objects.filter(component__name="airflow:etl.extract").count() == 2
    assert trace(api, f"{PG}/public.out")["root"] == ol_run(api, "try-2")["run"]


def test_complete_before_start_keeps_the_complete_and_records_the_late_start(api):
    send_all(api, complete_before_start(), sync=True)
    run = ol_run(api, "late-start")
    assert run["state"] == "COMPLETE"
    assert run["start_timestamp"] == run["end_timestamp"] == at(10)
    body = api.get(f"/api/v1/runs/{run['run']}/").json()
    assert body["start_timestamp"] == at(10)
    assert OpenLineageEvent.objects.get(event_type="START").outcome == "after end"


def test_a_late_event_never_reopens_a_run_or_moves_its_timestamps(api):
    done = run_uuid("done")
    send_all(
        api,
        [
            event("START", done, "j", 0),
            event("COMPLETE", done, "j", 5),
            event("RUNNING", done, "j", 6, inputs=[dataset("late.in")]),
            event("OTHER", done, "j", 7),
            event("FAIL", done, "j", 8),
        ],
        sync=True,
    )
    run = ol_run(api, "done")
    assert (run["state"], run["start_timestamp"], run["end_timestamp"], run["inputs"]) == (
        "COMPLETE",
        at(0),
        at(5),
        [],
    )
    assert Run.objects.count() == 1
    assert (
        sorted(OpenLineageEvent.objects.values_list("outcome", flat=True))
        == ["after end"] * 3 + ["applied"] * 2
    )


def test_a_fail_keeps_its_error_message_and_its_outputs_are_not_produced(api):
    send_all(api, failing_task(), sync=True)
    failed = ol_run(api, "fail-task")
    body = api.get(f"/api/v1/runs/{failed['run']}/").json()
    assert body["notes"] == "division by zero"
    assert body["outputs"] == [] and body["openlineage"]["state"] == "FAIL"
    assert [p["name"] for p in failed["outputs"]] == [f"{PG}/public.scores"]
    reader = api.get(f"/api/v1/runs/{ol_run(api, 'fail-reader')['run']}/").json()
    assert reader["dependencies"] == []
    assert api.get("/api/v1/trace/", {"output_id": f"{PG}/public.scores"}).status_code == 404


def test_a_run_that_never_ends_is_open_and_has_no_lineage(api):
    send_all(api, never_ends(), sync=True)
    response = api.get("/api/v1/lineage/runs/", {"state": "open"})
    (run,) = response.json()["results"]
    assert run["open"] and run["state"] == "RUNNING" and run["run"] is None and run["end_timestamp"] is None
    assert [p["name"] for p in run["inputs"]] == [f"{PG}/x"]
    assert not Run.objects.exists()
    # The job's component exists from the first event.
    assert Component.objects.filter(name="airflow:stuck.job").exists()
    assert api.get("/api/v1/lineage/runs/", {"state": "COMPLETE"}).json()["results"] == []


def test_job_dependencies_become_explicit_dependencies_on_known_runs(api):
    upstream = run_uuid("upstream")
    facet = {
        "jobDependencies": {
            "upstream": [
                {"job": {"namespace": "airflow", "name": "up"}, "run": {"runId": upstream}},
                {"job": {"namespace": "airflow", "name": "gone"}, "run": {"runId": run_uuid("never-seen")}},
            ]
        }
    }
    send_all(
        api,
        [
            event("COMPLETE", upstream, "up", 0),
            event("COMPLETE", run_uuid("down"), "down", 5, run_facets=facet),
        ],
        sync=True,
    )
    down = api.get(f"/api/v1/runs/{ol_run(api, 'down')['run']}/").json()
    assert down["dependencies"] == [ol_run(api, "upstream")["run"]]


def test_a_stale_input_is_reported_like_a_native_one(api):
    old = event("COMPLETE", run_uuid("old"), "producer", 0, outputs=[dataset("public.t")])
    new = event("COMPLETE", run_uuid("new"), "consumer", 45 * 24 * 60, inputs=[dataset("public.t")])
    send_all(api, [old, new], sync=True)
    body = api.get(f"/api/v1/runs/{ol_run(api, 'new')['run']}/").json()
    old_id = ol_run(api, "old")["run"]
    assert body["stale"] == [f"airflow:producer (ID {old_id}) was run 45 days ago."]


def test_review_ranks_the_runs_behind_a_flagged_dataset(api):
    send_all(api, airflow_dag(), sync=True)
    assert (
        api.post(
            "/api/v1/flag/", {"output_id": "snowflake://acct/warehouse.orders"}, format="json"
        ).status_code
        == 200
    )
    review = api.get("/api/v1/review/").json()
    assert sorted(r["run"]["component"] for r in review["runs"]) == [
        "airflow:etl.extract",
        "airflow:etl.load",
        "airflow:etl.transform",
    ]


def test_datasets_become_pointers_with_version_and_model_type(api):
    body = event(
        "COMPLETE",
        run_uuid("train"),
        "train",
        0,
        inputs=[dataset("features", "s3://lake", version="v7")],
        outputs=[dataset("churn", "mlflow://registry", kind="MODEL", version="3")],
    )
    send_all(api, [body], sync=True)
    run = api.get(f"/api/v1/runs/{ol_run(api, 'train')['run']}/").json()
    assert run["inputs"] == [
        {"name": "s3://lake/features", "value": "v7", "pointer_type": "DATA", "flag": False}
    ]
    assert run["outputs"] == [
        {"name": "mlflow://registry/churn", "value": "3", "pointer_type": "MODEL", "flag": False}
    ]


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


def test_every_event_is_kept_as_received(api):
    events = spark_job()
    send_all(api, events, sync=False)
    assert [e.body for e in OpenLineageEvent.objects.order_by("id")] == events


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


# --- validation ------------------------------------------------------------------------


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
    assert send(api, [1, 2]).status_code == 400
    response = send(api, {"eventTime": at(0)})
    assert response.status_code == 400 and "run" in response.json()
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


def test_the_endpoints_are_served_exactly_without_a_trailing_slash(api):
    response = send(api, event("START", run_uuid("s"), "j", 0), path="/api/v1/lineage/")
    assert response.status_code == 404
    assert send(api, [event("START", run_uuid("s"), "j", 0)], path="/api/v1/lineage/batch").status_code == 200


def test_bearer_tokens_are_accepted_and_no_token_is_a_401(api, anon, token):
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert send(anon, event("START", run_uuid("b"), "j", 0)).status_code == 202
    anon.credentials()
    assert send(anon, event("START", run_uuid("c"), "j", 0)).status_code == 401


def test_an_unknown_query_parameter_is_a_400(api):
    response = send(api, event("START", run_uuid("q"), "j", 0), path="/api/v1/lineage?snyc=true")
    assert response.status_code == 400 and "snyc" in response.json()


# --- the batch endpoint ----------------------------------------------------------------


def test_a_batch_with_one_bad_event_records_the_others(api):
    events = never_ends() + complete_before_start()
    bad = event("START", run_uuid("bad"), "j", 0)
    del bad["run"]["runId"]
    events.insert(1, bad)
    response = send(api, events, path="/api/v1/lineage/batch")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "partial_success",
        "summary": {"received": 5, "successful": 4, "failed": 1, "retriable": 0, "non_retriable": 1},
        "failed_events": [{"index": 1, "reason": "run.runId: This field is required.", "retriable": False}],
        "events_after_end": 1,  # complete_before_start's START, after its COMPLETE
    }
    backlog_commit(through_id=Write.objects.order_by("-id").values_list("id", flat=True).first())
    assert sorted(OpenLineageRun.objects.values_list("state", flat=True)) == ["COMPLETE", "RUNNING"]


def test_a_good_batch_is_a_success_and_sync_commits_it(api):
    response = send(api, airflow_dag(), path="/api/v1/lineage/batch", sync=True)
    assert response.status_code == 200
    assert response.json()["status"] == "success" and response.json()["summary"]["successful"] == 11
    assert (
        trace(api, "snowflake://acct/warehouse.orders")["nodes"][0]["run"]["component"] == "airflow:etl.load"
    )


def test_a_batch_of_only_bad_events_lists_them_all_and_records_nothing(api):
    response = send(api, [{"eventTime": at(0)}, 3], path="/api/v1/lineage/batch")
    assert response.status_code == 200
    assert response.json()["status"] == "partial_success"
    assert response.json()["summary"] == {
        "received": 2,
        "successful": 0,
        "failed": 2,
        "retriable": 0,
        "non_retriable": 2,
    }
    assert [f["index"] for f in response.json()["failed_events"]] == [0, 1]
    assert not Write.objects.exists()


def batch(api, events: list[dict], *, sync: bool = False) -> dict:
    response = send(api, events, path="/api/v1/lineage/batch", sync=sync)
    assert response.status_code == 200, response.content
    return response.json()


def after_end_outcomes() -> int:
    return OpenLineageEvent.objects.filter(outcome="after end").count()


def test_a_rerun_with_the_same_run_ids_is_counted_after_the_end_by_the_batch_and_its_runs(api):
    events = airflow_rerun()
    first, again = events[:4], events[4:]
    assert batch(api, first)["events_after_end"] == 0
    send_all(api, [], sync=False)
    answer = batch(api, again)
    assert answer["events_after_end"] == 4
    assert answer["status"] == "success" and answer["summary"]["successful"] == 4  # the spec's keys hold
    send_all(api, [], sync=False)
    for label in ("rerun-dag", "rerun-task"):
        run = ol_run(api, label)
        assert (run["events"], run["events_after_end"], run["end_timestamp"]) == (
            4,
            2,
            at(2 if "task" in label else 3),
        )
    assert Run.objects.count() == 2


def test_the_batch_counts_what_the_commit_will_record_after_the_end(api):
    done, shared, fresh = run_uuid("ended"), run_uuid("shared-ended"), run_uuid("fresh")
    complete = event("COMPLETE", done, "j", 5)
    send_all(api, [event("START", done, "j", 0), complete, event("COMPLETE", shared, "first", 1)], sync=True)
    events = [
        event("RUNNING", done, "j", 6),  # after the committed end: counted
        copy.deepcopy(complete),  # a duplicate of a recorded event: not counted
        event("COMPLETE", shared, "second", 7),  # another job's runId: not counted
        event("START", fresh, "j", 8),
        event("COMPLETE", fresh, "j", 9),
        event("OTHER", fresh, "j", 10),  # after an end earlier in the batch: counted
        event("OTHER", fresh, "j", 10),  # the same again in the batch: a duplicate
        {"eventTime": at(11), "job": {"namespace": "airflow", "name": "j"}},  # a JobEvent
    ]
    answer = batch(api, events)
    assert answer["events_after_end"] == 2
    before = after_end_outcomes()
    send_all(api, [], sync=False)
    assert after_end_outcomes() - before == 2
    assert ol_run(api, "ended")["events_after_end"] == 1 and ol_run(api, "fresh")["events_after_end"] == 1


def test_with_sync_the_batch_counts_what_the_commit_recorded(api):
    task = run_uuid("queued-end")
    assert send(api, event("COMPLETE", task, "j", 0)).status_code == 202  # queued, not committed
    answer = batch(api, [event("START", task, "j", 1), event("RUNNING", task, "j", 2)], sync=True)
    assert answer["events_after_end"] == 2 == after_end_outcomes()


def test_without_sync_an_end_still_queued_is_not_counted_but_the_run_counts_it(api):
    task = run_uuid("queued-end")
    assert send(api, event("COMPLETE", task, "j", 0)).status_code == 202  # queued, not committed
    assert batch(api, [event("START", task, "j", 1)])["events_after_end"] == 0
    send_all(api, [], sync=False)
    assert ol_run(api, "queued-end")["events_after_end"] == 1


def test_the_batch_count_takes_one_query_or_two_when_a_run_has_ended(api, django_assert_num_queries):
    from ingest.openlineage import events_after_end_count
    from runs.openlineage import read_event

    def count(events: list[dict]) -> int:
        return events_after_end_count([(read_event(body, max_datasets=10), body) for body in events])

    send_all(api, airflow_dag(), sync=True)
    with django_assert_num_queries(1):
        assert count(airflow_dag(day=1) + never_ends()) == 0  # fresh runs: nothing fingerprinted
    with django_assert_num_queries(2):
        assert count(airflow_dag()) == 0  # day 0 again: duplicates
    late = event("OTHER", run_uuid("etl-load-0"), "etl.load", 99)
    with django_assert_num_queries(2):
        assert count([*airflow_dag(day=1), late, *airflow_dag(day=2)]) == 1


@pytest.mark.parametrize("query", [{"state": ""}, {"before": ""}, {"state": "DONE"}, {"before": str(2**63)}])
def test_a_bad_or_blank_runs_query_is_a_400(api, query):
    response = api.get("/api/v1/lineage/runs/", query)
    assert response.status_code == 400 and list(response.json()) == list(query)


@pytest.mark.parametrize("body", [{}, [], "events"])
def test_a_batch_that_is_not_a_non_empty_array_is_a_400(api, body):
    response = send(api, body, path="/api/v1/lineage/batch")
    assert response.status_code == 400 and "detail" in response.json()


@override_settings(MLTRACE_MAX_BATCH_RUNS=3)
def test_a_batch_over_the_limit_is_refused_whole(api):
    response = send(api, never_ends() * 2, path="/api/v1/lineage/batch")
    assert response.status_code == 400
    assert response.json() == {"detail": "A batch holds 1 to 3 events; this one holds 4."}
    assert not Write.objects.exists()


# --- async equals sync -----------------------------------------------------------------


def all_scenarios() -> list[dict]:
    events = []
    for build in SCENARIOS.values():
        events.extend(build())
    # A second day of the DAG, 45 days on: its extract reads what day 0 wrote (stale).
    later = airflow_dag(day=45)
    later[2]["inputs"] = [dataset("public.clean_orders")]
    events.extend(later)
    events.append(events[3])  # a duplicate
    return events


def lineage_snapshot(api) -> dict[str, Any]:
    """What a user reads, with run ids replaced by their OpenLineage runIds."""
    uuid_of = dict(OpenLineageRun.objects.filter(run__isnull=False).values_list("run_id", "run_uuid"))
    uuid_of.update(
        {i: f"native-{i}" for i in Run.objects.exclude(id__in=list(uuid_of)).values_list("id", flat=True)}
    )

    def renamed(value: Any) -> Any:
        text = json.dumps(value, sort_keys=True)
        text = re.sub(r"\(ID (\d+)\)", lambda m: f"(ID {uuid_of[int(m[1])]})", text)
        return json.loads(text)

    def run_view(body: dict) -> dict:
        body = dict(
            body, id=uuid_of[body["id"]], dependencies=sorted(uuid_of[d] for d in body["dependencies"])
        )
        body.pop("created_at")
        if body["openlineage"] and body["openlineage"]["parent"]:
            body["openlineage"]["parent"]["run"] = (
                None if body["openlineage"]["parent"]["run"] is None else "known"
            )
        return renamed(body)

    runs = {}
    for run_id in sorted(uuid_of):
        runs[uuid_of[run_id]] = run_view(api.get(f"/api/v1/runs/{run_id}/").json())
    traces = {}
    for name in (
        "snowflake://acct/warehouse.orders",
        f"{PG}/jaffle.public.customers",
        "hdfs://namenode:8020/warehouse/orders",
    ):
        body = trace(api, name)
        traces[name] = [(n["depth"], uuid_of[n["run"]["id"]]) for n in body["nodes"]]
    histories = {
        c: [
            uuid_of[r["id"]]
            for r in api.get(f"/api/v1/components/{c}/history/", {"limit": 100}).json()["results"]
        ]
        for c in Component.objects.values_list("name", flat=True)
    }
    api.post("/api/v1/flag/", {"output_id": f"{PG}/public.staged_orders"}, format="json")
    review = [(uuid_of[r["run"]["id"]], r["count"]) for r in api.get("/api/v1/review/").json()["runs"]]
    api.post("/api/v1/unflag/", {"all": True}, format="json")

    def ol_view(body: dict) -> dict:
        body = {k: v for k, v in body.items() if k not in ("first_event_id", "last_event_id")}
        body["run"] = None if body["run"] is None else uuid_of[body["run"]]
        if body["parent"]:
            body["parent"]["run"] = None if body["parent"]["run"] is None else uuid_of[body["parent"]["run"]]
        return body

    ol_runs = sorted(
        (ol_view(r) for r in api.get("/api/v1/lineage/runs/", {"limit": 1000}).json()["results"]),
        key=lambda r: r["run_id"],
    )
    outcomes = list(OpenLineageEvent.objects.order_by("id").values_list("outcome", flat=True))
    components = {
        c["name"]: {k: v for k, v in c.items() if k != "created_at"}
        for c in api.get("/api/v1/components/", {"limit": 1000, "all": "true"}).json()["results"]
    }
    listed = [c["name"] for c in api.get("/api/v1/components/", {"limit": 1000}).json()["results"]]
    return {
        "components": components,
        "listed": listed,
        "runs": runs,
        "traces": traces,
        "histories": histories,
        "review": review,
        "ol_runs": ol_runs,
        "outcomes": outcomes,
    }


def reset() -> None:
    tables = [*TABLES, OpenLineageEvent._meta.db_table, OpenLineageRun._meta.db_table]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")


@pytest.mark.django_db(transaction=True)
def test_async_ingestion_of_every_scenario_equals_sync(api):
    events = all_scenarios()
    send_all(api, events, sync=False)
    by_async = lineage_snapshot(api)
    assert by_async["review"] and any(
        "was run 44 days ago" in s for r in by_async["runs"].values() for s in r["stale"]
    )
    # The scenarios of issue 26: an owner from RunEvents, SQL as code, a rerun after the end.
    assert by_async["components"]["airflow:reports.build"]["owner"] == "cy"
    assert by_async["runs"][run_uuid("dbt-logs-orders")]["code_snapshot"] == MODEL_SQL
    assert by_async["outcomes"].count("after end") == 1 + 1 + 4  # late START, owners, rerun
    assert "dbt:jaffle.orders" in by_async["listed"] and "dbt:jaffle.orders.sql.1" not in by_async["listed"]
    reset()
    send_all(api, events, sync=True)
    assert lineage_snapshot(api) == by_async


def test_an_event_naming_another_job_for_a_known_run_id_is_recorded_and_changes_nothing(api):
    shared = run_uuid("shared")
    send_all(api, [event("START", shared, "first", 0)], sync=True)
    response = send(api, event("COMPLETE", shared, "second", 5), sync=True)
    assert response.json()["outcome"] == "another job"
    assert response.json()["run"]["component"] == "airflow:first" and response.json()["run"]["open"]
    assert not Run.objects.exists() and not Component.objects.filter(name="airflow:second").exists()


def test_a_non_terminal_event_id_is_not_a_run(api):
    write_id = send(api, event("START", run_uuid("s"), "j", 0), sync=True).json()["id"]
    response = api.get(f"/api/v1/runs/{write_id}/")
    assert response.status_code == 404
    assert response.json() == {"detail": f"Write {write_id} is an OpenLineage event, not a run."}


@override_settings(MLTRACE_MAX_BATCH_POINTERS=3)
def test_a_batch_over_the_dataset_limit_is_refused_whole(api):
    two = [dataset("a"), dataset("b")]
    events = [event("COMPLETE", run_uuid(f"d{i}"), "j", i, inputs=two) for i in range(2)]
    response = send(api, events, path="/api/v1/lineage/batch")
    assert response.status_code == 400
    assert response.json() == {
        "detail": "A batch holds at most 3 datasets (the inputs and outputs of all its events); this one holds 4."
    }
    assert not Write.objects.exists()
