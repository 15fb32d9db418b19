"""The bodies (API shapes) of committed runs and OpenLineage runs, built from rows: cheap for
traces of thousands of runs."""

from __future__ import annotations

import json
from typing import Any

from common.timestamps import iso_utc

TOO_DEEP_TO_SHOW = "(nested too deeply to show)"


def _decoded(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except RecursionError:
        return TOO_DEEP_TO_SHOW


def run_body(
    row: tuple, *, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]], dependencies: list[int]
) -> dict[str, Any]:
    """A committed run's body, from a row of selectors.RUN_FIELDS and its pointers' bodies."""
    (
        run_id,
        component,
        start,
        end,
        stale,
        unresolved,
        notes,
        git_hash,
        git_tags,
        code,
        tests_text,
        created,
        *lineage,
    ) = row
    return {
        "id": run_id,
        "status": "committed",  # a run exists once its write is committed
        "error": None,
        "component": component,
        "start_timestamp": iso_utc(start),
        "end_timestamp": iso_utc(end),
        "inputs": inputs,
        "outputs": outputs,
        "dependencies": dependencies,
        "stale": stale,
        "unresolved_dependencies": unresolved,
        "notes": notes,
        "git_hash": git_hash,
        "git_tags": git_tags,
        "code_snapshot": code,
        "test_results": _decoded(tests_text),
        "created_at": iso_utc(created),
        "openlineage": openlineage_body(*lineage),
    }


def openlineage_body(
    run_uuid: str | None,
    state: str | None,
    namespace: str | None,
    name: str | None,
    producer: str | None,
    parent_uuid: str | None,
    parent_job: str | None,
    parent_run: int | None,
) -> dict[str, Any] | None:
    """A committed run's `openlineage` field: the OpenLineage run it came from, or None for a
    run logged natively.

    parent: the run that contains it (an Airflow DAG run holding a task run): containment,
    not a data dependency; `run` is its mltrace run once it has ended, else None.
    """
    if run_uuid is None:
        return None
    return {
        "run_id": run_uuid,
        "state": state,
        "job": {"namespace": namespace, "name": name},
        "producer": producer,
        "parent": {"run_id": parent_uuid, "job": parent_job, "run": parent_run} if parent_uuid else None,
    }


def openlineage_run_body(run: Any, *, parent_run: int | None = None) -> dict[str, Any]:
    """An OpenLineage run's body (from an OpenLineageRun), open or ended."""
    return {
        "run_id": run.run_uuid,
        "state": run.state,
        "open": run.end_timestamp is None,
        "component": run.job,
        "job": {"namespace": run.namespace, "name": run.name},
        "run": run.run_id,
        "start_timestamp": iso_utc(run.start_timestamp),
        "end_timestamp": iso_utc(run.end_timestamp),
        "producer": run.producer,
        "parent": {"run_id": run.parent_run_uuid, "job": run.parent_job, "run": parent_run}
        if run.parent_run_uuid
        else None,
        "inputs": run.inputs,
        "outputs": run.outputs,
        "git_hash": run.git_hash,
        "error_message": run.error_message,
        "upstream_run_ids": run.upstream_run_uuids,
        "events": run.events,
        "events_after_end": run.events_after_end,
        "first_event_id": run.first_event_id,
        "last_event_id": run.last_event_id,
    }
