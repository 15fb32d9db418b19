"""What a client sends to write a run: a run, a batch of runs, a notes edit, a flag or unflag.

Each serializer validates everything checkable from the request body alone; a 400 names
the failing fields (and, in a batch, the failing indexes). `run_write_payload` turns a
validated run into the payload its accepted write stores and the commit reads. The plain
runs' faster path to that same payload is api/serializers/plain_runs.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from api.fields import (
    UNKNOWN_FIELD,
    CaseInsensitiveChoiceField,
    InputSerializer,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
)
from api.parsers import json_depth, json_strings
from api.serializers.components import ComponentNameField, unique_in_order
from runs.models import (
    DEFAULT_STALENESS_THRESHOLD,
    GIT_HASH_MAX_LENGTH,
    POINTER_NAME_MAX_LENGTH,
    PointerType,
    infer_pointer_type,
)

END_BEFORE_START = "end_timestamp must not be earlier than start_timestamp."
POINTER_SHAPE = "Expected a pointer name (string) or an object with name, value and pointer_type."
NULL_CHARACTER = "Null characters (\\u0000) are not allowed."
TOO_DEEP_FIELD = "Nested more than {limit} levels of arrays and objects."
BATCH_TOO_MANY_POINTERS = (
    "A batch holds at most {limit} pointers (the inputs and outputs of all its runs); this one holds {count}."
)


def has_null_character(value: Any) -> bool:
    """Whether any string of a JSON value (keys included) holds a NUL, which jsonb refuses."""
    return any("\x00" in text for text in json_strings(value))


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "maxLength": POINTER_NAME_MAX_LENGTH, "minLength": 1},
            {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": POINTER_NAME_MAX_LENGTH, "minLength": 1},
                    "value": {"type": "string", "default": ""},
                    "pointer_type": {"type": "string", "enum": PointerType.values},
                },
                "required": ["name"],
                "additionalProperties": False,
            },
        ],
        "description": "A pointer name, or {name, value, pointer_type}; the type is inferred "
        "from the name when absent.",
    }
)
class PointerField(serializers.Field):
    """An IO pointer: a name, or {"name", "value", "pointer_type"}.

    The type, when absent, is inferred from the name now; it applies only if the commit
    creates the pointer (an existing (name, value) keeps its type, as in mltrace).
    """

    default_error_messages = {"invalid": POINTER_SHAPE}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Built once: a serializer per pointer would deep-copy its fields thousands of times
        # for one batch.
        self.parts: dict[str, serializers.Field] = {
            "name": StrictCharField(max_length=POINTER_NAME_MAX_LENGTH),
            "value": StrictCharField(required=False, allow_blank=True, default=""),
            "pointer_type": CaseInsensitiveChoiceField(
                choices=PointerType.choices, required=False, default=""
            ),
        }

    def to_internal_value(self, data: Any) -> dict[str, str]:
        if isinstance(data, str):
            data = {"name": data}
        elif not isinstance(data, dict):
            self.fail("invalid")
        pointer: dict[str, Any] = {}
        errors: dict[str, Any] = {key: [UNKNOWN_FIELD] for key in data if key not in self.parts}
        for key, part in self.parts.items():
            try:
                pointer[key] = part.run_validation(data.get(key, empty))
            except serializers.ValidationError as exc:
                errors[key] = exc.detail
        if errors:
            raise serializers.ValidationError(errors)
        return {
            "name": pointer["name"],
            "value": pointer["value"],
            "pointer_type": pointer["pointer_type"] or infer_pointer_type(pointer["name"]),
        }

    def to_representation(self, value: Any) -> Any:
        return value


class PointerListField(serializers.ListField):
    child = PointerField()

    def to_internal_value(self, data: Any) -> list[dict[str, str]]:
        pointers = super().to_internal_value(data)
        # A run lists a pointer once, however often it was sent (mltrace keeps a set).
        unique: dict[tuple[str, str], dict[str, str]] = {}
        for pointer in pointers:
            unique.setdefault((pointer["name"], pointer["value"]), pointer)
        return list(unique.values())


class DependencyListField(serializers.ListField):
    child = ComponentNameField()

    def to_internal_value(self, data: Any) -> list[str]:
        return unique_in_order(super().to_internal_value(data))


class RunCreateSerializer(InputSerializer):
    component = ComponentNameField(help_text="Created if missing (empty description).")
    start_timestamp = serializers.DateTimeField(help_text="ISO 8601; without a zone it is UTC.")
    end_timestamp = serializers.DateTimeField(help_text="ISO 8601; not earlier than start_timestamp.")
    inputs = PointerListField(required=False, default=list, max_length=settings.MLTRACE_MAX_POINTERS_PER_RUN)
    outputs = PointerListField(required=False, default=list, max_length=settings.MLTRACE_MAX_POINTERS_PER_RUN)
    dependencies = DependencyListField(
        required=False, default=list, help_text="Component names; upstream is each one's latest earlier run."
    )
    infer_dependencies = StrictBooleanField(
        required=False, default=True, help_text="Upstream includes the latest earlier producer of each input."
    )
    staleness_threshold = StrictIntegerField(
        required=False,
        default=DEFAULT_STALENESS_THRESHOLD,
        min_value=0,
        max_value=2**53,
        help_text="Seconds; a dependency older than this is reported stale.",
    )
    notes = StrictCharField(required=False, allow_blank=True, default="")
    git_hash = StrictCharField(
        required=False, allow_blank=True, default="", max_length=GIT_HASH_MAX_LENGTH, trim_whitespace=False
    )
    git_tags = serializers.ListField(child=StrictCharField(max_length=255), required=False, default=list)
    code_snapshot = StrictCharField(required=False, allow_blank=True, default="")
    test_results = serializers.JSONField(required=False, allow_null=True, default=None)

    def validate_test_results(self, value: Any) -> Any:
        if has_null_character(value):
            raise serializers.ValidationError(NULL_CHARACTER)
        if json_depth(value) > settings.MLTRACE_MAX_JSON_DEPTH:
            raise serializers.ValidationError(TOO_DEEP_FIELD.format(limit=settings.MLTRACE_MAX_JSON_DEPTH))
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["end_timestamp"] < attrs["start_timestamp"]:
            raise serializers.ValidationError({"end_timestamp": [END_BEFORE_START]})
        return attrs


def run_write_payload(validated: dict[str, Any]) -> dict[str, Any]:
    """The payload a run's accepted write stores: the validated run, timestamps as UTC ISO strings."""
    payload = dict(validated)
    for key in ("start_timestamp", "end_timestamp"):
        payload[key] = validated[key].astimezone(dt.UTC).isoformat()
    return payload


def pointers_in(runs: Any) -> int:
    """Inputs and outputs of a batch's runs (or OpenLineage events) as sent; shapes are
    checked later, one by one."""
    if not isinstance(runs, list):
        return 0
    return sum(
        len(run[key])
        for run in runs
        if isinstance(run, dict)
        for key in ("inputs", "outputs")
        if isinstance(run.get(key), list)
    )


class RunListSerializer(serializers.ListSerializer):
    """Validates a batch with one child serializer and names the failing indexes."""

    def to_internal_value(self, data: Any) -> list[dict[str, Any]]:
        # Counted before any run is validated: a batch of a million pointers would cost a web
        # worker seconds and hundreds of MB before it could be refused.
        pointers = pointers_in(data)
        if pointers > settings.MLTRACE_MAX_BATCH_POINTERS:
            raise serializers.ValidationError(
                [BATCH_TOO_MANY_POINTERS.format(limit=settings.MLTRACE_MAX_BATCH_POINTERS, count=pointers)]
            )
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if isinstance(exc.detail, list):
                raise serializers.ValidationError(
                    {str(index): errors for index, errors in enumerate(exc.detail) if errors}
                ) from None
            raise


class RunBatchSerializer(InputSerializer):
    runs = RunListSerializer(
        child=RunCreateSerializer(),
        allow_empty=False,
        min_length=1,
        max_length=settings.MLTRACE_MAX_BATCH_RUNS,
        help_text=(
            "At most MLTRACE_MAX_BATCH_RUNS (1,000) runs and MLTRACE_MAX_BATCH_POINTERS (100,000) inputs "
            "and outputs in all; a 400 names the failing indexes."
        ),
    )


class RunUpdateSerializer(InputSerializer):
    notes = StrictCharField(allow_blank=True)


UNFLAG_NEEDS_TARGET = 'Give "output_id", or "all": true.'
UNFLAG_TWO_TARGETS = 'Give "output_id" or "all": true, not both.'


class FlagSerializer(InputSerializer):
    output_id = StrictCharField(max_length=POINTER_NAME_MAX_LENGTH)
    downstream = StrictBooleanField(
        required=False,
        default=False,
        help_text="true: also every output of every run downstream of it (GET /api/v1/impact/).",
    )


class UnflagSerializer(InputSerializer):
    output_id = StrictCharField(required=False, max_length=POINTER_NAME_MAX_LENGTH, trim_whitespace=False)
    all = StrictBooleanField(required=False, default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("output_id") and not attrs["all"]:
            raise serializers.ValidationError({"output_id": [UNFLAG_NEEDS_TARGET]})
        if attrs.get("output_id") and attrs["all"]:
            raise serializers.ValidationError({"all": [UNFLAG_TWO_TARGETS]})
        return attrs
