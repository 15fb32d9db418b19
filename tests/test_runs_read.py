"""GET /api/v1/runs/ (the recent runs, paged as mltrace pages them) and GET /api/v1/runs/{id}/."""

from __future__ import annotations

import pytest

from common.errors import RUN_NOT_FOUND
from runs.models import Write
from tests.factories import log_run, moment

pytestmark = pytest.mark.django_db


def test_recent_runs_page_with_before_like_mltrace(api):
    ids = [log_run(api, f"c{i % 2}", start=moment(i))["id"] for i in range(5)]

    first = api.get("/api/v1/runs/", {"limit": 2}).json()
    second = api.get("/api/v1/runs/", {"limit": 2, "before": ids[3]}).json()
    only_c0 = api.get("/api/v1/runs/", {"component": "c0"}).json()

    assert [r["id"] for r in first["results"]] == [ids[4], ids[3]]
    assert first["previous"] is None
    assert [r["id"] for r in api.get(first["next"]).json()["results"]] == [ids[2], ids[1]]
    assert [r["id"] for r in second["results"]] == [ids[2], ids[1]]
    assert [r["id"] for r in api.get(second["previous"]).json()["results"]] == [ids[4], ids[3]]
    assert [r["id"] for r in only_c0["results"]] == [ids[4], ids[2], ids[0]]


def test_recent_runs_before_an_unknown_run_is_404(api):
    response = api.get("/api/v1/runs/", {"before": 999999})

    assert response.status_code == 404
    assert response.json() == {"detail": RUN_NOT_FOUND.format(id=999999)}


def test_an_unknown_run_is_404(api):
    for response in (
        api.get("/api/v1/runs/424242/"),
        api.get(f"/api/v1/runs/{10**30}/"),
        api.patch("/api/v1/runs/424242/", {"notes": "x"}, format="json"),
    ):
        assert response.status_code == 404
        assert "detail" in response.json()


def test_a_component_write_id_is_not_a_run(api):
    write_id = api.post("/api/v1/components/?sync=true", {"name": "a"}, format="json")
    component_write = Write.objects.get()

    response = api.get(f"/api/v1/runs/{component_write.id}/")

    assert write_id.status_code == 201
    assert response.status_code == 404


def test_a_run_too_deep_to_decode_spoils_only_its_own_test_results(api):
    """A value stored before the depth bound, deeper than a process can decode."""
    from django.db import connection

    etl = log_run(api, "etl", outputs=["clean.csv"], test_results={"ok": True})
    train = log_run(api, "train", inputs=["clean.csv"], outputs=["model.pkl"])
    with connection.cursor() as cursor:
        deep = "[" * 990 + "]" * 990
        cursor.execute("UPDATE runs_run SET test_results = %s WHERE id = %s", [deep, train["id"]])

    listed = api.get("/api/v1/runs/")
    one = api.get(f"/api/v1/runs/{train['id']}/")
    trace = api.get("/api/v1/trace/", {"output_id": "model.pkl"})
    tree = api.get("/api/v1/trace/", {"output_id": "model.pkl", "format": "tree"})

    assert listed.status_code == one.status_code == trace.status_code == tree.status_code == 200
    by_id = {run["id"]: run["test_results"] for run in listed.json()["results"]}
    assert by_id == {etl["id"]: {"ok": True}, train["id"]: "(nested too deeply to show)"}
    assert one.json()["test_results"] == "(nested too deeply to show)"
    assert [node["run"]["id"] for node in trace.json()["nodes"]] == [train["id"], etl["id"]]
