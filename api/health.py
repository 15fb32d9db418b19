"""Liveness and readiness, without authentication."""

from __future__ import annotations

import logging

from django.db import connection
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)


def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the process serves requests."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer; 503 naming the one that does not."""
    checks = {"database": _check_database, "broker": _check_broker}
    results = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # any failure to reach it means not ready
            logger.warning("readyz: %s unavailable: %s", name, exc)
            results[name] = f"unavailable: {type(exc).__name__}: {exc}".strip()
    down = [name for name, result in results.items() if result != "ok"]
    if down:
        detail = " and ".join(down) + (" is" if len(down) == 1 else " are") + " unavailable."
        return JsonResponse({"status": "unavailable", "detail": detail, **results}, status=503)
    return JsonResponse({"status": "ok", **results})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_broker() -> None:
    from ingest.broker import shared_broker

    broker = shared_broker()
    if broker.ping() is not True:
        raise RuntimeError("ping did not answer")
    # The ORM broker's ping is a constant; its queue lives in the database.
    broker.queue_size()
