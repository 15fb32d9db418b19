from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponse, HttpResponseBase, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.json_stream import buffered, review_json, trace_json
from api.pagination import LARGEST_ID, LIMIT_PARAMETER, page_url, parse_limit, rendered_bytes
from api.parsers import json_body
from api.requests import (
    ERROR_DETAIL,
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
from api.serializers.plain_runs import (
    plain_batch_from_json,
    plain_batch_payloads,
    plain_run_from_json,
    plain_run_write_payload,
)
from api.serializers.run_queries import (
    MAX_BIGINT,
    ImpactQuerySerializer,
    RunImpactQuerySerializer,
    RunListQuerySerializer,
    TraceQuerySerializer,
)
from api.serializers.run_responses import (
    FlagResultSerializer,
    ImpactSerializer,
    PendingRunSerializer,
    QueueSerializer,
    ReviewSerializer,
    RunAcceptedSerializer,
    RunBatchAcceptedSerializer,
    RunBatchCommittedSerializer,
    RunPageSerializer,
    RunSerializer,
    TraceSerializer,
    WebTraceNodeSerializer,
)
from api.serializers.runs import (
    FlagSerializer,
    RunBatchSerializer,
    RunCreateSerializer,
    RunUpdateSerializer,
    UnflagSerializer,
    run_write_payload,
)
from api.web_trace import tree_json, web_trace
from common.errors import RUN_NOT_COMMITTED, RUN_NOT_FOUND, Conflict, DependencyUnresolved, NotFound
from ingest.selectors import queue_stats, run_get, run_write_pending
from ingest.submit import writes_submit
from runs import lineage
from runs.models import PointerType, Run, Write
from runs.selectors import run_bodies, run_bodies_within, run_page
from runs.services import pointers_flag, pointers_flag_downstream, pointers_unflag_all, run_notes_update

RUN_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="The run's id (its write's id).")
LIMIT = LIMIT_PARAMETER
LOCATION_HEADER = OpenApiParameter(
    "Location",
    str,
    OpenApiParameter.HEADER,
    response=[202],
    description="/api/v1/runs/{id}/: where the run's status (queued, committed, failed) can be read.",
)


def keyset_run(run_id: int | None) -> Run | None:
    """The run a page's before/after cursor names (its id and start), if one is named."""
    if run_id is None:
        return None
    run = Run.objects.only("id", "start_timestamp").filter(id=run_id).first()
    if run is None:
        # A well-formed request naming a run that is not there: a 404, as for /runs/{id}/.
        raise NotFound(RUN_NOT_FOUND.format(id=run_id))
    return run


def run_page_response(request: Request, query: dict[str, Any], *, limit: int, **filters: Any) -> Response:
    """A page of committed runs, newest first, with before/after links."""
    before = keyset_run(query.get("before"))
    after = keyset_run(query.get("after"))
    page = run_page(before=before, after=after, limit=limit, **filters)
    # A page also stops at MLTRACE_MAX_PAGE_BYTES as sent, on the side away from its cursor
    # (the newest runs of an `after` page), and links on from where it stopped. The links
    # are counted at their longest, ids of 19 digits.
    envelope = rendered_bytes(
        {
            "next": page_url(request, before=LARGEST_ID, after=None),
            "previous": page_url(request, after=LARGEST_ID, before=None),
            "results": [],
        }
    )
    ids = [run.id for run in page.runs]
    bodies = run_bodies_within(
        ids[::-1] if after else ids,
        budget=settings.MLTRACE_MAX_PAGE_BYTES - envelope,
        size=lambda body: rendered_bytes(body) + 1,  # and its comma
    )
    cut = len(bodies) < len(ids)
    if after:
        bodies.reverse()
    more_older = (page.has_more or cut) if after is None else True
    more_newer = (page.has_more or cut) if after is not None else before is not None
    first, last = (bodies[0]["id"], bodies[-1]["id"]) if bodies else (None, None)
    return Response(
        {
            "next": page_url(request, before=last, after=None) if bodies and more_older else None,
            "previous": page_url(request, after=first, before=None) if bodies and more_newer else None,
            "results": bodies,
        }
    )


def submit_runs(request: Request, payloads: list[dict[str, Any]], *, batch: bool) -> Response:
    """Accepts runs (202), or commits them first with ?sync=true (201 and the runs)."""
    idempotency = idempotency_from(request)
    sync = wants_sync(request)
    try:
        recorded = writes_submit(
            kind=Write.Kind.RUN, payloads=payloads, sync=sync, idempotency=idempotency, user=request.user
        )
    except DependencyUnresolved as exc:
        if batch and exc.index is not None:
            raise serializers.ValidationError({"runs": {str(exc.index): exc.body()}}) from None
        raise
    if sync:
        bodies = run_bodies(recorded.write_ids)
        code: int = status.HTTP_201_CREATED
    else:
        bodies = [{"id": write_id, "status": Write.Status.QUEUED} for write_id in recorded.write_ids]
        code = status.HTTP_202_ACCEPTED
    location = None if batch else f"/api/v1/runs/{recorded.write_ids[0]}/"
    return respond(recorded, code, {"runs": bodies} if batch else bodies[0], location=location)


def impact_node_bytes(depth: int, body: dict[str, Any]) -> int:
    """Bytes a node of an impact page adds to it as sent, at most: the node and its comma, and
    an edge for each of its run's dependencies (a page lists those that are downstream)."""
    node = rendered_bytes({"depth": depth, "run": body}) + 1
    return node + sum(len(f"[{body['id']},{dependency}]") + 1 for dependency in body["dependencies"])


def impact_response(
    request: Request, params: dict[str, Any], *, seeds: list[int], from_pointers: bool, head: dict[str, Any]
) -> Response:
    """A page of downstream runs: {head..., nodes, edges, outputs, next}."""
    # MLTRACE_MAX_PAGE_BYTES bounds the page as sent: its nodes, and what else it holds at
    # its longest (the counts and the cursor of 19 digits each).
    envelope = rendered_bytes(
        {
            **head,
            "nodes": [],
            "edges": [],
            "outputs": {pointer_type: LARGEST_ID for pointer_type in PointerType.values},
            "next": page_url(request, cursor=f"{LARGEST_ID}.{LARGEST_ID}"),
        }
    )
    page = lineage.impact_page(
        seeds=seeds,
        from_pointers=from_pointers,
        depth=params.get("depth"),
        after=params.get("cursor"),
        limit=parse_limit(request),
        budget=settings.MLTRACE_MAX_PAGE_BYTES - envelope,
        node_size=impact_node_bytes,
    )
    cursor = page.next_cursor
    return Response(
        {
            **head,
            "nodes": [
                {"depth": depth, "run": body}
                for (_, depth), body in zip(page.nodes, page.bodies, strict=True)
            ],
            "edges": page.edges,
            "outputs": page.outputs,
            "next": page_url(request, cursor=f"{cursor[0]}.{cursor[1]}") if cursor else None,
        }
    )


class RunViewSet(KnownQueryParameters, viewsets.ViewSet):
    session_permissions = {"partial_update": "runs.change_run"}
    query_parameters = {
        "list": parameters_of(RunListQuerySerializer, extra=("limit",)),
        "create": frozenset({"sync"}),
        "batch": frozenset({"sync"}),
        "impact": parameters_of(RunImpactQuerySerializer, extra=("limit",)),
    }
    lookup_value_regex = "[0-9]+"
    http_method_names = ["get", "post", "patch", "head", "options"]

    @extend_schema(
        parameters=[RunListQuerySerializer, LIMIT],
        responses={200: RunPageSerializer, **ERRORS},
        summary="Recent committed runs, newest start_timestamp first (mltrace's recent)",
    )
    def list(self, request: Request) -> Response:
        query = RunListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return run_page_response(
            request,
            query.validated_data,
            limit=parse_limit(request),
            component=query.validated_data.get("component", ""),
        )

    @extend_schema(
        request=RunCreateSerializer,
        parameters=[SYNC_PARAMETER, IDEMPOTENCY_KEY_PARAMETER, LOCATION_HEADER],
        responses={
            202: OpenApiResponse(RunAcceptedSerializer, "Accepted; Location: /api/v1/runs/{id}/."),
            201: OpenApiResponse(RunSerializer, "?sync=true: committed."),
            **WRITE_ERRORS,
        },
        summary="Log a component run",
    )
    def create(self, request: Request) -> Response:
        # A plain run skips DRF's field machinery (read typed from the body if it can be, else
        # from the parsed body); anything else, errors included, is DRF's.
        body = json_body(request)
        payload = plain_run_from_json(body) if body is not None else None
        if payload is None:
            payload = plain_run_write_payload(request.data)
        if payload is None:
            payload = run_write_payload(validated(RunCreateSerializer, request.data))
        return submit_runs(request, [payload], batch=False)

    @extend_schema(
        request=RunBatchSerializer,
        parameters=[SYNC_PARAMETER, IDEMPOTENCY_KEY_PARAMETER],
        responses={
            202: OpenApiResponse(RunBatchAcceptedSerializer, "All accepted, ids in list order."),
            201: OpenApiResponse(RunBatchCommittedSerializer, "?sync=true: all committed."),
            **WRITE_ERRORS,
        },
        summary="Log up to 1,000 runs at once, all or none",
    )
    @action(detail=False, methods=["post"])
    def batch(self, request: Request) -> Response:
        body = json_body(request)
        payloads = plain_batch_from_json(body) if body is not None else None
        if payloads is None:
            payloads = plain_batch_payloads(request.data)
        if payloads is None:
            payloads = [run_write_payload(run) for run in validated(RunBatchSerializer, request.data)["runs"]]
        return submit_runs(request, payloads, batch=True)

    @extend_schema(
        parameters=[RUN_ID],
        responses={
            200: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="RunOrPendingRun",
                    serializers=[RunSerializer, PendingRunSerializer],
                    resource_type_field_name=None,
                ),
                "The committed run, or the write that carries it while it is queued or failed.",
            ),
            **ERRORS,
        },
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        run_id = int(pk)
        if run_id > MAX_BIGINT:
            raise NotFound(RUN_NOT_FOUND.format(id=run_id))
        return Response(run_get(run_id=run_id))

    @extend_schema(
        parameters=[RUN_ID],
        request=RunUpdateSerializer,
        responses={
            200: RunSerializer,
            409: OpenApiResponse(ERROR_DETAIL, "The run is queued or failed, not committed yet."),
            **ERRORS,
        },
        summary="Replace the notes of a committed run",
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        run_id = int(pk)
        if run_id > MAX_BIGINT:
            raise NotFound(RUN_NOT_FOUND.format(id=run_id))
        serializer = RunUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            run_notes_update(run_id=run_id, notes=serializer.validated_data["notes"], user=request.user)
        except NotFound:
            pending = run_write_pending(run_id=run_id)
            if pending is None:
                raise
            raise Conflict(RUN_NOT_COMMITTED.format(id=run_id, status=pending)) from None
        return Response(run_get(run_id=run_id))

    @extend_schema(
        parameters=[RUN_ID, RunImpactQuerySerializer, LIMIT],
        responses={200: ImpactSerializer, **ERRORS},
        summary="Downstream of a run: it (depth 0) and every run that depends on it, transitively",
    )
    @action(detail=True, methods=["get"])
    def impact(self, request: Request, pk: str) -> Response:
        run_id = int(pk)
        if run_id > MAX_BIGINT or not Run.objects.filter(id=run_id).exists():
            raise NotFound(RUN_NOT_FOUND.format(id=run_id))
        query = RunImpactQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return impact_response(
            request, query.validated_data, seeds=[run_id], from_pointers=False, head={"run": run_id}
        )


class ImpactView(KnownQueryParameters, APIView):
    query_parameters = {"get": parameters_of(ImpactQuerySerializer, extra=("limit",))}

    @extend_schema(
        parameters=[ImpactQuerySerializer, LIMIT],
        responses={200: ImpactSerializer, **ERRORS},
        summary="Downstream of an output: the runs that read it (depth 1) and every run that depends on them",
    )
    def get(self, request: Request) -> Response:
        query = ImpactQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        seeds = lineage.impact_seeds_of_output(params["output_id"])
        return impact_response(
            request, params, seeds=seeds, from_pointers=True, head={"output_id": params["output_id"]}
        )


class TraceView(KnownQueryParameters, APIView):
    query_parameters = {"get": parameters_of(TraceQuerySerializer)}

    @extend_schema(
        parameters=[TraceQuerySerializer],
        responses={
            200: OpenApiResponse(
                PolymorphicProxySerializer(
                    component_name="TraceOrTree",
                    serializers=[TraceSerializer, WebTraceNodeSerializer(many=True)],
                    resource_type_field_name=None,
                    many=False,
                ),
                "The trace; with format=tree, mltrace's web_trace shape instead: a list with one "
                "nested node for the root run.",
            ),
            **ERRORS,
        },
        summary="Trace an output back through the runs that produced it",
    )
    def get(self, request: Request) -> HttpResponseBase:
        query = TraceQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        if params["format"] == "tree":
            tree = web_trace(output_id=params["output_id"], depth=params.get("depth"))
            return HttpResponse(tree_json(tree), content_type="application/json")
        plan = lineage.trace_plan(output_id=params["output_id"], depth=params.get("depth"))
        # Streamed: a trace may hold any number of runs; their bodies go out a chunk at a time.
        return StreamingHttpResponse(buffered(trace_json(plan)), content_type="application/json")


class FlagView(KnownQueryParameters, APIView):
    admin_scope = True

    @extend_schema(
        request=FlagSerializer,
        responses={200: FlagResultSerializer, **ERRORS},
        summary="Flag every pointer of this name (with downstream: true, and every output downstream of it)",
    )
    def post(self, request: Request) -> Response:
        serializer = FlagSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        name = serializer.validated_data["output_id"]
        if serializer.validated_data["downstream"]:
            count = pointers_flag_downstream(name=name, user=request.user)
        else:
            count = pointers_flag(name=name, flag=True, user=request.user)
        return Response({"output_id": name, "flag": True, "pointers": count})


class UnflagView(KnownQueryParameters, APIView):
    admin_scope = True

    @extend_schema(
        request=UnflagSerializer,
        responses={200: FlagResultSerializer, **ERRORS},
        summary='Unflag the pointers of a name, or every pointer with {"all": true}',
    )
    def post(self, request: Request) -> Response:
        serializer = UnflagSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        name = serializer.validated_data.get("output_id")
        if name:
            count = pointers_flag(name=name, flag=False, user=request.user)
            return Response({"output_id": name, "flag": False, "pointers": count})
        return Response({"flag": False, "pointers": pointers_unflag_all(user=request.user)})


class ReviewView(KnownQueryParameters, APIView):
    @extend_schema(responses={200: ReviewSerializer, **ERRORS}, summary="Review flagged outputs")
    def get(self, request: Request) -> StreamingHttpResponse:
        return StreamingHttpResponse(
            buffered(review_json(lineage.review_plan())), content_type="application/json"
        )


class QueueView(KnownQueryParameters, APIView):
    @extend_schema(responses={200: QueueSerializer, **ERRORS}, summary="The accepted-write queue")
    def get(self, request: Request) -> Response:
        return Response(queue_stats())
