"""Committing the queue: the backlog a batch per transaction, each write marked committed (or
failed) in the transaction that applies it.

Every commit runs under the commit lock, oldest queued write first: each sees exactly the
rows every earlier accepted write produced, whatever the number of workers and whichever
task a worker happens to run. The ?sync=true door (ingest/sync.py) and the edits in order
(ingest/edits.py) join the same line through `backlog_drain` and `queued_commit_under_lock`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet, TextField, Value
from django.db.models.functions import Cast, Coalesce, NullIf
from django.utils import timezone

from common.db import StoredSize
from common.jsontext import json_decode
from common.lookups import one_of
from ingest.batch import AcceptedWrite, batch_apply
from ingest.locks import DATABASE_UNAVAILABLE, commit_lock
from runs.models import (
    Write,
)

logger = logging.getLogger(__name__)


def queued_commit_under_lock() -> None:
    """Under the commit lock: commits what was accepted since the drain, one write at a time."""
    _writes_apply_and_mark(_queued_writes(Write.objects.queued()), isolate=True)


def backlog_drain() -> None:
    """Commits the backlog outside the caller's locked transaction, which then stays short."""
    backlog = Write.objects.last_queued_id()
    if backlog is not None:
        backlog_commit(through_id=backlog)


def backlog_commit(*, through_id: int, between_batches: Callable[[], object] | None = None) -> int:
    """Commits queued writes, oldest first, a batch per transaction, until none <= through_id.

    between_batches, if given, is called after each batch, outside its transaction (the
    workers' tasks refresh the planner's statistics there: a backlog is often what makes the
    tables grow). Returns how many writes were committed or marked failed. Database outages
    propagate and leave the writes queued for the next task or the sweep.
    """
    done = 0
    queued = Write.objects.queued()
    while queued.filter(id__lte=through_id).exists():
        limit = settings.MLTRACE_COMMIT_BATCH
        try:
            done += _next_batch_transaction(limit=limit, isolate=False)
        except DATABASE_UNAVAILABLE:
            raise
        except Exception:
            logger.warning("a write in this batch failed; committing it one write at a time")
            done += _next_batch_transaction(limit=limit, isolate=True)
        if between_batches is not None:
            between_batches()
    return done


@dataclass
class QueuedWrite:
    """What the commit needs of a queued write; rows, not model instances (a batch is large).

    The payload is read as text and decoded when the commit first asks for it: a write that
    cannot be decoded (one nested deeper than this process can recurse, accepted before
    MLTRACE_MAX_JSON_DEPTH was enforced) then fails inside its own savepoint, and is marked
    failed, instead of failing the query that reads its neighbours too.
    """

    id: int
    kind: str
    payload_text: str | None
    accepted_at: dt.datetime

    @cached_property
    def payload(self) -> Any:
        return None if self.payload_text is None else json_decode(self.payload_text)


def _queued_writes(queued: QuerySet[Write]) -> list[QueuedWrite]:
    """The writes of `queued`, oldest first, as QueuedWrite."""
    rows = queued.order_by("id").values_list("id", "kind", Cast("payload", TextField()), "accepted_at")
    return [QueuedWrite(*row) for row in rows]


def _next_batch_end(queued: QuerySet[Write], *, limit: int) -> int | None:
    """The id of the last write of the next batch: at most `limit` writes and, but for a first
    write larger than that, MLTRACE_COMMIT_BATCH_BYTES of payload JSON (as accepted; for
    writes accepted before that was recorded, as stored)."""
    end, total = None, 0
    json_size = Coalesce(NullIf("payload_bytes", Value(0)), StoredSize("payload"))
    for write_id, size in queued.order_by("id").values_list("id", json_size)[:limit]:
        total += size or 0
        if end is not None and total > settings.MLTRACE_COMMIT_BATCH_BYTES:
            break
        end = write_id
    return end


def _next_batch_transaction(*, limit: int, isolate: bool) -> int:
    with transaction.atomic():
        commit_lock(timeout_ms=settings.MLTRACE_SYNC_LOCK_TIMEOUT_MS, flush_wal=False)
        queued = Write.objects.queued()
        end = _next_batch_end(queued, limit=limit)
        if end is None:
            return 0
        writes = _queued_writes(queued.filter(id__lte=end))
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
                error = f"{type(exc).__name__}: {exc}"
                logger.error("write %s (%s) failed: %s", write.id, write.kind, error)
                Write.objects.filter(id=write.id).update(status=Write.Status.FAILED, error=error[:10_000])
                continue
            applied.append(write)
        committed = applied
    else:
        batch_apply(writes, refuse_unresolved=False)
        committed = writes
    if committed:
        Write.objects.filter(**one_of("id", [w.id for w in committed])).update(
            status=Write.Status.COMMITTED, payload=None, error="", committed_at=timezone.now()
        )
        # One line a batch, naming every write in it: a line per write cost a tenth of a
        # 1,000-write batch.
        elapsed = (time.perf_counter() - started) * 1000
        by_kind: dict[str, list[int]] = {}
        for write in committed:
            by_kind.setdefault(write.kind, []).append(write.id)
        named = "; ".join(f"{kind} writes {id_ranges(ids)}" for kind, ids in by_kind.items())
        logger.info("committed %s writes in %.1f ms: %s", len(committed), elapsed, named)


def id_ranges(ids: list[int]) -> str:
    """Ascending ids as ranges: [1, 2, 3, 5] -> "1-3, 5"."""
    ranges: list[list[int]] = []
    for write_id in ids:
        if ranges and write_id == ranges[-1][1] + 1:
            ranges[-1][1] = write_id
        else:
            ranges.append([write_id, write_id])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)
