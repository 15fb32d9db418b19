"""What the run, trace, impact, review, flag and queue endpoints answer, for the OpenAPI schema.

These serializers only document the shapes: the views answer dicts and JSON text built by
the domain's reads (runs/, ingest/selectors.py), which stay cheap for traces of thousands of
runs where a serializer per run would not. tests/test_openapi_responses.py checks that the
answers agree with these shapes.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from api.fields import StrictCharField
from runs.models import PointerType, Write


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


@extend_schema_serializer(many=False)  # a page, though list views answer it: not an array of pages
class RunPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = RunSerializer(many=True)


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
