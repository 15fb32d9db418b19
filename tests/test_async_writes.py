"""Asynchronous writes: the 202 door, idempotency, refusals and visible state.

The guarantees under failure (killed workers, lost Redis, unreachable database) are in
test_durability.py; equality with synchronous ingestion is in test_ordering.py.
"""

from __future__ import annotations

import datetime as dt
import re

import psycopg2
import pytest
from django.core.management import call_command
from django.utils import timezone

from api.exceptions import DATABASE_BUSY
from common.errors import IDEMPOTENCY_KEY_REUSED
from components.models import Component
from ingest.locks import ACCEPT_LOCK_KEY
from runs.models import IdempotencyKey, Run, Write
from tests.factories import run_request_body
from tests.live import wait_until


def other_session(live_db: dict) -> psycopg2.extensions.connection:
    """A connection of its own to the test database, as another process would hold one."""
    return psycopg2.connect(
        dbname=live_db["NAME"],
        user=live_db["USER"],
        host=live_db["HOST"] or "127.0.0.1",
        port=live_db["PORT"] or 5432,
    )


def committed(api, run_id: int, timeout: float = 30) -> dict:
    def check():
        body = api.get(f"/api/v1/runs/{run_id}/").json()
        return body if body["status"] == "committed" else None

    return wait_until(check, timeout=timeout, what=f"run {run_id} to be committed")


@pytest.mark.django_db
def test_a_run_is_accepted_with_202_and_shows_as_queued(api):
    response = api.post("/api/v1/runs/", run_request_body("etl", outputs=["clean.csv"]), format="json")

    assert response.status_code == 202
    body = response.json()
    assert body == {"id": body["id"], "status": "queued"}
    assert response["Location"] == f"/api/v1/runs/{body['id']}/"
    queued = api.get(f"/api/v1/runs/{body['id']}/")
    assert queued.status_code == 200
    assert queued.json()["status"] == "queued"
    assert queued.json()["component"] == "etl"
    assert not Run.objects.exists()
    assert Write.objects.get().payload["outputs"] == [
        {"name": "clean.csv", "value": "", "pointer_type": "DATA"}
    ]


@pytest.mark.django_db
def test_a_component_is_accepted_with_202(api):
    response = api.post("/api/v1/components/", {"name": "etl", "tags": ["a"]}, format="json")

    assert response.status_code == 202
    assert response.json() == {"id": Write.objects.get().id, "name": "etl", "status": "queued"}
    assert not Component.objects.exists()


@pytest.mark.django_db
def test_the_queue_endpoint_counts_pending_and_failed_writes(api):
    assert api.get("/api/v1/queue/").json() == {
        "pending": 0,
        "failed": 0,
        "oldest_pending_id": None,
        "oldest_pending_age_seconds": None,
    }
    ids = [api.post("/api/v1/runs/", run_request_body("etl"), format="json").json()["id"] for _ in range(3)]
    Write.objects.filter(id=ids[0]).update(status="failed", error="boom")

    body = api.get("/api/v1/queue/").json()

    assert body["pending"] == 2
    assert body["failed"] == 1
    # The failed write is not pending: the oldest pending one is the next.
    assert body["oldest_pending_id"] == ids[1]
    assert 0 <= body["oldest_pending_age_seconds"] < 60


@pytest.mark.django_db
def test_ids_are_one_sequence_across_sync_and_async_writes(api):
    a = api.post("/api/v1/runs/", run_request_body("etl"), format="json").json()["id"]
    b = api.post("/api/v1/runs/?sync=true", run_request_body("etl"), format="json").json()["id"]
    c = api.post("/api/v1/components/", {"name": "x"}, format="json").json()["id"]

    assert a < b < c
    # The synchronous write committed the queued one before itself.
    assert Write.objects.get(id=a).status == "committed"


def test_bad_input_never_reaches_the_queue(api, live_db, web_broker):
    responses = [
        api.post("/api/v1/runs/", {"component": "etl"}, format="json"),
        api.post(
            "/api/v1/runs/batch/", {"runs": [run_request_body("ok"), {"component": "x"}]}, format="json"
        ),
        api.post("/api/v1/components/", {"name": "a/b"}, format="json"),
        api.post("/api/v1/runs/", b"{", content_type="application/json"),
    ]

    assert [r.status_code for r in responses] == [400, 400, 400, 400]
    assert all("id" not in r.json() for r in responses)
    assert not Write.objects.exists()
    assert web_broker.queue_size() == 0


def test_an_accepted_write_is_enqueued_after_its_transaction_commits(api, live_db, web_broker):
    response = api.post(
        "/api/v1/runs/batch/", {"runs": [run_request_body("a"), run_request_body("b")]}, format="json"
    )

    assert response.status_code == 202
    assert [r["status"] for r in response.json()["runs"]] == ["queued", "queued"]
    # One task per request, for the last id: a commit task drains everything before it.
    assert web_broker.queue_size() == 1


def test_writes_accepted_while_a_commit_task_is_pending_are_committed_by_it(
    api, live_db, web_broker, settings, monkeypatch
):
    import threading
    import time
    from types import SimpleNamespace

    from ingest import flag as commit_flag
    from ingest.tasks import commit_task

    # The flag outlives the accepts below however slow the machine is: the test ends it.
    settings.MLTRACE_COMMIT_DELAY_MS = 600_000
    # The task sleeps out its flag's life; here that sleep tells it began and ends early once
    # the flag is gone, and the task looks at the flag again, as after a real sleep.
    waiting, flag_gone = threading.Event(), threading.Event()

    def sleep(seconds: float) -> None:
        waiting.set()
        flag_gone.wait(seconds)

    monkeypatch.setattr(commit_flag, "time", SimpleNamespace(monotonic=time.monotonic, sleep=sleep))
    redis = web_broker.connection
    first = api.post("/api/v1/runs/", run_request_body("a"), format="json").json()["id"]
    sets_before = redis.info("commandstats")["cmdstat_set"]["calls"]
    # The first accept's task starts and waits for its flag to expire: accepts go on meanwhile.
    task = threading.Thread(target=commit_task, args=(first,))
    task.start()
    wait_until(waiting.is_set, timeout=30, what="the task to wait for its flag")
    later = [api.post("/api/v1/runs/", run_request_body(c), format="json").json()["id"] for c in "bcd"]
    assert task.is_alive()

    # No task for them, nor a question to Redis: this process saw the flag up.
    assert web_broker.queue_size() == 1
    assert redis.info("commandstats")["cmdstat_set"]["calls"] == sets_before
    # The task has not read the queue while its flag is up.
    assert set(Write.objects.filter(id__in=[first, *later]).values_list("status", flat=True)) == {"queued"}
    assert redis.delete(f"mltrace:{web_broker.list_key}:commit-pending") == 1  # as its expiry would
    flag_gone.set()
    task.join(30)
    assert not task.is_alive()
    # The pending task read the queue after its flag expired, so after every one of them.
    statuses = dict(Write.objects.filter(id__in=[first, *later]).values_list("id", "status"))
    assert statuses == {i: "committed" for i in [first, *later]}
    assert sorted(Run.objects.values_list("id", flat=True)) == [first, *later]


def test_a_write_accepted_once_the_flag_has_expired_gets_a_task_of_its_own(
    api, live_db, web_broker, settings
):
    from tests.live import wait_until

    settings.MLTRACE_COMMIT_DELAY_MS = 100
    api.post("/api/v1/runs/", run_request_body("a"), format="json")
    assert web_broker.queue_size() == 1
    # The flag is gone from Redis: its life has passed here too.
    flag = f"mltrace:{web_broker.list_key}:commit-pending"
    wait_until(lambda: not web_broker.connection.exists(flag), timeout=30, what="the flag to expire")

    api.post("/api/v1/runs/", run_request_body("b"), format="json")
    assert web_broker.queue_size() == 2


@pytest.mark.django_db
def test_a_retried_write_with_the_same_idempotency_key_gets_the_first_answer(api):
    payload = run_request_body("etl", outputs=["clean.csv"])

    first = api.post("/api/v1/runs/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post("/api/v1/runs/", payload, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again["Location"] == first["Location"]
    assert again["Idempotent-Replayed"] == "true"
    assert Write.objects.count() == 1


@pytest.mark.django_db
def test_the_same_idempotency_key_with_another_body_is_409(api):
    api.post("/api/v1/runs/", run_request_body("etl"), format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    response = api.post("/api/v1/runs/", run_request_body("train"), format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert response.status_code == 409
    assert response.json() == {"detail": IDEMPOTENCY_KEY_REUSED}
    assert Write.objects.count() == 1


@pytest.mark.django_db
def test_idempotency_keys_replay_sync_writes_and_batches(api):
    batch = {"runs": [run_request_body("a"), run_request_body("b")]}
    first = api.post("/api/v1/runs/batch/?sync=true", batch, format="json", HTTP_IDEMPOTENCY_KEY="b-1")
    again = api.post("/api/v1/runs/batch/?sync=true", batch, format="json", HTTP_IDEMPOTENCY_KEY="b-1")
    component = {"name": "etl", "tags": ["x"]}
    c1 = api.post("/api/v1/components/", component, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
    c2 = api.post("/api/v1/components/", component, format="json", HTTP_IDEMPOTENCY_KEY="c-1")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert Run.objects.count() == 2
    assert c1.json() == c2.json()
    assert Write.objects.filter(kind="component").count() == 1


@pytest.mark.django_db
def test_an_expired_idempotency_key_is_forgotten_and_may_be_used_afresh(api, settings):
    first = api.post("/api/v1/runs/", run_request_body("etl"), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    IdempotencyKey.objects.update(
        created_at=timezone.now() - dt.timedelta(hours=settings.MLTRACE_IDEMPOTENCY_TTL_HOURS, seconds=1)
    )

    again = api.post("/api/v1/runs/", run_request_body("train"), format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert again.status_code == 202
    assert again.json()["id"] > first.json()["id"]
    assert "Idempotent-Replayed" not in again
    assert Write.objects.count() == 2
    assert IdempotencyKey.objects.get().write_ids == [again.json()["id"]]


@pytest.mark.django_db
def test_the_purge_forgets_expired_idempotency_keys_only(api, settings):
    from ingest.tasks import purge_task

    api.post("/api/v1/runs/", run_request_body("etl"), format="json", HTTP_IDEMPOTENCY_KEY="old")
    api.post("/api/v1/runs/", run_request_body("etl"), format="json", HTTP_IDEMPOTENCY_KEY="new")
    IdempotencyKey.objects.filter(key="old").update(
        created_at=timezone.now() - dt.timedelta(hours=settings.MLTRACE_IDEMPOTENCY_TTL_HOURS + 1)
    )

    assert purge_task() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.django_db
def test_a_patch_after_a_queued_component_write_comes_after_it(api):
    queued = api.post(
        "/api/v1/components/", {"name": "etl", "description": "old", "owner": "ana"}, format="json"
    )
    assert queued.status_code == 202

    response = api.patch("/api/v1/components/etl/", {"description": "new"}, format="json")

    assert response.status_code == 200
    assert response.json()["description"] == "new"
    assert response.json()["owner"] == "ana"
    assert Write.objects.get(id=queued.json()["id"]).status == Write.Status.COMMITTED
    assert api.get("/api/v1/components/etl/").json()["description"] == "new"


@pytest.mark.django_db
def test_idempotency_keys_belong_to_their_user(api, django_user_model):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    other = APIClient()
    other.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=django_user_model.objects.create(username='bob')).key}"
    )

    a = api.post("/api/v1/runs/", run_request_body("etl"), format="json", HTTP_IDEMPOTENCY_KEY="same")
    b = other.post("/api/v1/runs/", run_request_body("train"), format="json", HTTP_IDEMPOTENCY_KEY="same")

    assert (a.status_code, b.status_code) == (202, 202)
    assert a.json()["id"] != b.json()["id"]


@pytest.mark.django_db
def test_a_refused_write_does_not_use_up_its_idempotency_key(api):
    bad = api.post("/api/v1/runs/", {"component": "etl"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    good = api.post("/api/v1/runs/", run_request_body("etl"), format="json", HTTP_IDEMPOTENCY_KEY="k")

    assert (bad.status_code, good.status_code) == (400, 202)
    # Only the accepted write's key is kept, with the write it recorded.
    assert list(IdempotencyKey.objects.values_list("key", "write_ids")) == [("k", [good.json()["id"]])]


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "x" * 256, "ключ"])
def test_a_malformed_idempotency_key_is_400(api, key):
    response = api.post("/api/v1/runs/", run_request_body("etl"), format="json", HTTP_IDEMPOTENCY_KEY=key)

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert not Write.objects.exists()


def test_a_write_that_cannot_be_recorded_is_503_with_retry_after_and_leaves_nothing(api, live_db, settings):
    settings.MLTRACE_ACCEPT_LOCK_TIMEOUT_MS = 200
    # Another session holds the accept lock: this write cannot get an id in time.
    holder = other_session(live_db)
    try:
        holder.cursor().execute("SELECT pg_advisory_lock(%s)", [ACCEPT_LOCK_KEY])
        response = api.post(
            "/api/v1/runs/batch/", {"runs": [run_request_body("a"), run_request_body("b")]}, format="json"
        )
    finally:
        holder.close()

    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.MLTRACE_RETRY_AFTER_SECONDS)
    # Another session held the lock: the database is there, and busy.
    assert response.json() == {"detail": DATABASE_BUSY}
    assert not Write.objects.exists()
    assert api.post("/api/v1/runs/", run_request_body("a"), format="json").status_code == 202


@pytest.mark.django_db
def test_a_failed_write_keeps_its_payload_and_error_and_retry_failed_requeues_it(api, capsys):
    accepted = api.post("/api/v1/runs/", run_request_body("etl", outputs=["clean.csv"]), format="json").json()
    write = Write.objects.get(id=accepted["id"])
    # A payload the committer cannot read (as one written by an older version might be).
    broken = dict(write.payload)
    del broken["component"]
    Write.objects.filter(id=write.id).update(payload=broken)

    from ingest.tasks import commit_task

    commit_task(write.id)

    failed = api.get(f"/api/v1/runs/{write.id}/").json()
    assert failed["status"] == "failed"
    assert "KeyError" in failed["error"]
    assert Write.objects.get(id=write.id).payload == broken
    assert api.get("/api/v1/queue/").json()["failed"] == 1

    Write.objects.filter(id=write.id).update(payload=write.payload)
    call_command("retry_failed")
    assert f"requeued 1 failed writes: {write.id}" in capsys.readouterr().out
    assert Write.objects.get(id=write.id).status == "queued"
    commit_task(write.id)

    run = api.get(f"/api/v1/runs/{write.id}/").json()
    assert run["status"] == "committed"
    assert run["outputs"][0]["name"] == "clean.csv"


@pytest.mark.django_db
def test_one_failing_write_does_not_hold_back_the_others(api):
    ids = [
        api.post("/api/v1/runs/", run_request_body("etl", outputs=[f"o{i}"]), format="json").json()["id"]
        for i in range(3)
    ]
    Write.objects.filter(id=ids[1]).update(payload={"garbage": True})

    from ingest.tasks import commit_task

    commit_task(ids[-1])

    assert [Write.objects.get(id=i).status for i in ids] == ["committed", "failed", "committed"]
    assert list(Run.objects.order_by("id").values_list("id", flat=True)) == [ids[0], ids[2]]


def _poison(write_id: int, levels: int = 990) -> None:
    """A queued write nested deeper than a process can decode: one accepted before the depth
    bound existed. The database stores it; json.loads in a web request's stack cannot read it back."""
    from django.db import connection

    deep = '{"component": "etl", "test_results": ' + "[" * levels + "]" * levels + "}"
    with connection.cursor() as cursor:
        cursor.execute("UPDATE runs_write SET payload = %s WHERE id = %s", [deep, write_id])


@pytest.mark.django_db
def test_a_poison_write_is_marked_failed_and_sync_writes_and_patches_go_on(api):
    first = api.post("/api/v1/runs/", run_request_body("etl", outputs=["a"]), format="json").json()["id"]
    poison = api.post("/api/v1/runs/", run_request_body("etl", outputs=["b"]), format="json").json()["id"]
    _poison(poison)

    sync = api.post("/api/v1/runs/?sync=true", run_request_body("train", inputs=["a"]), format="json")
    patch = api.patch("/api/v1/components/etl/", {"owner": "bob"}, format="json")

    assert sync.status_code == 201, sync.content
    assert sync.json()["dependencies"] == [first]
    assert patch.status_code == 200, patch.content
    statuses = dict(Write.objects.values_list("id", "status"))
    assert [statuses[first], statuses[poison]] == ["committed", "failed"]
    assert "RecursionError" in Write.objects.values_list("error", flat=True).get(id=poison)


@pytest.mark.django_db
def test_a_poison_write_in_a_batch_fails_alone(api):
    ids = [
        api.post("/api/v1/runs/", run_request_body("etl", outputs=[f"o{i}"]), format="json").json()["id"]
        for i in range(3)
    ]
    _poison(ids[1])

    from ingest.tasks import commit_task

    commit_task(ids[-1])

    statuses = dict(Write.objects.values_list("id", "status"))
    assert [statuses[i] for i in ids] == ["committed", "failed", "committed"]


@pytest.mark.django_db
@pytest.mark.parametrize("cap, batches", [(32 * 1024 * 1024, 1), (1, 3)])
def test_a_commit_batch_holds_at_most_commit_batch_bytes_of_payload(api, settings, cap, batches):
    settings.MLTRACE_COMMIT_BATCH_BYTES = cap
    ids = [
        api.post(
            "/api/v1/runs/", run_request_body("etl", inputs=[f"o{i - 1}"], outputs=[f"o{i}"]), format="json"
        ).json()["id"]
        for i in range(3)
    ]

    from ingest.tasks import commit_task

    assert commit_task(ids[-1]) == 3

    # Each batch is one transaction, stamped with one committed_at.
    assert len(set(Write.objects.values_list("committed_at", flat=True))) == batches
    assert [api.get(f"/api/v1/runs/{i}/").json()["dependencies"] for i in ids] == [[], [ids[0]], [ids[1]]]


@pytest.mark.django_db
@pytest.mark.parametrize("key", [None, "k"])
def test_a_commit_batch_is_bounded_by_the_json_bytes_accepted(api, settings, key):
    """payload_bytes is the JSON as accepted (on both accept paths); a transaction holds
    writes up to MLTRACE_COMMIT_BATCH_BYTES of it, in order, however well the payload
    compresses on disk."""
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    runs = [run_request_body("etl", outputs=[f"{i}-{n}.csv" for n in range(300)]) for i in range(6)]
    body = api.post("/api/v1/runs/batch/", {"runs": runs}, format="json", **headers).json()
    ids = [run["id"] for run in body["runs"]]
    sizes = dict(Write.objects.values_list("id", "payload_bytes"))
    assert all(sizes[i] > 300 * 8 for i in ids)
    settings.MLTRACE_COMMIT_BATCH_BYTES = sizes[ids[0]] + sizes[ids[1]]

    from ingest.tasks import commit_task

    assert commit_task(ids[-1]) == 6

    stamps = list(Write.objects.filter(id__in=ids).order_by("id").values_list("committed_at", flat=True))
    assert stamps[0] == stamps[1] != stamps[2] == stamps[3] != stamps[4] == stamps[5]
    assert list(Run.objects.order_by("id").values_list("id", flat=True)) == ids


@pytest.mark.django_db
def test_a_backlog_runs_its_between_batches_step_after_every_batch(api, settings):
    """commit_task refreshes the planner's statistics there (runs/maintenance.py), so a long
    backlog is not planned with the statistics of the tables it started from."""
    settings.MLTRACE_COMMIT_BATCH = 2
    ids = [
        api.post("/api/v1/runs/", run_request_body("etl", outputs=[f"o{i}"]), format="json").json()["id"]
        for i in range(5)
    ]
    committed_so_far = []

    from ingest.queue import backlog_commit

    done = backlog_commit(
        through_id=ids[-1], between_batches=lambda: committed_so_far.append(Run.objects.count())
    )

    assert done == 5
    assert committed_so_far == [2, 4, 5]


@pytest.mark.django_db
def test_a_batch_over_the_pointer_limit_is_refused_before_validation(api, settings):
    settings.MLTRACE_MAX_BATCH_POINTERS = 10
    runs = [run_request_body("etl", inputs=["a", "b"], outputs=["c", "d"]) for _ in range(3)]

    response = api.post("/api/v1/runs/batch/", {"runs": runs}, format="json")
    at_the_limit = api.post(
        "/api/v1/runs/batch/", {"runs": runs[:2] + [run_request_body("etl")]}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "runs": [
            "A batch holds at most 10 pointers (the inputs and outputs of all its runs); this one holds 12."
        ]
    }
    assert at_the_limit.status_code == 202
    assert Write.objects.count() == 3


@pytest.mark.django_db
def test_explicit_dependencies_cost_the_same_queries_for_2_names_or_200(api):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from ingest.tasks import commit_task

    names = [f"step{i}" for i in range(200)]
    api.post(
        "/api/v1/runs/batch/?sync=true", {"runs": [run_request_body(name) for name in names]}, format="json"
    )
    counts = {}
    for wanted in (names[:2], names):
        last = api.post("/api/v1/runs/", run_request_body("join", dependencies=wanted), format="json").json()[
            "id"
        ]
        with CaptureQueriesContext(connection) as queries:
            commit_task(last)
        counts[len(wanted)] = len(queries)
        assert len(api.get(f"/api/v1/runs/{last}/").json()["dependencies"]) == len(wanted)

    assert counts[200] == counts[2]


@pytest.mark.django_db
def test_an_overdue_write_is_swept_unless_commits_are_moving(api, settings):
    from ingest.broker import shared_broker
    from ingest.brokers import enqueue_sweep_if_overdue

    broker = shared_broker()
    settings.MLTRACE_SWEEP_AFTER_SECONDS = 0
    first = api.post("/api/v1/runs/", run_request_body("etl"), format="json").json()["id"]
    before = broker.queue_size()

    # A cluster that just started: an overdue write is swept.
    assert enqueue_sweep_if_overdue(broker=broker) == first
    assert broker.queue_size() == before + 1
    # The same write is still the oldest one check later: its task was lost, sweep again.
    assert enqueue_sweep_if_overdue(broker=broker, previous_oldest=first) == first
    assert broker.queue_size() == before + 2
    # The oldest queued write changed since the last check: workers are committing.
    assert enqueue_sweep_if_overdue(broker=broker, previous_oldest=first - 1) == first
    assert broker.queue_size() == before + 2


def test_no_sweep_is_enqueued_while_a_long_commit_holds_the_commit_lock(api, live_db, settings):
    from ingest.broker import shared_broker
    from ingest.brokers import enqueue_sweep_if_overdue
    from ingest.locks import COMMIT_LOCK_KEY, commit_in_progress

    broker = shared_broker()
    settings.MLTRACE_SWEEP_AFTER_SECONDS = 0
    first = api.post("/api/v1/runs/", run_request_body("etl"), format="json").json()["id"]
    before = broker.queue_size()
    # Another session commits, for longer than the sweep waits: the oldest write stays put.
    committer = other_session(live_db)
    try:
        committer.cursor().execute("SELECT pg_advisory_lock(%s)", [COMMIT_LOCK_KEY])
        assert enqueue_sweep_if_overdue(broker=broker, previous_oldest=first) == first
        during = broker.queue_size()
    finally:
        committer.close()
    assert during == before
    # The server ends the closed session, and frees its lock, a moment after close() returns.
    wait_until(lambda: not commit_in_progress(), timeout=30, what="the committer's lock to be freed")
    # The commit is over and the write is still the oldest: now its task is lost.
    assert enqueue_sweep_if_overdue(broker=broker, previous_oldest=first) == first
    assert broker.queue_size() == before + 1


@pytest.mark.django_db
def test_an_async_run_with_an_unknown_explicit_dependency_lists_it_unresolved(api):
    accepted = api.post(
        "/api/v1/runs/", run_request_body("train", dependencies=["etl", "nothing"]), format="json"
    )
    api.post("/api/v1/runs/?sync=true", run_request_body("other"), format="json")  # commits the queue first

    run = api.get(f"/api/v1/runs/{accepted.json()['id']}/").json()

    assert accepted.status_code == 202
    assert run["status"] == "committed"
    assert run["unresolved_dependencies"] == ["etl", "nothing"]
    assert run["dependencies"] == []


def test_a_worker_commits_an_accepted_write_and_logs_it(api, cluster):
    producer = api.post("/api/v1/runs/", run_request_body("etl", outputs=["clean.csv"]), format="json").json()
    consumer = api.post(
        "/api/v1/runs/", run_request_body("train", inputs=["clean.csv"]), format="json"
    ).json()

    run = committed(api, consumer["id"])

    assert run["dependencies"] == [producer["id"]]
    wait_until(
        lambda: re.search(
            rf"committed \d+ writes in [\d.]+ ms: run writes .*\b{consumer['id']}\b", cluster.output()
        ),
        timeout=30,
        what="the commit log line",
    )


def test_the_batch_endpoint_accepts_1000_runs_in_one_request(api, cluster):
    runs = [run_request_body("infer", inputs=["model.pkl"], outputs=[f"pred_{i}"]) for i in range(1000)]

    response = api.post("/api/v1/runs/batch/", {"runs": runs}, format="json")

    assert response.status_code == 202
    ids = [r["id"] for r in response.json()["runs"]]
    assert ids == sorted(ids) and len(set(ids)) == 1000
    wait_until(lambda: Run.objects.count() == 1000, timeout=120, what="1000 runs committed")
    assert api.get("/api/v1/queue/").json()["pending"] == 0
    assert Write.objects.filter(status="committed").count() == 1000
