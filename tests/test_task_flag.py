"""POST /api/v1/tasks/{task}/flag/: the outputs of a window whose feedback disagrees, flagged in
one call as POST /api/v1/flag/ flags a name, and review ranking the runs behind them."""

from __future__ import annotations

import datetime as dt

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from api.models import TokenGrant
from api.serializers.task_flag import (
    CRITERIA_EXCLUSIVE,
    MISMATCH_NOT_TRUE,
    NEEDS_A_CRITERION,
    NOT_A_THRESHOLD,
)
from api.serializers.task_reads import WINDOW_EXCLUSIVE
from common.errors import TOO_MANY_DISAGREEING
from runs.models import Edit, IOPointer
from tests.factories import log_run

pytestmark = pytest.mark.django_db

FLAG = "/api/v1/tasks/t/flag/"
OLD = dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)


def at(seconds: int) -> str:
    return (OLD + dt.timedelta(seconds=seconds)).isoformat()


def write(api: APIClient, kind: str, task: str, items: list[tuple[str, float, str | None]]) -> None:
    body = {kind: [{"identifier": i, "value": v, **({"timestamp": t} if t else {})} for i, v, t in items]}
    response = api.post(f"/api/v1/tasks/{task}/{kind}/?sync=true", body, format="json")
    assert response.status_code == 201, response.content


def endpoint(name: str) -> dict[str, str]:
    return {"name": name, "value": "", "pointer_type": "ENDPOINT"}


@pytest.fixture
def lineage(api) -> dict[str, int]:
    """etl writes data.csv; train reads it and writes model.pkl; two inference runs read the
    model, infer_a writing pred_1 and pred_2, infer_b pred_3 and pred_4 (ENDPOINT pointers)."""
    etl = log_run(api, "etl", outputs=["data.csv"])["id"]
    train = log_run(api, "train", inputs=["data.csv"], outputs=["model.pkl"])["id"]
    infer_a = log_run(api, "infer", inputs=["model.pkl"], outputs=[endpoint("pred_1"), endpoint("pred_2")])[
        "id"
    ]
    infer_b = log_run(api, "infer", inputs=["model.pkl"], outputs=[endpoint("pred_3"), endpoint("pred_4")])[
        "id"
    ]
    return {"etl": etl, "train": train, "infer_a": infer_a, "infer_b": infer_b}


@pytest.fixture
def labels(api, lineage) -> dict[str, int]:
    """Outputs of pred_1..pred_4 at OLD + 1..4 s; feedback disagrees for pred_2 and pred_4."""
    write(api, "outputs", "t", [(f"pred_{i}", 1, at(i)) for i in range(1, 5)])
    write(
        api,
        "feedback",
        "t",
        [("pred_1", 1, None), ("pred_2", 0, None), ("pred_3", 1, None), ("pred_4", 0, None)],
    )
    return lineage


def flagged() -> set[str]:
    return set(IOPointer.objects.filter(flag=True).values_list("name", flat=True))


def test_the_worked_flow_flags_the_disagreeing_predictions_and_review_ranks_the_runs_behind_them(api, labels):
    response = api.post(FLAG, {"mismatch": True}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "task": "t",
        "window": None,
        "disagreeing": 2,
        "flagged": 2,
        "already_flagged": 0,
        "not_pointers": 0,
        "outputs": ["pred_4", "pred_2"],
    }
    assert flagged() == {"pred_2", "pred_4"}
    edits = list(Edit.objects.order_by("id").values("action", "target", "detail", "user__username"))
    assert edits == [
        {"action": "flag", "target": name, "detail": {"pointers": 1, "task": "t"}, "user__username": "alice"}
        for name in ("pred_4", "pred_2")
    ]

    review = api.get("/api/v1/review/").json()
    assert review["flagged"] == ["pred_2", "pred_4"]
    # Both traces hold the model's training run and its data's run; each inference run is in one.
    assert [(entry["run"]["id"], entry["count"]) for entry in review["runs"]] == [
        (labels["train"], 2),
        (labels["etl"], 2),
        (labels["infer_b"], 1),
        (labels["infer_a"], 1),
    ]


def test_a_second_call_flags_nothing_new_and_records_no_edit(api, labels):
    api.post(FLAG, {"mismatch": True}, format="json")
    edits = Edit.objects.count()

    again = api.post(FLAG, {"mismatch": True}, format="json").json()

    assert again == {
        "task": "t",
        "window": None,
        "disagreeing": 2,
        "flagged": 0,
        "already_flagged": 2,
        "not_pointers": 0,
        "outputs": [],
    }
    assert Edit.objects.count() == edits


def test_it_flags_as_the_flag_endpoint_does_every_pointer_of_the_name(api, labels):
    # pred_2 with another value: POST /api/v1/flag/ flags both; so does the task's flag.
    log_run(api, "infer", outputs=[{"name": "pred_2", "value": "v2", "pointer_type": "ENDPOINT"}])
    api.post("/api/v1/flag/", {"output_id": "pred_4"}, format="json")

    body = api.post(FLAG, {"mismatch": True}, format="json").json()

    assert (body["flagged"], body["already_flagged"], body["outputs"]) == (2, 1, ["pred_2"])
    assert set(IOPointer.objects.filter(flag=True).values_list("name", "value")) == {
        ("pred_2", ""),
        ("pred_2", "v2"),
        ("pred_4", ""),
    }
    assert Edit.objects.filter(target="pred_2").get().detail == {"pointers": 2, "task": "t"}


def test_identifiers_that_name_no_pointer_are_counted_not_flagged(api, labels):
    write(api, "outputs", "t", [("user-9", 1, at(5)), ("user-8", 1, at(6))])
    write(api, "feedback", "t", [("user-9", 0, None), ("user-8", 1, None)])

    body = api.post(FLAG, {"mismatch": True}, format="json").json()

    assert (body["disagreeing"], body["flagged"], body["not_pointers"], body["outputs"]) == (
        3,
        2,
        1,
        ["pred_4", "pred_2"],
    )
    assert flagged() == {"pred_2", "pred_4"}
    assert not Edit.objects.filter(target="user-9").exists()


def test_regression_flags_the_absolute_errors_over_the_threshold(api, lineage):
    write(
        api,
        "outputs",
        "r",
        [("pred_1", 10.0, at(1)), ("pred_2", 10.0, at(2)), ("pred_3", 1e308, at(3)), ("pred_4", 3.0, at(4))],
    )
    # |error|: 0.5 (not over 0.5), 0.75, 2e308 (beyond a double: no overflow error), 0.
    write(
        api,
        "feedback",
        "r",
        [("pred_1", 10.5, None), ("pred_2", 9.25, None), ("pred_3", -1e308, None), ("pred_4", 3.0, None)],
    )

    response = api.post("/api/v1/tasks/r/flag/", {"threshold": 0.5}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "task": "r",
        "window": None,
        "disagreeing": 2,
        "flagged": 2,
        "already_flagged": 0,
        "not_pointers": 0,
        "outputs": ["pred_3", "pred_2"],
    }
    assert flagged() == {"pred_2", "pred_3"}
    zero = api.post("/api/v1/tasks/r/flag/", {"threshold": 0}, format="json").json()
    assert (zero["disagreeing"], zero["flagged"], zero["already_flagged"]) == (3, 1, 2)


def test_window_pairs_takes_the_latest_outputs(api, labels):
    body = api.post(FLAG, {"mismatch": True, "window_pairs": 3}, format="json").json()

    # pred_2..pred_4 are the 3 latest; of them pred_2 and pred_4 disagree.
    assert (body["window"], body["disagreeing"], body["outputs"]) == ({"pairs": 3}, 2, ["pred_4", "pred_2"])
    one = api.post(FLAG, {"mismatch": True, "window_pairs": 1}, format="json").json()
    assert (one["window"], one["disagreeing"], one["already_flagged"]) == ({"pairs": 1}, 1, 1)


def test_window_seconds_takes_the_outputs_logged_lately(api, lineage):
    # pred_1 and pred_2 were logged in 2024; pred_3 and pred_4 now (no timestamp).
    write(
        api,
        "outputs",
        "t",
        [("pred_1", 1, at(1)), ("pred_2", 1, at(2)), ("pred_3", 1, None), ("pred_4", 1, None)],
    )
    write(
        api,
        "feedback",
        "t",
        [("pred_1", 0, None), ("pred_2", 0, None), ("pred_3", 0, None), ("pred_4", 1, None)],
    )

    body = api.post(FLAG, {"mismatch": True, "window_seconds": 3600}, format="json").json()

    assert (body["window"], body["disagreeing"], body["outputs"]) == ({"seconds": 3600}, 1, ["pred_3"])
    assert flagged() == {"pred_3"}


def test_an_empty_window_answers_zeros(api, labels):
    body = api.post(FLAG, {"threshold": 5, "window_seconds": 60}, format="json").json()

    assert body == {
        "task": "t",
        "window": {"seconds": 60},
        "disagreeing": 0,
        "flagged": 0,
        "already_flagged": 0,
        "not_pointers": 0,
        "outputs": [],
    }
    assert not Edit.objects.exists()


def test_outputs_without_feedback_are_in_no_window(api, lineage):
    write(api, "outputs", "t", [("pred_1", 1, None)])
    write(api, "feedback", "t", [("pred_2", 0, None)])

    assert api.post(FLAG, {"mismatch": True}, format="json").json()["disagreeing"] == 0


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"mismatch": [NEEDS_A_CRITERION]}),
        ({"window_pairs": 5}, {"mismatch": [NEEDS_A_CRITERION]}),
        ({"mismatch": True, "threshold": 1}, {"threshold": [CRITERIA_EXCLUSIVE]}),
        ({"mismatch": False}, {"mismatch": [MISMATCH_NOT_TRUE]}),
        ({"mismatch": "true"}, {"mismatch": ["Must be true or false."]}),
        ({"threshold": -1}, {"threshold": [NOT_A_THRESHOLD]}),
        ({"threshold": "1"}, {"threshold": [NOT_A_THRESHOLD]}),
        ({"threshold": True}, {"threshold": [NOT_A_THRESHOLD]}),
        ({"threshold": 10**400}, {"threshold": [NOT_A_THRESHOLD]}),
        ({"mismatch": True, "window_seconds": 5, "window_pairs": 5}, {"window_pairs": [WINDOW_EXCLUSIVE]}),
        (
            {"mismatch": True, "window_seconds": 0},
            {"window_seconds": ["Ensure this value is greater than or equal to 1."]},
        ),
        ({"mismatch": True, "window_pairs": "5"}, {"window_pairs": ["Must be an integer."]}),
        ({"mismatch": True, "windw_pairs": 5}, {"windw_pairs": ["Unknown field."]}),
    ],
)
def test_a_refused_body_is_a_400_naming_the_field_and_flags_nothing(api, labels, body, errors):
    response = api.post(FLAG, body, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert not flagged()
    assert not Edit.objects.exists()


def test_more_disagreeing_pairs_than_a_call_flags_is_a_400_and_flags_nothing(api, labels, monkeypatch):
    monkeypatch.setattr("monitoring.selectors.MAX_FLAG_OUTPUTS", 1)

    response = api.post(FLAG, {"mismatch": True}, format="json")

    assert response.status_code == 400
    assert response.json() == {"detail": TOO_MANY_DISAGREEING.format(max=1)}
    assert not flagged()
    assert not Edit.objects.exists()
    assert api.post(FLAG, {"mismatch": True, "window_pairs": 1}, format="json").json()["flagged"] == 1


def test_an_unknown_task_is_404_and_flags_nothing(api, labels):
    response = api.post("/api/v1/tasks/nothing/flag/", {"mismatch": True}, format="json")

    assert response.status_code == 404
    assert response.json() == {"detail": "Unknown task: nothing."}
    assert not flagged()
    assert not Edit.objects.exists()


def test_it_needs_the_admin_scope_as_the_flag_endpoint_does(api, labels, user):
    def scoped(scope: str) -> APIClient:
        token = Token.objects.create(user=type(user).objects.create(username=f"svc-{scope}"))
        TokenGrant.objects.create(token=token, scopes=[scope])
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    for scope in ("read", "write"):
        client = scoped(scope)
        for url, body in ((FLAG, {"mismatch": True}), ("/api/v1/flag/", {"output_id": "pred_2"})):
            response = client.post(url, body, format="json")
            assert response.status_code == 403
            assert response.json() == {"detail": "This token does not have the admin scope."}
    assert not flagged()
    assert scoped("admin").post(FLAG, {"mismatch": True}, format="json").json()["flagged"] == 2
    assert APIClient().post(FLAG, {"mismatch": True}, format="json").status_code == 401
