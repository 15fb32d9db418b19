"""Helpers for a backlog: a commit task that finds more than a batch of run writes waiting to
be materialized enqueues more commit tasks, so that the cluster's other workers join it.

Under a stream of accepts a task comes every MLTRACE_COMMIT_DELAY_MS and every worker soon
has one. A backlog (a cluster that was stopped, tasks lost with Redis, a burst of batches
inside one flag's life) may have a single task for many batches, and without helpers one
worker would commit all of it while the others wait. A helper is an ordinary commit task,
marked so that it enqueues no helpers of its own.
"""

from __future__ import annotations

import logging
import math

from django.conf import settings
from django_q.tasks import async_task

from ingest.broker import shared_broker
from runs.models import Write

logger = logging.getLogger(__name__)


def helpers_enqueue(through_id: int) -> int:
    """Enqueues up to MLTRACE_WORKERS - 1 helper tasks, one per further batch of run writes up
    to through_id that waits to be materialized; returns how many. A failed enqueue is
    logged: the task that called this commits the backlog alone."""
    workers = settings.MLTRACE_WORKERS
    if workers < 2:
        return 0
    batch = settings.MLTRACE_COMMIT_BATCH
    waiting = Write.objects.filter(
        status=Write.Status.QUEUED, kind=Write.Kind.RUN, materialized__isnull=True, id__lte=through_id
    ).order_by("id")
    waiting_count = waiting[: batch * workers].count()  # a COUNT over a LIMIT: no ids sent
    helpers = min(workers - 1, math.ceil(waiting_count / batch) - 1)
    for n in range(helpers):
        try:
            async_task(
                "ingest.tasks.commit_task",
                through_id,
                True,
                broker=shared_broker(),
                task_name=f"commit-{through_id}-helper-{n + 1}",
            )
        except Exception:
            logger.exception("could not enqueue a helper for the commit of write %s", through_id)
            return n
    return helpers
