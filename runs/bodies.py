"""The API shape of a committed run, built from a row: cheap for traces of thousands of runs."""

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


def run_to_dict(
    row: tuple, *, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]], dependencies: list[int]
) -> dict[str, Any]:
    """A committed run, from a row of selectors.RUN_FIELDS and its pointers as dicts."""
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
    }
