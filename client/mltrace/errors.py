"""The errors the client raises beyond mltrace's own RuntimeError and ValueError."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ServerError(RuntimeError):
    """The server answered with an error that retrying cannot fix (a bad token, say)."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


class ServerUnreachable(ServerError, ConnectionError):
    """The server did not answer (refused, timed out, or kept answering 502-504)."""


class NotSupported(NotImplementedError):
    """An mltrace function that has no meaning over a server, or that mltrace 0.17 lacks."""


@dataclass(frozen=True)
class RefusedWrite:
    """A write the server refused (HTTP 4xx): passed to the error callback, and logged."""

    kind: str  # "run", "component", "output" or "feedback"
    payload: dict
    status: int
    error: Any  # the server's error body for this write

    def describe(self) -> str:
        if "task" in self.payload:  # an output or a feedback: one item of a task
            what = f"{self.payload.get('identifier')!r} to task {self.payload['task']!r}"
        else:
            what = repr(self.payload.get("component") or self.payload.get("name") or "?")
        return f"{self.kind} write of {what} (HTTP {self.status}): {self.error}"
