"""The django-q tasks, plain functions enqueued by reference: commit the queue, sweep the
writes whose task was lost, forget expired idempotency keys."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from django.conf import settings
from django.utils import timezone
from django_q.brokers import Broker
from django_q.brokers.redis_broker import Redis as RedisBroker
from django_q.tasks import async_task

from ingest.broker import shared_broker
from ingest.idempotency import idempotency_keys_purge
from ingest.locks import commit_in_progress
from ingest.queue import backlog_commit
from runs.maintenance import analyze_if_grown
from runs.models import Write

logger = logging.getLogger(__name__)

# While a commit task's flag is up in Redis, accepts do not enqueue another: the task reads
# the queue only once its flag has expired, so it sees every write committed before then.
# The flag lives MLTRACE_COMMIT_DELAY_MS (at least 1 ms): the writes of that time gather into
# one commit. A process that saw a flag up skips Redis until the flag's expiry, as measured
# from before it asked (docs/ARCHITECTURE.md, "The commit-pending flag").
_flag_seen_until = 0.0  # time.monotonic(): a flag is up in Redis at least until then


def _flag_life_ms() -> int:
    return max(1, settings.MLTRACE_COMMIT_DELAY_MS)


def _commit_pending_flag(broker: Broker) -> tuple[Any, str] | None:
    """The Redis client and key of the 'a commit task is waiting' flag; None off Redis."""
    if not isinstance(broker, RedisBroker):
        return None
    return broker.connection, f"mltrace:{broker.list_key}:commit-pending"


def _await_own_flag(client: Any, key: str, token: int) -> None:
    """Waits until the flag this task's accept raised (value `token`) has expired.

    Until then accepts count on this task and enqueue none: it must read the queue after
    the last of them. A flag with another value was raised after this one expired, for a
    task of its own. Redis unreachable: waits the flag's whole life, which then has passed.
    """
    mine = str(token).encode()
    try:
        while True:
            pipe = client.pipeline(transaction=False)
            pipe.get(key)
            pipe.pttl(key)
            value, ttl = pipe.execute()
            if value != mine or ttl < 0:
                return
            time.sleep((ttl + 1) / 1000)
    except Exception:
        logger.warning("could not read the commit-pending flag; waiting out its life", exc_info=True)
        time.sleep(_flag_life_ms() / 1000)


def commit_task(through_id: int | None = None) -> int:
    """Commits every write queued when it starts, in acceptance order, a batch at a time.

    Returns how many writes this call committed or failed. On Redis it first waits for the
    commit-pending flag its accept raised to expire. Under load most tasks find their writes
    committed by another and return after one query.
    """
    flag = _commit_pending_flag(shared_broker())
    if flag is not None and through_id is not None:
        _await_own_flag(*flag, through_id)
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


def enqueue_commit(through_id: int) -> None:
    """Enqueues the commit of writes through this id, unless a waiting task will commit them.

    Called once the writes are committed. A flag up now expires after that commit, and its
    task reads the queue after it expires: no task is needed. A failed enqueue is logged and
    left to the sweep: the writes are recorded already.
    """
    global _flag_seen_until
    try:
        flag = _commit_pending_flag(shared_broker())
        if flag is not None:
            if time.monotonic() < _flag_seen_until:
                return
            client, key = flag
            asked = time.monotonic()
            pipe = client.pipeline(transaction=False)
            pipe.set(key, through_id, nx=True, px=_flag_life_ms())
            pipe.pttl(key)
            raised, ttl = pipe.execute()
            # The flag expires at least ttl ms after `asked`; 1 ms off for PTTL's rounding.
            if ttl > 1:
                _flag_seen_until = asked + (ttl - 1) / 1000
            if not raised:
                return
        async_task(commit_task, through_id, broker=shared_broker(), task_name=f"commit-{through_id}")
    except Exception:
        _flag_seen_until = 0.0
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
