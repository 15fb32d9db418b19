"""Edits outside the write log that take their place in acceptance order: a component's
description and owner replaced (PATCH, the admin's component page).

They change what component writes change, so they join the line as the ?sync=true door
does: under the commit lock, with the queue drained (docs/ARCHITECTURE.md, "Same result as
sync", 5).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from components.models import Component
from components.services import component_update
from ingest.locks import commit_lock
from ingest.queue import backlog_drain, queued_commit_under_lock
from runs.models import Edit


def component_update_in_order(
    *, name: str, description: str | None = None, owner: str | None = None, user: Any = None
) -> Component:
    """Replaces a component's description and/or owner after every write accepted before it.

    A PATCH (or an admin edit) is not in the write log, so it takes its place in acceptance
    order the way the synchronous door does: under the commit lock, with the queue drained.
    A worker's batch can then neither write back the old values over it nor commit, after
    it, a component write accepted before it. Raises NotFound.
    """
    backlog_drain()
    with transaction.atomic():
        commit_lock(timeout_ms=settings.MLTRACE_SYNC_LOCK_TIMEOUT_MS)
        queued_commit_under_lock()
        component = component_update(name=name, description=description, owner=owner)
        changed = {
            key: value for key, value in (("description", description), ("owner", owner)) if value is not None
        }
        Edit.objects.create(
            at=timezone.now(), user=user, action=Edit.Action.COMPONENT, target=name, detail=changed
        )
        return component
