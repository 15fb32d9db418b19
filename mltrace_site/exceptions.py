"""Domain errors and the one DRF exception handler that maps them to JSON.

Every error body of the API is either {"detail": message} or DRF's field errors
{"field": [messages]}; the messages are constants here so tests can import them.
"""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler

BODY_TOO_LARGE = "Request body is larger than {limit} bytes."
COMPONENT_NOT_FOUND = "Component {name!r} does not exist."
RUN_NOT_FOUND = "Run {id} does not exist."
OUTPUT_NOT_FOUND = "No committed run has an output named {name!r}."
POINTER_NOT_FOUND = "No IO pointer is named {name!r}."
DEPENDENCY_UNRESOLVED = "Component {name!r} has no run accepted before this one."
NOT_A_RUN = "Write {id} is a component write, not a run."


class MltraceError(Exception):
    """Base of the domain errors the services raise."""

    status_code = status.HTTP_400_BAD_REQUEST

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
    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, APIException):
        data = response.data
        # DRF gives a bare list for errors raised without a field; keep one shape.
        if isinstance(data, list):
            response.data = {"detail": data[0] if len(data) == 1 else data}
    return response
