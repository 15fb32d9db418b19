"""Serializer fields that refuse mistyped JSON instead of coercing it.

DRF's CharField turns 5 into "5" and its IntegerField turns "5" into 5; a lineage record
should hold what the client meant, so a wrong JSON type is a 400.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

NOT_A_STRING = "Must be a string."
NOT_AN_INTEGER = "Must be an integer."


class StrictCharField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError(NOT_A_STRING, code="invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise serializers.ValidationError(NOT_AN_INTEGER, code="invalid")
        return super().to_internal_value(data)


QUERY_BOOLEAN_INVALID = "Must be true, false, 1 or 0."


class QueryBooleanField(serializers.BooleanField):
    """A query parameter read as ?sync= is: true, false, 1 or 0 in any case; absent, false.
    Anything else, the empty value included, is a 400 (DRF would take "yes" and "on")."""

    # DRF reads a boolean missing from form data (a QueryDict) as false, an unticked box,
    # and an empty one as absent; here a missing parameter takes its default and an empty
    # one is refused.
    default_empty_html = serializers.empty

    def get_value(self, dictionary: Any) -> Any:
        if self.field_name in dictionary:
            return dictionary[self.field_name]
        return super().get_value(dictionary)

    def to_internal_value(self, data: Any) -> bool:
        value = data.strip().lower() if isinstance(data, str) else None
        if value not in ("true", "false", "1", "0"):
            raise serializers.ValidationError(QUERY_BOOLEAN_INVALID, code="invalid")
        return value in ("true", "1")


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            raise serializers.ValidationError("Must be true or false.", code="invalid")
        return data


UNKNOWN_FIELD = "Unknown field."


class InputSerializer(serializers.Serializer):
    # A request body's serializer: a key it does not define is a 400 naming it. A typo such
    # as "ouputs" would otherwise be dropped, and the run committed without its outputs, with
    # nothing left to show what was sent. (A comment, not a docstring: drf-spectacular would
    # give every request body this text as its description.)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [key for key in data if key not in self.fields]
            if unknown:
                raise serializers.ValidationError({key: [UNKNOWN_FIELD] for key in unknown})
        return super().to_internal_value(data)


class CaseInsensitiveChoiceField(serializers.ChoiceField):
    """A choice of upper-case names that takes them in any case ("endpoint" is ENDPOINT)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            data = data.upper()
        return super().to_internal_value(data)


ISO_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}([Tt]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2})?)?")


@extend_schema_field(
    {
        "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}],
        "description": "ISO 8601: a date (its midnight), or a date and time; without a zone, UTC.",
    }
)
class QueryDateTimeField(serializers.DateTimeField):
    """A date-time query parameter: YYYY-MM-DD, optionally Thh:mm[:ss[.f]] and a zone.

    Only that: Python reads more ISO 8601 (week dates, a space for the T, a bare hour), and
    an empty value would be taken as no bound at all, which the schema could not say.
    """

    def get_value(self, dictionary: Any) -> Any:
        if self.field_name in dictionary and dictionary.get(self.field_name) == "":
            return ""  # refused below, not taken for an absent parameter
        return super().get_value(dictionary)

    def to_internal_value(self, value: Any) -> Any:
        if not isinstance(value, str) or not ISO_DATE_TIME.fullmatch(value):
            self.fail("invalid", format="YYYY-MM-DD[Thh:mm[:ss[.f]][Z|+hh:mm]]")
        return super().to_internal_value(value)
