"""Every documented answer agrees with the OpenAPI schema the server serves (openapi-core).

The bodies are built by the views and selectors; the schema by drf-spectacular from the
serializers. This checks, answer by answer, that the two say the same: status codes, content
types, required fields and their types, for runs (committed, queued, accepted), batches,
components, pages, trace (both formats), review, flags, the queue and the errors.
"""

from __future__ import annotations

import json

import pytest
from django.http import HttpResponse
from openapi_core import OpenAPI
from openapi_core.contrib.django import DjangoOpenAPIRequest, DjangoOpenAPIResponse

from tests.factories import create_predictions, run_request_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def openapi(anon) -> OpenAPI:
    return OpenAPI.from_dict(json.loads(anon.get("/api/schema/", HTTP_ACCEPT="application/json").content))


def conforms(openapi: OpenAPI, response) -> None:
    """Raises openapi-core's error, which names the field, if the answer is not as documented."""
    if response.streaming:
        # The validator reads .content; trace and review stream theirs (the test client has
        # read the stream already, into .json()).
        streamed = HttpResponse(
            json.dumps(response.json()), status=response.status_code, content_type=response["Content-Type"]
        )
        streamed.wsgi_request = response.wsgi_request
        response = streamed
    try:
        openapi.validate_response(
            DjangoOpenAPIRequest(response.wsgi_request), DjangoOpenAPIResponse(response)
        )
    except Exception as exc:
        raise AssertionError(
            f"{response.wsgi_request.method} {response.wsgi_request.get_full_path()} answered "
            f"{response.status_code} {response.content[:300]!r}, not as the schema says: {exc!r}"
        ) from exc


def test_run_answers_match_the_schema(api, openapi):
    committed = api.post(
        "/api/v1/runs/?sync=true", run_request_body("etl", outputs=["clean.csv"]), format="json"
    )
    accepted = api.post("/api/v1/runs/", run_request_body("train", inputs=["clean.csv"]), format="json")
    answers = [
        committed,
        accepted,
        api.get(f"/api/v1/runs/{committed.json()['id']}/"),
        api.get(f"/api/v1/runs/{accepted.json()['id']}/"),  # queued: id, status and a few fields
        api.get("/api/v1/runs/"),
        api.get("/api/v1/runs/?component=etl&limit=1"),
        api.patch(f"/api/v1/runs/{committed.json()['id']}/", {"notes": "checked"}, format="json"),
        api.post(
            "/api/v1/runs/batch/", {"runs": [run_request_body("a"), run_request_body("b")]}, format="json"
        ),
        api.post("/api/v1/runs/batch/?sync=true", {"runs": [run_request_body("c")]}, format="json"),
    ]
    assert [a.status_code for a in answers] == [201, 202, 200, 200, 200, 200, 200, 202, 201]
    for answer in answers:
        conforms(openapi, answer)


def test_component_answers_match_the_schema(api, openapi):
    answers = [
        api.post("/api/v1/components/", {"name": "etl", "tags": ["a"]}, format="json"),
        api.post("/api/v1/components/?sync=true", {"name": "train", "owner": "ana"}, format="json"),
        api.post("/api/v1/components/?sync=true", {"name": "train", "tags": ["b"]}, format="json"),
        api.get("/api/v1/components/train/"),
        api.patch("/api/v1/components/train/", {"description": "Trains"}, format="json"),
        api.post("/api/v1/components/train/tags/", {"tags": ["c"]}, format="json"),
        api.get("/api/v1/components/"),
        api.get("/api/v1/components/?limit=1"),
        api.get("/api/v1/tags/"),
        api.get("/api/v1/components/train/history/"),
    ]
    assert [a.status_code for a in answers] == [202, 201, 200, 200, 200, 200, 200, 200, 200, 200]
    for answer in answers:
        conforms(openapi, answer)


def test_lineage_answers_match_the_schema(api, openapi):
    api.post("/api/v1/runs/?sync=true", run_request_body("etl", outputs=["clean.csv"]), format="json")
    api.post(
        "/api/v1/runs/?sync=true",
        run_request_body("train", inputs=["clean.csv"], outputs=["model.pkl"]),
        format="json",
    )
    answers = [
        api.get("/api/v1/trace/?output_id=model.pkl"),
        api.get("/api/v1/trace/?output_id=model.pkl&depth=0"),
        api.get("/api/v1/trace/?output_id=model.pkl&format=tree"),
        api.post("/api/v1/flag/", {"output_id": "model.pkl"}, format="json"),
        api.get("/api/v1/review/"),
        api.post("/api/v1/unflag/", {"output_id": "model.pkl"}, format="json"),
        api.post("/api/v1/unflag/", {"all": True}, format="json"),
        api.get("/api/v1/queue/"),
    ]
    assert [a.status_code for a in answers] == [200] * 8
    for answer in answers:
        conforms(openapi, answer)


def test_error_answers_match_the_schema(api, anon, openapi, settings):
    api.post("/api/v1/runs/", run_request_body("etl"), format="json", HTTP_IDEMPOTENCY_KEY="k")
    queued = api.post("/api/v1/runs/", run_request_body("etl"), format="json").json()["id"]
    settings.MLTRACE_MAX_BODY_BYTES = 100
    too_large = api.post("/api/v1/runs/", run_request_body("etl", notes="x" * 200), format="json")
    settings.MLTRACE_MAX_BODY_BYTES = 10 * 1024 * 1024
    answers = [
        api.post("/api/v1/runs/", {"component": "etl"}, format="json"),  # 400, field errors
        api.post("/api/v1/runs/", b"{not json", content_type="application/json"),  # 400, detail
        anon.get("/api/v1/runs/"),  # 401
        api.get("/api/v1/runs/999/"),  # 404
        api.get("/api/v1/trace/?output_id=nothing"),  # 404
        api.post("/api/v1/runs/", run_request_body("train"), format="json", HTTP_IDEMPOTENCY_KEY="k"),  # 409
        api.patch(f"/api/v1/runs/{queued}/", {"notes": "x"}, format="json"),  # 409: not committed yet
        too_large,  # 413
        api.post("/api/v1/runs/", "component=etl", content_type="text/plain"),  # 415
    ]
    assert [a.status_code for a in answers] == [400, 400, 401, 404, 404, 409, 409, 413, 415]
    for answer in answers:
        conforms(openapi, answer)


def test_task_read_answers_match_the_schema(api, openapi):
    create_predictions("scores", [(0.2, 0.0), (0.9, 1.0), (0.4, None), (None, 1.0)])
    create_predictions("labels", [(0.0, 1.0), (2.0, 2.0)])
    answers = [
        api.get("/api/v1/tasks/"),
        api.get("/api/v1/tasks/?limit=1"),
        api.get("/api/v1/tasks/scores/"),
        api.get("/api/v1/tasks/scores/outputs/?limit=1"),
        api.get("/api/v1/tasks/scores/feedback/?window_seconds=60"),
        api.get("/api/v1/tasks/scores/pairs/?window_pairs=1&limit=1"),
        api.get("/api/v1/tasks/scores/metrics/?metric=roc_auc&window_pairs=2"),
        api.get("/api/v1/tasks/scores/metrics/?metric=r2&window_seconds=60"),  # empty: null, reason
        api.get("/api/v1/tasks/labels/metrics/?metric=confusion_matrix"),
        api.get("/api/v1/tasks/labels/metrics/?metric=precision"),  # not binary: null, reason
        api.get("/api/v1/tasks/scores/series/?metric=f1&bucket=hour&start=2024-01-01&end=2024-01-02"),
        api.get("/api/v1/tasks/nothing/"),  # 404
        api.get("/api/v1/tasks/scores/metrics/?metric=auc"),  # 400
        api.get("/api/v1/tasks/scores/pairs/?before=x"),  # 400
    ]
    assert [a.status_code for a in answers] == [200] * 11 + [404, 400, 400]
    for answer in answers:
        conforms(openapi, answer)


def test_task_flag_answers_match_the_schema(api, openapi):
    api.post(
        "/api/v1/runs/?sync=true",
        run_request_body("infer", outputs=[{"name": "pred_1", "value": "", "pointer_type": "ENDPOINT"}]),
        format="json",
    )
    create_predictions("scores", [(2.0, 2.0), (1.0, 0.0)], prefix="pred_")
    answers = [
        api.post("/api/v1/tasks/scores/flag/", {"mismatch": True}, format="json"),
        api.post("/api/v1/tasks/scores/flag/", {"threshold": 0.5, "window_pairs": 2}, format="json"),
        api.post("/api/v1/tasks/scores/flag/", {"threshold": 0.5, "window_seconds": 60}, format="json"),
        api.post("/api/v1/tasks/scores/flag/", {}, format="json"),
        api.post("/api/v1/tasks/nothing/flag/", {"mismatch": True}, format="json"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 400, 404]
    assert answers[0].json()["outputs"] == ["pred_1"]
    for answer in answers:
        conforms(openapi, answer)
