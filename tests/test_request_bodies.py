"""A write's body, before any serializer reads it: JSON in UTF-8, an object, nested within the
bounds, no lone surrogate nor a number out of a float's range, at most MLTRACE_MAX_BODY_BYTES
and of a stated length (api/parsers.py, api/middleware.py); the same on every door a run comes
in by.
"""

from __future__ import annotations

import json

import pytest

from api.parsers import LONE_SURROGATE, NOT_UTF8, TOO_DEEP
from api.serializers.runs import TOO_DEEP_FIELD
from runs.models import Run, Write
from tests.factories import SYNC, nothing_written, run_request_body

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"component": "etl",}', b"\xff\xfe", b"[1, 2", b"NaN", b"[" * 100_000],
)
def test_malformed_json_is_400_never_500(api, body):
    response = api.post(SYNC, body, content_type="application/json")

    assert response.status_code == 400
    assert "detail" in response.json()
    assert nothing_written()


def test_a_json_body_that_is_not_an_object_is_400(api):
    response = api.post(SYNC, [1, 2], format="json")

    assert response.status_code == 400
    assert nothing_written()


@pytest.mark.parametrize("url", [SYNC, "/api/v1/runs/"])
@pytest.mark.parametrize(
    "change",
    [
        {"test_results": "\ud800"},
        {"test_results": {"\udc00": 1}},
        {"ignored_field": ["\ud83d"]},
        {"component": "etl\udfff"},
    ],
)
def test_a_lone_surrogate_anywhere_in_the_body_is_400_never_500(api, url, change):
    # json.dumps escapes it as \ud800, as a client's encoder would: valid JSON, no UTF-8 text.
    body = json.dumps({**run_request_body("etl"), **change})

    response = api.post(url, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 400
    assert response.json() == {"detail": LONE_SURROGATE}
    assert nothing_written()


@pytest.mark.parametrize("url", [SYNC, "/api/v1/runs/", "/api/v1/runs/batch/"])
@pytest.mark.parametrize("number", ["1e400", "-1E+999"])
def test_a_number_too_large_for_a_float_is_400_never_500(api, url, number):
    # Python's json reads 1e400 as infinity, which no encoder can write back as JSON: it was
    # stored as Infinity and PostgreSQL refused it, a 500.
    run = json.dumps(run_request_body("etl"))[:-1] + f', "test_results": {{"loss": {number}}}}}'
    body = f'{{"runs": [{run}]}}' if url.endswith("batch/") else run

    response = api.post(url, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": f"JSON parse error - Out of range float values are not JSON compliant: '{number}'"
    }
    assert nothing_written()


def test_deeply_nested_test_results_are_refused_or_stored_never_500(api):
    nested = "[" * 900 + "]" * 900
    body = json.dumps(run_request_body("etl"))[:-1] + f', "test_results": {nested}}}'

    response = api.post(SYNC, body, content_type="application/json")

    assert response.status_code in (201, 400), response.content
    if response.status_code == 400:
        assert nothing_written()


# Every door a run comes in by: plain, sync, idempotent, and each of those as a batch.
DOORS = [
    ("/api/v1/runs/", False, {}),
    (SYNC, False, {}),
    ("/api/v1/runs/", False, {"HTTP_IDEMPOTENCY_KEY": "k1"}),
    ("/api/v1/runs/batch/", True, {}),
    ("/api/v1/runs/batch/?sync=true", True, {}),
    ("/api/v1/runs/batch/", True, {"HTTP_IDEMPOTENCY_KEY": "k2"}),
]


def nested(levels: int) -> object:
    value: object = 1
    for level in range(levels):
        value = [value] if level % 2 else {"k": value}
    return value


def post_run(api, url, batch, headers, payload, **kwargs):
    body = {"runs": [run_request_body("etl"), payload]} if batch else payload
    return api.post(
        url, json.dumps(body), content_type=kwargs.pop("content_type", "application/json"), **headers
    )


@pytest.mark.parametrize("url,batch,headers", DOORS)
def test_test_results_nested_past_the_bound_is_a_400_on_every_door(api, url, batch, headers):
    response = post_run(api, url, batch, headers, run_request_body("etl", test_results=nested(65)))

    assert response.status_code == 400, response.content
    error = [TOO_DEEP_FIELD.format(limit=64)]
    assert response.json() == ({"runs": {"1": {"test_results": error}}} if batch else {"test_results": error})
    assert nothing_written()


@pytest.mark.parametrize("url,batch,headers", DOORS)
def test_test_results_nested_at_the_bound_is_stored_as_sent(api, url, batch, headers, settings):
    response = post_run(api, url, batch, headers, run_request_body("etl", test_results=nested(64)))

    assert response.status_code in (201, 202), response.content
    if "sync" in url:
        assert Run.objects.order_by("id").last().test_results == nested(64)
    else:
        assert Write.objects.order_by("id").last().payload["test_results"] == nested(64)


@pytest.mark.parametrize("url,batch,headers", DOORS)
def test_a_body_nested_past_the_envelope_s_bound_is_refused_before_validation(api, url, batch, headers):
    # 930 levels passed the old guard, then failed every later sync write and PATCH.
    response = post_run(api, url, batch, headers, {**run_request_body("etl"), "unknown": nested(930)})

    assert response.status_code == 400
    assert response.json() == {"detail": TOO_DEEP.format(limit=80)}
    assert nothing_written()


@pytest.mark.parametrize("url,batch,headers", DOORS)
@pytest.mark.parametrize("charset", ["utf-16", "utf-32", "latin-1"])
def test_a_body_in_another_charset_is_415_on_every_door(api, url, batch, headers, charset):
    # In UTF-16 or UTF-32 a lone surrogate's escape is bytes the UTF-8 check would not see.
    payload = run_request_body("etl", test_results={"x": "\udfff"})
    body = json.dumps({"runs": [payload]} if batch else payload).encode(charset)

    response = api.post(url, body, content_type=f"application/json; charset={charset}", **headers)

    assert response.status_code == 415
    assert response.json() == {"detail": NOT_UTF8.format(charset=charset)}
    assert nothing_written()


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8"])
def test_utf8_may_be_named(api, charset):
    body = json.dumps(run_request_body("etl", outputs=["é.csv"])).encode()

    response = api.post(SYNC, body, content_type=f"application/json; charset={charset}")

    assert response.status_code == 201
    assert response.json()["outputs"][0]["name"] == "é.csv"


def test_a_body_over_the_limit_is_413(api, settings):
    settings.MLTRACE_MAX_BODY_BYTES = 1000
    payload = run_request_body("etl", notes="x" * 2000)

    response = api.post(SYNC, payload, format="json")

    assert response.status_code == 413
    assert "1000" in response.json()["detail"]
    assert nothing_written()


def test_a_chunked_body_without_a_length_is_411_not_taken_as_empty(api):
    # Django's test client, like runserver, hands Django no length for a chunked body; gunicorn
    # as shipped reads it first (tests/test_serving.py).
    response = api.post(SYNC, b"", content_type="application/json", HTTP_TRANSFER_ENCODING="chunked")

    assert response.status_code == 411
    assert "Content-Length" in response.json()["detail"]
    assert nothing_written()
