"""What every API view shares: the sync switch, idempotency keys, answers and documented errors."""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from api.exceptions import IDEMPOTENCY_KEY_INVALID
from api.serializers.runs import NULL_CHARACTER
from ingest.idempotency import Idempotency, Recorded

SYNC_PARAMETER = OpenApiParameter(
    "sync",
    bool,
    description="true: commit before answering and return the committed object (201, or 200 "
    "where nothing new was created). Default: record the write, queue it, answer 202.",
)
IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
    OpenApiParameter.HEADER,
    description="A retried write with the same key gets the first answer again (same id) and "
    "creates nothing; the same key with a different request is a 409. Keys are kept "
    "MLTRACE_IDEMPOTENCY_TTL_HOURS (24 h) per user.",
)

ERROR_DETAIL = inline_serializer("ErrorDetail", {"detail": serializers.CharField()})
ERRORS = {
    400: OpenApiResponse(
        OpenApiTypes.OBJECT,
        'Invalid input: {"<field>": ["message", ...]} for each failing field (a batch nests the '
        'failing indexes: {"runs": {"3": {"<field>": [...]}}}), or {"detail": ...} for malformed JSON.',
    ),
    401: OpenApiResponse(ERROR_DETAIL, "No valid token or admin session."),
    404: OpenApiResponse(ERROR_DETAIL, "Unknown object."),
    408: OpenApiResponse(ERROR_DETAIL, "The body did not arrive within MLTRACE_BODY_TIMEOUT_SECONDS."),
    413: OpenApiResponse(ERROR_DETAIL, "Body over MLTRACE_MAX_BODY_BYTES (default 10 MiB)."),
    414: OpenApiResponse(ERROR_DETAIL, "A request line over 4,094 bytes (gunicorn's limit)."),
    431: OpenApiResponse(ERROR_DETAIL, "A header over 8,190 bytes, or over 100 headers (gunicorn's limits)."),
    415: OpenApiResponse(ERROR_DETAIL, "A body that is not application/json."),
    503: OpenApiResponse(ERROR_DETAIL, "The database is unavailable; nothing was recorded. See Retry-After."),
}
WRITE_ERRORS = {
    **ERRORS,
    409: OpenApiResponse(ERROR_DETAIL, "The Idempotency-Key was used before with a different request."),
}


_validators = threading.local()


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """The validated data, or a ValidationError with DRF's field errors, like is_valid().

    One serializer instance per class and thread is reused: building one per request deep
    copies every field, a measurable share of an accept's time.
    """
    cache: dict[type[serializers.Serializer], serializers.Serializer]
    cache = _validators.__dict__.setdefault("by_class", {})
    if serializer_class not in cache:
        cache[serializer_class] = serializer_class()
    try:
        return cache[serializer_class].run_validation(data)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError(serializers.as_serializer_error(exc)) from None


SYNC_INVALID = "Must be true, false, 1 or 0."
# The query parameters that take true, false, 1 or 0 (wants_sync, and QueryBooleanField's).
BOOLEAN_PARAMETERS = frozenset({"sync", "all"})
BLANK_PARAMETER = "This field may not be blank."
UNKNOWN_PARAMETER = "Unknown query parameter. This endpoint takes: {known}."
NO_PARAMETERS = "Unknown query parameter. This endpoint takes none."
PARAMETER_REPEATED = "Given more than once; give it once."


def wants_sync(request: Request) -> bool:
    """The `sync` query parameter: true/false/1/0 in any case (absent: false), else a 400."""
    raw = request.query_params.get("sync")
    if raw is None:
        return False
    value = raw.strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise serializers.ValidationError({"sync": [SYNC_INVALID]})
    return value in ("true", "1")


class KnownQueryParameters:
    """For API views: a query parameter the view does not take is a 400 that names it.

    `query_parameters` maps a viewset's action (or an APIView's method, lower case) to the
    names it takes; anything else, a typo such as ?compnent=, would otherwise be ignored and
    answer as if the filter were not there. Checked after authentication: a 401 comes first.

    So is one given twice, one given empty (`?limit=`: DRF reads it as absent, and the answer
    would be that of another request) and one holding NUL (PostgreSQL refuses it). Checked
    here for every view at once; api/schema.py states the last two in the OpenAPI schema.
    """

    query_parameters: dict[str, frozenset[str]] = {}

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        method = (request.method or "").lower()
        if method == "options" or (not hasattr(self, method) and getattr(self, "action", None) is None):
            return  # OPTIONS describes the view; a method it does not serve is DRF's 405
        key = getattr(self, "action", None) or ("get" if method == "head" else method)
        known = self.query_parameters.get(key, frozenset())
        unknown = [name for name in request.query_params if name not in known]
        if unknown:
            message = UNKNOWN_PARAMETER.format(known=", ".join(sorted(known))) if known else NO_PARAMETERS
            raise serializers.ValidationError({name: [message] for name in unknown})
        repeated = [name for name, values in request.query_params.lists() if len(values) > 1]
        if repeated:  # which one would count is a guess: none does
            raise serializers.ValidationError({name: [PARAMETER_REPEATED] for name in repeated})
        blank = [name for name, value in request.query_params.items() if value == ""]
        if blank:  # an empty boolean gets the message that lists the values it takes
            raise serializers.ValidationError(
                {name: [SYNC_INVALID if name in BOOLEAN_PARAMETERS else BLANK_PARAMETER] for name in blank}
            )
        nul = [name for name, value in request.query_params.items() if "\x00" in value]
        if nul:
            raise serializers.ValidationError({name: [NULL_CHARACTER] for name in nul})


def parameters_of(
    *serializer_classes: type[serializers.Serializer], extra: tuple[str, ...] = ()
) -> frozenset[str]:
    """The query parameter names a view takes: its query serializers' fields and `extra`."""
    names: set[str] = {str(name) for cls in serializer_classes for name in cls().fields}
    return frozenset(names | set(extra))


def idempotency_from(request: Request) -> Idempotency | None:
    """The request's Idempotency-Key with a digest of what it asks, or None without one."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not (1 <= len(key) <= 255) or not key.isascii() or not key.isprintable():
        raise serializers.ValidationError({"Idempotency-Key": [IDEMPOTENCY_KEY_INVALID]})
    canonical = json.dumps(request.data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(
        f"{request.method} {request.path} sync={wants_sync(request)}\n{canonical}".encode()
    ).hexdigest()
    # Writes need a user (IsAuthenticated), so there is one here.
    return Idempotency(user_id=int(request.user.pk or 0), key=key, fingerprint=digest)


def respond(recorded: Recorded, status_code: int, body: Any, *, location: str | None = None) -> Response:
    """The answer to a write: the body the view built from what was recorded; a replay of an
    Idempotency-Key says so in Idempotent-Replayed."""
    headers = {}
    if location:
        headers["Location"] = location
    if recorded.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(body, status=status_code, headers=headers)
