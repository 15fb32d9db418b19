"""Input and output shapes of the component endpoints."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from api.fields import InputSerializer, QueryBooleanField, StrictCharField
from common.timestamps import iso_utc
from components.models import COMPONENT_NAME_MAX_LENGTH, OWNER_MAX_LENGTH, TAG_NAME_MAX_LENGTH

# The states of an accepted write (runs.models.Write.Status), named here to keep this app free
# of imports from runs.
WRITE_STATUSES = [("queued", "Queued"), ("committed", "Committed"), ("failed", "Failed")]
COMPONENT_NAME_SLASH = "A component name cannot contain '/'."


def validate_component_name(value: str) -> None:
    if "/" in value:
        raise serializers.ValidationError(COMPONENT_NAME_SLASH)


@extend_schema_field(
    {"type": "string", "minLength": 1, "maxLength": COMPONENT_NAME_MAX_LENGTH, "pattern": "^[^/\\x00]+$"}
)
class ComponentNameField(StrictCharField):
    """1-255 characters, no '/', kept exactly as sent (no whitespace trimming)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", COMPONENT_NAME_MAX_LENGTH)
        kwargs.setdefault("allow_blank", False)
        super().__init__(**kwargs)
        self.validators.append(validate_component_name)


class TagNameField(StrictCharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", TAG_NAME_MAX_LENGTH)
        super().__init__(**kwargs)


def unique_in_order(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


class TagListField(serializers.ListField):
    child = TagNameField()

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 1000)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[str]:
        # The limit is on the list as sent: duplicates count (the schema's maxItems).
        if isinstance(data, list) and self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return unique_in_order(super().to_internal_value(data))


class ComponentCreateSerializer(InputSerializer):
    name = ComponentNameField()
    description = StrictCharField(required=False, allow_blank=True, default="")
    owner = StrictCharField(
        required=False, allow_blank=True, default="", max_length=OWNER_MAX_LENGTH, trim_whitespace=False
    )
    tags = TagListField(required=False, default=list)


class ComponentUpdateSerializer(InputSerializer):
    description = StrictCharField(required=False, allow_blank=True)
    owner = StrictCharField(
        required=False, allow_blank=True, max_length=OWNER_MAX_LENGTH, trim_whitespace=False
    )


class ComponentTagsSerializer(InputSerializer):
    tags = TagListField(allow_empty=False, min_length=1)


class ComponentFilterSerializer(serializers.Serializer):
    tag = StrictCharField(required=False)
    owner = StrictCharField(required=False)
    all = QueryBooleanField(
        required=False,
        default=False,
        source="unlisted",
        help_text="true: also the OpenLineage jobs none of whose runs named a dataset (listed: false).",
    )


class ComponentSerializer(serializers.Serializer):
    """A committed component."""

    name = StrictCharField()
    description = StrictCharField()
    owner = StrictCharField()
    tags = serializers.ListField(child=StrictCharField(), help_text="Sorted by name.")
    run_count = serializers.IntegerField(help_text="Committed runs of this component.")
    last_run_at = serializers.DateTimeField(
        allow_null=True, help_text="The latest start_timestamp among its committed runs."
    )
    created_at = serializers.DateTimeField(help_text="When the write that created it was accepted.")
    listed = serializers.BooleanField(
        help_text="In the component list without ?all=true: registered natively, or an OpenLineage "
        "job one of whose runs named a dataset."
    )


@extend_schema_serializer(many=False)  # a page, though list views answer it: not an array of pages
class ComponentPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ComponentSerializer(many=True)


@extend_schema_serializer(many=False)
class TagPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = serializers.ListField(child=serializers.CharField())


class ComponentAcceptedSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The accepted write's id (acceptance order).")
    name = StrictCharField()
    status = serializers.ChoiceField(choices=WRITE_STATUSES)


def component_body(component: Any) -> dict[str, Any]:
    """A component with its tags prefetched (component_list orders them by name)."""
    return {
        "name": component.name,
        "description": component.description,
        "owner": component.owner,
        "tags": [tag.name for tag in component.tags.all()],
        "run_count": component.run_count,
        "last_run_at": iso_utc(component.last_run_at),
        "created_at": iso_utc(component.created_at),
        "listed": component.listed,
    }
