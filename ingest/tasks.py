"""The django-q tasks, plain functions enqueued by reference: commit the queue, sweep the
writes whose task was lost, forget expired idempotency keys."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from django.conf import settings
from django.utils import timezone
from django_q.brokers import Broker, get_broker
from django_q.brokers.redis_broker import Redis as RedisBroker
from django_q.tasks import async_task

from ingest.idempotency import idempotency_keys_purge
from ingest.locks import commit_in_progress
from ingest.queue import backlog_commit
from runs.maintenance import analyze_if_grown
from runs.models import Write

logger = logging.getLogger(__name__)

_broker: Broker | None = None


def shared_broker() -> Broker:
    """One broker (one Redis connection pool) per process, not one per request."""
    global _broker
    if _broker is None:
        _broker = get_broker()
    return _broker


# While a commit task waits in Redis, accepts do not enqueue another: the waiting task will
# see their writes. The flag expires, so a task lost with its flag delays commits briefly.
COMMIT_PENDING_SECONDS = 5


def _commit_pending_flag(broker: Broker) -> tuple[Any, str] | None:
    """The Redis client and key of the 'a commit task is waiting' flag; None off Redis."""
    if not isinstance(broker, RedisBroker):
        return None
    return broker.connection, f"mltrace:{broker.list_key}:commit-pending"


def _gather() -> None:
    """Lets the oldest queued write wait MLTRACE_COMMIT_DELAY_MS before committing.

    A steady stream of single writes would otherwise be committed one transaction per write,
    each paying a batch's fixed cost. Meanwhile the commit-pending flag stays up, so the
    writes accepted now do not enqueue tasks of their own: this task takes them all.
    """
    delay = dt.timedelta(milliseconds=settings.MLTRACE_COMMIT_DELAY_MS)
    oldest = Write.objects.queued().order_by("id").values_list("accepted_at", flat=True).first()
    if oldest is None or not delay:
        return
    wait = (oldest + delay - timezone.now()).total_seconds()
    if wait > 0:
        time.sleep(min(wait, delay.total_seconds()))


def commit_task(through_id: int | None = None) -> int:
    """Commits every write queued when it starts, in acceptance order, a batch at a time.

    Returns how many writes this call committed or failed. It lowers the commit-pending flag
    first, so a write accepted from then on enqueues a task of its own. Under load most
    tasks find their writes committed by another and return after one query.
    """
    flag = _commit_pending_flag(shared_broker())
    if flag is not None:
        _gather()
        client, key = flag
        try:
            client.delete(key)
        except Exception:  # Redis is down: commit anyway, the flag expires on its own
            logger.warning("could not lower the commit-pending flag", exc_info=True)
    last = Write.objects.last_queued_id()
    if last is None:
        return 0
    done = backlog_commit(through_id=max(last, through_id or 0))
    analyze_if_grown()
    return done


def sweep_task() -> int:
    """Commits every queued write (their tasks were lost) and forgets expired idempotency keys."""
    last = Write.objects.last_queued_id()
    done = backlog_commit(through_id=last) if last is not None else 0
    idempotency_keys_purge()
    if done:
        logger.warning("sweep committed %s writes whose tasks were lost", done)
    return done


def enqueue_commit(through_id: int) -> None:
    """Enqueues the commit of writes through this id, unless a waiting task will commit them.

    A failed enqueue is logged and left to the sweep: the writes are recorded already.
    """
    try:
        flag = _commit_pending_flag(shared_broker())
        if flag is not None:
            client, key = flag
            if not client.set(key, through_id, nx=True, ex=COMMIT_PENDING_SECONDS):
                return
        async_task(commit_task, through_id, broker=shared_broker(), task_name=f"commit-{through_id}")
    except Exception:
        logger.exception("could not enqueue the commit of write %s; the sweep will commit it", through_id)


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
