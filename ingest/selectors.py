"""The accepted-write log as the API shows it: the queue's state, and a run by id whether its
write is committed, queued or failed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from common.errors import NOT_A_RUN, RUN_NOT_FOUND, NotFound
from common.timestamps import iso_utc
from runs.models import Run, Write
from runs.selectors import run_bodies

# What a write that is not a run is, in NOT_A_RUN.
WRITE_KIND_NAMES: dict[str, str] = {
    Write.Kind.COMPONENT: "a component write",
    Write.Kind.OPENLINEAGE: "an OpenLineage event",
    Write.Kind.OUTPUT: "a task's outputs",
    Write.Kind.FEEDBACK: "a task's feedback",
}


def pending_write_body(write: Write) -> dict[str, Any]:
    """The body of a run write that is not committed: queued, or failed with its error."""
    body: dict[str, Any] = {"id": write.id, "status": write.status}
    if write.status == Write.Status.FAILED:
        body["error"] = write.error
    payload = write.payload or {}
    if "component" in payload:
        body["component"] = payload["component"]
    for key in ("start_timestamp", "end_timestamp"):
        if key in payload:
            body[key] = iso_utc(dt.datetime.fromisoformat(payload[key]))
    body["created_at"] = iso_utc(write.accepted_at)
    return body


def run_get(*, run_id: int) -> dict[str, Any]:
    """A run by id: committed, or the queued or failed write that carries it. Raises NotFound."""
    if Run.objects.filter(id=run_id).exists():
        return run_bodies([run_id])[0]
    write = Write.objects.filter(id=run_id).first()
    if write is None:
        raise NotFound(RUN_NOT_FOUND.format(id=run_id))
    if write.kind != Write.Kind.RUN:
        kind = WRITE_KIND_NAMES.get(write.kind, "a component write")
        raise NotFound(NOT_A_RUN.format(id=run_id, kind=kind))
    if write.status == Write.Status.COMMITTED:
        # Committed by a worker between the two reads above: the run exists now.
        return run_bodies([run_id])[0]
    return pending_write_body(write)


def queue_stats() -> dict[str, Any]:
    """Pending and failed accepted writes, and the id and wait of the oldest pending one.

    Writes are committed in id order, so every write below oldest_pending_id is committed or
    failed: a client waits for its own writes by watching it pass its last id.
    """
    queued = Write.objects.queued()
    oldest = queued.order_by("id").values_list("id", "accepted_at").first()
    oldest_id, age = (None, None) if oldest is None else (oldest[0], oldest[1])
    return {
        "pending": queued.count(),
        "failed": Write.objects.failed().count(),
        "oldest_pending_id": oldest_id,
        "oldest_pending_age_seconds": None
        if age is None
        else max(0.0, (timezone.now() - age).total_seconds()),
    }


def run_write_pending(*, run_id: int) -> str | None:
    """ "queued" or "failed" when run_id is a run write not committed yet; else None."""
    status = Write.objects.filter(id=run_id, kind=Write.Kind.RUN).values_list("status", flat=True).first()
    return status if status in (Write.Status.QUEUED, Write.Status.FAILED) else None
