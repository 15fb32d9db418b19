"""django-q entry points: plain functions that call the services."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone
from django_q.brokers import Broker, get_broker
from django_q.tasks import async_task

from runs.models import IdempotencyKey, Write
from runs.services import writes_commit_pending

logger = logging.getLogger(__name__)

_broker: Broker | None = None


def shared_broker() -> Broker:
    """One broker (one Redis connection pool) per process, not one per request."""
    global _broker
    if _broker is None:
        _broker = get_broker()
    return _broker


def commit_writes(through_id: int) -> int:
    """Commits queued writes in acceptance order until none at or below through_id is left.

    Returns how many writes this call committed or failed. A no-op when another worker
    already did the work, which is the common case under load.
    """
    return writes_commit_pending(through_id=through_id)


def sweep() -> int:
    """Commits every queued write (their tasks were lost) and forgets expired idempotency keys."""
    last = (
        Write.objects.filter(status=Write.Status.QUEUED).order_by("-id").values_list("id", flat=True).first()
    )
    done = writes_commit_pending(through_id=last) if last is not None else 0
    expired = timezone.now() - dt.timedelta(hours=settings.MLTRACE_IDEMPOTENCY_TTL_HOURS)
    IdempotencyKey.objects.filter(created_at__lt=expired).delete()
    if done:
        logger.warning("sweep committed %s writes whose tasks were lost", done)
    return done


def enqueue_commit(through_id: int) -> None:
    """Enqueues the commit of writes through this id; a lost enqueue is left to the sweep."""
    try:
        async_task(
            "runs.tasks.commit_writes", through_id, broker=shared_broker(), task_name=f"commit-{through_id}"
        )
    except Exception:
        logger.exception("could not enqueue the commit of write %s; the sweep will commit it", through_id)


def enqueue_sweep_if_overdue(*, broker: Broker) -> bool:
    """Enqueues a sweep when a write has been queued longer than MLTRACE_SWEEP_AFTER_SECONDS."""
    oldest = (
        Write.objects.filter(status=Write.Status.QUEUED)
        .order_by("id")
        .values_list("accepted_at", flat=True)
        .first()
    )
    if oldest is None:
        return False
    if timezone.now() - oldest < dt.timedelta(seconds=settings.MLTRACE_SWEEP_AFTER_SECONDS):
        return False
    async_task("runs.tasks.sweep", broker=broker, task_name="sweep")
    return True
