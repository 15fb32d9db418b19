"""The commit-pending flag: while it is up in Redis, a commit task waits and accepts enqueue
no other.

The task reads the queue only once its flag has expired, so it sees every write committed
before then. The flag lives MLTRACE_COMMIT_DELAY_MS (at least 1 ms): the writes of that time
gather into one commit. A process that saw a flag up skips Redis until the flag's expiry, as
measured from before it asked (docs/ARCHITECTURE.md, "The commit-pending flag"). Off Redis
(the ORM broker) there is no flag, and every accept enqueues a task.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django_q.brokers import Broker
from django_q.brokers.redis_broker import Redis as RedisBroker

from ingest.broker import shared_broker

logger = logging.getLogger(__name__)

_flag_seen_until = 0.0  # time.monotonic(): a flag is up in Redis at least until then


def _flag_life_ms() -> int:
    return max(1, settings.MLTRACE_COMMIT_DELAY_MS)


def _commit_pending_flag(broker: Broker) -> tuple[Any, str] | None:
    """The Redis client and key of the 'a commit task is waiting' flag; None off Redis."""
    if not isinstance(broker, RedisBroker):
        return None
    return broker.connection, f"mltrace:{broker.list_key}:commit-pending"


def flag_raise(through_id: int) -> bool:
    """Raises the flag for a task of write `through_id`, unless one is up; whether that task
    must be enqueued (always, off Redis). Raises what Redis raises: then call flag_forget."""
    global _flag_seen_until
    flag = _commit_pending_flag(shared_broker())
    if flag is None:
        return True
    if time.monotonic() < _flag_seen_until:
        return False
    client, key = flag
    asked = time.monotonic()
    pipe = client.pipeline(transaction=False)
    pipe.set(key, through_id, nx=True, px=_flag_life_ms())
    pipe.pttl(key)
    raised, ttl = pipe.execute()
    # The flag expires at least ttl ms after `asked`; 1 ms off for PTTL's rounding.
    if ttl > 1:
        _flag_seen_until = asked + (ttl - 1) / 1000
    return bool(raised)


def flag_forget() -> None:
    """Forgets a flag seen up: after a failed enqueue, the next accept asks Redis again."""
    global _flag_seen_until
    _flag_seen_until = 0.0


def flag_await(token: int) -> None:
    """Waits until the flag the accept of write `token` raised has expired; off Redis, returns.

    Until then accepts count on this task and enqueue none: it must read the queue after
    the last of them. A flag with another value was raised after this one expired, for a
    task of its own. Redis unreachable: waits the flag's whole life, which then has passed.
    """
    flag = _commit_pending_flag(shared_broker())
    if flag is None:
        return
    client, key = flag
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
