"""POST /api/v1/runs/batch/: the runs committed in list order, or none of them."""

from __future__ import annotations

import pytest

from common.errors import DEPENDENCY_UNRESOLVED
from tests.factories import nothing_written, run_request_body

pytestmark = pytest.mark.django_db


def test_a_batch_commits_runs_in_list_order(api):
    payloads = [
        run_request_body("etl", outputs=["clean.csv"]),
        run_request_body("train", inputs=["clean.csv"], outputs=["model.pkl"]),
        run_request_body("infer", inputs=["model.pkl"], dependencies=["train"], outputs=["pred_1"]),
    ]

    response = api.post("/api/v1/runs/batch/?sync=true", {"runs": payloads}, format="json")

    assert response.status_code == 201
    runs = response.json()["runs"]
    assert [r["component"] for r in runs] == ["etl", "train", "infer"]
    assert runs[0]["id"] < runs[1]["id"] < runs[2]["id"]
    assert runs[1]["dependencies"] == [runs[0]["id"]]
    assert runs[2]["dependencies"] == [runs[1]["id"]]


def test_a_batch_with_a_bad_run_names_its_index_and_accepts_none(api):
    payloads = [run_request_body("etl"), {"component": "x"}, run_request_body("ok"), run_request_body("a/b")]

    response = api.post("/api/v1/runs/batch/?sync=true", {"runs": payloads}, format="json")

    assert response.status_code == 400
    errors = response.json()["runs"]
    assert set(errors) == {"1", "3"}
    assert set(errors["1"]) == {"start_timestamp", "end_timestamp"}
    assert "component" in errors["3"]
    assert nothing_written()


def test_a_sync_batch_with_an_unresolved_dependency_accepts_none(api):
    payloads = [run_request_body("etl"), run_request_body("train", dependencies=["nothing"])]

    response = api.post("/api/v1/runs/batch/?sync=true", {"runs": payloads}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "runs": {"1": {"dependencies": [DEPENDENCY_UNRESOLVED.format(name="nothing")]}}
    }
    assert nothing_written()


@pytest.mark.parametrize("runs", [[], "x", None, [run_request_body("a")] * 1001])
def test_a_batch_must_hold_1_to_1000_runs(api, runs):
    response = api.post("/api/v1/runs/batch/?sync=true", {"runs": runs}, format="json")

    assert response.status_code == 400
    assert "runs" in response.json()
    assert nothing_written()
