"""Async equals sync: the events of every producer scenario, accepted with 202 and committed
later, read as ?sync=true makes them (tests/test_openlineage_live.py: the same through qcluster
workers).
"""

from __future__ import annotations

import pytest

from tests.openlineage_api import all_scenarios, lineage_snapshot, reset, send_all
from tests.openlineage_events import MODEL_SQL, run_uuid

pytestmark = pytest.mark.django_db


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
