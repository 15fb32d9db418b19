"""Migrations that change what existing rows mean: run backwards and forwards on data."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from components.models import Component
from tests.factories import log_run, moment
from tests.openlineage_events import dbt_structured_logs, event, run_uuid


def migrate(app: str, name: str) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([(app, name)])


@pytest.mark.django_db(transaction=True)
def test_components_0002_hides_the_jobs_whose_runs_named_no_dataset(api):
    events = [*dbt_structured_logs(), event("COMPLETE", run_uuid("quiet"), "quiet", 0)]
    for body in events:
        assert api.post("/api/v1/lineage?sync=true", body, format="json").status_code == 201
    log_run(api, "airflow:quiet", start=moment(60))  # a native run of a job: registered natively
    assert api.post("/api/v1/components/?sync=true", {"name": "etl"}, format="json").status_code == 201
    try:
        migrate("components", "0001_initial")
    finally:
        migrate("components", "0002_component_listed")
    listed = dict(Component.objects.values_list("name", "listed"))
    assert listed == {
        "airflow:quiet": True,
        "dbt:dbt-run-jaffle": False,
        "dbt:jaffle.orders": True,
        **{f"dbt:jaffle.orders.sql.{n}": False for n in range(1, 5)},
        "etl": True,
    }
