"""django-q brokers that also sweep the accepted-write log for writes whose task was lost.

django-q's Redis broker keeps no delivery receipts: a task in flight is gone when a worker is
killed, when Redis is flushed or restarts empty. The accepted write itself is safe in the
database, so what is needed is a periodic look for writes queued too long. django-q's own
scheduler runs at most once a minute; the pusher process, though, calls `dequeue()` at least
every second, so the sweep rides on that loop and runs every MLTRACE_SWEEP_SECONDS;
`enqueue_sweep_if_overdue` is its trigger.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from django import db
from django.conf import settings
from django.utils import timezone
from django_q.brokers import Broker
from django_q.brokers.orm import ORM
from django_q.brokers.redis_broker import Redis
from django_q.tasks import async_task

from ingest.locks import commit_in_progress
from ingest.tasks import purge_task, sweep_task
from runs.models import Write

logger = logging.getLogger(__name__)


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


# Expired idempotency keys are forgotten this often, whether or not a sweep was needed.
IDEMPOTENCY_PURGE_SECONDS = 600


class SweepMixin(Broker):
    _last_sweep = float("-inf")
    _oldest_queued: int | None = None
    _last_purge: float | None = None

    def dequeue(self) -> Any:
        now = time.monotonic()
        if self._last_purge is None:
            self._last_purge = now  # the first purge one period after the cluster starts
        if now - self._last_purge >= IDEMPOTENCY_PURGE_SECONDS:
            self._last_purge = now
            try:
                async_task(purge_task, broker=self, task_name="purge-idempotency-keys")
            except Exception:  # Redis is down: try again next time
                logger.exception("could not enqueue the purge of expired idempotency keys")
        if now - self._last_sweep >= settings.MLTRACE_SWEEP_SECONDS:
            self._last_sweep = now

            try:
                # Outside a request nothing drops a connection that broke (the database went
                # away); do it here, as django-q does before each task, so this reconnects.
                db.close_old_connections()
                self._oldest_queued = enqueue_sweep_if_overdue(
                    broker=self, previous_oldest=self._oldest_queued
                )
            except Exception:  # the database may be down: log, keep pulling tasks
                logger.exception("sweep of the accepted-write log failed; trying again later")
        return super().dequeue()


class SweepingRedis(SweepMixin, Redis):
    pass


class SweepingORM(SweepMixin, ORM):
    pass
