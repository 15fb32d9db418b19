"""Failed writes put back in the queue (manage.py retry_failed, the admin's action)."""

from __future__ import annotations

import logging

from django.db import transaction

from ingest.enqueue import enqueue_commit
from runs.models import (
    Write,
)

logger = logging.getLogger(__name__)


def writes_retry_failed(*, ids: list[int] | None = None) -> list[int]:
    """Puts failed writes back in the queue under their own ids and enqueues their commit.

    A retried write is committed late: it sees exactly the writes accepted before it, but runs
    accepted after it were committed without it. Returns the ids requeued.
    """
    failed = Write.objects.failed()
    if ids is not None:
        failed = failed.filter(id__in=ids)
    with transaction.atomic():
        requeued = list(failed.select_for_update().order_by("id").values_list("id", flat=True))
        Write.objects.filter(id__in=requeued).update(status=Write.Status.QUEUED)
        if requeued:
            last = requeued[-1]
            transaction.on_commit(lambda: enqueue_commit(last))
    return requeued
