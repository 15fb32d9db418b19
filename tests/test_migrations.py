"""Migrations that change what existing rows mean: run backwards and forwards on data."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count

from components.models import Component
from runs.models import OpenLineageRun, Write
from tests.factories import log_run, moment
from tests.openlineage_events import airflow_rerun, dbt_structured_logs, event, run_uuid


def migrate(app: str, name: str) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([(app, name)])


def migrate_to_latest(app: str) -> None:
    """Forwards to the app's newest migration, as the other tests expect the schema."""
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes(app))


@pytest.mark.django_db(transaction=True)
def test_components_0002_hides_the_jobs_whose_runs_named_no_dataset(api):
    events = [*dbt_structured_logs(), event("COMPLETE", run_uuid("quiet"), "quiet", 0)]
    for body in events:
        assert api.post("/api/v1/lineage?sync=true", body, format="json").status_code == 201
    log_run(api, "airflow:quiet", start=moment(60))  # a native run of a job: registered natively
    assert api.post("/api/v1/components/?sync=true", {"name": "etl"}, format="json").status_code == 201
    try:
        migrate("components", "0001_initial")
        migrate("runs", "0010_materialize")  # where the model 0002 reads is still LineageRun
        migrate("components", "0002_component_listed")
    finally:
        migrate_to_latest("components")
        migrate_to_latest("runs")
    listed = dict(Component.objects.values_list("name", "listed"))
    assert listed == {
        "airflow:quiet": True,
        "dbt:dbt-run-jaffle": False,
        "dbt:jaffle.orders": True,
        **{f"dbt:jaffle.orders.sql.{n}": False for n in range(1, 5)},
        "etl": True,
    }


@pytest.mark.django_db(transaction=True)
def test_runs_0009_counts_the_events_recorded_after_the_end_of_each_run(api):
    events = [*airflow_rerun(), event("COMPLETE", run_uuid("rerun-task"), "other.job", 99)]  # another job
    for body in events:
        assert api.post("/api/v1/lineage?sync=true", body, format="json").status_code == 201
    try:
        migrate("runs", "0008_lineagerun_sql")
        migrate("runs", "0009_lineagerun_events_after_end")
    finally:
        migrate_to_latest("runs")
    counts = dict(OpenLineageRun.objects.values_list("run_uuid", "events_after_end"))
    assert counts == {run_uuid("rerun-dag"): 2, run_uuid("rerun-task"): 2}


@pytest.mark.django_db(transaction=True)
def test_runs_0011_renames_the_openlineage_write_kind_both_ways(api):
    for body in dbt_structured_logs()[:2]:
        assert api.post("/api/v1/lineage?sync=true", body, format="json").status_code == 201
    log_run(api, "native", start=moment(60))
    try:
        migrate("runs", "0010_materialize")
        assert dict(Write.objects.values_list("kind").annotate(n=Count("id"))) == {"lineage": 2, "run": 1}
    finally:
        migrate_to_latest("runs")
    assert dict(Write.objects.values_list("kind").annotate(n=Count("id"))) == {"openlineage": 2, "run": 1}
