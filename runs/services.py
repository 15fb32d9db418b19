"""Every write to runs, pointers and the accepted-write log.

A write is accepted (`writes_accept`: validated payload stored, id taken from the one
sequence, 202) and later committed by a worker (`writes_commit_pending`), or accepted and
committed at once (`writes_commit_now`, ?sync=true). Both commit through `write_commit`.

Ordering: ids are taken under the accept lock, so writes become visible in id order, and
commits run one at a time under the commit lock, oldest queued write first. Each commit
therefore sees exactly the rows every earlier accepted write produced, whatever the number of
workers and whichever task a worker happens to run: the database equals synchronous
ingestion in acceptance order. docs/ARCHITECTURE.md has the whole argument.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Case, F, Max, Value, When
from django.utils import timezone

from components.models import Component
from components.services import component_get_or_create, component_upsert
from mltrace_site.exceptions import (
    IDEMPOTENCY_KEY_REUSED,
    POINTER_NOT_FOUND,
    RUN_NOT_FOUND,
    Conflict,
    DependencyUnresolved,
    MltraceError,
    NotFound,
)
from runs.models import (
    IdempotencyKey,
    IOPointer,
    Run,
    RunDependency,
    RunInput,
    RunOutput,
    Write,
    pointer_key,
    pointer_name_hash,
)

logger = logging.getLogger(__name__)

# PostgreSQL advisory lock keys: one serializes commits, one serializes id assignment.
COMMIT_LOCK_KEY = 0x6D6C7472  # "mltr"
ACCEPT_LOCK_KEY = 0x6D6C7461  # "mlta"
SECONDS_PER_DAY = 60 * 60 * 24
# Errors that mean the database could not be reached: the write stays queued and is retried.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def advisory_xact_lock(key: int, *, timeout_ms: int | None = None) -> None:
    """Takes a transaction-level advisory lock, waiting at most timeout_ms (then OperationalError).

    On SQLite every transaction begins IMMEDIATE, so writers already run one at a time.
    """
    if not _postgres():
        return
    with connection.cursor() as cursor:
        if timeout_ms is not None:
            cursor.execute(f"SET LOCAL lock_timeout = {int(timeout_ms)}")
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def commit_lock(*, timeout_ms: int | None = None) -> None:
    """Waits until no other transaction is committing writes; held until this one ends."""
    advisory_xact_lock(COMMIT_LOCK_KEY, timeout_ms=timeout_ms)


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
        cursor.execute(f"SET LOCAL lock_timeout = {int(settings.MLTRACE_ACCEPT_LOCK_TIMEOUT_MS)}")
        cursor.execute("SELECT pg_advisory_lock(%s)", [ACCEPT_LOCK_KEY])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [ACCEPT_LOCK_KEY])


def pointers_get_or_create(specs: Iterable[dict[str, str]]) -> dict[tuple[str, str], IOPointer]:
    """Returns the pointers of these (name, value) specs by identity, creating missing ones.

    A pointer that exists keeps its type; a new one takes the spec's (given or inferred) type.
    Runs under the commit lock, so no other transaction creates pointers meanwhile.
    """
    by_key = {pointer_key(s["name"], s["value"]): s for s in specs}
    if not by_key:
        return {}
    found = {p.key: p for p in IOPointer.objects.filter(key__in=list(by_key))}
    missing = [
        IOPointer(
            name=spec["name"],
            value=spec["value"],
            pointer_type=spec["pointer_type"],
            name_hash=pointer_name_hash(spec["name"]),
            key=key,
        )
        for key, spec in by_key.items()
        if key not in found
    ]
    if missing:
        for pointer in IOPointer.objects.bulk_create(missing):
            found[pointer.key] = pointer
    return {(p.name, p.value): p for p in found.values()}


def inferred_dependencies(*, input_names: list[str], before_id: int) -> set[int]:
    """For each input name, the highest run id below before_id that output a pointer of it."""
    if not input_names:
        return set()
    wanted = set(input_names)
    rows = (
        RunOutput.objects.filter(
            pointer__name_hash__in={pointer_name_hash(n) for n in wanted}, run_id__lt=before_id
        )
        .values("pointer__name")
        .annotate(latest=Max("run_id"))
    )
    return {row["latest"] for row in rows if row["pointer__name"] in wanted}


def explicit_dependencies(*, names: list[str], before_id: int) -> tuple[set[int], list[str]]:
    """For each component name, its run below before_id with the latest start_timestamp.

    Ties on start_timestamp go to the later-accepted run. Returns (run ids, unresolved names).
    """
    resolved: set[int] = set()
    unresolved: list[str] = []
    for name in names:
        run_id = (
            Run.objects.filter(component__name=name, id__lt=before_id)
            .order_by("-start_timestamp", "-id")
            .values_list("id", flat=True)
            .first()
        )
        if run_id is None:
            unresolved.append(name)
        else:
            resolved.add(run_id)
    return resolved, unresolved


def staleness_messages(
    *, run_id: int, start: dt.datetime, dependencies: list[Run], threshold: int
) -> list[str]:
    """mltrace's staleness messages, word for word, for dependencies in ascending id."""
    messages = []
    for dep in dependencies:
        name = dep.component.name
        seconds = (start - dep.start_timestamp).total_seconds()
        if seconds > threshold:
            days = int(seconds // SECONDS_PER_DAY)
            messages.append(f"{name} (ID {dep.id}) was run {days} days ago.")
        # The dependency itself counts when it began before this run; k more are fresher.
        runs_in_window = Run.objects.filter(
            component_id=dep.component_id,
            id__lt=run_id,
            start_timestamp__gte=dep.start_timestamp,
            start_timestamp__lte=start,
        ).count()
        fresher = runs_in_window - 1
        if fresher >= 1:
            noun = "run" if fresher == 1 else "runs"
            messages.append(
                f"{name} (ID {dep.id}) has {fresher} fresher {noun} that began before this "
                "component run started."
            )
    return messages


def run_commit(*, run_id: int, payload: dict[str, Any], accepted_at: dt.datetime, strict: bool) -> Run:
    """Commits one accepted run: its component, pointers, dependencies and staleness.

    With strict (the synchronous door), an explicit dependency with no earlier run raises
    DependencyUnresolved; otherwise the run is committed with the name listed in
    unresolved_dependencies. Call inside a transaction holding the commit lock.
    """
    start = dt.datetime.fromisoformat(payload["start_timestamp"])
    end = dt.datetime.fromisoformat(payload["end_timestamp"])

    dependency_ids: set[int] = set()
    if payload.get("infer_dependencies", True):
        dependency_ids |= inferred_dependencies(
            input_names=list(dict.fromkeys(p["name"] for p in payload["inputs"])), before_id=run_id
        )
    explicit, unresolved = explicit_dependencies(names=payload["dependencies"], before_id=run_id)
    if unresolved and strict:
        raise DependencyUnresolved(unresolved)
    dependency_ids |= explicit

    component = component_get_or_create(name=payload["component"], accepted_at=accepted_at)
    pointers = pointers_get_or_create([*payload["inputs"], *payload["outputs"]])
    dependencies = list(Run.objects.filter(id__in=dependency_ids).select_related("component").order_by("id"))
    run = Run.objects.create(
        id=run_id,
        component=component,
        start_timestamp=start,
        end_timestamp=end,
        notes=payload["notes"],
        git_hash=payload["git_hash"],
        git_tags=payload["git_tags"],
        code_snapshot=payload["code_snapshot"],
        test_results=payload["test_results"],
        stale=staleness_messages(
            run_id=run_id,
            start=start,
            dependencies=dependencies,
            threshold=payload["staleness_threshold"],
        ),
        unresolved_dependencies=unresolved,
        created_at=accepted_at,
    )
    RunInput.objects.bulk_create(
        [RunInput(run=run, pointer=pointers[(p["name"], p["value"])]) for p in payload["inputs"]]
    )
    RunOutput.objects.bulk_create(
        [RunOutput(run=run, pointer=pointers[(p["name"], p["value"])]) for p in payload["outputs"]]
    )
    RunDependency.objects.bulk_create([RunDependency(run=run, depends_on_id=dep.id) for dep in dependencies])
    Component.objects.filter(pk=component.pk).update(
        run_count=F("run_count") + 1,
        last_run_at=Case(
            When(last_run_at__gte=start, then=F("last_run_at")),
            default=Value(start),
        ),
    )
    if run.stale:
        logger.warning("run %s of %s is stale: %s", run.id, component.name, run.stale)
    return run


def write_commit(
    *, kind: str, write_id: int, payload: dict[str, Any], accepted_at: dt.datetime, strict: bool
) -> tuple[Component | Run, bool]:
    """Commits one accepted write (a component or a run); returns (object, created).

    Call inside a transaction holding the commit lock, after every earlier write committed.
    """
    if kind == Write.Kind.COMPONENT:
        return component_upsert(
            name=payload["name"],
            description=payload["description"],
            owner=payload["owner"],
            tags=payload["tags"],
            accepted_at=accepted_at,
        )
    run = run_commit(run_id=write_id, payload=payload, accepted_at=accepted_at, strict=strict)
    return run, True


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
    if stored.fingerprint != idempotency.fingerprint:
        raise Conflict(IDEMPOTENCY_KEY_REUSED)
    return Answer(stored.status_code, stored.response, replayed=True)


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


def _enqueue_commit(through_id: int) -> None:
    from runs.tasks import enqueue_commit

    enqueue_commit(through_id)


def writes_commit_now(
    *,
    kind: str,
    payloads: list[dict[str, Any]],
    answer: Callable[[list[tuple[Write, Component | Run, bool]]], Answer],
    idempotency: Idempotency | None = None,
) -> Answer:
    """Accepts writes and commits them before returning (the ?sync=true door).

    Every write accepted earlier is committed first, so the result is what the queue would
    give. All or nothing for this request: a refusal (an explicit dependency with no earlier
    run) raises DependencyUnresolved and leaves none of its writes, ids included.
    """
    backlog = (
        Write.objects.filter(status=Write.Status.QUEUED).order_by("-id").values_list("id", flat=True).first()
    )
    if backlog is not None:
        # Drained outside the locked transaction below, which then stays short.
        writes_commit_pending(through_id=backlog)

    def attempt() -> Answer:
        refusal: MltraceError | None = None
        with transaction.atomic():
            commit_lock(timeout_ms=settings.MLTRACE_SYNC_LOCK_TIMEOUT_MS)
            with accept_lock_released_early():
                replay = idempotent_replay(idempotency)
                if replay is not None:
                    return replay
                _commit_writes(
                    list(Write.objects.filter(status=Write.Status.QUEUED).order_by("id")), isolate=True
                )
                savepoint = transaction.savepoint()
                now = timezone.now()
                writes = Write.objects.bulk_create(
                    [
                        Write(kind=kind, accepted_at=now, committed_at=now, status=Write.Status.COMMITTED)
                        for _ in payloads
                    ]
                )
            try:
                committed = []
                for index, (write, payload) in enumerate(zip(writes, payloads, strict=True)):
                    try:
                        obj, created = write_commit(
                            kind=kind, write_id=write.id, payload=payload, accepted_at=now, strict=True
                        )
                    except MltraceError as exc:
                        exc.index = index  # which write of a batch was refused
                        raise
                    committed.append((write, obj, created))
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


def writes_commit_pending(*, through_id: int) -> int:
    """Commits queued writes, oldest first, a batch per transaction, until none <= through_id.

    Returns how many writes were committed or marked failed. Database outages propagate and
    leave the writes queued for the next task or the sweep.
    """
    done = 0
    queued = Write.objects.filter(status=Write.Status.QUEUED)
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


def _commit_queued(*, limit: int, isolate: bool) -> int:
    with transaction.atomic():
        commit_lock(timeout_ms=settings.MLTRACE_SYNC_LOCK_TIMEOUT_MS)
        writes = list(Write.objects.filter(status=Write.Status.QUEUED).order_by("id")[:limit])
        _commit_writes(writes, isolate=isolate)
    return len(writes)


def _commit_writes(writes: list[Write], *, isolate: bool) -> None:
    """Commits queued writes in order inside the caller's transaction, which holds the commit lock.

    With isolate, each write runs in a savepoint and one that raises is marked failed with its
    error; without, the first error propagates and the caller retries isolated.
    """
    committed: list[int] = []
    for write in writes:
        started = time.perf_counter()
        try:
            with transaction.atomic() if isolate else nullcontext():
                write_commit(
                    kind=write.kind,
                    write_id=write.id,
                    payload=write.payload,
                    accepted_at=write.accepted_at,
                    strict=False,
                )
        except DATABASE_UNAVAILABLE:
            raise
        except Exception as exc:
            if not isolate:
                raise
            error = f"{type(exc).__name__}: {exc}"
            logger.error("write %s (%s) failed: %s", write.id, write.kind, error)
            Write.objects.filter(id=write.id).update(status=Write.Status.FAILED, error=error[:10_000])
            continue
        committed.append(write.id)
        logger.info(
            "committed %s write %s in %.1f ms", write.kind, write.id, (time.perf_counter() - started) * 1000
        )
    if committed:
        Write.objects.filter(id__in=committed).update(
            status=Write.Status.COMMITTED, payload=None, error="", committed_at=timezone.now()
        )


def writes_retry_failed(*, ids: list[int] | None = None) -> list[int]:
    """Puts failed writes back in the queue under their own ids and enqueues their commit.

    A retried write is committed late: it sees exactly the writes accepted before it, but runs
    accepted after it were committed without it. Returns the ids requeued.
    """
    failed = Write.objects.filter(status=Write.Status.FAILED)
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
    """Replaces the notes of a committed run. Raises NotFound."""
    updated = Run.objects.filter(id=run_id).update(notes=notes)
    if not updated:
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
