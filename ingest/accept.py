"""The 202 door: a validated write recorded durably as queued, its commit enqueued.

The ids come from the one shared sequence under the accept lock, in list order, so the
committed rows of the write log are always a prefix of the sequence.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from common.db import on_postgres
from common.jsontext import already_encoded, json_utf8
from ingest.enqueue import enqueue_commit
from ingest.idempotency import Idempotency, Recorded, idempotent_replay, idempotent_store, retry_on_key_race
from ingest.locks import ACCEPT_LOCK_KEY, accept_lock
from ingest.sql import accept_rows
from runs.models import (
    Write,
)

logger = logging.getLogger(__name__)


def writes_accept(
    *, kind: str, payloads: list[dict[str, Any]], idempotency: Idempotency | None = None, user: Any = None
) -> Recorded:
    """Records validated writes durably as queued and enqueues their commit (the 202 door).

    The ids come from the shared sequence under the accept lock, in list order. The commit is
    enqueued once the transaction is committed; if that enqueue is lost, the sweep commits the
    writes. Raises OperationalError when the database cannot record them (the view's 503).
    """

    if idempotency is None and on_postgres() and connection.get_autocommit():
        ids = _accept_in_one_statement(kind, payloads, user=user)
        enqueue_commit(ids[-1])
        return Recorded(ids)

    # Encoded once, outside the accept lock: the text stored and its size recorded.
    encoded = [json_utf8(payload) for payload in payloads]

    def attempt() -> Recorded:
        with transaction.atomic():
            accept_lock(timeout_ms=settings.MLTRACE_ACCEPT_LOCK_TIMEOUT_MS)
            replay = idempotent_replay(idempotency)
            if replay is not None:
                return replay
            now = timezone.now()
            writes = Write.objects.bulk_create(
                [
                    Write(
                        kind=kind,
                        payload=already_encoded(text),
                        payload_bytes=len(text),
                        accepted_at=now,
                        accepted_by=user,
                    )
                    for text in encoded
                ]
            )
            recorded = Recorded([write.id for write in writes])
            idempotent_store(idempotency, recorded)
            last_id = writes[-1].id
            transaction.on_commit(lambda: enqueue_commit(last_id))
        return recorded

    return retry_on_key_race(attempt)


def _accept_in_one_statement(kind: str, payloads: list[dict[str, Any]], *, user: Any = None) -> list[int]:
    """The accept as one round trip: lock, insert and commit in a single implicit transaction.

    The accept lock is held from before the ids are drawn until the commit, as in
    writes_accept's general path; the ids follow the payloads' order (ORDER BY ordinality).
    The transaction ends with the statement, so a 202 follows a durable commit. Returns the
    ids (building a Write for each cost a 1,000-run batch 15 ms).
    """
    return accept_rows(
        Write._meta.db_table,
        lock_key=ACCEPT_LOCK_KEY,
        timeout_ms=settings.MLTRACE_ACCEPT_LOCK_TIMEOUT_MS,
        kind=kind,
        status=Write.Status.QUEUED,
        accepted_at=timezone.now(),
        payloads=[json_utf8(payload).decode() for payload in payloads],
        accepted_by=user.pk if user is not None else None,
    )
