"""Shapes of the OpenLineage endpoints, for the schema; the bodies are built in runs/bodies.py.

An event itself is checked by runs/openlineage.read_event, not by a serializer: it is kept
as received, its facets are open-ended, and its rules are the spec's with leniencies.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from api.fields import StrictCharField
from runs.models import OpenLineageEvent, OpenLineageRun, Write
from runs.openlineage import EVENT_TIME_PATTERN, EVENT_TYPE_PATTERN, EVENT_TYPES, RUN_ID_MAX_LENGTH

TEXT = {"type": "string", "minLength": 1}
DATASET_SCHEMA = {
    "type": "object",
    "required": ["namespace", "name"],
    "properties": {
        "namespace": TEXT,
        "name": TEXT,
        "facets": {
            "description": "version.datasetVersion: the pointer's value; datasetType.datasetType "
            "MODEL: a MODEL pointer (else DATA). Facets in another shape are ignored."
        },
    },
}
DATASETS_SCHEMA = {
    "type": "array",
    "nullable": True,
    "items": DATASET_SCHEMA,
    "maxItems": settings.MLTRACE_MAX_POINTERS_PER_RUN,
}
JOB_SCHEMA = {
    "type": "object",
    "required": ["namespace", "name"],
    "properties": {"namespace": TEXT, "name": TEXT, "facets": {}},
}
EVENT_TIME_SCHEMA = {
    "type": "string",
    "pattern": EVENT_TIME_PATTERN,
    "description": "ISO 8601, 1 to 9 fractional digits; without a zone it is UTC.",
}
# OpenLineage 2.0.2's RunEvent, DatasetEvent and JobEvent, as far as this server checks them
# (runs/openlineage.read_event): an event with `run` is a RunEvent, else one with `dataset` a
# DatasetEvent, else a JobEvent. Anything else in an event is kept, unchecked.
EVENT_SCHEMA = {
    "oneOf": [
        {
            "title": "RunEvent",
            "type": "object",
            "required": ["eventTime", "run", "job"],
            "properties": {
                "eventType": {
                    "type": "string",
                    "nullable": True,
                    "pattern": EVENT_TYPE_PATTERN,
                    "description": "One of " + ", ".join(EVENT_TYPES) + ", in any case; absent: OTHER.",
                },
                "eventTime": EVENT_TIME_SCHEMA,
                "run": {
                    "type": "object",
                    "required": ["runId"],
                    "properties": {
                        "runId": {"type": "string", "minLength": 1, "maxLength": RUN_ID_MAX_LENGTH},
                        "facets": {},
                    },
                },
                "job": JOB_SCHEMA,
                "inputs": DATASETS_SCHEMA,
                "outputs": DATASETS_SCHEMA,
                "producer": {"description": "Kept; any value."},
                "schemaURL": {"description": "Kept; any value."},
            },
        },
        {
            "title": "DatasetEvent",
            "type": "object",
            "required": ["eventTime", "dataset"],
            "not": {"required": ["run"]},
            "properties": {"eventTime": EVENT_TIME_SCHEMA, "dataset": DATASET_SCHEMA},
        },
        {
            "title": "JobEvent",
            "type": "object",
            "required": ["eventTime", "job"],
            "not": {"anyOf": [{"required": ["run"]}, {"required": ["dataset"]}]},
            "properties": {"eventTime": EVENT_TIME_SCHEMA, "job": JOB_SCHEMA},
        },
    ]
}


class OpenLineageJobSerializer(serializers.Serializer):
    namespace = StrictCharField()
    name = StrictCharField()


class OpenLineageParentSerializer(serializers.Serializer):
    run_id = StrictCharField(help_text="The parent's OpenLineage runId.")
    job = StrictCharField(help_text="The parent job's component name.")
    run = serializers.IntegerField(allow_null=True, help_text="The parent's mltrace run once it has ended.")


class RunOpenLineageSerializer(serializers.Serializer):
    run_id = StrictCharField(help_text="The OpenLineage runId, as sent.")
    state = serializers.ChoiceField(choices=OpenLineageRun.State.choices)
    job = OpenLineageJobSerializer()
    producer = StrictCharField()
    parent = OpenLineageParentSerializer(allow_null=True)


class OpenLineagePointerSerializer(serializers.Serializer):
    name = StrictCharField()
    value = StrictCharField()
    pointer_type = StrictCharField()


class OpenLineageRunSerializer(serializers.Serializer):
    run_id = StrictCharField(help_text="The OpenLineage runId, as sent.")
    state = serializers.ChoiceField(choices=OpenLineageRun.State.choices)
    open = serializers.BooleanField(help_text="No COMPLETE, FAIL or ABORT yet: no mltrace run, no lineage.")
    component = StrictCharField()
    job = OpenLineageJobSerializer()
    run = serializers.IntegerField(allow_null=True, help_text="The mltrace run its terminal event made.")
    start_timestamp = serializers.DateTimeField()
    end_timestamp = serializers.DateTimeField(allow_null=True)
    producer = StrictCharField()
    parent = OpenLineageParentSerializer(allow_null=True)
    inputs = OpenLineagePointerSerializer(many=True)
    outputs = OpenLineagePointerSerializer(
        many=True, help_text="All it named; a FAIL or ABORT run's mltrace run has none (not produced)."
    )
    git_hash = StrictCharField()
    error_message = StrictCharField()
    upstream_run_ids = serializers.ListField(child=StrictCharField())
    events = serializers.IntegerField(help_text="Events received with this runId, duplicates aside.")
    events_after_end = serializers.IntegerField(
        help_text="Of those, the ones after its end (a rerun with the same runIds, a second COMPLETE): "
        "recorded, they changed nothing."
    )
    first_event_id = serializers.IntegerField()
    last_event_id = serializers.IntegerField()


class OpenLineageRunPageSerializer(serializers.Serializer):
    next = serializers.CharField(allow_null=True)
    results = OpenLineageRunSerializer(many=True)


class OpenLineageRunQuerySerializer(serializers.Serializer):
    run_id = serializers.CharField(required=False, min_length=1, max_length=255, help_text="One runId.")
    state = serializers.ChoiceField(
        choices=[("open", "open"), *OpenLineageRun.State.choices],
        required=False,
        help_text="open: not ended yet.",
    )
    component = serializers.CharField(required=False, min_length=1, max_length=255)
    before = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="Cursor: a first_event_id."
    )


class OpenLineageAcceptedSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The accepted write's id: the event's place in acceptance order.")
    status = serializers.ChoiceField(choices=Write.Status.choices)


class OpenLineageCommittedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Write.Status.choices)
    outcome = serializers.ChoiceField(choices=OpenLineageEvent.Outcome.choices)
    run = OpenLineageRunSerializer(allow_null=True, help_text="RunEvents: the run's state after it.")


class FailedEventSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    reason = StrictCharField()
    retriable = serializers.BooleanField()


class BatchSummarySerializer(serializers.Serializer):
    received = serializers.IntegerField()
    successful = serializers.IntegerField()
    failed = serializers.IntegerField()
    retriable = serializers.IntegerField()
    non_retriable = serializers.IntegerField()


class OpenLineageBatchResultSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[("success", "success"), ("partial_success", "partial_success")])
    summary = BatchSummarySerializer()
    failed_events = FailedEventSerializer(many=True)
    events_after_end = serializers.IntegerField(
        help_text="Not in the spec's body. Good RunEvents recorded after the end of their run (a rerun "
        "with the same runIds): they make no runs. Without ?sync=true counted at accept time, from "
        "what was committed then and the batch's earlier events; with it, what the commit recorded."
    )
