"""Domain errors and the one DRF exception handler that maps them to JSON.

Every error body of the API is either {"detail": message} or DRF's field errors
{"field": [messages]}; the messages are constants here so tests can import them.
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

logger = logging.getLogger(__name__)

BODY_TOO_LARGE = "Request body is larger than {limit} bytes."
COMPONENT_NOT_FOUND = "Component {name!r} does not exist."
RUN_NOT_FOUND = "Run {id} does not exist."
RUN_NOT_COMMITTED = "Run {id} is {status}, not committed yet; its notes can be changed once it is."
OUTPUT_NOT_FOUND = "No committed run has an output named {name!r}."
POINTER_NOT_FOUND = "No IO pointer is named {name!r}."
DEPENDENCY_UNRESOLVED = "Component {name!r} has no run accepted before this one."
NOT_A_RUN = "Write {id} is a component write, not a run."
IDEMPOTENCY_KEY_REUSED = "This Idempotency-Key was already used with a different request."
IDEMPOTENCY_KEY_INVALID = "An Idempotency-Key is 1 to 255 printable ASCII characters."
DATABASE_UNAVAILABLE = "The write could not be recorded: the database is unavailable. Retry later."


class MltraceError(Exception):
    """Base of the domain errors the services raise."""

    status_code = status.HTTP_400_BAD_REQUEST
    # Position of the refused write in a batch, when it came from one.
    index: int | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def body(self) -> dict[str, Any]:
        if self.field:
            return {self.field: [self.message]}
        return {"detail": self.message}


class NotFound(MltraceError):
    status_code = status.HTTP_404_NOT_FOUND


class InvalidInput(MltraceError):
    status_code = status.HTTP_400_BAD_REQUEST


class Conflict(MltraceError):
    status_code = status.HTTP_409_CONFLICT


class DependencyUnresolved(InvalidInput):
    """An explicit dependency names a component with no earlier run (a 400 on the sync path)."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(
            " ".join(DEPENDENCY_UNRESOLVED.format(name=name) for name in names),
            field="dependencies",
        )
        self.names = names


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, MltraceError):
        return Response(exc.body(), status=exc.status_code)
    if isinstance(exc, OperationalError | InterfaceError):
        # The database is down or a lock wait timed out: nothing was recorded, try again.
        logger.warning("answering 503: %s", exc)
        return Response(
            {"detail": DATABASE_UNAVAILABLE},
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
