"""The django-q tasks, plain functions enqueued by reference: commit the queue, sweep the
writes whose task was lost, forget expired idempotency keys. A task loads by id and calls a
service; who enqueues them: ingest/enqueue.py (commits), ingest/brokers.py (sweeps, purges)."""

from __future__ import annotations

import logging

from ingest.fanout import helpers_enqueue
from ingest.flag import flag_await
from ingest.idempotency import idempotency_keys_purge
from ingest.queue import backlog_commit
from runs.maintenance import analyze_if_grown
from runs.models import Write

logger = logging.getLogger(__name__)


def commit_task(through_id: int | None = None, helper: bool = False) -> int:
    """Commits every write queued when it starts, in acceptance order, a batch at a time.

    Returns how many writes this call committed or failed. On Redis it first waits for the
    commit-pending flag its accept raised to expire. With more than a batch to materialize
    it enqueues helpers for the other workers (ingest/fanout.py); a helper enqueues none.
    Under load most tasks find their writes committed by another and return after a few
    queries.
    """
    if through_id is not None and not helper:
        flag_await(through_id)
    last = Write.objects.last_queued_id()
    if last is None:
        return 0
    target = max(last, through_id or 0)
    if not helper:
        helpers_enqueue(target)
    done = backlog_commit(through_id=target, between_batches=analyze_if_grown)
    analyze_if_grown()
    return done


def sweep_task() -> int:
    """Commits every queued write (their tasks were lost) and forgets expired idempotency keys."""
    last = Write.objects.last_queued_id()
    if last is not None:
        helpers_enqueue(last)
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
