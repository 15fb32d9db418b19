"""POST /api/v1/tasks/{task}/flag/: its body (a window and what disagreeing means) and its answer."""

from __future__ import annotations

import math
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.fields import InputSerializer, StrictBooleanField, StrictIntegerField
from api.serializers.task_reads import MAX_WINDOW_PAIRS, MAX_WINDOW_SECONDS, WINDOW_EXCLUSIVE, WindowField
from monitoring.selectors import MAX_FLAG_OUTPUTS, Disagreement, Window

# The flagged names an answer lists, at most.
MAX_LISTED_OUTPUTS = 100

NEEDS_A_CRITERION = (
    'Give "mismatch": true (classification: output != feedback) or "threshold": X '
    "(regression: |feedback - output| > X)."
)
CRITERIA_EXCLUSIVE = 'Give "mismatch" or "threshold", not both.'
MISMATCH_NOT_TRUE = 'Must be true; for a regression task give "threshold" instead.'
NOT_A_THRESHOLD = "Must be a finite number at least 0."


@extend_schema_field({"type": "number", "minimum": 0})
class ThresholdField(serializers.Field):
    """A finite JSON number >= 0 (not a boolean, not a string)."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise serializers.ValidationError(NOT_A_THRESHOLD)
        try:
            number = float(data)
        except OverflowError:  # an integer beyond a double's range
            raise serializers.ValidationError(NOT_A_THRESHOLD) from None
        if not math.isfinite(number) or number < 0:
            raise serializers.ValidationError(NOT_A_THRESHOLD)
        return number

    def to_representation(self, value: Any) -> Any:
        return value


class TaskFlagSerializer(InputSerializer):
    window_seconds = StrictIntegerField(
        required=False,
        min_value=1,
        max_value=MAX_WINDOW_SECONDS,
        help_text="Only the pairs whose output was logged in the last N seconds.",
    )
    window_pairs = StrictIntegerField(
        required=False,
        min_value=1,
        max_value=MAX_WINDOW_PAIRS,
        help_text="Only the N pairs with the latest outputs (ties by id). Neither window: every pair.",
    )
    mismatch = StrictBooleanField(
        required=False, help_text="true: a pair disagrees when output != feedback (classification)."
    )
    threshold = ThresholdField(
        required=False,
        help_text="A pair disagrees when |feedback - output| > threshold (regression); finite, at least 0.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "window_seconds" in attrs and "window_pairs" in attrs:
            raise serializers.ValidationError({"window_pairs": [WINDOW_EXCLUSIVE]})
        if "mismatch" in attrs and "threshold" in attrs:
            raise serializers.ValidationError({"threshold": [CRITERIA_EXCLUSIVE]})
        if "mismatch" not in attrs and "threshold" not in attrs:
            raise serializers.ValidationError({"mismatch": [NEEDS_A_CRITERION]})
        if attrs.get("mismatch") is False:
            raise serializers.ValidationError({"mismatch": [MISMATCH_NOT_TRUE]})
        return attrs


def disagreement_of(body: dict[str, Any]) -> Disagreement:
    """What disagreeing means for a validated body."""
    if body.get("mismatch"):
        return Disagreement(mismatch=True)
    return Disagreement(threshold=body["threshold"])


class TaskFlagResultSerializer(serializers.Serializer):
    task = serializers.CharField()
    window = WindowField()
    disagreeing = serializers.IntegerField(
        help_text=f"Pairs in the window that disagree (at most {MAX_FLAG_OUTPUTS:,}; more is a 400)."
    )
    flagged = serializers.IntegerField(help_text="Pointers flagged by this call.")
    already_flagged = serializers.IntegerField(
        help_text="Pointers named by a disagreeing identifier that were flagged already."
    )
    not_pointers = serializers.IntegerField(
        help_text="Disagreeing identifiers that name no pointer: counted, nothing flagged."
    )
    outputs = serializers.ListField(
        child=serializers.CharField(),
        help_text=f"The names whose pointers this call flagged, newest output first; the first "
        f"{MAX_LISTED_OUTPUTS}.",
    )


def task_flag_body(
    task: str,
    window: Window,
    disagreeing: int,
    flagged: int,
    already: int,
    not_pointers: int,
    names: list[str],
) -> dict[str, Any]:
    """The answer of a task's flag."""
    shown = (
        {"seconds": window.seconds} if window.seconds else {"pairs": window.pairs} if window.pairs else None
    )
    return {
        "task": task,
        "window": shown,
        "disagreeing": disagreeing,
        "flagged": flagged,
        "already_flagged": already,
        "not_pointers": not_pointers,
        "outputs": names[:MAX_LISTED_OUTPUTS],
    }
