"""POST /api/v1/runs/: one INSERT of the parsed body, answered 202 with its id."""

import json

from django.db import connection
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.ceiling import TABLE


class Hit(APIView):
    def post(self, request: Request) -> Response:
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {TABLE} (body) VALUES (%s) RETURNING id", [json.dumps(request.data)])
            (hit_id,) = cursor.fetchone()
        return Response({"id": hit_id, "status": "queued"}, status=202)


urlpatterns = [path("api/v1/runs/", Hit.as_view())]
