"""What the events of an OpenLineage run make of it, and GET /api/v1/lineage/runs/.

The sequences follow real producers (tests/openlineage_events.py). What they make is asserted
through the API a user reads: trace, history, staleness, review and the runs' bodies.
"""

from __future__ import annotations

import copy

import pytest

from components.models import Component
from runs.models import OpenLineageEvent, OpenLineageRun, Run
from runs.openlineage import component_name
from tests.openlineage_api import ol_run, send, send_all, trace
from tests.openlineage_events import (
    AIRFLOW,
    MODEL_SQL,
    PG,
    STATEMENTS,
    airflow_dag,
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

pytestmark = pytest.mark.django_db


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


def test_an_event_naming_another_job_for_a_known_run_id_is_recorded_and_changes_nothing(api):
    shared = run_uuid("shared")
    send_all(api, [event("START", shared, "first", 0)], sync=True)
    response = send(api, event("COMPLETE", shared, "second", 5), sync=True)
    assert response.json()["outcome"] == "another job"
    assert response.json()["run"]["component"] == "airflow:first" and response.json()["run"]["open"]
    assert not Run.objects.exists() and not Component.objects.filter(name="airflow:second").exists()


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


def test_a_non_terminal_event_id_is_not_a_run(api):
    write_id = send(api, event("START", run_uuid("s"), "j", 0), sync=True).json()["id"]
    response = api.get(f"/api/v1/runs/{write_id}/")
    assert response.status_code == 404
    assert response.json() == {"detail": f"Write {write_id} is an OpenLineage event, not a run."}


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


@pytest.mark.parametrize("query", [{"state": ""}, {"before": ""}, {"state": "DONE"}, {"before": str(2**63)}])
def test_a_bad_or_blank_runs_query_is_a_400(api, query):
    response = api.get("/api/v1/lineage/runs/", query)
    assert response.status_code == 400 and list(response.json()) == list(query)
