"""The one DRF exception handler that maps every error to JSON, and the HTTP layer's messages.

Every error body of the API is either {"detail": message} or DRF's field errors
{"field": [messages]}. The domain's errors and messages are in common/errors.py.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import is_valid_path
from django.views import defaults
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler

from common.db import DEADLOCK_DETECTED, LOCK_NOT_AVAILABLE, sqlstate
from common.errors import MltraceError

logger = logging.getLogger(__name__)

BODY_TOO_LARGE = "Request body is larger than {limit} bytes."
LENGTH_REQUIRED = "A chunked request body needs a Content-Length on this server; send the body with one."
IDEMPOTENCY_KEY_INVALID = "An Idempotency-Key is 1 to 255 printable ASCII characters."
DATABASE_UNAVAILABLE = "The write could not be recorded: the database is unavailable. Retry later."
DATABASE_BUSY = "Nothing was changed: other work held a lock this request needed for too long. Retry later."


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, MltraceError):
        return Response(exc.body(), status=exc.status_code)
    if isinstance(exc, OperationalError | InterfaceError):
        # The database is down, or a lock wait timed out or lost a deadlock: nothing was
        # recorded, try again. Only the first is the database being unavailable.
        logger.warning("answering 503: %s", exc)
        busy = sqlstate(exc) in (LOCK_NOT_AVAILABLE, DEADLOCK_DETECTED)
        return Response(
            {"detail": DATABASE_BUSY if busy else DATABASE_UNAVAILABLE},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(settings.MLTRACE_RETRY_AFTER_SECONDS)},
        )
    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, APIException):
        data = response.data
        # DRF gives a bare list for errors raised without a field; keep one shape.
        if isinstance(data, list):
            response.data = {"detail": data[0] if len(data) == 1 else data}
    return response


NO_SUCH_ENDPOINT = "No endpoint at {path!r}. See /api/docs/ for the API."
MISSING_SLASH = "No endpoint at {path!r}: API paths end with a slash ({path}/)."
SERVER_ERROR = "Internal server error."


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 for an unmatched URL; under /api/ a JSON body like every other error."""
    if request.path.startswith("/api/"):
        detail = NO_SUCH_ENDPOINT.format(path=request.path)
        if not request.path.endswith("/") and is_valid_path(f"{request.path_info}/"):
            detail = MISSING_SLASH.format(path=request.path)
        return JsonResponse({"detail": detail}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500; under /api/ a JSON body like every other error."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": SERVER_ERROR}, status=500)
    return defaults.server_error(request)
