"""OpenLineage event sequences written after real producers (Airflow, Spark, dbt), for tests.

Each event is what the producer's integration sends: the shapes follow OpenLineage 2.0.2
and the facets each integration attaches (parent, errorMessage, sourceCodeLocation, ...).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
AIRFLOW = "https://github.com/apache/airflow/tree/providers-openlineage/2.2.0"
SPARK = "https://github.com/OpenLineage/OpenLineage/tree/1.30.0/integration/spark"
DBT = "https://github.com/OpenLineage/OpenLineage/tree/1.30.0/integration/dbt"
PG = "postgres://db:5432"


def run_uuid(label: str) -> str:
    """A stable UUID per label, as producers derive theirs (Airflow: from the DAG run)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, label))


def at(minutes: float) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def dataset(name: str, namespace: str = PG, *, version: str | None = None, kind: str | None = None) -> dict:
    facets: dict[str, Any] = {}
    if version is not None:
        facets["version"] = {"_producer": AIRFLOW, "_schemaURL": SCHEMA, "datasetVersion": version}
    if kind is not None:
        facets["datasetType"] = {"_producer": AIRFLOW, "_schemaURL": SCHEMA, "datasetType": kind}
    body: dict[str, Any] = {"namespace": namespace, "name": name}
    if facets:
        body["facets"] = facets
    return body


def event(
    event_type: str | None,
    run_id: str,
    job: str,
    minutes: float,
    *,
    namespace: str = "airflow",
    inputs: list[dict] = (),  # type: ignore[assignment]
    outputs: list[dict] = (),  # type: ignore[assignment]
    parent: tuple[str, str] | None = None,
    run_facets: dict | None = None,
    job_facets: dict | None = None,
    producer: str = AIRFLOW,
) -> dict[str, Any]:
    facets = dict(run_facets or {})
    if parent is not None:
        parent_run, parent_job = parent
        facets["parent"] = {
            "_producer": producer,
            "_schemaURL": SCHEMA,
            "run": {"runId": parent_run},
            "job": {"namespace": namespace, "name": parent_job},
        }
    body: dict[str, Any] = {
        "eventTime": at(minutes),
        "producer": producer,
        "schemaURL": SCHEMA,
        "run": {"runId": run_id, "facets": facets},
        "job": {"namespace": namespace, "name": job, "facets": job_facets or {}},
        "inputs": list(inputs),
        "outputs": list(outputs),
    }
    if event_type is not None:
        body["eventType"] = event_type
    return body


def airflow_dag(day: int = 0) -> list[dict]:
    """A DAG run holding three task runs, extract -> transform -> load; inputs and outputs only
    on COMPLETE, as the Airflow provider sends them; the DAG run ends last."""
    base = day * 24 * 60
    dag = run_uuid(f"etl-dag-{day}")
    tasks = {name: run_uuid(f"etl-{name}-{day}") for name in ("extract", "transform", "load")}
    parent = (dag, "etl")
    code = {"sourceCodeLocation": {"type": "git", "url": "https://git.example/etl", "version": f"abc{day}"}}
    events = [event("START", dag, "etl", base)]
    steps = [
        ("extract", [dataset("public.raw_orders")], [dataset("public.staged_orders")]),
        ("transform", [dataset("public.staged_orders")], [dataset("public.clean_orders")]),
        ("load", [dataset("public.clean_orders")], [dataset("warehouse.orders", "snowflake://acct")]),
    ]
    for i, (name, inputs, outputs) in enumerate(steps):
        start = base + 1 + 10 * i
        events.append(event("START", tasks[name], f"etl.{name}", start, parent=parent, job_facets=code))
        events.append(event("RUNNING", tasks[name], f"etl.{name}", start + 1, parent=parent))
        events.append(
            event(
                "COMPLETE",
                tasks[name],
                f"etl.{name}",
                start + 8,
                parent=parent,
                inputs=inputs,
                outputs=outputs,
                job_facets=code,
            )
        )
    events.append(event("COMPLETE", dag, "etl", base + 40))
    return events


def spark_job() -> list[dict]:
    """Spark: COMPLETE without a START, RUNNING events with empty inputs, two runs writing the
    same table (the second, later run is its latest producer)."""
    first, second, reader = run_uuid("spark-1"), run_uuid("spark-2"), run_uuid("spark-reader")
    job, kw = (
        "orders_app.execute_insert_into_hadoop_fs_relation_command",
        {"namespace": "spark", "producer": SPARK},
    )
    table = dataset("/warehouse/orders", "hdfs://namenode:8020")
    return [
        event("RUNNING", first, job, 0, **kw),
        event(
            "COMPLETE", first, job, 5, inputs=[dataset("/raw/a.parquet", "s3://lake")], outputs=[table], **kw
        ),
        event("START", second, job, 10, **kw),
        event("RUNNING", second, job, 11, **kw),
        event(
            "COMPLETE",
            second,
            job,
            15,
            inputs=[dataset("/raw/b.parquet", "s3://lake")],
            outputs=[table],
            **kw,
        ),
        event("COMPLETE", reader, "report_app.execute_save", 20, inputs=[table], **kw),
    ]


def dbt_run() -> list[dict]:
    """dbt-ol: a parent run for `dbt run` and one run per model, a model reading the ones
    before it."""
    parent = run_uuid("dbt-run")
    kw = {"namespace": "dbt", "producer": DBT}
    models = [
        ("jaffle.stg_orders", [dataset("jaffle.raw.orders")], "jaffle.public.stg_orders"),
        ("jaffle.stg_customers", [dataset("jaffle.raw.customers")], "jaffle.public.stg_customers"),
        (
            "jaffle.customers",
            [dataset("jaffle.public.stg_orders"), dataset("jaffle.public.stg_customers")],
            "jaffle.public.customers",
        ),
    ]
    events = [event("START", parent, "dbt-run-jaffle", 0, **kw)]
    for i, (name, inputs, output) in enumerate(models):
        run = run_uuid(f"dbt-{name}")
        events.append(event("START", run, name, 1 + i, parent=(parent, "dbt-run-jaffle"), **kw))
        events.append(
            event(
                "COMPLETE",
                run,
                name,
                1.5 + i,
                parent=(parent, "dbt-run-jaffle"),
                inputs=inputs,
                outputs=[dataset(output)],
                **kw,
            )
        )
    events.append(event("COMPLETE", parent, "dbt-run-jaffle", 10, **kw))
    return events


def failing_task() -> list[dict]:
    """A task that fails with an error message after naming its output, then a task that reads
    that output: it must not depend on the failed run."""
    failed, reader = run_uuid("fail-task"), run_uuid("fail-reader")
    error = {"errorMessage": {"message": "division by zero", "programmingLanguage": "python"}}
    out = dataset("public.scores")
    return [
        event("START", failed, "scores.compute", 0),
        event("FAIL", failed, "scores.compute", 3, outputs=[out], run_facets=error),
        event("COMPLETE", reader, "scores.publish", 5, inputs=[out]),
    ]


def complete_before_start() -> list[dict]:
    run = run_uuid("late-start")
    return [
        event("COMPLETE", run, "late.job", 10, outputs=[dataset("public.late")]),
        event("START", run, "late.job", 0),
    ]


def never_ends() -> list[dict]:
    run = run_uuid("never-ends")
    return [event("START", run, "stuck.job", 0), event("RUNNING", run, "stuck.job", 1, inputs=[dataset("x")])]


def sql_facet(query: str, producer: str = DBT) -> dict:
    """OpenLineage's SQLJobFacet, as dbt-ol and Airflow's SQL operators send it."""
    return {
        "sql": {
            "_producer": producer,
            "_schemaURL": "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet",
            "query": query,
            "dialect": "postgres",
        }
    }


MODEL_SQL = "select o.id, o.customer_id, o.amount from jaffle.public.stg_orders o where o.amount > 0"
STATEMENTS = [
    "begin",
    f"create table jaffle.public.orders__dbt_tmp as ({MODEL_SQL})",
    'alter table jaffle.public.orders__dbt_tmp rename to "orders"',
    "commit",
]


def dbt_structured_logs() -> list[dict]:
    """dbt-ol (1.54) in structured-logs mode: the model's run carries its SQL in the sql job
    facet, and each SQL statement dbt runs is a child job, `<model job>.sql.1` and on, whose
    parent is the model's run and whose runs name no dataset."""
    parent, model = run_uuid("dbt-logs-run"), run_uuid("dbt-logs-orders")
    kw: dict[str, Any] = {"namespace": "dbt", "producer": DBT}
    model_job = "jaffle.orders"
    events = [
        event("START", parent, "dbt-run-jaffle", 0, **kw),
        event(
            "START",
            model,
            model_job,
            1,
            parent=(parent, "dbt-run-jaffle"),
            job_facets=sql_facet(MODEL_SQL),
            **kw,
        ),
    ]
    for n, statement in enumerate(STATEMENTS, start=1):
        child = run_uuid(f"dbt-logs-orders-sql-{n}")
        facets = sql_facet(statement)
        for event_type, minutes in (("START", 1 + n / 10), ("COMPLETE", 1 + n / 10 + 0.05)):
            events.append(
                event(
                    event_type,
                    child,
                    f"{model_job}.sql.{n}",
                    minutes,
                    parent=(model, model_job),
                    job_facets=facets,
                    **kw,
                )
            )
    events.append(
        event(
            "COMPLETE",
            model,
            model_job,
            2,
            parent=(parent, "dbt-run-jaffle"),
            inputs=[dataset("jaffle.public.stg_orders")],
            outputs=[dataset("jaffle.public.orders")],
            job_facets=sql_facet(MODEL_SQL),
            **kw,
        )
    )
    events.append(event("COMPLETE", parent, "dbt-run-jaffle", 3, **kw))
    return events


def ownership(*names: str) -> dict:
    """The ownership job facet, as Airflow's provider sends it on every RunEvent."""
    return {
        "ownership": {
            "_producer": AIRFLOW,
            "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/OwnershipJobFacet.json#/$defs/OwnershipJobFacet",
            "owners": [{"name": name, "type": "USER"} for name in names],
        }
    }


def job_event(job: str, minutes: float, *, facets: dict, namespace: str = "airflow") -> dict:
    return {
        "eventTime": at(minutes),
        "producer": AIRFLOW,
        "schemaURL": SCHEMA.replace("RunEvent", "JobEvent"),
        "job": {"namespace": namespace, "name": job, "facets": facets},
    }


def airflow_owners() -> list[dict]:
    """Airflow 3 sends the DAG's owners on its RunEvents, and a JobEvent may name others in
    between: the owner is the one of the last of them in acceptance order, and an event after
    the end of its run changes nothing."""
    first, second = run_uuid("owned-1"), run_uuid("owned-2")
    job, out = "reports.build", [dataset("public.report")]
    return [
        event("START", first, job, 0, job_facets=ownership("ana")),
        job_event(job, 1, facets=ownership("team:bi")),
        event("COMPLETE", first, job, 2, outputs=out, job_facets=ownership("ana", "bo")),
        event("START", second, job, 10, job_facets=ownership("cy")),
        event("COMPLETE", second, job, 12, outputs=out, job_facets=ownership("cy")),
        event("COMPLETE", first, job, 20, outputs=out, job_facets=ownership("late")),  # after its end
    ]


def airflow_rerun() -> list[dict]:
    """`airflow dags test` twice with the same logical date: the second time sends the same
    runIds (Airflow derives them from the DAG run), an hour later. Its events arrive after the
    end of their runs: recorded, and they make no runs."""
    dag, task = run_uuid("rerun-dag"), run_uuid("rerun-task")
    out = [dataset("public.rerun_out")]
    events: list[dict] = []
    for minutes in (0, 60):
        events += [
            event("START", dag, "rerun", minutes),
            event("START", task, "rerun.write", minutes + 1, parent=(dag, "rerun")),
            event("COMPLETE", task, "rerun.write", minutes + 2, parent=(dag, "rerun"), outputs=out),
            event("COMPLETE", dag, "rerun", minutes + 3),
        ]
    return events


SCENARIOS = {
    "airflow": airflow_dag,
    "spark": spark_job,
    "dbt": dbt_run,
    "fail": failing_task,
    "complete_before_start": complete_before_start,
    "never_ends": never_ends,
    "dbt_structured_logs": dbt_structured_logs,
    "airflow_owners": airflow_owners,
    "airflow_rerun": airflow_rerun,
}
