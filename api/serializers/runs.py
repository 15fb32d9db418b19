"""Input and output shapes of the run, lineage and queue endpoints.

Input serializers validate everything checkable from the payload alone and return the
normalized payload that is stored with the accepted write and later committed. Output
serializers document the shapes for the OpenAPI schema; the dicts themselves are built by
the `*_to_dict` functions here, which stay cheap for traces of thousands of runs.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers
from rest_framework.fields import empty

from api.fields import (
    UNKNOWN_FIELD,
    CaseInsensitiveChoiceField,
    InputSerializer,
    QueryDateTimeField,
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
    Write,
)

END_BEFORE_START = "end_timestamp must not be earlier than start_timestamp."
POINTER_SHAPE = "Expected a pointer name (string) or an object with name, value and pointer_type."
NULL_CHARACTER = "Null characters (\\u0000) are not allowed."
TOO_DEEP_FIELD = "Nested more than {limit} levels of arrays and objects."
BATCH_TOO_MANY_POINTERS = (
    "A batch holds at most {limit} pointers (the inputs and outputs of all its runs); this one holds {count}."
)


def infer_pointer_type(name: str) -> str:
    """mltrace's inference of a pointer's type from its name, case-insensitive."""
    lowered = name.lower()
    if "data" in lowered:
        return PointerType.DATA
    if "model" in lowered:
        return PointerType.MODEL
    extension = lowered.split(".")[-1]
    if extension in ("csv", "pq", "parquet", "txt", "md", "rtf", "tsv", "xml", "pdf", "mlt"):
        return PointerType.DATA
    if extension in ("h5", "hdf5", "joblib", "pkl", "pickle", "ckpt", "mlmodel"):
        return PointerType.MODEL
    return PointerType.UNKNOWN


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


def run_payload(validated: dict[str, Any]) -> dict[str, Any]:
    """The JSON-storable payload of a validated run: timestamps as UTC ISO strings."""
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


class PointerSerializer(serializers.Serializer):
    name = StrictCharField()
    value = StrictCharField()
    pointer_type = serializers.ChoiceField(choices=PointerType.choices)
    flag = serializers.BooleanField()


class RunSerializer(serializers.Serializer):
    """A run. A queued write shows only id and status; a failed one adds its error."""

    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Write.Status.choices)
    error = StrictCharField(allow_null=True)
    component = StrictCharField()
    start_timestamp = serializers.DateTimeField()
    end_timestamp = serializers.DateTimeField()
    inputs = PointerSerializer(many=True)
    outputs = PointerSerializer(many=True)
    dependencies = serializers.ListField(child=serializers.IntegerField(), help_text="Run ids, ascending.")
    stale = serializers.ListField(child=StrictCharField(), help_text="Staleness messages.")
    unresolved_dependencies = serializers.ListField(child=StrictCharField())
    notes = StrictCharField()
    git_hash = StrictCharField()
    git_tags = serializers.ListField(child=StrictCharField())
    code_snapshot = StrictCharField()
    test_results = serializers.JSONField(allow_null=True)
    created_at = serializers.DateTimeField(help_text="When the write was accepted.")


class PendingRunSerializer(serializers.Serializer):
    """A run write not committed yet: queued, or failed with its error."""

    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Write.Status.choices, help_text="queued or failed.")
    error = StrictCharField(required=False, help_text="Failed writes only: why the commit failed.")
    component = StrictCharField(required=False)
    start_timestamp = serializers.DateTimeField(required=False)
    end_timestamp = serializers.DateTimeField(required=False)
    created_at = serializers.DateTimeField(help_text="When the write was accepted.")


class RunAcceptedSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The accepted write's id; the run keeps it.")
    status = serializers.ChoiceField(choices=Write.Status.choices)


class RunBatchAcceptedSerializer(serializers.Serializer):
    runs = RunAcceptedSerializer(many=True)


class RunBatchCommittedSerializer(serializers.Serializer):
    runs = RunSerializer(many=True)


MAX_BIGINT = 2**63 - 1
UNFLAG_NEEDS_TARGET = 'Give "output_id", or "all": true.'
UNFLAG_TWO_TARGETS = 'Give "output_id" or "all": true, not both.'


class RunPageQuerySerializer(serializers.Serializer):
    before = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_BIGINT, help_text="Only runs after this run in the list."
    )
    after = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_BIGINT, help_text="Only runs before this run in the list."
    )


class RunListQuerySerializer(RunPageQuerySerializer):
    component = StrictCharField(required=False)


class HistoryQuerySerializer(RunPageQuerySerializer):
    date_lower = QueryDateTimeField(required=False, help_text="Inclusive; ISO 8601, UTC without a zone.")
    date_upper = QueryDateTimeField(required=False, help_text="Inclusive; ISO 8601, UTC without a zone.")


class TraceQuerySerializer(serializers.Serializer):
    output_id = StrictCharField(max_length=POINTER_NAME_MAX_LENGTH)
    depth = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    format = serializers.ChoiceField(choices=["json", "tree"], required=False, default="json")


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


class FlagResultSerializer(serializers.Serializer):
    output_id = StrictCharField(required=False)
    flag = serializers.BooleanField(help_text="The flag the pointers now carry.")
    pointers = serializers.IntegerField(help_text="How many pointers changed or were set.")


class TraceNodeSerializer(serializers.Serializer):
    depth = serializers.IntegerField(help_text="Hops from the root on the shortest path.")
    run = RunSerializer()


class WebTraceNodeSerializer(serializers.Serializer):
    """A node of format=tree: a run (componentrun_{id}) or one of its outputs (iopointer_{name})."""

    id = serializers.CharField(help_text='"componentrun_{id}" or "iopointer_{name}".')
    # (label, parent and run: declared fields that the stubs take for Field's own attributes)
    label = serializers.CharField(help_text="The run's component, or the pointer's name.")  # type: ignore[assignment]
    hasCaret = serializers.BooleanField(help_text="true for runs, false for output pointers.")  # noqa: N815
    isExpanded = serializers.BooleanField(required=False, help_text="Runs only: true.")  # noqa: N815
    stale = serializers.ListField(child=serializers.CharField(), required=False, help_text="Runs only.")
    parent = serializers.CharField(required=False, help_text="Pointers only: the id of their run's node.")  # type: ignore[assignment]
    icon = serializers.ChoiceField(
        ["database", "function", "flow-end"],
        required=False,
        help_text="Pointers only, by type: DATA database, MODEL function, ENDPOINT flow-end.",
    )
    childNodes = serializers.ListField(  # noqa: N815
        child=serializers.DictField(),
        required=False,
        help_text="Runs only: output pointers sorted by name, then dependencies by ascending id, "
        "nodes of this same shape. A run met again through another path has none.",
    )


class TraceSerializer(serializers.Serializer):
    output_id = StrictCharField()
    root = serializers.IntegerField()  # type: ignore[assignment]  # a declared field, not Field.root
    nodes = TraceNodeSerializer(many=True, help_text="Depth-first pre-order, dependencies in ascending id.")
    edges = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField(), min_length=2, max_length=2),
        help_text="[run id, id of the run it depends on], both in nodes.",
    )


CURSOR_INVALID = "Not a cursor of this endpoint: give the one its next link carries."
IMPACT_CURSOR = re.compile(r"([0-9]{1,9})\.([0-9]{1,18})")


@extend_schema_field({"type": "string", "pattern": "^[0-9]{1,9}\\.[0-9]{1,18}$"})
class ImpactCursorField(StrictCharField):
    """A page's position: "{depth}.{run id}" of the last run of the page before."""

    def to_internal_value(self, data: Any) -> tuple[int, int]:  # type: ignore[override]
        text = super().to_internal_value(data)
        match = IMPACT_CURSOR.fullmatch(text)
        if match is None:
            raise serializers.ValidationError(CURSOR_INVALID)
        return int(match[1]), int(match[2])


class RunImpactQuerySerializer(serializers.Serializer):
    depth = serializers.IntegerField(
        required=False, min_value=0, max_value=2**31 - 1, help_text="At most N hops."
    )
    cursor = ImpactCursorField(required=False, help_text="From a next link.")


class ImpactQuerySerializer(RunImpactQuerySerializer):
    output_id = StrictCharField(max_length=POINTER_NAME_MAX_LENGTH)


class ImpactOutputsSerializer(serializers.Serializer):
    DATA = serializers.IntegerField()
    MODEL = serializers.IntegerField()
    ENDPOINT = serializers.IntegerField()
    UNKNOWN = serializers.IntegerField()


class ImpactSerializer(serializers.Serializer):
    output_id = StrictCharField(required=False, help_text="GET /api/v1/impact/ only.")
    run = serializers.IntegerField(required=False, help_text="GET /api/v1/runs/{id}/impact/ only.")
    nodes = TraceNodeSerializer(
        many=True, help_text="Each run once at its shortest depth (hops), by depth then id; paged."
    )
    edges = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField(), min_length=2, max_length=2),
        help_text="[run id, id of the run it depends on]: the listed runs' dependencies that are downstream too.",
    )
    outputs = ImpactOutputsSerializer(
        allow_null=True,
        help_text="Distinct pointers output by every downstream run, by type: on the first page; null on the pages after.",
    )
    next = serializers.CharField(allow_null=True)


class ReviewRunSerializer(serializers.Serializer):
    run = RunSerializer()
    count = serializers.IntegerField(help_text="Flagged outputs whose trace holds this run.")


class ReviewSerializer(serializers.Serializer):
    flagged = serializers.ListField(child=StrictCharField(), help_text="Flagged output names, sorted.")
    runs = ReviewRunSerializer(many=True, help_text="By count descending, then id descending.")


@extend_schema_serializer(many=False)  # a page, though list views answer it: not an array of pages
class RunPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = RunSerializer(many=True)


class QueueSerializer(serializers.Serializer):
    pending = serializers.IntegerField(help_text="Accepted writes not committed yet.")
    failed = serializers.IntegerField(
        help_text="Writes whose commit failed; manage.py retry_failed requeues them."
    )
    oldest_pending_id = serializers.IntegerField(
        allow_null=True,
        help_text="Id of the oldest pending write; null when none. Writes are committed in id "
        "order, so every lower id is committed or failed.",
    )
    oldest_pending_age_seconds = serializers.FloatField(
        allow_null=True, help_text="Seconds the oldest pending write has waited; null when none."
    )
