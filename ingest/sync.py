"""The ?sync=true door: writes accepted and committed in one request, in their place in
acceptance order.

It takes the commit lock, then the accept lock, commits everything still queued, takes its
own ids, lets the accept lock go and commits its own writes, all in one transaction: its
writes come after every earlier one and before every later one (docs/ARCHITECTURE.md, "Same
result as sync", 4).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from common.errors import MltraceError
from ingest.batch import batch_apply
from ingest.idempotency import Idempotency, Recorded, idempotent_replay, idempotent_store, retry_on_key_race
from ingest.locks import accept_lock_released_early, commit_lock
from ingest.queue import backlog_drain, queued_commit_under_lock
from runs.models import Write


def writes_commit_now(
    *, kind: str, payloads: list[dict[str, Any]], idempotency: Idempotency | None = None, user: Any = None
) -> Recorded:
    """Accepts writes and commits them before returning (the ?sync=true door).

    Every write accepted earlier is committed first, so the result is what the queue would
    give. All or nothing for this request: a refusal (an explicit dependency with no earlier
    run) raises DependencyUnresolved and leaves none of its writes, ids included.
    """
    backlog_drain()

    def attempt() -> Recorded:
        refusal: MltraceError | None = None
        with transaction.atomic():
            commit_lock(timeout_ms=settings.MLTRACE_SYNC_LOCK_TIMEOUT_MS)
            with accept_lock_released_early():
                replay = idempotent_replay(idempotency)
                if replay is not None:
                    return replay
                queued_commit_under_lock()
                savepoint = transaction.savepoint()
                now = timezone.now()
                writes = Write.objects.bulk_create(
                    [
                        Write(
                            kind=kind,
                            accepted_at=now,
                            committed_at=now,
                            status=Write.Status.COMMITTED,
                            accepted_by=user,
                        )
                        for _ in payloads
                    ]
                )
            try:
                for write, payload in zip(writes, payloads, strict=True):
                    write.payload = payload
                results = batch_apply(writes, refuse_unresolved=True)
                recorded = Recorded([write.id for write in writes], created=results[0][1])
                idempotent_store(idempotency, recorded)
            except MltraceError as exc:
                transaction.savepoint_rollback(savepoint)
                refusal = exc
            else:
                transaction.savepoint_commit(savepoint)
        if refusal is not None:
            raise refusal
        return recorded

    return retry_on_key_race(attempt)
