"""django-q brokers that also sweep the accepted-write log for writes whose task was lost.

django-q's Redis broker keeps no delivery receipts: a task in flight is gone when a worker is
killed, when Redis is flushed or restarts empty. The accepted write itself is safe in the
database, so what is needed is a periodic look for writes queued too long. django-q's own
scheduler runs at most once a minute; the pusher process, though, calls `dequeue()` at least
every second, so the sweep rides on that loop and runs every MLTRACE_SWEEP_SECONDS.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django import db
from django.conf import settings
from django_q.brokers import Broker
from django_q.brokers.orm import ORM
from django_q.brokers.redis_broker import Redis
from django_q.tasks import async_task

from ingest.tasks import enqueue_sweep_if_overdue, purge_task

logger = logging.getLogger(__name__)


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
