"""Monitoring's writes: POST /api/v1/tasks/{task}/outputs/ and /feedback/, from the request to
the rows.

A request is one write; a refusal writes nothing; the commit folds outputs and feedback into
one row per (task, identifier) in acceptance order, whichever door and whichever batches.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.utils import timezone

from api.fields import NOT_A_STRING, UNKNOWN_FIELD
from api.serializers.runs import NULL_CHARACTER
from api.serializers.task_writes import (
    BLANK,
    IDENTIFIER_TOO_LONG,
    ITEM_NOT_AN_OBJECT,
    ITEMS_COUNT,
    ITEMS_NOT_A_LIST,
    NOT_A_FINITE_NUMBER,
    REQUIRED,
    TASK_NAME_SLASH,
    TASK_NAME_TOO_LONG,
)
from common.errors import IDEMPOTENCY_KEY_REUSED, NOT_A_RUN
from ingest.queue import backlog_commit
from ingest.retry import writes_retry_failed
from monitoring.models import Prediction, Task
from runs.models import Write
from tests.live import wait_until
from tests.test_openapi_responses import conforms, openapi  # noqa: F401 (a fixture)

OUTPUTS = "/api/v1/tasks/{task}/outputs/"
FEEDBACK = "/api/v1/tasks/{task}/feedback/"
T0 = "2026-12-07T10:00:00+00:00"


def outputs(api, task: str, *items: tuple, sync: bool = False, **extra: Any):
    """POSTs (identifier, value[, timestamp]) items as a task's outputs."""
    return _post(api, OUTPUTS, "outputs", task, items, sync=sync, **extra)


def feedback(api, task: str, *items: tuple, sync: bool = False, **extra: Any):
    """POSTs (identifier, value[, timestamp]) items as a task's feedback."""
    return _post(api, FEEDBACK, "feedback", task, items, sync=sync, **extra)


def _post(api, url: str, key: str, task: str, items: tuple, *, sync: bool, **extra: Any):
    body = {
        key: [
            {"identifier": item[0], "value": item[1], **({"timestamp": item[2]} if len(item) > 2 else {})}
            for item in items
        ]
    }
    return api.post(url.format(task=task) + ("?sync=true" if sync else ""), body, format="json", **extra)


def commit_all() -> None:
    """Commits everything queued, as a worker's task would."""
    last = Write.objects.last_queued_id()
    if last is not None:
        backlog_commit(through_id=last)


def rows(task: str = "churn") -> dict[str, tuple]:
    """identifier -> (output, output_at, output_write, feedback, feedback_at, feedback_write)."""
    return {
        p.identifier: (p.output, p.output_at, p.output_write, p.feedback, p.feedback_at, p.feedback_write)
        for p in Prediction.objects.filter(task__name=task)
    }


def counts(task: str = "churn") -> tuple:
    """A task's (output_count, feedback_count, pair_count, last_output_at)."""
    t = Task.objects.get(name=task)
    return (t.output_count, t.feedback_count, t.pair_count, t.last_output_at)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def nothing_written() -> bool:
    return not Write.objects.exists() and not Task.objects.exists() and not Prediction.objects.exists()


# --- answers and rows -------------------------------------------------------------------------


@pytest.mark.django_db
def test_outputs_are_accepted_as_one_write_with_202_and_committed_later(api):
    response = outputs(
        api, "churn", ("a", 1), ("b", 0.25, "2026-12-07T10:00:00Z"), ("c", -3, "2026-12-07T11:00:00")
    )

    assert response.status_code == 202
    write = Write.objects.get()
    assert response.json() == {"id": write.id, "status": "queued", "task": "churn", "count": 3}
    assert write.kind == Write.Kind.OUTPUT
    # The compact payload: timestamps as UTC ISO strings, a naive one read as UTC.
    assert write.payload == {
        "task": "churn",
        "items": [["a", 1.0, None], ["b", 0.25, T0], ["c", -3.0, "2026-12-07T11:00:00+00:00"]],
    }
    assert not Task.objects.exists() and not Prediction.objects.exists()

    commit_all()

    write.refresh_from_db()
    assert write.status == Write.Status.COMMITTED
    assert rows() == {
        "a": (1.0, write.accepted_at, write.id, None, None, None),
        "b": (0.25, at(T0), write.id, None, None, None),
        "c": (-3.0, at("2026-12-07T11:00:00+00:00"), write.id, None, None, None),
    }
    task = Task.objects.get()
    assert (task.name, task.created_at) == ("churn", write.accepted_at)
    assert counts() == (3, 0, 0, write.accepted_at)


@pytest.mark.django_db
def test_sync_feedback_is_committed_before_its_201(api):
    response = feedback(api, "churn", ("a", 1, T0), sync=True)

    assert response.status_code == 201
    write = Write.objects.get()
    assert response.json() == {"id": write.id, "status": "committed", "task": "churn", "count": 1}
    assert (write.kind, write.status) == (Write.Kind.FEEDBACK, Write.Status.COMMITTED)
    assert rows() == {"a": (None, None, None, 1.0, at(T0), write.id)}
    assert counts() == (0, 1, 0, None)


@pytest.mark.django_db
def test_feedback_before_its_output_meets_it_and_makes_a_pair(api):
    first = feedback(api, "churn", ("a", 1, "2026-12-07T12:00:00Z"), sync=True).json()["id"]
    second = outputs(api, "churn", ("a", 0, T0), ("b", 1, T0), sync=True).json()["id"]

    assert rows() == {
        "a": (0.0, at(T0), second, 1.0, at("2026-12-07T12:00:00+00:00"), first),
        "b": (1.0, at(T0), second, None, None, None),  # an output never answered
    }
    assert counts() == (2, 1, 1, at(T0))
    assert Task.objects.get().created_at == Write.objects.get(id=first).accepted_at


@pytest.mark.django_db
def test_a_repeated_identifier_in_one_request_keeps_its_last_item(api):
    write = outputs(api, "churn", ("a", 1, T0), ("b", 2, T0), ("a", 3, "2026-12-07T09:00:00Z"), sync=True)

    assert write.json()["count"] == 3
    assert {k: v[0] for k, v in rows().items()} == {"a": 3.0, "b": 2.0}
    # The latest output time is the rows', not the items': a's 10:00 was replaced by 09:00.
    assert counts() == (2, 0, 0, at(T0))


@pytest.mark.django_db
def test_a_repeated_identifier_across_requests_keeps_the_last_accepted(api):
    outputs(api, "churn", ("a", 1, "2026-12-07T12:00:00Z"), sync=True)
    feedback(api, "churn", ("a", 1), sync=True)
    last = outputs(api, "churn", ("a", 0, T0), sync=True).json()["id"]
    feedback(api, "churn", ("a", 0), sync=True)

    (output, output_at, output_write, value, _, _) = rows()["a"]
    assert (output, output_at, output_write, value) == (0.0, at(T0), last, 0.0)
    # Replacing an output or feedback makes no new identifier, and the latest output went back.
    assert counts() == (1, 1, 1, at(T0))


@pytest.mark.parametrize("commit_batch", [1, 1000])
@pytest.mark.django_db
def test_queued_writes_of_one_identifier_are_committed_in_acceptance_order(api, settings, commit_batch):
    # Accepted A then B, committed together (one batch) or apart: B wins either way.
    settings.MLTRACE_COMMIT_BATCH = commit_batch
    a = outputs(api, "churn", ("x", 1, T0)).json()["id"]
    b = outputs(api, "churn", ("x", 2, T0)).json()["id"]
    fa = feedback(api, "churn", ("x", 5)).json()["id"]
    fb = feedback(api, "churn", ("x", 6)).json()["id"]
    assert a < b < fa < fb

    commit_all()

    output, _, output_write, answer, _, feedback_write = rows()["x"]
    assert (output, output_write, answer, feedback_write) == (2.0, b, 6.0, fb)
    assert counts() == (1, 1, 1, at(T0))
    assert set(Write.objects.values_list("status", flat=True)) == {Write.Status.COMMITTED}


@pytest.mark.django_db
def test_counts_are_identifiers_with_an_output_with_feedback_and_with_both(api):
    outputs(api, "churn", ("a", 1, T0), ("b", 1, T0), ("c", 1, T0))
    feedback(api, "churn", ("b", 1), ("c", 0), ("d", 1))
    outputs(api, "other", ("a", 1, T0))  # another task's own row and counts
    outputs(api, "churn", ("d", 0, "2026-12-07T13:00:00Z"), ("a", 2, T0))
    commit_all()

    assert counts() == (4, 3, 3, at("2026-12-07T13:00:00+00:00"))
    assert counts("other") == (1, 0, 0, at(T0))
    assert Prediction.objects.count() == 5


@pytest.mark.django_db
def test_a_retried_failed_write_does_not_undo_a_later_one(api):
    older = outputs(api, "churn", ("a", 1, T0)).json()["id"]
    newer = outputs(api, "churn", ("a", 2, T0)).json()["id"]
    Write.objects.filter(id=older).update(status=Write.Status.FAILED, error="boom")
    commit_all()
    assert rows()["a"][:3] == (2.0, at(T0), newer)

    assert writes_retry_failed(ids=[older]) == [older]
    commit_all()

    assert Write.objects.get(id=older).status == Write.Status.COMMITTED
    assert rows()["a"][:3] == (2.0, at(T0), newer)
    assert counts() == (1, 0, 0, at(T0))


@pytest.mark.django_db
def test_a_write_that_cannot_be_applied_fails_alone(api):
    bad = Write.objects.create(kind=Write.Kind.OUTPUT, payload={"task": "churn"}, accepted_at=timezone.now())
    good = outputs(api, "churn", ("a", 1, T0)).json()["id"]

    commit_all()

    bad.refresh_from_db()
    assert bad.status == Write.Status.FAILED and "KeyError" in bad.error
    assert Write.objects.get(id=good).status == Write.Status.COMMITTED
    assert rows() == {"a": (1.0, at(T0), good, None, None, None)}


@pytest.mark.django_db
def test_outputs_are_committed_in_a_batch_with_runs_and_components(api):
    from tests.factories import run_request_body

    api.post("/api/v1/components/", {"name": "etl"}, format="json")
    outputs(api, "churn", ("a", 1, T0))
    run = api.post("/api/v1/runs/", run_request_body("etl", outputs=["clean.csv"]), format="json").json()[
        "id"
    ]
    feedback(api, "churn", ("a", 1))

    commit_all()

    assert set(Write.objects.values_list("status", flat=True)) == {Write.Status.COMMITTED}
    assert api.get(f"/api/v1/runs/{run}/").json()["status"] == "committed"
    assert counts() == (1, 1, 1, at(T0))


@pytest.mark.django_db
def test_a_task_write_is_not_a_run(api):
    write = outputs(api, "churn", ("a", 1)).json()["id"]

    response = api.get(f"/api/v1/runs/{write}/")

    assert response.status_code == 404
    assert response.json() == {"detail": NOT_A_RUN.format(id=write, kind="a task's outputs")}


# --- async equals sync ------------------------------------------------------------------------

# Explicit timestamps before any acceptance: the latest output of a task is a defaulted one.
OLD = "2020-01-02T10:00:00+00:00"
SEQUENCE = [
    ("outputs", "churn", [("a", 1, OLD), ("b", 0), ("a", 0, "2020-01-02T09:00:00Z")]),
    ("feedback", "churn", [("b", 1), ("c", 1, "2020-01-02T08:00:00Z")]),
    ("feedback", "fraud", [("a", 0.5)]),
    ("outputs", "churn", [("c", 0, "2020-01-02T11:00:00Z"), ("d", 1)]),
    ("outputs", "fraud", [("a", 0.25, OLD), ("z", 7)]),
    ("feedback", "churn", [("a", 1), ("b", 0), ("b", 1)]),
    ("outputs", "churn", [("a", 1, "2020-01-02T12:00:00Z")]),
    ("feedback", "fraud", [("a", 0.75, OLD), ("q", 1)]),
]


def send(api, sequence: list, *, sync: bool) -> list[int]:
    """Sends the requests in order; their write ids."""
    ids = []
    for key, task, items in sequence:
        response = (outputs if key == "outputs" else feedback)(api, task, *items, sync=sync)
        assert response.status_code == (201 if sync else 202), response.content
        ids.append(response.json()["id"])
    return ids


def snapshot(ids: list[int]) -> dict[str, Any]:
    """Tasks and predictions, with each write named by its request's position and each time that
    is a write's acceptance named so (the two runs accept at different times)."""
    request = {write_id: n for n, write_id in enumerate(ids)}
    accepted = dict(Write.objects.filter(id__in=ids).values_list("id", "accepted_at"))
    by_time = {time: f"accepted by request {request[w]}" for w, time in accepted.items()}

    def named(time: dt.datetime | None) -> Any:
        return by_time.get(time, time)

    return {
        "tasks": [
            (
                t.name,
                named(t.created_at),
                t.output_count,
                t.feedback_count,
                t.pair_count,
                named(t.last_output_at),
            )
            for t in Task.objects.order_by("name")
        ],
        "predictions": [
            (
                p.task.name,
                p.identifier,
                p.output,
                named(p.output_at),
                request.get(p.output_write),
                p.feedback,
                named(p.feedback_at),
                request.get(p.feedback_write),
            )
            for p in Prediction.objects.select_related("task").order_by("task__name", "identifier")
        ],
    }


@pytest.mark.parametrize("commit_batch", [1, 3, 1000])
@pytest.mark.django_db
def test_the_202_path_gives_the_rows_of_sync_true(api, settings, commit_batch):
    settings.MLTRACE_COMMIT_BATCH = commit_batch
    queued = send(api, SEQUENCE, sync=False)
    commit_all()
    by_queue = snapshot(queued)
    Prediction.objects.all().delete()
    Task.objects.all().delete()

    by_sync = snapshot(send(api, SEQUENCE, sync=True))

    assert by_queue == by_sync
    assert by_sync["tasks"] == [
        ("churn", "accepted by request 0", 4, 3, 3, "accepted by request 3"),
        ("fraud", "accepted by request 2", 2, 2, 1, "accepted by request 4"),
    ]
    assert by_sync["predictions"][0] == (
        "churn",
        "a",
        1.0,
        at("2020-01-02T12:00:00+00:00"),
        6,
        1.0,
        "accepted by request 5",
        5,
    )


@pytest.mark.parametrize("cluster_workers", [2])
def test_a_real_cluster_commits_task_writes_as_sync_would(api, cluster):
    queued = send(api, SEQUENCE, sync=False)

    wait_until(
        lambda: not Write.objects.exclude(status="committed").exists(), timeout=60, what="the queue to drain"
    )
    by_cluster = snapshot(queued)
    Prediction.objects.all().delete()
    Task.objects.all().delete()
    assert snapshot(send(api, SEQUENCE, sync=True)) == by_cluster


# --- idempotency ------------------------------------------------------------------------------


@pytest.mark.parametrize("sync", [False, True])
@pytest.mark.django_db
def test_an_idempotency_key_repeat_answers_the_same_write(api, sync):
    first = outputs(api, "churn", ("a", 1, T0), sync=sync, HTTP_IDEMPOTENCY_KEY="k1")
    again = outputs(api, "churn", ("a", 1, T0), sync=sync, HTTP_IDEMPOTENCY_KEY="k1")
    other = outputs(api, "churn", ("a", 2, T0), sync=sync, HTTP_IDEMPOTENCY_KEY="k1")

    assert first.status_code == again.status_code == (201 if sync else 202)
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert other.status_code == 409
    assert other.json() == {"detail": IDEMPOTENCY_KEY_REUSED}
    assert Write.objects.count() == 1


# --- refusals: a 400 naming the field, nothing written ---------------------------------------


def item(**fields: Any) -> dict[str, Any]:
    return {"identifier": "a", "value": 1, **fields}


REFUSED = [
    ({"outputs": [item(value="1")]}, {"outputs": {"0": {"value": [NOT_A_FINITE_NUMBER]}}}),
    ({"outputs": [item(), item(value=True)]}, {"outputs": {"1": {"value": [NOT_A_FINITE_NUMBER]}}}),
    ({"outputs": [item(value=None)]}, {"outputs": {"0": {"value": [NOT_A_FINITE_NUMBER]}}}),
    ({"outputs": [item(value=[1])]}, {"outputs": {"0": {"value": [NOT_A_FINITE_NUMBER]}}}),
    ({"outputs": [{"identifier": "a"}]}, {"outputs": {"0": {"value": [REQUIRED]}}}),
    ({"outputs": [{"value": 1}]}, {"outputs": {"0": {"identifier": [REQUIRED]}}}),
    ({"outputs": [item(identifier="")]}, {"outputs": {"0": {"identifier": [BLANK]}}}),
    ({"outputs": [item(identifier=5)]}, {"outputs": {"0": {"identifier": [NOT_A_STRING]}}}),
    ({"outputs": [item(identifier="x" * 256)]}, {"outputs": {"0": {"identifier": [IDENTIFIER_TOO_LONG]}}}),
    ({"outputs": [item(identifier="a\x00b")]}, {"outputs": {"0": {"identifier": [NULL_CHARACTER]}}}),
    ({"outputs": [item(extra=1)]}, {"outputs": {"0": {"extra": [UNKNOWN_FIELD]}}}),
    ({"outputs": ["a"]}, {"outputs": {"0": {"non_field_errors": [ITEM_NOT_AN_OBJECT]}}}),
    ({"outputs": []}, {"outputs": [ITEMS_COUNT.format(limit=10_000, count=0)]}),
    ({"outputs": {"identifier": "a"}}, {"outputs": [ITEMS_NOT_A_LIST]}),
    ({}, {"outputs": ["This field is required."]}),
    ({"outputs": [item()], "feedback": [item()]}, {"feedback": [UNKNOWN_FIELD]}),
]


@pytest.mark.parametrize(("body", "errors"), REFUSED)
@pytest.mark.django_db
def test_a_bad_item_is_a_400_naming_it_and_nothing_is_written(api, body, errors):
    response = api.post(OUTPUTS.format(task="churn"), body, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert nothing_written()


@pytest.mark.parametrize("timestamp", ["yesterday", "2026-13-01T00:00:00Z", 1700000000, ""])
@pytest.mark.django_db
def test_a_bad_timestamp_is_a_400_naming_it_and_nothing_is_written(api, timestamp):
    response = api.post(
        FEEDBACK.format(task="churn"), {"feedback": [item(timestamp=timestamp)]}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["feedback"]["0"]) == ["timestamp"]
    assert nothing_written()


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
@pytest.mark.django_db
def test_a_value_that_is_not_a_finite_number_is_a_400_and_nothing_is_written(api, number):
    body = '{"outputs": [{"identifier": "a", "value": NUMBER}]}'.replace("NUMBER", number)

    response = api.post(OUTPUTS.format(task="churn"), body, content_type="application/json")

    assert response.status_code == 400
    assert "detail" in response.json()  # the parser refuses it before any field is read
    assert nothing_written()


@pytest.mark.django_db
def test_an_integer_too_large_for_a_float_is_a_400(api):
    body = '{"outputs": [{"identifier": "a", "value": 1NUMBER}]}'.replace("NUMBER", "0" * 400)

    response = api.post(OUTPUTS.format(task="churn"), body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"outputs": {"0": {"value": [NOT_A_FINITE_NUMBER]}}}
    assert nothing_written()


@pytest.mark.django_db
def test_more_items_than_the_limit_is_a_400(api, settings):
    settings.MLTRACE_MAX_BATCH_OUTPUTS = 2

    response = outputs(api, "churn", ("a", 1), ("b", 1), ("c", 1))

    assert response.status_code == 400
    assert response.json() == {"outputs": [ITEMS_COUNT.format(limit=2, count=3)]}
    assert nothing_written()
    assert outputs(api, "churn", ("a", 1), ("b", 1)).status_code == 202


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ("a%2Fb", TASK_NAME_SLASH),
        ("a/b", TASK_NAME_SLASH),
        ("a%00b", NULL_CHARACTER),
        ("x" * 256, TASK_NAME_TOO_LONG),
    ],
)
@pytest.mark.parametrize("url", [OUTPUTS, FEEDBACK])
@pytest.mark.django_db
def test_a_bad_task_name_is_a_400_and_nothing_is_written(api, url, task, message):
    key = "outputs" if url == OUTPUTS else "feedback"

    response = api.post(url.format(task=task), {key: [item()]}, format="json")

    assert response.status_code == 400
    assert response.json() == {"task": [message]}
    assert nothing_written()


@pytest.mark.django_db
def test_a_task_name_of_255_characters_with_spaces_and_unicode_is_taken(api):
    name = "é ü" + "x" * 252

    response = outputs(api, name, ("a", 1), sync=True)

    assert response.status_code == 201
    assert Task.objects.get().name == name


@pytest.mark.django_db
def test_an_unknown_query_parameter_is_a_400(api):
    response = api.post(OUTPUTS.format(task="churn") + "?synk=true", {"outputs": [item()]}, format="json")

    assert response.status_code == 400
    assert nothing_written()


@pytest.mark.django_db
def test_writing_needs_a_token(anon):
    response = anon.post(OUTPUTS.format(task="churn"), {"outputs": [item()]}, format="json")

    assert response.status_code == 401
    assert nothing_written()


@pytest.mark.django_db
def test_the_answers_match_the_schema(api, openapi):  # noqa: F811
    answers = [
        outputs(api, "churn", ("a", 1)),
        outputs(api, "churn", ("a", 1), sync=True),
        feedback(api, "churn", ("a", 1, T0)),
        feedback(api, "churn", ("a", 1), sync=True),
        api.post(
            OUTPUTS.format(task="churn"), json.loads('{"outputs": [{"identifier": ""}]}'), format="json"
        ),
    ]
    assert [a.status_code for a in answers] == [202, 201, 202, 201, 400]
    for answer in answers:
        conforms(openapi, answer)


def test_the_upsert_stores_values_as_the_orm_does(api):
    """The commit writes plain tuples (ingest/sql.py, upsert_rows): its stored columns, read
    raw, are what Django's own save gives the same values, on either backend."""
    from django.db import connection

    assert outputs(api, "stored", ("a", 0.1, T0), ("b", 2.5), sync=True).status_code == 201
    assert (
        feedback(api, "stored", ("a", 1e-7, "2026-12-07T11:30:00.000123+02:00"), sync=True).status_code == 201
    )
    task = Task.objects.get(name="stored")
    a, b = (
        Prediction.objects.get(task=task, identifier="a"),
        Prediction.objects.get(task=task, identifier="b"),
    )
    for row in (a, b):  # saved again by the ORM under new identifiers, for comparison
        Prediction.objects.create(
            **{f.attname: getattr(row, f.attname) for f in Prediction._meta.fields if f.attname != "id"}
            | {"identifier": f"orm-{row.identifier}"}
        )
    assert a.output_at == dt.datetime.fromisoformat(T0)
    assert a.feedback_at == dt.datetime(2026, 12, 7, 9, 30, 0, 123, tzinfo=dt.UTC)
    columns = "output, output_at, output_write, feedback, feedback_at, feedback_write"
    with connection.cursor() as cursor:
        for name in ("a", "b"):
            stored = []
            for identifier in (name, f"orm-{name}"):
                cursor.execute(
                    f"SELECT {columns} FROM monitoring_prediction WHERE task_id = %s AND identifier = %s",
                    [task.id, identifier],
                )
                stored.append(cursor.fetchone())
            assert stored[0] == stored[1]


def test_the_writes_hold_on_sqlite_too(tmp_path):
    """The embedded default (DATABASE_URL unset) runs the same upsert: this module's tests
    that need no live processes, run again on SQLite."""
    from tests.live import pytest_on_sqlite

    result = pytest_on_sqlite(__file__, "not sqlite", tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
