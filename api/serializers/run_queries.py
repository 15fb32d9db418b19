"""Query parameters of the run, history, trace and impact endpoints.

Each serializer validates a request's query string; the views read its validated data and
document the parameters in the OpenAPI schema from it.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.fields import QueryDateTimeField, StrictCharField
from runs.models import POINTER_NAME_MAX_LENGTH

MAX_BIGINT = 2**63 - 1
CURSOR_INVALID = "Not a cursor of this endpoint: give the one its next link carries."
IMPACT_CURSOR = re.compile(r"([0-9]{1,9})\.([0-9]{1,18})")


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
