"""What a client sends to log a task's outputs or feedback, and what the write stores.

A request's items are checked here, whole, before anything is recorded: a 400 names the
failing index and field ({"outputs": {"3": {"value": [...]}}}). The items are read by hand, not
by a serializer per item: a request holds up to MLTRACE_MAX_BATCH_OUTPUTS (10,000) of them, and
DRF's fields cost tens of microseconds each. `task_write_payload` makes the compact payload the
write stores and ingest/predictions.py reads: {"task": name, "items": [[identifier, value,
timestamp or None], ...]}.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.fields import NOT_A_STRING, UNKNOWN_FIELD, InputSerializer
from api.serializers.runs import NULL_CHARACTER
from monitoring.models import IDENTIFIER_MAX_LENGTH, TASK_NAME_MAX_LENGTH
from runs.models import Write

TASK_NAME_SLASH = 'A task name may not contain "/": it is a segment of the URL path.'
TASK_NAME_TOO_LONG = f"A task name is at most {TASK_NAME_MAX_LENGTH} characters."
ITEM_NOT_AN_OBJECT = "Expected an object with identifier, value and, optionally, timestamp."
ITEMS_NOT_A_LIST = "Expected a list of objects with identifier, value and, optionally, timestamp."
ITEMS_COUNT = "A request holds 1 to {limit} items; this one holds {count}."
REQUIRED = "This field is required."
BLANK = "This field may not be blank."
IDENTIFIER_TOO_LONG = f"Ensure this field has no more than {IDENTIFIER_MAX_LENGTH} characters."
NOT_A_FINITE_NUMBER = "Expected a finite number."

ITEM_FIELDS = frozenset({"identifier", "value", "timestamp"})
# The body's key for each kind of write: {"outputs": [...]} or {"feedback": [...]}.
ITEMS_KEY: dict[str, str] = {Write.Kind.OUTPUT: "outputs", Write.Kind.FEEDBACK: "feedback"}


def task_name_validated(name: str) -> str:
    """The task name of a URL, as sent; raises ValidationError naming "task" (no "/", no NUL,
    1-255 characters: the route gives at least one)."""
    if "/" in name:
        raise serializers.ValidationError({"task": [TASK_NAME_SLASH]})
    if "\x00" in name:
        raise serializers.ValidationError({"task": [NULL_CHARACTER]})
    if len(name) > TASK_NAME_MAX_LENGTH:
        raise serializers.ValidationError({"task": [TASK_NAME_TOO_LONG]})
    return name


# One DateTimeField reads every timestamp: ISO 8601, without a zone UTC (TIME_ZONE), as runs'.
_timestamp_field = serializers.DateTimeField()


def _identifier_errors(identifier: Any) -> list[str]:
    if not isinstance(identifier, str):
        return [NOT_A_STRING]
    if not identifier:
        return [BLANK]
    if len(identifier) > IDENTIFIER_MAX_LENGTH:
        return [IDENTIFIER_TOO_LONG]
    if "\x00" in identifier:
        return [NULL_CHARACTER]
    return []


def _finite(value: Any) -> float | None:
    """value as a float if it is a finite JSON number (not a bool, not a string), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond a float's range
        return None
    return number if math.isfinite(number) else None


def _item(item: Any) -> tuple[list[Any] | None, dict[str, Any]]:
    """One item as stored ([identifier, value, UTC ISO timestamp or None]) and its errors by field."""
    if not isinstance(item, dict):
        return None, {"non_field_errors": [ITEM_NOT_AN_OBJECT]}
    errors: dict[str, Any] = {key: [UNKNOWN_FIELD] for key in item if key not in ITEM_FIELDS}
    identifier = item.get("identifier")
    if "identifier" not in item:
        errors["identifier"] = [REQUIRED]
    elif problems := _identifier_errors(identifier):
        errors["identifier"] = problems
    value = _finite(item.get("value"))
    if "value" not in item:
        errors["value"] = [REQUIRED]
    elif value is None:
        errors["value"] = [NOT_A_FINITE_NUMBER]
    timestamp = None
    if item.get("timestamp") is not None:
        try:
            read: dt.datetime = _timestamp_field.run_validation(item["timestamp"])
        except serializers.ValidationError as exc:
            errors["timestamp"] = exc.detail
        else:
            timestamp = read.astimezone(dt.UTC).isoformat()
    if errors:
        return None, errors
    return [identifier, value, timestamp], {}


@extend_schema_field(
    {
        "type": "array",
        "minItems": 1,
        "maxItems": settings.MLTRACE_MAX_BATCH_OUTPUTS,
        "items": {
            "type": "object",
            "properties": {
                "identifier": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": IDENTIFIER_MAX_LENGTH,
                    "description": "What the value is about (a request id, a row key); an output "
                    "and its feedback meet by it. A repeated identifier replaces: the last one wins.",
                },
                "value": {"type": "number", "description": "A finite number (not a boolean)."},
                "timestamp": {
                    "type": "string",
                    "format": "date-time",
                    "nullable": True,
                    "description": "ISO 8601, without a zone UTC; default: when the write was accepted.",
                },
            },
            "required": ["identifier", "value"],
            "additionalProperties": False,
        },
    }
)
class TaskItemsField(serializers.Field):
    """1 to MLTRACE_MAX_BATCH_OUTPUTS items, each [identifier, value, timestamp or None] once
    valid; a 400 names each failing index and field."""

    def to_internal_value(self, data: Any) -> list[list[Any]]:
        if not isinstance(data, list):
            raise serializers.ValidationError([ITEMS_NOT_A_LIST])
        limit = settings.MLTRACE_MAX_BATCH_OUTPUTS
        if not 1 <= len(data) <= limit:
            raise serializers.ValidationError([ITEMS_COUNT.format(limit=limit, count=len(data))])
        items, errors = [], {}
        for index, item in enumerate(data):
            stored, problems = _item(item)
            if stored is None:
                errors[str(index)] = problems
            else:
                items.append(stored)
        if errors:
            raise serializers.ValidationError(errors)
        return items

    def to_representation(self, value: Any) -> Any:
        return value


class TaskOutputsSerializer(InputSerializer):
    outputs = TaskItemsField(
        help_text="The task's outputs (predictions): at most MLTRACE_MAX_BATCH_OUTPUTS (10,000); "
        "a 400 names the failing indexes, and nothing is written."
    )


class TaskFeedbackSerializer(InputSerializer):
    feedback = TaskItemsField(
        help_text="The feedback (ground truth) that answers outputs of the same identifiers: at most "
        "MLTRACE_MAX_BATCH_OUTPUTS (10,000); a 400 names the failing indexes, and nothing is written."
    )


def task_write_payload(task: str, items: list[list[Any]]) -> dict[str, Any]:
    """The payload an output or feedback write stores: the task's name and its validated items."""
    return {"task": task, "items": items}


class TaskWriteAnswerSerializer(serializers.Serializer):
    """The answer to an output or feedback write (for the OpenAPI schema)."""

    id = serializers.IntegerField(help_text="The write's id: one request is one write.")
    status = serializers.ChoiceField(
        choices=[Write.Status.QUEUED, Write.Status.COMMITTED], help_text="queued (202), or committed (201)."
    )
    task = serializers.CharField()
    count = serializers.IntegerField(help_text="The items the write holds.")
