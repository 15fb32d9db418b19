"""Monitoring's reads: their query parameters, the shapes of their answers and the bodies."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.fields import QueryDateTimeField, StrictCharField
from common.timestamps import iso_utc
from monitoring.metrics import METRICS, SERIES_METRICS, MetricValue
from monitoring.models import Prediction, Task
from monitoring.selectors import BUCKET_SIZES, Keyset, SeriesPoint, Window, bucket_count

MAX_WINDOW_PAIRS = 10_000_000
MAX_WINDOW_SECONDS = 2**31 - 1
MAX_SERIES_BUCKETS = 1000
# Pages of outputs, feedback and pairs.
DEFAULT_ROWS_LIMIT = 100
MAX_ROWS_LIMIT = 10_000

TASK_CURSOR = re.compile(r"(-?[0-9]{1,18})\.([0-9]{1,19})")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MICROSECOND = dt.timedelta(microseconds=1)

CURSOR_INVALID = "Not a cursor of this endpoint: give the one its next link carries."
WINDOW_EXCLUSIVE = "Give window_seconds or window_pairs, not both."
UNKNOWN_METRIC = "Unknown metric: {input}. Supported: " + ", ".join(METRICS) + "."
NOT_A_SERIES_METRIC = (
    "Not computable per bucket: {metric}. A series supports: " + ", ".join(SERIES_METRICS) + "."
)
END_NOT_AFTER_START = "Must be after start."
TOO_MANY_BUCKETS = "[start, end) holds {count:,} {bucket} buckets; at most {max:,}: narrow the range or choose a larger bucket."


def cursor_of(at: dt.datetime, row_id: int) -> str:
    """The cursor of a row: its time in microseconds since the epoch, a dot, its id."""
    return f"{(at - EPOCH) // MICROSECOND}.{row_id}"


@extend_schema_field({"type": "string", "pattern": "^-?[0-9]{1,18}\\.[0-9]{1,19}$"})
class TaskCursorField(StrictCharField):
    """A page's position, as the previous page's next link carries it."""

    def to_internal_value(self, data: Any) -> Keyset:  # type: ignore[override]
        text = super().to_internal_value(data)
        match = TASK_CURSOR.fullmatch(text)
        if match is None or int(match[2]) > 2**63 - 1:
            raise serializers.ValidationError(CURSOR_INVALID)
        try:
            at = EPOCH + int(match[1]) * MICROSECOND
        except OverflowError:
            raise serializers.ValidationError(CURSOR_INVALID) from None
        return at, int(match[2])


def window_seconds_field() -> serializers.IntegerField:
    return serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_WINDOW_SECONDS,
        help_text="Only what was logged in the last N seconds.",
    )


def window_pairs_field() -> serializers.IntegerField:
    return serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_WINDOW_PAIRS,
        help_text="Only the N pairs with the latest outputs (ties by id); at most 10,000,000.",
    )


class RowsQuerySerializer(serializers.Serializer):
    window_seconds = window_seconds_field()
    before = TaskCursorField(required=False, help_text="From a next link.")


class WindowQuerySerializer(serializers.Serializer):
    window_seconds = window_seconds_field()
    window_pairs = window_pairs_field()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "window_seconds" in attrs and "window_pairs" in attrs:
            raise serializers.ValidationError({"window_pairs": [WINDOW_EXCLUSIVE]})
        return attrs


class PairsQuerySerializer(WindowQuerySerializer):
    before = TaskCursorField(required=False, help_text="From a next link.")


def metric_field() -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=METRICS, error_messages={"invalid_choice": UNKNOWN_METRIC})


class MetricQuerySerializer(WindowQuerySerializer):
    metric = metric_field()


class SeriesMetricField(serializers.ChoiceField):
    """A metric a series computes: the schema lists only those; a metric computed over a
    window only is refused with a message that says so."""

    def __init__(self) -> None:
        super().__init__(choices=SERIES_METRICS, error_messages={"invalid_choice": UNKNOWN_METRIC})

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and data in METRICS and data not in SERIES_METRICS:
            raise serializers.ValidationError(NOT_A_SERIES_METRIC.format(metric=data))
        return super().to_internal_value(data)


class SeriesQuerySerializer(serializers.Serializer):
    metric = SeriesMetricField()
    bucket = serializers.ChoiceField(choices=list(BUCKET_SIZES))
    start = QueryDateTimeField(help_text="Inclusive; ISO 8601, UTC without a zone.")
    end = QueryDateTimeField(help_text="Exclusive; ISO 8601, UTC without a zone.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": [END_NOT_AFTER_START]})
        count = bucket_count(bucket=attrs["bucket"], start=attrs["start"], end=attrs["end"])
        if count > MAX_SERIES_BUCKETS:
            message = TOO_MANY_BUCKETS.format(count=count, bucket=attrs["bucket"], max=MAX_SERIES_BUCKETS)
            raise serializers.ValidationError({"bucket": [message]})
        return attrs


def window_of(query: dict[str, Any]) -> Window:
    """The window a validated query names."""
    return Window(seconds=query.get("window_seconds"), pairs=query.get("window_pairs"))


# --- answers --------------------------------------------------------------------------------


class TaskSerializer(serializers.Serializer):
    name = serializers.CharField()
    created_at = serializers.DateTimeField()
    outputs = serializers.IntegerField(help_text="Identifiers with an output.")
    feedback = serializers.IntegerField(help_text="Identifiers with feedback.")
    pairs = serializers.IntegerField(help_text="Identifiers with both.")
    feedback_share = serializers.FloatField(
        allow_null=True, help_text="pairs / outputs; null without outputs."
    )
    last_output_at = serializers.DateTimeField(allow_null=True)


class TaskPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = TaskSerializer(many=True)


class ValueRowSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField()
    identifier = serializers.CharField()
    value = serializers.FloatField()


class ValuePageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    results = ValueRowSerializer(many=True)


class PairSerializer(serializers.Serializer):
    identifier = serializers.CharField()
    output = serializers.FloatField()
    feedback = serializers.FloatField()
    output_at = serializers.DateTimeField()
    feedback_at = serializers.DateTimeField()


class PairPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    results = PairSerializer(many=True)


@extend_schema_field(
    {
        "oneOf": [
            # null (all pairs) is allowed by the first alternative alone: one of them matches.
            {
                "type": "object",
                "properties": {"seconds": {"type": "integer"}},
                "required": ["seconds"],
                "nullable": True,
            },
            {"type": "object", "properties": {"pairs": {"type": "integer"}}, "required": ["pairs"]},
        ],
        "description": "The window asked for; null: all pairs.",
    }
)
class WindowField(serializers.Field):
    pass


@extend_schema_field(
    {
        "oneOf": [
            {"type": "number", "nullable": True},  # null matches this alternative alone
            {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
        ],
        "description": "The metric; confusion_matrix: rows by feedback, columns by output, in the order "
        "of labels; null with a reason when the metric is undefined on the pairs.",
    }
)
class MetricValueField(serializers.Field):
    pass


class MetricSerializer(serializers.Serializer):
    task = serializers.CharField()
    metric = serializers.ChoiceField(choices=METRICS)
    value = MetricValueField()
    pairs = serializers.IntegerField(help_text="Pairs in the window.")
    window = WindowField()
    labels = serializers.ListField(
        child=serializers.FloatField(), required=False, help_text="confusion_matrix only: the sorted labels."
    )
    reason = serializers.CharField(required=False, help_text="Why value is null.")


class SeriesPointSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    value = serializers.FloatField(allow_null=True)
    pairs = serializers.IntegerField()
    reason = serializers.CharField(required=False, help_text="Why value is null.")


class SeriesSerializer(serializers.Serializer):
    task = serializers.CharField()
    metric = serializers.ChoiceField(choices=SERIES_METRICS)
    bucket = serializers.ChoiceField(choices=list(BUCKET_SIZES))
    results = SeriesPointSerializer(many=True)


def task_body(task: Task) -> dict[str, Any]:
    """A task as the API answers it."""
    return {
        "name": task.name,
        "created_at": iso_utc(task.created_at),
        "outputs": task.output_count,
        "feedback": task.feedback_count,
        "pairs": task.pair_count,
        "feedback_share": task.pair_count / task.output_count if task.output_count else None,
        "last_output_at": iso_utc(task.last_output_at),
    }


def output_body(row: Prediction) -> dict[str, Any]:
    """An output of the outputs page."""
    return {"timestamp": iso_utc(row.output_at), "identifier": row.identifier, "value": row.output}


def feedback_body(row: Prediction) -> dict[str, Any]:
    """A feedback of the feedback page."""
    return {"timestamp": iso_utc(row.feedback_at), "identifier": row.identifier, "value": row.feedback}


def pair_body(row: Prediction) -> dict[str, Any]:
    """A pair of the pairs page."""
    return {
        "identifier": row.identifier,
        "output": row.output,
        "feedback": row.feedback,
        "output_at": iso_utc(row.output_at),
        "feedback_at": iso_utc(row.feedback_at),
    }


def _value_fields(value: MetricValue) -> dict[str, Any]:
    body: dict[str, Any] = {"value": value.value, "pairs": value.pairs}
    if value.labels is not None:
        body["labels"] = value.labels
    if value.reason is not None:
        body["reason"] = value.reason
    return body


def metric_body(task: str, metric: str, window: Window, value: MetricValue) -> dict[str, Any]:
    """The metrics answer: the metric over the window, with its labels or the reason it is null."""
    shown = (
        {"seconds": window.seconds} if window.seconds else {"pairs": window.pairs} if window.pairs else None
    )
    return {"task": task, "metric": metric, **_value_fields(value), "window": shown}


def series_body(task: str, metric: str, bucket: str, points: list[SeriesPoint]) -> dict[str, Any]:
    """The series answer: one entry per non-empty bucket."""
    results = [{"start": iso_utc(point.start), **_value_fields(point.metric)} for point in points]
    return {"task": task, "metric": metric, "bucket": bucket, "results": results}
