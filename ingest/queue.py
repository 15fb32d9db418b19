"""Committing the queue: materialize run writes in parallel, resolve every write in order.

A worker's task alternates two steps until the writes it was enqueued for are committed:
- materialize (ingest/materialize.py): claim a range of queued run writes nobody holds and
  write what does not depend on earlier writes; several workers do so at once;
- resolve: under the commit lock, one transaction at a time, apply the oldest queued writes
  in acceptance order, a batch per transaction (ingest/batch.py): the runs of materialized
  writes with their dependencies and staleness, the other writes whole. Each write is
  marked committed (or failed) in the transaction that applies it.

While others materialize, a worker resolves only if the commit lock is free and only the
materialized prefix of the queue; before it returns it resolves everything it was enqueued
for, waiting for the lock and for writes another worker is materializing. The ?sync=true
door (ingest/sync.py) and the edits in order (ingest/edits.py) join the same line through
`backlog_drain` and `queued_commit_under_lock`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from common.lookups import id_ranges, one_of
from ingest.batch import AcceptedWrite, QueuedWrite, batch_apply, queued_writes, write_failed
from ingest.locks import DATABASE_UNAVAILABLE, commit_lock, commit_lock_try
from ingest.materialize import materialize_next, materialized_discard
from runs.models import (
    Write,
)

logger = logging.getLogger(__name__)


def queued_commit_under_lock() -> None:
    """Under the commit lock: commits what was accepted since the drain, one write at a time."""
    _lock_unmaterialized(Write.objects.queued())
    _writes_apply_and_mark(queued_writes(Write.objects.queued()), isolate=True)


def backlog_drain() -> None:
    """Commits the backlog outside the caller's locked transaction, which then stays short."""
    backlog = Write.objects.last_queued_id()
    if backlog is not None:
        backlog_commit(through_id=backlog)


def backlog_commit(*, through_id: int, between_batches: Callable[[], object] | None = None) -> int:
    """Commits queued writes up to through_id, materializing ranges of them while another
    worker resolves, and resolving in acceptance order, until none <= through_id is queued.

    between_batches, if given, is called after each resolved batch, outside its transaction
    (the workers' tasks refresh the planner's statistics there: a backlog is often what makes
    the tables grow). Returns how many writes were resolved: committed or marked failed.
    Database outages propagate and leave the writes queued for the next task or the sweep.
    """
    done = 0
    while materialize_next(through_id=through_id):
        done += _resolve(through_id, wait=False, between_batches=between_batches)
    return done + _resolve(through_id, wait=True, between_batches=between_batches)


def _resolve(through_id: int, *, wait: bool, between_batches: Callable[[], object] | None) -> int:
    """Resolves batches of the oldest queued writes up to through_id; wait: until none is
    left, waiting for the commit lock and for writes being materialized; else while the lock
    is free and the oldest queued writes need no materializing."""
    done = 0
    while True:
        try:
            resolved = _next_batch_transaction(through_id, wait=wait, isolate=False)
        except DATABASE_UNAVAILABLE:
            raise
        except Exception:
            logger.warning("a write in this batch failed; committing it one write at a time")
            resolved = _next_batch_transaction(through_id, wait=wait, isolate=True)
        if not resolved:
            return done
        done += resolved
        if between_batches is not None:
            between_batches()


def _within_bytes(writes: list[QueuedWrite]) -> list[QueuedWrite]:
    """The first of these writes that fit in MLTRACE_COMMIT_BATCH_BYTES of JSON (the first
    always: a write larger than that is committed alone)."""
    total = 0
    for n, write in enumerate(writes):
        total += write.size
        if n and total > settings.MLTRACE_COMMIT_BATCH_BYTES:
            return writes[:n]
    return writes


def _lock_unmaterialized(queued: QuerySet[Write]) -> None:
    """Locks the run writes of `queued` that are not materialized, waiting for any
    materializer's claim on them to end; the caller then applies them whole."""
    unmaterialized = queued.filter(kind=Write.Kind.RUN, materialized__isnull=True)
    list(unmaterialized.order_by("id").select_for_update().values_list("id"))


def _next_batch(queued: QuerySet[Write], *, wait: bool) -> list[QueuedWrite]:
    """The next batch of `queued`, oldest first, within the batch limits. Without wait, only
    the writes before its first run write that is not materialized: none of those is claimed
    by a materializer, which takes only such writes. With wait, all of them, once the
    unmaterialized ones are locked, as they are then."""
    writes = _within_bytes(
        queued_writes(queued, limit=settings.MLTRACE_COMMIT_BATCH, unmaterialized_payloads=False)
    )
    if not wait:
        for n, write in enumerate(writes):
            if write.kind == Write.Kind.RUN and not write.materialized:
                return writes[:n]
        return writes
    if not any(write.kind == Write.Kind.RUN and not write.materialized for write in writes):
        return writes
    batch = queued.filter(id__lte=writes[-1].id)
    _lock_unmaterialized(batch)
    return queued_writes(batch)


def _next_batch_transaction(through_id: int | None, *, wait: bool, isolate: bool) -> int:
    with transaction.atomic():
        if wait:
            commit_lock(timeout_ms=settings.MLTRACE_SYNC_LOCK_TIMEOUT_MS, flush_wal=False)
        elif not commit_lock_try(flush_wal=False):
            return 0
        queued = Write.objects.queued()
        if through_id is not None:
            queued = queued.filter(id__lte=through_id)
        writes = _next_batch(queued, wait=wait)
        _writes_apply_and_mark(writes, isolate=isolate)
    return len(writes)


def _writes_apply_and_mark(writes: Sequence[AcceptedWrite], *, isolate: bool) -> None:
    """Commits queued writes in order inside the caller's transaction, which holds the commit lock.

    Without isolate the writes are committed as one batch and an error propagates (the caller
    then retries isolated); with isolate each write runs alone in a savepoint, and one that
    raises is marked failed with its error.
    """
    if not writes:
        return
    started = time.perf_counter()
    committed: Sequence[AcceptedWrite]
    if isolate:
        applied: list[AcceptedWrite] = []
        for write in writes:
            try:
                with transaction.atomic():
                    batch_apply([write], refuse_unresolved=False)
            except DATABASE_UNAVAILABLE:
                raise
            except Exception as exc:
                write_failed(write, exc)
                if write.materialized:
                    materialized_discard([write.id])
                continue
            applied.append(write)
        committed = applied
    else:
        batch_apply(writes, refuse_unresolved=False)
        committed = writes
    if committed:
        Write.objects.filter(**one_of("id", [w.id for w in committed])).update(
            status=Write.Status.COMMITTED,
            payload=None,
            materialized=None,
            error="",
            committed_at=timezone.now(),
        )
        # One line a batch, naming every write in it: a line per write cost a tenth of a
        # 1,000-write batch.
        elapsed = (time.perf_counter() - started) * 1000
        by_kind: dict[str, list[int]] = {}
        for write in committed:
            by_kind.setdefault(write.kind, []).append(write.id)
        named = "; ".join(f"{kind} writes {id_ranges(ids)}" for kind, ids in by_kind.items())
        logger.info("committed %s writes in %.1f ms: %s", len(committed), elapsed, named)
