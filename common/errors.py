"""The errors the domain and ingestion raise, and the messages they carry.

Every error body of the API is either {"detail": message} or DRF's field errors
{"field": [messages]}; the messages are constants here so tests can import them. The HTTP
layer (mltrace_site/exceptions.py) maps each class to its status.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

COMPONENT_NOT_FOUND = "Component {name!r} does not exist."
RUN_NOT_FOUND = "Run {id} does not exist."
RUN_NOT_COMMITTED = "Run {id} is {status}, not committed yet; its notes can be changed once it is."
OUTPUT_NOT_FOUND = "No committed run has an output named {name!r}."
POINTER_NOT_FOUND = "No IO pointer is named {name!r}."
DEPENDENCY_UNRESOLVED = "Component {name!r} has no run accepted before this one."
NOT_A_RUN = "Write {id} is {kind}, not a run."
TASK_NOT_FOUND = "Unknown task: {name}."
TOO_MANY_DISAGREEING = (
    "The window holds more than {max:,} disagreeing pairs; a call flags at most {max:,}: "
    "narrow it with window_seconds or window_pairs."
)
IDEMPOTENCY_KEY_REUSED = "This Idempotency-Key was already used with a different request."


class MltraceError(Exception):
    """Base of the domain errors the services raise."""

    status_code = HTTPStatus.BAD_REQUEST
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
    status_code = HTTPStatus.NOT_FOUND


class InvalidInput(MltraceError):
    status_code = HTTPStatus.BAD_REQUEST


class Conflict(MltraceError):
    status_code = HTTPStatus.CONFLICT


class DependencyUnresolved(InvalidInput):
    """An explicit dependency names a component with no earlier run (a 400 on the sync path)."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(
            " ".join(DEPENDENCY_UNRESOLVED.format(name=name) for name in names),
            field="dependencies",
        )
        self.names = names
