"""Monitoring's writes: POST /api/v1/tasks/{task}/outputs/ and /api/v1/tasks/{task}/feedback/.

A request is one write holding all its items, recorded as runs' writes are (ingest.submit): a
202 once it is durable, or with ?sync=true a 201 once it is committed; Idempotency-Key as for
runs. The commit folds it into the task's predictions in acceptance order (ingest/predictions.py).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.requests import (
    IDEMPOTENCY_KEY_PARAMETER,
    SYNC_PARAMETER,
    WRITE_ERRORS,
    KnownQueryParameters,
    idempotency_from,
    respond,
    validated,
    wants_sync,
)
from api.serializers.task_writes import (
    ITEMS_KEY,
    TaskFeedbackSerializer,
    TaskOutputsSerializer,
    TaskWriteAnswerSerializer,
    task_name_validated,
    task_write_payload,
)
from ingest.submit import writes_submit
from runs.models import Write

TASK = OpenApiParameter(
    "task",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[^/\\x00]+$"},
    OpenApiParameter.PATH,
    description='The task\'s name: 1-255 characters, no "/" and no NUL. Made by its first write.',
)


def task_items_submit(
    request: Request, task: str, *, kind: str, serializer: type[serializers.Serializer]
) -> Response:
    """Validates a task's items and records them as one write: 202 queued, or with ?sync=true
    201 committed; {"id", "status", "task", "count"}. Raises ValidationError (a 400, nothing
    written)."""
    name = task_name_validated(task)
    items = validated(serializer, request.data)[ITEMS_KEY[kind]]
    idempotency = idempotency_from(request)
    sync = wants_sync(request)
    recorded = writes_submit(
        kind=kind,
        payloads=[task_write_payload(name, items)],
        sync=sync,
        idempotency=idempotency,
        user=request.user,
    )
    body: dict[str, Any] = {
        "id": recorded.write_ids[0],
        "status": Write.Status.COMMITTED if sync else Write.Status.QUEUED,
        "task": name,
        "count": len(items),
    }
    return respond(recorded, status.HTTP_201_CREATED if sync else status.HTTP_202_ACCEPTED, body)


WRITE_ANSWERS = {
    202: OpenApiResponse(TaskWriteAnswerSerializer, "Recorded as one write and queued."),
    201: OpenApiResponse(TaskWriteAnswerSerializer, "?sync=true: committed."),
    **WRITE_ERRORS,
}


class TaskOutputsWriteView(KnownQueryParameters, APIView):
    query_parameters = {"post": frozenset({"sync"})}

    @extend_schema(
        request=TaskOutputsSerializer,
        parameters=[TASK, SYNC_PARAMETER, IDEMPOTENCY_KEY_PARAMETER],
        responses=WRITE_ANSWERS,
        summary="Log a task's outputs (mltrace's logOutput), one write for all of them",
        tags=["monitoring"],
    )
    def post(self, request: Request, task: str) -> Response:
        return task_items_submit(request, task, kind=Write.Kind.OUTPUT, serializer=TaskOutputsSerializer)


class TaskFeedbackWriteView(KnownQueryParameters, APIView):
    query_parameters = {"post": frozenset({"sync"})}

    @extend_schema(
        request=TaskFeedbackSerializer,
        parameters=[TASK, SYNC_PARAMETER, IDEMPOTENCY_KEY_PARAMETER],
        responses=WRITE_ANSWERS,
        summary="Log the feedback that answers a task's outputs (mltrace's logFeedback), one write for all of it",
        tags=["monitoring"],
    )
    def post(self, request: Request, task: str) -> Response:
        return task_items_submit(request, task, kind=Write.Kind.FEEDBACK, serializer=TaskFeedbackSerializer)
