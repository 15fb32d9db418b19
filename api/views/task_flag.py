"""POST /api/v1/tasks/{task}/flag/: flag, in one call, the outputs of a window whose feedback
disagrees, so that review ranks the runs behind them.

An identifier that is also the name of a pointer (a prediction an inference run logged as an
output) is flagged as POST /api/v1/flag/ {"output_id": identifier} flags it: every pointer of
that name, with the same scope (admin), the same row locks in id order and an edit recorded.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.requests import ERRORS, KnownQueryParameters, validated
from api.serializers.task_flag import (
    TaskFlagResultSerializer,
    TaskFlagSerializer,
    disagreement_of,
    task_flag_body,
)
from api.serializers.task_reads import window_of
from api.serializers.task_writes import task_name_validated
from api.views.task_writes import TASK
from monitoring.selectors import disagreeing_identifiers, task_get
from runs.services import pointers_flag_names


class TaskFlagView(KnownQueryParameters, APIView):
    admin_scope = True  # a flag is an edit: the scope and permission of POST /api/v1/flag/

    @extend_schema(
        parameters=[TASK],
        request=TaskFlagSerializer,
        responses={200: TaskFlagResultSerializer, **ERRORS},
        summary="Flag the outputs of a window whose feedback disagrees (every pointer of each identifier's name)",
    )
    def post(self, request: Request, task: str) -> Response:
        name = task_name_validated(task)
        body = validated(TaskFlagSerializer, request.data)
        window = window_of(body)
        identifiers = disagreeing_identifiers(
            task=task_get(name=name), window=window, disagreement=disagreement_of(body)
        )
        detail = {"task": name}
        done = pointers_flag_names(names=identifiers, user=request.user, detail=detail)
        return Response(
            task_flag_body(
                name,
                window,
                len(identifiers),
                done.flagged,
                done.already_flagged,
                len(done.not_pointers),
                done.names_flagged,
            )
        )
