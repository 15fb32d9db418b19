"""The OpenLineage tests' shortcuts: sending events, reading what they made, and a snapshot of
everything a user reads, by which async ingestion is compared with ?sync=true.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.db import connection

from components.models import Component
from ingest.queue import backlog_commit
from runs.models import OpenLineageEvent, OpenLineageRun, Run, Write
from tests.openlineage_events import PG, SCENARIOS, airflow_dag, dataset, run_uuid
from tests.test_ordering import TABLES


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
