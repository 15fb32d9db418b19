"""PATCH /api/v1/runs/{id}/: a committed run's notes."""

from __future__ import annotations

import pytest

from common.errors import RUN_NOT_COMMITTED
from runs.models import Run, Write
from tests.factories import log_run, run_request_body

pytestmark = pytest.mark.django_db


def test_it_replaces_a_runs_notes(api):
    run = log_run(api, "etl", notes="old")

    response = api.patch(f"/api/v1/runs/{run['id']}/", {"notes": "looked fine"}, format="json")

    assert response.status_code == 200
    assert response.json()["notes"] == "looked fine"
    assert Run.objects.get(id=run["id"]).notes == "looked fine"


def test_the_notes_of_a_queued_run_are_409_until_it_is_committed(api):
    queued = api.post("/api/v1/runs/", run_request_body("etl"), format="json").json()

    response = api.patch(f"/api/v1/runs/{queued['id']}/", {"notes": "n"}, format="json")

    assert response.status_code == 409
    assert response.json() == {"detail": RUN_NOT_COMMITTED.format(id=queued["id"], status="queued")}
    assert Write.objects.get(id=queued["id"]).status == "queued"
