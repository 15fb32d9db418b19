"""Monitoring's reads: tasks, their outputs, feedback and pairs page by page, metrics, series."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.pagination import LIMIT_PARAMETER, LimitCursorPagination, page_url, parse_limit, rendered_bytes
from api.requests import ERRORS, KnownQueryParameters, parameters_of, validated
from api.serializers.task_reads import (
    DEFAULT_ROWS_LIMIT,
    MAX_ROWS_LIMIT,
    MetricQuerySerializer,
    MetricSerializer,
    PairPageSerializer,
    PairsQuerySerializer,
    RowsQuerySerializer,
    SeriesQuerySerializer,
    SeriesSerializer,
    TaskPageSerializer,
    TaskSerializer,
    ValuePageSerializer,
    cursor_of,
    feedback_body,
    metric_body,
    output_body,
    pair_body,
    series_body,
    task_body,
    window_of,
)
from monitoring.models import Prediction
from monitoring.selectors import (
    feedback_page,
    outputs_page,
    pairs_page,
    task_get,
    task_list,
    task_metric,
    task_series,
)

TASK = OpenApiParameter(
    "task", str, OpenApiParameter.PATH, description="Task name: 1-255 characters, no '/'."
)
ROWS_LIMIT = OpenApiParameter(
    "limit",
    {"type": "integer", "minimum": 1},
    description="Page size, default 100, at least 1; values over 10,000 are capped at 10,000.",
)
# The longest cursor a next link can carry, to count a page's envelope at its largest.
LONGEST_CURSOR = "-" + "9" * 18 + "." + "9" * 19


def rows_response(
    request: Request,
    rows: list[Prediction],
    *,
    limit: int,
    body: Callable[[Prediction], dict[str, Any]],
    time: Callable[[Prediction], Any],
) -> Response:
    """A page of rows (up to limit + 1 fetched: the extra one says there is more) with the next
    link, stopped early at MLTRACE_MAX_PAGE_BYTES as sent."""
    budget = settings.MLTRACE_MAX_PAGE_BYTES - rendered_bytes(
        {"next": page_url(request, before=LONGEST_CURSOR), "results": []}
    )
    bodies: list[dict[str, Any]] = []
    for row in rows[:limit]:
        answer = body(row)
        budget -= rendered_bytes(answer) + 1  # and its comma
        if budget < 0 and bodies:
            break
        bodies.append(answer)
    more = len(rows) > len(bodies)
    last = rows[len(bodies) - 1] if bodies else None
    following = page_url(request, before=cursor_of(time(last), last.id)) if more and last else None
    return Response({"next": following, "results": bodies})


class TaskListView(KnownQueryParameters, APIView):
    query_parameters = {"get": frozenset({"limit", "cursor"})}

    @extend_schema(
        parameters=[LIMIT_PARAMETER, OpenApiParameter("cursor", str)],
        responses={200: TaskPageSerializer, **ERRORS},
        summary="Monitored tasks, by name",
        operation_id="v1_tasks_list",
    )
    def get(self, request: Request) -> Response:
        paginator = LimitCursorPagination()
        page = paginator.paginate_queryset(task_list(), request, view=self) or []
        return paginator.get_paginated_response([task_body(task) for task in page])


class TaskView(KnownQueryParameters, APIView):
    @extend_schema(
        parameters=[TASK],
        responses={200: TaskSerializer, **ERRORS},
        summary="A task and its counts of outputs, feedback and pairs",
    )
    def get(self, request: Request, task: str) -> Response:
        return Response(task_body(task_get(name=task)))


class TaskOutputsReadView(KnownQueryParameters, APIView):
    query_parameters = {"get": parameters_of(RowsQuerySerializer, extra=("limit",))}

    @extend_schema(
        parameters=[TASK, RowsQuerySerializer, ROWS_LIMIT],
        responses={200: ValuePageSerializer, **ERRORS},
        summary="The task's outputs, newest first",
    )
    def get(self, request: Request, task: str) -> Response:
        query = validated(RowsQuerySerializer, request.query_params)
        limit = parse_limit(request, default=DEFAULT_ROWS_LIMIT, maximum=MAX_ROWS_LIMIT)
        rows = outputs_page(
            task=task, seconds=query.get("window_seconds"), before=query.get("before"), limit=limit
        )
        return rows_response(request, rows, limit=limit, body=output_body, time=lambda row: row.output_at)


class TaskFeedbackReadView(KnownQueryParameters, APIView):
    query_parameters = {"get": parameters_of(RowsQuerySerializer, extra=("limit",))}

    @extend_schema(
        parameters=[TASK, RowsQuerySerializer, ROWS_LIMIT],
        responses={200: ValuePageSerializer, **ERRORS},
        summary="The task's feedback, newest first",
    )
    def get(self, request: Request, task: str) -> Response:
        query = validated(RowsQuerySerializer, request.query_params)
        limit = parse_limit(request, default=DEFAULT_ROWS_LIMIT, maximum=MAX_ROWS_LIMIT)
        rows = feedback_page(
            task=task, seconds=query.get("window_seconds"), before=query.get("before"), limit=limit
        )
        return rows_response(request, rows, limit=limit, body=feedback_body, time=lambda row: row.feedback_at)


class TaskPairsView(KnownQueryParameters, APIView):
    query_parameters = {"get": parameters_of(PairsQuerySerializer, extra=("limit",))}

    @extend_schema(
        parameters=[TASK, PairsQuerySerializer, ROWS_LIMIT],
        responses={200: PairPageSerializer, **ERRORS},
        summary="The task's pairs in a window, newest output first",
    )
    def get(self, request: Request, task: str) -> Response:
        query = validated(PairsQuerySerializer, request.query_params)
        limit = parse_limit(request, default=DEFAULT_ROWS_LIMIT, maximum=MAX_ROWS_LIMIT)
        rows = pairs_page(task=task, window=window_of(query), before=query.get("before"), limit=limit)
        return rows_response(request, rows, limit=limit, body=pair_body, time=lambda row: row.output_at)


class TaskMetricsView(KnownQueryParameters, APIView):
    query_parameters = {"get": parameters_of(MetricQuerySerializer)}

    @extend_schema(
        parameters=[TASK, MetricQuerySerializer],
        responses={200: MetricSerializer, **ERRORS},
        summary="A metric over the task's pairs in a window (y_true = feedback, y_pred = output)",
    )
    def get(self, request: Request, task: str) -> Response:
        query = validated(MetricQuerySerializer, request.query_params)
        window = window_of(query)
        value = task_metric(task=task, metric=query["metric"], window=window)
        return Response(metric_body(task, query["metric"], window, value))


class TaskSeriesView(KnownQueryParameters, APIView):
    query_parameters = {"get": parameters_of(SeriesQuerySerializer)}

    @extend_schema(
        parameters=[TASK, SeriesQuerySerializer],
        responses={200: SeriesSerializer, **ERRORS},
        summary="A metric per minute, hour or day of output time",
    )
    def get(self, request: Request, task: str) -> Response:
        query = validated(SeriesQuerySerializer, request.query_params)
        points = task_series(
            task=task, metric=query["metric"], bucket=query["bucket"], start=query["start"], end=query["end"]
        )
        return Response(series_body(task, query["metric"], query["bucket"], points))
