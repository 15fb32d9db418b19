"""The rules of the API that OpenAPI cannot state, for schemathesis's generated requests.

tests/test_serving.py runs schemathesis with them against gunicorn as shipped. By hand:

    SCHEMATHESIS_HOOKS=tests.schemathesis_hooks .venv/bin/schemathesis run \
        http://127.0.0.1:8000/api/schema/ -H "Authorization: Token $TOKEN" --checks all \
        --seed 1 --max-examples 10 --generation-allow-x00 false --continue-on-failure

NUL is not generated: every string refuses it with a 400 (docs/API.md).

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


@schemathesis.hook
def map_case(ctx: Any, case: Any) -> Any:
    path, body, query = case.operation.path, case.body, case.query or {}
    if path == "/api/v1/runs/":
        _run_in_order(body)
    elif path == "/api/v1/runs/batch/" and isinstance(body, dict):
        for run in body.get("runs") or []:
            _run_in_order(run)
    if path in ("/api/v1/runs/", "/api/v1/runs/batch/") and str(query.get("sync", "")).lower() in (
        "true",
        "1",
    ):
        # ?sync=true commits at once: an explicit dependency must name a component that has
        # a run already, which generated names do not.
        for run in (body.get("runs") or []) if path.endswith("batch/") and isinstance(body, dict) else [body]:
            if isinstance(run, dict):
                run.pop("dependencies", None)
    return case
