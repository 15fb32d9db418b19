"""Idempotency-Key: what the first use of a key recorded, stored with its writes, so that a
retry gets the same ids and creates nothing. The view rebuilds the answer from them."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from common.errors import (
    IDEMPOTENCY_KEY_REUSED,
    Conflict,
)
from runs.models import (
    IdempotencyKey,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Idempotency:
    """An Idempotency-Key sent with a write: who sent it and a digest of the request."""

    user_id: int
    key: str
    fingerprint: str


@dataclass(frozen=True)
class Recorded:
    """What a write request recorded: its writes' ids, in the order it sent them.

    created: None for writes accepted and queued (the 202 door); for writes committed at once
    (?sync=true), whether the first created its object (a component new to the server).
    replayed: the request reused an Idempotency-Key, and this is what its first use recorded.
    """

    write_ids: list[int]
    created: bool | None = None
    replayed: bool = False


def idempotent_replay(idempotency: Idempotency | None) -> Recorded | None:
    """What the first use of this key recorded, or None. Raises Conflict for another request.

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
    return Recorded(list(stored.write_ids), stored.created, replayed=True)


def idempotency_expiry() -> dt.datetime:
    """Keys stored before this moment are forgotten (MLTRACE_IDEMPOTENCY_TTL_HOURS)."""
    return timezone.now() - dt.timedelta(hours=settings.MLTRACE_IDEMPOTENCY_TTL_HOURS)


def idempotency_keys_purge() -> int:
    """Deletes the expired idempotency keys; returns how many."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=idempotency_expiry()).delete()
    return deleted


def idempotent_store(idempotency: Idempotency | None, recorded: Recorded) -> None:
    """Keeps what this first use of the key recorded, in the caller's transaction."""
    if idempotency is not None:
        IdempotencyKey.objects.create(
            user_id=idempotency.user_id,
            key=idempotency.key,
            fingerprint=idempotency.fingerprint,
            write_ids=recorded.write_ids,
            created=recorded.created,
            created_at=timezone.now(),
        )


def retry_on_key_race(attempt: Callable[[], Recorded]) -> Recorded:
    # A synchronous first use of a key stores it at the end of its transaction, after it let
    # go of the accept lock; a retry racing it fails on the unique key and, tried again, finds
    # the stored answer.
    try:
        return attempt()
    except IntegrityError:
        return attempt()
