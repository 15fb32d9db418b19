"""What every API view shares: the sync switch, the accept door and the documented errors."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request

SYNC_PARAMETER = OpenApiParameter(
    "sync",
    bool,
    description="true: commit before answering and return the committed object (201, or 200 "
    "where nothing new was created). Default: record the write, queue it, answer 202.",
)

ERROR_DETAIL = inline_serializer("ErrorDetail", {"detail": serializers.CharField()})
ERRORS = {
    400: OpenApiResponse(
        inline_serializer("FieldErrors", {"field": serializers.ListField(child=serializers.CharField())}),
        'Invalid input: {"field": ["message"]}, or {"detail": ...} for malformed JSON.',
    ),
    401: OpenApiResponse(ERROR_DETAIL, "No valid token or admin session."),
    404: OpenApiResponse(ERROR_DETAIL, "Unknown object."),
    413: OpenApiResponse(ERROR_DETAIL, "Body over MLTRACE_MAX_BODY_BYTES (default 10 MiB)."),
}


def wants_sync(request: Request) -> bool:
    return request.query_params.get("sync", "").strip().lower() in ("1", "true", "yes")


def accept_writes(request: Request, *, kind: str, payloads: list[dict[str, Any]]) -> list[tuple[int, str]]:
    raise NotImplementedError
