"""Request bodies and shortcuts for the API tests."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from rest_framework.test import APIClient

from components.models import Component
from runs.models import IOPointer, Run, Write

BASE_TIME = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
_clock = itertools.count()
SYNC = "/api/v1/runs/?sync=true"  # a run, committed before the answer


def moment(seconds: float = 0) -> str:
    return (BASE_TIME + dt.timedelta(seconds=seconds)).isoformat()


def next_moment() -> dt.datetime:
    """A strictly later time on every call, like mltrace's set_start_timestamp()."""
    return BASE_TIME + dt.timedelta(seconds=next(_clock))


def run_request_body(
    component: str, *, inputs: list[Any] = (), outputs: list[Any] = (), **fields: Any
) -> dict[str, Any]:
    """The JSON body of POST /api/v1/runs/ for one run; start defaults to next_moment(), end to start."""
    start = fields.pop("start", None) or next_moment()
    end = fields.pop("end", None) or start
    body = {
        "component": component,
        "start_timestamp": start.isoformat() if isinstance(start, dt.datetime) else start,
        "end_timestamp": end.isoformat() if isinstance(end, dt.datetime) else end,
        "inputs": list(inputs),
        "outputs": list(outputs),
    }
    body.update(fields)
    return body


def log_run(api: APIClient, component: str, **kwargs: Any) -> dict[str, Any]:
    """Logs a run synchronously and returns its body; fails the test on anything but 201."""
    response = api.post("/api/v1/runs/?sync=true", run_request_body(component, **kwargs), format="json")
    assert response.status_code == 201, response.content
    return response.json()


def create_component(api: APIClient, name: str, **fields: Any) -> dict[str, Any]:
    response = api.post("/api/v1/components/?sync=true", {"name": name, **fields}, format="json")
    assert response.status_code in (200, 201), response.content
    return response.json()


def nothing_written() -> bool:
    """No run, write, pointer or component: what a refused write must leave."""
    return not (
        Run.objects.exists()
        or Write.objects.exists()
        or IOPointer.objects.exists()
        or Component.objects.exists()
    )


def create_predictions(
    task_name: str,
    rows: list[tuple[float | None, float | None]],
    *,
    start: dt.datetime = BASE_TIME,
    step: dt.timedelta = dt.timedelta(seconds=1),
    prefix: str = "",
) -> list[Any]:
    """Monitoring rows written directly, as a commit leaves them: (output, feedback) each,
    None where that side is missing; the i-th output and feedback at start + i * step, the
    identifiers prefix + "0", "1", ...; the task's counts set to match."""
    from monitoring.models import Prediction, Task

    task, _ = Task.objects.get_or_create(name=task_name, defaults={"created_at": start})
    made = Prediction.objects.bulk_create(
        Prediction(
            task=task,
            identifier=f"{prefix}{index}",
            output=output,
            output_at=start + index * step if output is not None else None,
            feedback=feedback,
            feedback_at=start + index * step if feedback is not None else None,
        )
        for index, (output, feedback) in enumerate(rows)
    )
    everything = Prediction.objects.filter(task=task)
    task.output_count = everything.filter(output__isnull=False).count()
    task.feedback_count = everything.filter(feedback__isnull=False).count()
    task.pair_count = everything.filter(output__isnull=False, feedback__isnull=False).count()
    task.last_output_at = max((p.output_at for p in everything if p.output_at), default=None)
    task.save()
    return made
