"""Idempotency-Key: the first answer to a write, stored with it and replayed on retries."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


def retry_on_key_race(attempt: Callable[[], Answer]) -> Answer:
    # A synchronous first use of a key stores it at the end of its transaction, after it let
    # go of the accept lock; a retry racing it fails on the unique key and, tried again, finds
    # the stored answer.
    try:
        return attempt()
    except IntegrityError:
        return attempt()
