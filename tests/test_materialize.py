"""Materialize, then resolve: what a run write looks like between the two steps, and after.

A materialized write has its pointers and links written and no run yet. Every read must then
show it as queued, and nothing of it anywhere else; once resolved it reads as a committed run
with its dependencies. Pointers keep their first mention's type whatever the order in which
writes are materialized, and what a write that fails after materializing left is removed.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction

from ingest.batch import queued_writes
from ingest.materialize import materialize, materialize_next
from ingest.queue import backlog_commit
from runs.models import IOPointer, RunInput, RunOutput, Write
from tests.factories import create_component, log_run, run_request_body
from tests.live import wait_until


def accept(api, payload) -> int:
    response = api.post("/api/v1/runs/", payload, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


@pytest.mark.django_db(transaction=True)
def test_a_materialized_run_reads_as_queued_everywhere_until_it_is_resolved(api):
    train = log_run(api, "train", outputs=[{"name": "model.pkl", "pointer_type": "MODEL"}])
    create_component(api, "infer")
    run_id = accept(api, run_request_body("infer", inputs=["model.pkl"], outputs=["pred_x"]))

    assert materialize_next(through_id=run_id) == 1
    assert Write.objects.get(id=run_id).materialized is not None
    assert RunOutput.objects.filter(run_id=run_id).count() == 1
    assert api.post("/api/v1/flag/", {"output_id": "pred_x"}, format="json").status_code == 200

    assert api.get(f"/api/v1/runs/{run_id}/").json()["status"] == "queued"
    assert [r["id"] for r in api.get("/api/v1/runs/").json()["results"]] == [train["id"]]
    assert api.get("/api/v1/components/infer/history/").json()["results"] == []
    assert api.get("/api/v1/components/infer/").json()["run_count"] == 0
    assert api.get("/api/v1/trace/?output_id=pred_x").status_code == 404
    impact = api.get("/api/v1/impact/?output_id=model.pkl").json()
    assert impact["nodes"] == [] and impact["edges"] == []
    from_train = api.get(f"/api/v1/runs/{train['id']}/impact/").json()["nodes"]
    assert [n["run"]["id"] for n in from_train] == [train["id"]]
    assert api.get("/api/v1/review/").json() == {"flagged": ["pred_x"], "runs": []}
    assert api.get("/api/v1/queue/").json()["oldest_pending_id"] == run_id

    assert backlog_commit(through_id=run_id) == 1

    run = api.get(f"/api/v1/runs/{run_id}/").json()
    assert run["status"] == "committed"
    assert run["dependencies"] == [train["id"]]
    assert [p["name"] for p in run["outputs"]] == ["pred_x"]
    assert [n["run"]["id"] for n in api.get("/api/v1/impact/?output_id=model.pkl").json()["nodes"]] == [
        run_id
    ]
    assert api.get("/api/v1/trace/?output_id=pred_x").json()["root"] == run_id
    review = api.get("/api/v1/review/").json()
    assert sorted(r["run"]["id"] for r in review["runs"]) == [train["id"], run_id]
    assert api.get("/api/v1/components/infer/").json()["run_count"] == 1
    # Nothing of the materialized form is kept once the run is written.
    assert not Write.objects.filter(materialized__isnull=False).exists()


@pytest.mark.django_db(transaction=True)
def test_a_pointer_keeps_its_first_mentions_type_when_a_later_write_is_materialized_first(api):
    first = accept(api, run_request_body("etl", outputs=[{"name": "shared", "pointer_type": "DATA"}]))
    second = accept(api, run_request_body("etl", outputs=[{"name": "shared", "pointer_type": "MODEL"}]))

    with transaction.atomic():
        materialize(queued_writes(Write.objects.filter(id=second)))
    assert IOPointer.objects.get(name="shared").pointer_type == "MODEL"
    with transaction.atomic():
        materialize(queued_writes(Write.objects.filter(id=first)))
    assert IOPointer.objects.get(name="shared").pointer_type == "DATA"

    backlog_commit(through_id=second)
    for run_id in (first, second):
        outputs = api.get(f"/api/v1/runs/{run_id}/").json()["outputs"]
        assert [(p["name"], p["pointer_type"]) for p in outputs] == [("shared", "DATA")]
    assert IOPointer.objects.filter(name="shared").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_write_that_fails_after_materializing_leaves_nothing_and_can_be_retried(api):
    log_run(api, "train", outputs=["model.pkl"])
    bad = accept(api, run_request_body("infer", inputs=["model.pkl"], outputs=["only_mine"]))
    good = accept(api, run_request_body("infer", inputs=["model.pkl"], outputs=["pred_y"]))
    materialize_next(through_id=good)
    form = Write.objects.get(id=bad).materialized
    Write.objects.filter(id=bad).update(materialized={**form, "start_timestamp": "not a time"})

    backlog_commit(through_id=good)

    failed = api.get(f"/api/v1/runs/{bad}/").json()
    assert failed["status"] == "failed" and "not a time" in failed["error"]
    assert api.get(f"/api/v1/runs/{good}/").json()["status"] == "committed"
    assert not RunInput.objects.filter(run_id=bad).exists()
    assert not RunOutput.objects.filter(run_id=bad).exists()
    assert not IOPointer.objects.filter(name="only_mine").exists()
    assert IOPointer.objects.filter(name="model.pkl").exists()
    assert Write.objects.get(id=bad).materialized is None

    # Its payload is kept: put back in the queue, it is materialized and committed again.
    from ingest.retry import writes_retry_failed

    assert writes_retry_failed(ids=[bad]) == [bad]
    backlog_commit(through_id=bad)
    assert api.get(f"/api/v1/runs/{bad}/").json()["status"] == "committed"
    assert [p["name"] for p in api.get(f"/api/v1/runs/{bad}/").json()["outputs"]] == ["only_mine"]


def test_materializers_claim_apart_and_the_resolver_stops_at_a_claimed_write(api, live_db, settings):
    settings.MLTRACE_COMMIT_BATCH = 2
    ids = [accept(api, run_request_body("etl", outputs=[f"p{n}"])) for n in range(4)]
    claimed = threading.Event()
    release = threading.Event()
    held: list[int] = []

    def hold_a_claim() -> None:
        from ingest.materialize import _claim

        try:
            with transaction.atomic():
                held.extend(_claim(ids[-1]))
                claimed.set()
                release.wait(30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_a_claim)
    holder.start()
    try:
        wait_until(claimed.is_set, timeout=30, what="the first claim")
        assert held == ids[:2]
        # Another materializer skips the claimed range; the resolver, behind a write that is
        # not materialized yet, commits nothing rather than wait.
        assert materialize_next(through_id=ids[-1]) == 2
        assert Write.objects.filter(materialized__isnull=False).count() == 2
        from ingest.queue import _resolve

        assert _resolve(ids[-1], wait=False, between_batches=None) == 0
        assert api.get(f"/api/v1/runs/{ids[2]}/").json()["status"] == "queued"
    finally:
        release.set()
        holder.join(30)
    # The claim ended without materializing (a worker that died): its writes are claimed again.
    assert backlog_commit(through_id=ids[-1]) == 4
    assert [api.get(f"/api/v1/runs/{i}/").json()["status"] for i in ids] == ["committed"] * 4


def test_a_backlog_behind_one_task_is_materialized_by_every_worker(
    api, live_db, cluster_env, web_broker, settings
):
    """One task for the whole backlog (every accept inside one flag's life): it enqueues
    helpers, and the other workers materialize beside it."""
    import re

    from tests.live import Cluster

    # The first accept's flag outlives the others, however slow the machine; the test ends it.
    settings.MLTRACE_COMMIT_DELAY_MS = 600_000
    accepted = []
    for n in range(3):
        runs = [
            run_request_body("infer", inputs=["model.pkl"], outputs=[f"pred_{n}_{i}"]) for i in range(1000)
        ]
        response = api.post("/api/v1/runs/batch/", {"runs": runs}, format="json")
        assert response.status_code == 202, response.content
        accepted += [r["id"] for r in response.json()["runs"]]
    assert web_broker.queue_size() == 1
    # As its expiry would: the one task reads the queue as soon as it starts.
    assert web_broker.connection.delete(f"mltrace:{web_broker.list_key}:commit-pending") == 1

    workers = Cluster({**cluster_env, "MLTRACE_WORKERS": "3", "MLTRACE_COMMIT_BATCH": "100"})
    workers.start()
    try:
        wait_until(
            lambda: Write.objects.filter(id__in=accepted, status="committed").count() == len(accepted),
            timeout=120,
            what="the backlog to be committed",
        )
        processes = set(
            re.findall(r"materialized \d+ run writes in [\d.]+ ms by process (\d+)", workers.output())
        )
        assert len(processes) >= 2, workers.output()[-3000:]
        assert RunOutput.objects.filter(run_id__in=accepted).count() == len(accepted)
    finally:
        workers.stop()
