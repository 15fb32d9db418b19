"""Liveness and readiness, without authentication."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any failure to reach the database means not ready
        return JsonResponse({"status": "unavailable", "detail": f"database: {exc}".strip()}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})
