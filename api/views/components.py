from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from api.pagination import LIMIT_PARAMETER, LimitCursorPagination, parse_limit
from api.requests import (
    ERRORS,
    IDEMPOTENCY_KEY_PARAMETER,
    SYNC_PARAMETER,
    WRITE_ERRORS,
    KnownQueryParameters,
    idempotency_from,
    parameters_of,
    respond,
    validated,
    wants_sync,
)
from api.serializers.components import (
    ComponentAcceptedSerializer,
    ComponentCreateSerializer,
    ComponentFilterSerializer,
    ComponentPageSerializer,
    ComponentSerializer,
    ComponentTagsSerializer,
    ComponentUpdateSerializer,
    TagPageSerializer,
    component_body,
)
from api.serializers.run_queries import HistoryQuerySerializer
from api.serializers.run_responses import RunPageSerializer
from api.views.runs import run_page_response
from components.selectors import component_get, component_list, tag_list
from components.services import component_tags_add
from ingest.edits import component_update_in_order
from ingest.submit import writes_submit
from runs.models import Edit, Write
from runs.services import edit_record

COMPONENT_NAME = OpenApiParameter(
    "name", str, OpenApiParameter.PATH, description="Component name: 1-255 characters, no '/'."
)
LIMIT = LIMIT_PARAMETER


class ComponentViewSet(KnownQueryParameters, viewsets.ViewSet):
    session_permissions = {"partial_update": "components.change_component"}
    query_parameters = {
        "list": parameters_of(ComponentFilterSerializer, extra=("limit", "cursor")),
        "create": frozenset({"sync"}),
        "history": parameters_of(HistoryQuerySerializer, extra=("limit",)),
    }
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    http_method_names = ["get", "post", "patch", "head", "options"]

    @extend_schema(
        parameters=[ComponentFilterSerializer, LIMIT, OpenApiParameter("cursor", str)],
        responses={200: ComponentPageSerializer, **ERRORS},
        summary="List components, filtered by tag and/or owner",
    )
    def list(self, request: Request) -> Response:
        filters = ComponentFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = LimitCursorPagination()
        page = paginator.paginate_queryset(component_list(**filters.validated_data), request, view=self) or []
        return paginator.get_paginated_response([component_body(c) for c in page])

    @extend_schema(
        request=ComponentCreateSerializer,
        parameters=[SYNC_PARAMETER, IDEMPOTENCY_KEY_PARAMETER],
        responses={
            202: OpenApiResponse(
                ComponentAcceptedSerializer, "Accepted; committed later in acceptance order."
            ),
            201: OpenApiResponse(ComponentSerializer, "?sync=true: created."),
            200: OpenApiResponse(
                ComponentSerializer,
                "?sync=true: existed; tags added, description/owner replaced where non-empty.",
            ),
            **WRITE_ERRORS,
        },
        summary="Create a component, or add tags to and update an existing one",
    )
    def create(self, request: Request) -> Response:
        payload = dict(validated(ComponentCreateSerializer, request.data))
        idempotency = idempotency_from(request)
        sync = wants_sync(request)
        recorded = writes_submit(
            kind=Write.Kind.COMPONENT,
            payloads=[payload],
            sync=sync,
            idempotency=idempotency,
            user=request.user,
        )
        if sync:
            code = status.HTTP_201_CREATED if recorded.created else status.HTTP_200_OK
            return respond(recorded, code, component_body(component_get(name=payload["name"])))
        body = {"id": recorded.write_ids[0], "name": payload["name"], "status": Write.Status.QUEUED}
        return respond(recorded, status.HTTP_202_ACCEPTED, body)

    @extend_schema(parameters=[COMPONENT_NAME], responses={200: ComponentSerializer, **ERRORS})
    def retrieve(self, request: Request, name: str) -> Response:
        return Response(component_body(component_get(name=name)))

    @extend_schema(
        parameters=[COMPONENT_NAME],
        request=ComponentUpdateSerializer,
        responses={200: ComponentSerializer, **ERRORS},
        summary="Replace the description and/or owner",
    )
    def partial_update(self, request: Request, name: str) -> Response:
        serializer = ComponentUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        component_update_in_order(name=name, user=request.user, **serializer.validated_data)
        return Response(component_body(component_get(name=name)))

    @extend_schema(
        parameters=[COMPONENT_NAME],
        request=ComponentTagsSerializer,
        responses={200: ComponentSerializer, **ERRORS},
        summary="Add tags to a component",
    )
    @action(detail=True, methods=["post"])
    def tags(self, request: Request, name: str) -> Response:
        serializer = ComponentTagsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tags = serializer.validated_data["tags"]
        with transaction.atomic():
            component_tags_add(component=component_get(name=name), tags=tags)
            edit_record(user=request.user, action=Edit.Action.COMPONENT, target=name, detail={"tags": tags})
        return Response(component_body(component_get(name=name)))

    @extend_schema(
        parameters=[
            COMPONENT_NAME,
            HistoryQuerySerializer,
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1},
                description="Page size, default 10 (as mltrace), at least 1; values over 1000 are capped at 1000.",
            ),
        ],
        responses={200: RunPageSerializer, **ERRORS},
        summary="Committed runs of the component, newest start_timestamp first",
    )
    @action(detail=True, methods=["get"])
    def history(self, request: Request, name: str) -> Response:
        component = component_get(name=name)
        query = HistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return run_page_response(
            request,
            query.validated_data,
            limit=parse_limit(request, default=10),
            component=component.name,
            date_lower=query.validated_data.get("date_lower"),
            date_upper=query.validated_data.get("date_upper"),
        )


class TagViewSet(KnownQueryParameters, viewsets.ViewSet):
    query_parameters = {"list": frozenset({"limit", "cursor"})}

    @extend_schema(
        parameters=[LIMIT, OpenApiParameter("cursor", str)],
        responses={200: TagPageSerializer, **ERRORS},
        summary="All tag names",
    )
    def list(self, request: Request) -> Response:
        paginator = LimitCursorPagination()
        page = paginator.paginate_queryset(tag_list(), request, view=self) or []
        return paginator.get_paginated_response([tag.name for tag in page])
