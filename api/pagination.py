"""Pagination of every list: {"next", "previous", "results"} with a `limit` parameter.

Lists page by keyset (never OFFSET, never COUNT), so a page costs the same at any depth of a
million-row table.
"""

from __future__ import annotations

from typing import Any

from django.utils.http import urlencode
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
LIMIT_INVALID = "Must be an integer from 1 to {max}; larger values are capped at {max}."
LIMIT_PARAMETER = OpenApiParameter(
    "limit",
    {"type": "integer", "minimum": 1},
    description="Page size, default 50, at least 1; values over 1000 are capped at 1000.",
)


def parse_limit(request: Request, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """The `limit` query parameter: default when absent, capped at `maximum`, 400 when not an
    integer >= 1 (an empty one included)."""
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if limit < 1:
        raise serializers.ValidationError({"limit": [LIMIT_INVALID.format(max=maximum)]})
    return min(limit, maximum)


# The largest id a `before`, `after` or impact cursor can carry: what a link may take.
LARGEST_ID = 2**63 - 1
_renderer = JSONRenderer()


def rendered_bytes(value: Any) -> int:
    """Bytes of a value as the API sends it (DRF's JSONRenderer, as every list answers)."""
    return len(_renderer.render(value))


def page_url(request: Request, **changes: Any) -> str:
    """This request's URL with some query parameters replaced (None removes one)."""
    params: dict[str, str] = {key: str(value) for key, value in request.query_params.items()}
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    url = request.build_absolute_uri(request.path)
    return f"{url}?{urlencode(params)}" if params else url


class LimitCursorPagination(CursorPagination):
    """DRF's cursor pagination with our `limit` parameter and its validation."""

    page_size = DEFAULT_LIMIT
    max_page_size = MAX_LIMIT
    page_size_query_param = "limit"
    ordering = "name"

    def get_page_size(self, request: Request) -> int:
        return parse_limit(request, default=self.page_size)

    def decode_cursor(self, request: Request) -> Cursor | None:
        cursor = super().decode_cursor(request)
        # A forged position with a NUL would reach PostgreSQL, which refuses it: a 500.
        if cursor is not None and isinstance(cursor.position, str) and "\x00" in cursor.position:
            raise NotFound(self.invalid_cursor_message)
        return cursor

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        response = super().get_paginated_response_schema(schema)
        response["required"] = ["next", "previous", "results"]
        return response
