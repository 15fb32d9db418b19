"""The rules of the API that OpenAPI cannot state, for schemathesis's generated requests.

tests/test_serving.py runs schemathesis with them against gunicorn as shipped. By hand:

    SCHEMATHESIS_HOOKS=tests.schemathesis_hooks .venv/bin/schemathesis run \
        http://127.0.0.1:8000/api/schema/ -H "Authorization: Token $TOKEN" --checks all \
        --seed 1 --max-examples 10 --generation-allow-x00 false --continue-on-failure

NUL is not generated: every string refuses it with a 400 (docs/API.md).

An OpenLineage eventTime names a real instant (no month 13, no offset of 25 hours), which
the schema's pattern cannot say.

A run ends no earlier than it starts, and a ?sync=true run's explicit dependencies name
components that have runs. The server answers 400 to either, which is right; without these
hooks schemathesis would generate such bodies as valid and count the 400 against the server.
"""

from __future__ import annotations

from typing import Any

import schemathesis


def _run_in_order(run: Any) -> None:
    if isinstance(run, dict) and "start_timestamp" in run and "end_timestamp" in run:
        run["end_timestamp"] = run["start_timestamp"]


def _event_time_real(event: Any) -> None:
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mltrace_site.settings")
    django.setup()  # runs.openlineage's constants come from the models
    from common.errors import InvalidInput
    from runs.openlineage import EVENT_TIME, parse_event_time

    # Only a time of the right shape that names no instant: a negative case keeps its own.
    if (
        isinstance(event, dict)
        and isinstance(event.get("eventTime"), str)
        and EVENT_TIME.fullmatch(event["eventTime"])
    ):
        try:
            parse_event_time(event["eventTime"])
        except InvalidInput:
            event["eventTime"] = "2024-05-01T12:00:00Z"


@schemathesis.hook
def map_case(ctx: Any, case: Any) -> Any:
    path, body, query = case.operation.path, case.body, case.query or {}
    if path == "/api/v1/lineage":
        _event_time_real(body)
    if path == "/api/v1/runs/":
        _run_in_order(body)
    elif path == "/api/v1/runs/batch/" and isinstance(body, dict) and isinstance(body.get("runs"), list):
        for run in body["runs"]:
            _run_in_order(run)
    if path in ("/api/v1/runs/", "/api/v1/runs/batch/") and str(query.get("sync", "")).lower() in (
        "true",
        "1",
    ):
        # ?sync=true commits at once: an explicit dependency must name a component that has
        # a run already, which generated names do not.
        runs = body.get("runs") if path.endswith("batch/") and isinstance(body, dict) else [body]
        for run in runs if isinstance(runs, list) else []:
            if isinstance(run, dict):
                run.pop("dependencies", None)
    return case
