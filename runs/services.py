"""Every write to runs, pointers and the accepted-write log.

A write is accepted (`writes_accept`: validated payload stored, id taken from the one
sequence, 202) and later committed by a worker (`writes_commit_pending`), or accepted and
committed at once (`writes_commit_now`, ?sync=true). Both commit through
`runs.commit.writes_commit`.

Ordering: ids are taken under the accept lock, so writes become visible in id order, and
commits run one at a time under the commit lock, oldest queued write first. Each commit
therefore sees exactly the rows every earlier accepted write produced, whatever the number of
workers and whichever task a worker happens to run: the database equals synchronous
ingestion in acceptance order. docs/ARCHITECTURE.md has the whole argument.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import BigIntegerField, Func, QuerySet
from django.utils import timezone

from common.errors import (
    IDEMPOTENCY_KEY_REUSED,
    POINTER_NOT_FOUND,
    RUN_NOT_COMMITTED,
    RUN_NOT_FOUND,
    Conflict,
    MltraceError,
    NotFound,
)
from common.lookups import one_of
from components.models import Component
from components.services import component_update
from runs.commit import CommittedRun, writes_commit
from runs.models import (
    IdempotencyKey,
    IOPointer,
    Run,
    Write,
    pointer_name_hash,
)

logger = logging.getLogger(__name__)

# PostgreSQL advisory lock keys: one serializes commits, one serializes id assignment.
COMMIT_LOCK_KEY = 0x6D6C7472  # "mltr"
ACCEPT_LOCK_KEY = 0x6D6C7461  # "mlta"
# Errors that mean the database could not be reached: the write stays queued and is retried.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def advisory_xact_lock(key: int, *, timeout_ms: int | None = None, settings_sql: str = "") -> None:
    """Takes a transaction-level advisory lock, waiting at most timeout_ms (then OperationalError).

    settings_sql: SET LOCAL statements sent in the same round trip. On SQLite every
    transaction begins IMMEDIATE, so writers already run one at a time.
    """
    if not _postgres():
        return
    with connection.cursor() as cursor:
        timeout = "" if timeout_ms is None else f"SET LOCAL lock_timeout = {int(timeout_ms)}; "
        cursor.execute(f"{timeout}{settings_sql}SELECT pg_advisory_xact_lock(%s)", [key])


def commit_lock(*, timeout_ms: int | None = None, flush_wal: bool = True) -> None:
    """Waits until no other transaction is committing writes; held until this one ends.

    flush_wal=False lets the transaction's COMMIT return before its WAL reaches the disk
    (synchronous_commit off), for a worker's commit of queued writes. A database crash may
    then undo the last such commits, but only whole and only the newest: a write and its
    committed status are one transaction, so those writes are queued again and the sweep
    commits them again, to the same rows, since a commit depends only on the writes before
    it. Accepts and ?sync=true commits keep flushing: their answers promise durability.
    """
    extra = "" if flush_wal else "SET LOCAL synchronous_commit = off; "
    advisory_xact_lock(COMMIT_LOCK_KEY, timeout_ms=timeout_ms, settings_sql=extra)


@contextmanager
def accept_lock_released_early() -> Iterator[None]:
    """The accept lock held for a block only, not to the end of the transaction.

    The synchronous door holds the commit lock for its whole transaction; nobody can commit
    the writes accepted after it until it ends, so it may let accepts go on meanwhile.
    """
    if not _postgres():
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"SET LOCAL lock_timeout = {int(settings.MLTRACE_ACCEPT_LOCK_TIMEOUT_MS)}; SELECT pg_advisory_lock(%s)",
            [ACCEPT_LOCK_KEY],
        )
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [ACCEPT_LOCK_KEY])
        except DatabaseError:
            # The block failed and aborted the transaction, where no unlock can run. A
            # session-level lock outlives ROLLBACK and would stop every accept: end the
            # session instead (the block's own error goes on propagating).
            logger.warning("could not release the accept lock; closing the database connection")
            connection.close()


@dataclass(frozen=True)
class Idempotency:
    """An Idempotency-Key sent with a write: who sent it and a digest of the request."""

    user_id: int
    key: str
    fingerprint: str


@dataclass(frozen=True)
class Answer:
    """What a write request is answered; stored with its idempotency key for replays."""

    status_code: int
    body: Any
    replayed: bool = False


def idempotent_replay(idempotency: Idempotency | None) -> Answer | None:
    """The stored first answer to this key, or None. Raises Conflict for another body.

    Call under the accept lock, so a concurrent first use is already committed or not begun.
    """
    if idempotency is None:
        return None
    stored = IdempotencyKey.objects.filter(user_id=idempotency.user_id, key=idempotency.key).first()
    if stored is None:
        return None
    if stored.created_at < idempotency_expiry():
        # Forgotten: the key may be used afresh (the periodic purge may not have run yet).
        stored.delete()
        return None
    if stored.fingerprint != idempotency.fingerprint:
        raise Conflict(IDEMPOTENCY_KEY_REUSED)
    return Answer(stored.status_code, stored.response, replayed=True)


def idempotency_expiry() -> dt.datetime:
    """Keys stored before this moment are forgotten (MLTRACE_IDEMPOTENCY_TTL_HOURS)."""
    return timezone.now() - dt.timedelta(hours=settings.MLTRACE_IDEMPOTENCY_TTL_HOURS)


def idempotency_keys_purge() -> int:
    """Deletes the expired idempotency keys; returns how many."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=idempotency_expiry()).delete()
    return deleted


def idempotent_store(idempotency: Idempotency | None, answer: Answer) -> None:
    if idempotency is not None:
        IdempotencyKey.objects.create(
            user_id=idempotency.user_id,
            key=idempotency.key,
            fingerprint=idempotency.fingerprint,
            status_code=answer.status_code,
            response=answer.body,
            created_at=timezone.now(),
        )


def _retry_on_key_race(attempt: Callable[[], Answer]) -> Answer:
    # A synchronous first use of a key stores it at the end of its transaction, after it let
    # go of the accept lock; a retry racing it fails on the unique key and, tried again, finds
    # the stored answer.
    try:
        return attempt()
    except IntegrityError:
        return attempt()


def writes_accept(
    *,
    kind: str,
    payloads: list[dict[str, Any]],
    answer: Callable[[list[Write]], Answer],
    idempotency: Idempotency | None = None,
) -> Answer:
    """Records validated writes durably as queued and enqueues their commit (the 202 door).

    The ids come from the shared sequence under the accept lock, in list order. The commit is
    enqueued once the transaction is committed; if that enqueue is lost, the sweep commits the
    writes. Raises OperationalError when the database cannot record them (the view's 503).
    """

    if idempotency is None and _postgres() and connection.get_autocommit():
        writes = _accept_in_one_statement(kind, payloads)
        result = answer(writes)
        _enqueue_commit(writes[-1].id)
        return result

    def attempt() -> Answer:
        with transaction.atomic():
            advisory_xact_lock(ACCEPT_LOCK_KEY, timeout_ms=settings.MLTRACE_ACCEPT_LOCK_TIMEOUT_MS)
            replay = idempotent_replay(idempotency)
            if replay is not None:
                return replay
            now = timezone.now()
            writes = Write.objects.bulk_create(
                [Write(kind=kind, payload=payload, accepted_at=now) for payload in payloads]
            )
            result = answer(writes)
            idempotent_store(idempotency, result)
            last_id = writes[-1].id
            transaction.on_commit(lambda: _enqueue_commit(last_id))
        return result

    return _retry_on_key_race(attempt)


def _accept_in_one_statement(kind: str, payloads: list[dict[str, Any]]) -> list[Write]:
    """The accept as one round trip: lock, insert and commit in a single implicit transaction.

    The accept lock is held from before the ids are drawn until the commit, as in
    writes_accept's general path; the ids follow the payloads' order (ORDER BY ordinality).
    The transaction ends with the statement, so a 202 follows a durable commit.
    """
    now = timezone.now()
    table = Write._meta.db_table
    sql = f"""
        SET LOCAL lock_timeout = {int(settings.MLTRACE_ACCEPT_LOCK_TIMEOUT_MS)};
        WITH locked AS (SELECT pg_advisory_xact_lock(%s))
        INSERT INTO {table} (kind, status, payload, error, accepted_at)
        SELECT %s, %s, p.payload::jsonb, '', %s
        FROM locked, unnest(%s::text[]) WITH ORDINALITY AS p (payload, n)
        ORDER BY p.n
        RETURNING id
    """
    encoded = [json.dumps(payload, cls=DjangoJSONEncoder) for payload in payloads]
    with connection.cursor() as cursor:
        cursor.execute(sql, [ACCEPT_LOCK_KEY, kind, Write.Status.QUEUED, now, encoded])
        ids = sorted(row[0] for row in cursor.fetchall())
    return [
        Write(id=write_id, kind=kind, payload=payload, accepted_at=now)
        for write_id, payload in zip(ids, payloads, strict=True)
    ]


def _enqueue_commit(through_id: int) -> None:
    from runs.tasks import enqueue_commit

    enqueue_commit(through_id)


def writes_commit_now(
    *,
    kind: str,
    payloads: list[dict[str, Any]],
    answer: Callable[[list[tuple[Write, Component | CommittedRun, bool]]], Answer],
    idempotency: Idempotency | None = None,
) -> Answer:
    """Accepts writes and commits them before returning (the ?sync=true door).

    Every write accepted earlier is committed first, so the result is what the queue would
    give. All or nothing for this request: a refusal (an explicit dependency with no earlier
    run) raises DependencyUnresolved and leaves none of its writes, ids included.
    """
    _drain_before_commit_lock()

    def attempt() -> Answer:
        refusal: MltraceError | None = None
        with transaction.atomic():
            commit_lock(timeout_ms=settings.MLTRACE_SYNC_LOCK_TIMEOUT_MS)
            with accept_lock_released_early():
                replay = idempotent_replay(idempotency)
                if replay is not None:
                    return replay
                _commit_still_queued()
                savepoint = transaction.savepoint()
                now = timezone.now()
                writes = Write.objects.bulk_create(
                    [
                        Write(kind=kind, accepted_at=now, committed_at=now, status=Write.Status.COMMITTED)
                        for _ in payloads
                    ]
                )
            try:
                for write, payload in zip(writes, payloads, strict=True):
                    write.payload = payload
                results = writes_commit(writes, strict=True)
                committed = [(w, obj, created) for w, (obj, created) in zip(writes, results, strict=True)]
                result = answer(committed)
                idempotent_store(idempotency, result)
            except MltraceError as exc:
                transaction.savepoint_rollback(savepoint)
                refusal = exc
            else:
                transaction.savepoint_commit(savepoint)
        if refusal is not None:
            raise refusal
        return result

    return _retry_on_key_race(attempt)


def component_update_in_order(
    *, name: str, description: str | None = None, owner: str | None = None
) -> Component:
    """Replaces a component's description and/or owner after every write accepted before it.

    A PATCH (or an admin edit) is not in the write log, so it takes its place in acceptance
    order the way the synchronous door does: under the commit lock, with the queue drained.
    A worker's batch can then neither write back the old values over it nor commit, after
    it, a component write accepted before it. Raises NotFound.
    """
    _drain_before_commit_lock()
    with transaction.atomic():
        commit_lock(timeout_ms=settings.MLTRACE_SYNC_LOCK_TIMEOUT_MS)
        _commit_still_queued()
        return component_update(name=name, description=description, owner=owner)


def _commit_still_queued() -> None:
    """Under the commit lock: commits what was accepted since the drain, one write at a time."""
    _commit_writes(list(Write.objects.queued().order_by("id")), isolate=True)


def _drain_before_commit_lock() -> None:
    """Commits the backlog outside the caller's locked transaction, which then stays short."""
    backlog = Write.objects.last_queued_id()
    if backlog is not None:
        writes_commit_pending(through_id=backlog)


def writes_commit_pending(*, through_id: int) -> int:
    """Commits queued writes, oldest first, a batch per transaction, until none <= through_id.

    Returns how many writes were committed or marked failed. Database outages propagate and
    leave the writes queued for the next task or the sweep.
    """
    done = 0
    queued = Write.objects.queued()
    while queued.filter(id__lte=through_id).exists():
        limit = settings.MLTRACE_COMMIT_BATCH
        try:
            done += _commit_queued(limit=limit, isolate=False)
        except DATABASE_UNAVAILABLE:
            raise
        except Exception:
            logger.warning("a write in this batch failed; committing it one write at a time")
            done += _commit_queued(limit=limit, isolate=True)
    return done


@dataclass
class QueuedWrite:
    """What the commit needs of a queued write; rows, not model instances (a batch is large)."""

    id: int
    kind: str
    payload: dict[str, Any]
    accepted_at: dt.datetime


class StoredSize(Func):
    """Bytes a column's value takes on disk (PostgreSQL, without reading a TOASTed value)."""

    function = "pg_column_size"
    output_field = BigIntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return super().as_sql(compiler, connection, function="length", **extra)


def _next_batch_end(queued: QuerySet[Write], *, limit: int) -> int | None:
    """The id of the last write of the next batch: at most `limit` writes and, but for a first
    write larger than that, MLTRACE_COMMIT_BATCH_BYTES of stored payload."""
    end, total = None, 0
    for write_id, size in queued.order_by("id").values_list("id", StoredSize("payload"))[:limit]:
        total += size or 0
        if end is not None and total > settings.MLTRACE_COMMIT_BATCH_BYTES:
            break
        end = write_id
    return end


def _commit_queued(*, limit: int, isolate: bool) -> int:
    with transaction.atomic():
        commit_lock(timeout_ms=settings.MLTRACE_SYNC_LOCK_TIMEOUT_MS, flush_wal=False)
        queued = Write.objects.queued()
        end = _next_batch_end(queued, limit=limit)
        if end is None:
            return 0
        rows = queued.filter(id__lte=end).order_by("id")
        writes = [QueuedWrite(*row) for row in rows.values_list("id", "kind", "payload", "accepted_at")]
        _commit_writes(writes, isolate=isolate)
    return len(writes)


def _commit_writes(writes: list[Write] | list[QueuedWrite], *, isolate: bool) -> None:
    """Commits queued writes in order inside the caller's transaction, which holds the commit lock.

    Without isolate the writes are committed as one batch and an error propagates (the caller
    then retries isolated); with isolate each write runs alone in a savepoint, and one that
    raises is marked failed with its error.
    """
    if not writes:
        return
    started = time.perf_counter()
    if isolate:
        committed = []
        for write in writes:
            try:
                with transaction.atomic():
                    writes_commit([write], strict=False)
            except DATABASE_UNAVAILABLE:
                raise
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                logger.error("write %s (%s) failed: %s", write.id, write.kind, error)
                Write.objects.filter(id=write.id).update(status=Write.Status.FAILED, error=error[:10_000])
                continue
            committed.append(write)
    else:
        writes_commit(writes, strict=False)
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


def writes_retry_failed(*, ids: list[int] | None = None) -> list[int]:
    """Puts failed writes back in the queue under their own ids and enqueues their commit.

    A retried write is committed late: it sees exactly the writes accepted before it, but runs
    accepted after it were committed without it. Returns the ids requeued.
    """
    failed = Write.objects.failed()
    if ids is not None:
        failed = failed.filter(id__in=ids)
    with transaction.atomic():
        requeued = list(failed.select_for_update().order_by("id").values_list("id", flat=True))
        Write.objects.filter(id__in=requeued).update(status=Write.Status.QUEUED)
        if requeued:
            last = requeued[-1]
            transaction.on_commit(lambda: _enqueue_commit(last))
    return requeued


def run_notes_update(*, run_id: int, notes: str) -> Run:
    """Replaces the notes of a committed run. Raises NotFound, or Conflict for a run write
    not committed yet (queued or failed)."""
    updated = Run.objects.filter(id=run_id).update(notes=notes)
    if not updated:
        status = Write.objects.filter(id=run_id, kind=Write.Kind.RUN).values_list("status", flat=True).first()
        if status in (Write.Status.QUEUED, Write.Status.FAILED):
            raise Conflict(RUN_NOT_COMMITTED.format(id=run_id, status=status))
        raise NotFound(RUN_NOT_FOUND.format(id=run_id))
    return Run.objects.get(id=run_id)


def pointers_flag(*, name: str, flag: bool) -> int:
    """Sets the flag of every pointer of this name; returns how many. Raises NotFound."""
    pointers = IOPointer.objects.filter(name_hash=pointer_name_hash(name), name=name)
    count = pointers.count()
    if not count:
        raise NotFound(POINTER_NOT_FOUND.format(name=name))
    pointers.update(flag=flag)
    return count


def pointers_unflag_all() -> int:
    """Clears every flag; returns how many pointers were flagged."""
    return IOPointer.objects.filter(flag=True).update(flag=False)
