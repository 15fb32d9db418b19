"""The rules of the API that OpenAPI cannot state, for schemathesis's generated requests.

tests/test_serving.py runs schemathesis with them against gunicorn as shipped. By hand:

    SCHEMATHESIS_HOOKS=tests.schemathesis_hooks .venv/bin/schemathesis run \
        http://127.0.0.1:8000/api/schema/ -H "Authorization: Token $TOKEN" --checks all \
        --seed 1 --max-examples 10 --generation-allow-x00 false --continue-on-failure

NUL is not generated: every string refuses it with a 400 (docs/API.md).

An OpenLineage eventTime names a real instant (no month 13, no offset of 25 hours), which
the schema's pattern cannot say.

A monitoring window is the last N seconds or the last N pairs, not both; a flag call names a
mismatch or a threshold, not both, and `mismatch` is only ever true; a series ends after it
starts and spans at most 1,000 buckets.

A run ends no earlier than it starts, and a ?sync=true run's explicit dependencies name
components that have runs. The server answers 400 to either, which is right; without these
hooks schemathesis would generate such bodies as valid and count the 400 against the server.
"""

from __future__ import annotations

from typing import Any

import schemathesis


def _is_time(value: Any) -> bool:
    import datetime as dt

    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return False
    return True


def _run_in_order(run: Any) -> None:
    """A run of a valid start and end ends when it starts; an invalid end stays (a negative case)."""
    if isinstance(run, dict) and "start_timestamp" in run and _is_time(run.get("end_timestamp")):
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


def _whole(value: Any, highest: int) -> bool:
    try:
        return not isinstance(value, bool) and 1 <= int(value) <= highest and float(value) == int(value)
    except (TypeError, ValueError):
        return False


def _one_window(params: Any) -> None:
    """Both windows given: drop one that is valid, so that a negative case stays negative."""
    if isinstance(params, dict) and "window_seconds" in params and "window_pairs" in params:
        if _whole(params["window_pairs"], 10_000_000):
            del params["window_pairs"]
        else:
            del params["window_seconds"]


def _one_disagreement(body: Any) -> None:
    """Exactly one of "mismatch": true and "threshold", keeping a threshold (valid or not) and
    any value of the wrong type, so that a negative case stays negative."""
    if not isinstance(body, dict):
        return
    if "threshold" in body:
        if isinstance(body.get("mismatch"), bool):  # a mismatch of the wrong type stays
            del body["mismatch"]
    elif body.get("mismatch") is False or "mismatch" not in body:
        body["mismatch"] = True


def _an_hour_long(query: Any) -> None:
    """A series of a valid start and end ends an hour after its start (at most 60 buckets)."""
    import datetime as dt

    if not (
        isinstance(query, dict) and isinstance(query.get("start"), str) and isinstance(query.get("end"), str)
    ):
        return
    try:
        start = dt.datetime.fromisoformat(query["start"].replace("Z", "+00:00"))
        dt.datetime.fromisoformat(query["end"].replace("Z", "+00:00"))
    except ValueError:
        return  # a negative case keeps its own times
    query["end"] = (start + dt.timedelta(hours=1)).isoformat()


@schemathesis.hook
def map_case(ctx: Any, case: Any) -> Any:
    path, body, query = case.operation.path, case.body, case.query or {}
    if path.startswith("/api/v1/tasks/{task}/"):
        _one_window(query)
        if path.endswith("/flag/"):
            _one_window(body)
            _one_disagreement(body)
        if path.endswith("/series/"):
            _an_hour_long(query)
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
