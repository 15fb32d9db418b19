"""OpenLineage intake: POST /api/v1/lineage and /api/v1/lineage/batch, and the runs they make.

An event is checked (runs/openlineage.read_event) and recorded as received, as a write in the
accepted-write log like any other: a 202 once it is durable, or a 201 with ?sync=true once
it is committed. The commit applies it to its run in acceptance order (ingest/openlineage.py).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.pagination import LIMIT_PARAMETER, page_url, parse_limit
from api.requests import ERRORS, SYNC_PARAMETER, KnownQueryParameters, parameters_of, wants_sync
from api.serializers.openlineage import (
    EVENT_SCHEMA,
    OpenLineageAcceptedSerializer,
    OpenLineageBatchResultSerializer,
    OpenLineageCommittedSerializer,
    OpenLineageRunPageSerializer,
    OpenLineageRunQuerySerializer,
)
from api.serializers.runs import NULL_CHARACTER, has_null_character, pointers_in
from common.errors import InvalidInput
from ingest.openlineage import events_after_end_count
from ingest.submit import writes_submit
from runs.models import OpenLineageEvent, Write
from runs.openlineage import Event, read_event
from runs.selectors import openlineage_run_get, openlineage_runs_page

NOT_AN_ARRAY = "Expected a JSON array of OpenLineage events."
BATCH_SIZE = "A batch holds 1 to {limit} events; this one holds {count}."
BATCH_TOO_MANY_DATASETS = "A batch holds at most {limit} datasets (the inputs and outputs of all its events); this one holds {count}."


def event_payload(event: Any) -> tuple[dict[str, Any], Event]:
    """The write's payload for a valid event, kept as received, and the event read; raises
    InvalidInput."""
    if isinstance(event, dict):
        for key, value in event.items():
            if has_null_character(key) or has_null_character(value):
                raise InvalidInput(NULL_CHARACTER, field=key)
    read = read_event(event, max_datasets=settings.MLTRACE_MAX_POINTERS_PER_RUN)
    return {"event": event}, read


def _events_submit(request: Request, payloads: list[dict[str, Any]], *, sync: bool) -> list[int]:
    """Accepts (or with ?sync=true commits) the events' writes; their ids."""
    return writes_submit(
        kind=Write.Kind.OPENLINEAGE, payloads=payloads, sync=sync, user=request.user
    ).write_ids


class OpenLineageView(KnownQueryParameters, APIView):
    query_parameters = {"post": frozenset({"sync"})}

    @extend_schema(
        request={"application/json": EVENT_SCHEMA},
        parameters=[SYNC_PARAMETER],
        responses={
            202: OpenApiResponse(OpenLineageAcceptedSerializer, "Recorded and queued."),
            201: OpenApiResponse(OpenLineageCommittedSerializer, "?sync=true: committed, with what it did."),
            **ERRORS,
        },
        summary="Receive one OpenLineage event (RunEvent, DatasetEvent or JobEvent)",
        tags=["openlineage"],
    )
    def post(self, request: Request) -> Response:
        payload, _ = event_payload(request.data)
        sync = wants_sync(request)
        (write_id,) = _events_submit(request, [payload], sync=sync)
        if not sync:
            return Response({"id": write_id, "status": Write.Status.QUEUED}, status=status.HTTP_202_ACCEPTED)
        event = OpenLineageEvent.objects.only("outcome", "run_uuid").get(id=write_id)
        body = {
            "id": write_id,
            "status": Write.Status.COMMITTED,
            "outcome": event.outcome,
            "run": openlineage_run_get(event.run_uuid) if event.run_uuid else None,
        }
        return Response(body, status=status.HTTP_201_CREATED)


class OpenLineageBatchView(KnownQueryParameters, APIView):
    query_parameters = {"post": frozenset({"sync"})}

    @extend_schema(
        # Items are not constrained: each event is checked on its own, a bad one listed in
        # failed_events of a 200, not refused with the batch.
        request={
            "application/json": {
                "type": "array",
                "items": {"description": "An OpenLineage event, as for POST /api/v1/lineage."},
                "minItems": 1,
                "maxItems": settings.MLTRACE_MAX_BATCH_RUNS,
            }
        },
        parameters=[SYNC_PARAMETER],
        responses={
            200: OpenApiResponse(
                OpenLineageBatchResultSerializer,
                "The good events were recorded (with ?sync=true, committed); the bad ones are listed, "
                "each with its index and reason.",
            ),
            **ERRORS,
        },
        summary="Receive a JSON array of OpenLineage events; a bad event does not hold back the others",
        tags=["openlineage"],
    )
    def post(self, request: Request) -> Response:
        sync = wants_sync(request)  # a bad ?sync= is a 400 even when no event is good
        events = request.data
        if not isinstance(events, list):
            raise InvalidInput(NOT_AN_ARRAY)
        limit = settings.MLTRACE_MAX_BATCH_RUNS
        if not 1 <= len(events) <= limit:
            raise InvalidInput(BATCH_SIZE.format(limit=limit, count=len(events)))
        datasets = pointers_in(events)
        if datasets > settings.MLTRACE_MAX_BATCH_POINTERS:
            raise InvalidInput(
                BATCH_TOO_MANY_DATASETS.format(limit=settings.MLTRACE_MAX_BATCH_POINTERS, count=datasets)
            )
        payloads, read, failed = [], [], []
        for index, event in enumerate(events):
            try:
                payload, event_read = event_payload(event)
            except InvalidInput as exc:
                reason = f"{exc.field}: {exc.message}" if exc.field else exc.message
                failed.append({"index": index, "reason": reason, "retriable": False})
            else:
                payloads.append(payload)
                read.append((event_read, event))
        after_end = 0
        if payloads and sync:
            write_ids = _events_submit(request, payloads, sync=True)
            after_end = OpenLineageEvent.objects.filter(
                id__in=write_ids, outcome=OpenLineageEvent.Outcome.AFTER_END
            ).count()
        elif payloads:
            # Counted before the accept, so that a worker committing the batch meanwhile
            # cannot make its own events look late.
            after_end = events_after_end_count(read)
            _events_submit(request, payloads, sync=False)
        body = {
            "status": "partial_success" if failed else "success",
            "summary": {
                "received": len(events),
                "successful": len(payloads),
                "failed": len(failed),
                "retriable": 0,
                "non_retriable": len(failed),
            },
            "failed_events": failed,
            "events_after_end": after_end,
        }
        return Response(body, status=status.HTTP_200_OK)


class OpenLineageRunsView(KnownQueryParameters, APIView):
    query_parameters = {"get": parameters_of(OpenLineageRunQuerySerializer, extra=("limit",))}

    @extend_schema(
        parameters=[OpenLineageRunQuerySerializer, LIMIT_PARAMETER],
        responses={200: OpenLineageRunPageSerializer, **ERRORS},
        summary="OpenLineage runs, open and ended, newest first",
        tags=["openlineage"],
    )
    def get(self, request: Request) -> Response:
        query = OpenLineageRunQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        results, more = openlineage_runs_page(
            run_uuid=params.get("run_id"),
            state=params.get("state"),
            component=params.get("component"),
            before=params.get("before"),
            limit=parse_limit(request),
        )
        next_url = page_url(request, before=results[-1]["first_event_id"]) if more and results else None
        return Response({"next": next_url, "results": results})
