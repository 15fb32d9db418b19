"""Enqueueing the commit of accepted writes: a django-q task, unless the commit-pending flag
says one is waiting already (ingest/flag.py)."""

from __future__ import annotations

import logging

from django_q.tasks import async_task

from ingest.broker import shared_broker
from ingest.flag import flag_forget, flag_raise
from ingest.tasks import commit_task

logger = logging.getLogger(__name__)


def enqueue_commit(through_id: int) -> None:
    """Enqueues the commit of writes through this id, unless a waiting task will commit them.

    Called once the writes are committed. A flag up now expires after that commit, and its
    task reads the queue after it expires: no task is needed. A failed enqueue is logged and
    left to the sweep: the writes are recorded already.
    """
    try:
        if not flag_raise(through_id):
            return
        async_task(commit_task, through_id, broker=shared_broker(), task_name=f"commit-{through_id}")
    except Exception:
        flag_forget()
        logger.exception("could not enqueue the commit of write %s; the sweep will commit it", through_id)
