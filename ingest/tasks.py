"""The django-q tasks, plain functions enqueued by reference: commit the queue, sweep the
writes whose task was lost, forget expired idempotency keys. A task loads by id and calls a
service; who enqueues them: ingest/enqueue.py (commits), ingest/brokers.py (sweeps, purges)."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone
from django_q.brokers import Broker
from django_q.tasks import async_task

from ingest.flag import flag_await
from ingest.idempotency import idempotency_keys_purge
from ingest.locks import commit_in_progress
from ingest.queue import backlog_commit
from runs.maintenance import analyze_if_grown
from runs.models import Write

logger = logging.getLogger(__name__)


def commit_task(through_id: int | None = None) -> int:
    """Commits every write queued when it starts, in acceptance order, a batch at a time.

    Returns how many writes this call committed or failed. On Redis it first waits for the
    commit-pending flag its accept raised to expire. Under load most tasks find their writes
    committed by another and return after one query.
    """
    if through_id is not None:
        flag_await(through_id)
    last = Write.objects.last_queued_id()
    if last is None:
        return 0
    done = backlog_commit(through_id=max(last, through_id or 0), between_batches=analyze_if_grown)
    analyze_if_grown()
    return done


def sweep_task() -> int:
    """Commits every queued write (their tasks were lost) and forgets expired idempotency keys."""
    last = Write.objects.last_queued_id()
    done = backlog_commit(through_id=last, between_batches=analyze_if_grown) if last is not None else 0
    idempotency_keys_purge()
    if done:
        logger.warning("sweep committed %s writes whose tasks were lost", done)
    return done


def purge_task() -> int:
    """Forgets expired idempotency keys; enqueued by the pusher every IDEMPOTENCY_PURGE_SECONDS."""
    deleted = idempotency_keys_purge()
    if deleted:
        logger.info("forgot %s expired idempotency keys", deleted)
    return deleted


def enqueue_sweep_if_overdue(*, broker: Broker, previous_oldest: int | None = None) -> int | None:
    """Enqueues a sweep when a write has been queued longer than MLTRACE_SWEEP_AFTER_SECONDS
    and commits are not moving; returns the id of the oldest queued write (None: none is).

    previous_oldest is what the last call returned: when the oldest queued write has changed
    since, workers are committing (a long backlog, not a lost task), and a sweep would only
    wait for the commit lock. Without it (a cluster that just started) an old write is swept.
    Neither is a sweep enqueued while a transaction holds the commit lock: one long commit
    (a batch of large writes) leaves the oldest write where it is until it ends, and sweeps
    enqueued meanwhile would only time out waiting for it.
    """
    oldest = Write.objects.queued().order_by("id").values_list("id", "accepted_at").first()
    if oldest is None:
        return None
    oldest_id, accepted_at = oldest
    overdue = timezone.now() - accepted_at >= dt.timedelta(seconds=settings.MLTRACE_SWEEP_AFTER_SECONDS)
    moving = previous_oldest is not None and previous_oldest != oldest_id
    if overdue and not moving and not commit_in_progress():
        async_task(sweep_task, broker=broker, task_name="sweep")
    return oldest_id
