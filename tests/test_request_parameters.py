"""An unknown body field or query parameter is a 400 naming it, on every endpoint, and writes
nothing; `sync` is true, false, 1 or 0.
"""

from __future__ import annotations

import pytest

from components.models import Component
from runs.models import Run
from tests.factories import SYNC, log_run, nothing_written, run_request_body

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url,body,errors",
    [
        (SYNC, {**run_request_body("etl"), "ouputs": ["clean.csv"]}, {"ouputs": ["Unknown field."]}),
        (
            "/api/v1/runs/",
            {**run_request_body("etl", outputs=[{"name": "a", "flag": True}])},
            {"outputs": {"0": {"flag": ["Unknown field."]}}},
        ),
        (
            "/api/v1/runs/batch/",
            {"runs": [run_request_body("etl"), {**run_request_body("etl"), "stale": []}]},
            {"runs": {"1": {"stale": ["Unknown field."]}}},
        ),
        (
            "/api/v1/runs/batch/",
            {"runs": [run_request_body("etl")], "sync": True},
            {"sync": ["Unknown field."]},
        ),
        ("/api/v1/components/", {"name": "etl", "onwer": "me"}, {"onwer": ["Unknown field."]}),
        ("/api/v1/flag/", {"output_id": "a", "downstrem": True}, {"downstrem": ["Unknown field."]}),
    ],
)
def test_an_unknown_body_field_is_a_400_naming_it_and_nothing_is_written(api, url, body, errors):
    response = api.post(url, body, format="json")

    assert response.status_code == 400, response.content
    assert response.json() == errors
    assert nothing_written()


def test_a_patch_with_an_unknown_field_is_a_400_and_changes_nothing(api):
    run = log_run(api, "etl", notes="old")

    run_patch = api.patch(f"/api/v1/runs/{run['id']}/", {"notes": "new", "note": "x"}, format="json")
    component_patch = api.patch("/api/v1/components/etl/", {"owner": "bob", "ower": "x"}, format="json")

    assert (run_patch.status_code, run_patch.json()) == (400, {"note": ["Unknown field."]})
    assert (component_patch.status_code, component_patch.json()) == (400, {"ower": ["Unknown field."]})
    assert Run.objects.get().notes == "old"
    assert Component.objects.get().owner == ""


@pytest.mark.parametrize(
    "url,params",
    [
        ("/api/v1/runs/", {"compnent": "etl"}),
        ("/api/v1/components/", {"tags": "nightly"}),
        ("/api/v1/components/etl/history/", {"date_lowr": "2024-01-01"}),
        ("/api/v1/tags/", {"page": "2"}),
        ("/api/v1/trace/", {"output_id": "clean.csv", "dpth": "1"}),
        ("/api/v1/review/", {"limit": "5"}),
        ("/api/v1/queue/", {"verbose": "1"}),
        ("/api/v1/runs/1/", {"x": "1"}),
    ],
)
def test_an_unknown_query_parameter_is_a_400_naming_it(api, url, params):
    log_run(api, "etl", outputs=["clean.csv"])

    response = api.get(url, params)

    assert response.status_code == 400, response.content
    (name,) = params.keys() - {"output_id"}
    assert list(response.json()) == [name]
    assert response.json()[name][0].startswith("Unknown query parameter.")


def test_the_query_parameters_a_list_takes_still_work(api):
    etl = log_run(api, "etl", outputs=["clean.csv"])
    log_run(api, "train", inputs=["clean.csv"])

    assert [
        r["id"] for r in api.get("/api/v1/runs/", {"component": "etl", "limit": 5}).json()["results"]
    ] == [etl["id"]]
    assert (
        api.get("/api/v1/trace/", {"output_id": "clean.csv", "depth": 0, "format": "tree"}).status_code == 200
    )


def test_an_unknown_query_parameter_on_a_write_is_a_400_and_nothing_is_written(api):
    response = api.post("/api/v1/runs/?synch=true", run_request_body("etl"), format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["synch"]
    assert nothing_written()


@pytest.mark.parametrize("value", ["", "yes", "garbage", "2", "on"])
def test_sync_is_true_false_1_or_0_and_nothing_else(api, value):
    response = api.post(f"/api/v1/runs/?sync={value}", run_request_body("etl"), format="json")

    assert response.status_code == 400
    assert response.json() == {"sync": ["Must be true, false, 1 or 0."]}
    assert nothing_written()


@pytest.mark.parametrize(
    "value,status", [("true", 201), ("TRUE", 201), ("1", 201), ("false", 202), ("0", 202)]
)
def test_sync_takes_true_false_1_and_0(api, value, status):
    assert (
        api.post(f"/api/v1/runs/?sync={value}", run_request_body("etl"), format="json").status_code == status
    )
