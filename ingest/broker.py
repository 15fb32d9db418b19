"""The process's one django-q broker: one Redis connection pool per process, not one per
request. (The broker classes a cluster runs, with the sweep in their pull loop, are in
ingest/brokers.py.)"""

from __future__ import annotations

from django_q.brokers import Broker, get_broker

_broker: Broker | None = None


def shared_broker() -> Broker:
    """One broker (one Redis connection pool) per process, not one per request."""
    global _broker
    if _broker is None:
        _broker = get_broker()
    return _broker
