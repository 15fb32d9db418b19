"""POST /api/v1/lineage/batch: each event recorded or refused on its own, the counts the answer
gives, and the limits that refuse a batch whole.
"""

from __future__ import annotations

import copy

import pytest
from django.test import override_settings

from api.views.openlineage import BATCH_SIZE, NOT_AN_ARRAY
from ingest.queue import backlog_commit
from runs.models import OpenLineageEvent, OpenLineageRun, Run, Write
from tests.openlineage_api import ol_run, send, send_all, trace
from tests.openlineage_events import (
    airflow_dag,
    airflow_rerun,
    at,
    complete_before_start,
    dataset,
    event,
    never_ends,
    run_uuid,
)

pytestmark = pytest.mark.django_db


def test_a_batch_with_one_bad_event_records_the_others(api):
    events = never_ends() + complete_before_start()
    bad = event("START", run_uuid("bad"), "j", 0)
    del bad["run"]["runId"]
    events.insert(1, bad)
    response = send(api, events, path="/api/v1/lineage/batch")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "partial_success",
        "summary": {"received": 5, "successful": 4, "failed": 1, "retriable": 0, "non_retriable": 1},
        "failed_events": [{"index": 1, "reason": "run.runId: This field is required.", "retriable": False}],
        "events_after_end": 1,  # complete_before_start's START, after its COMPLETE
    }
    backlog_commit(through_id=Write.objects.order_by("-id").values_list("id", flat=True).first())
    assert sorted(OpenLineageRun.objects.values_list("state", flat=True)) == ["COMPLETE", "RUNNING"]


def test_a_good_batch_is_a_success_and_sync_commits_it(api):
    response = send(api, airflow_dag(), path="/api/v1/lineage/batch", sync=True)
    assert response.status_code == 200
    assert response.json()["status"] == "success" and response.json()["summary"]["successful"] == 11
    assert (
        trace(api, "snowflake://acct/warehouse.orders")["nodes"][0]["run"]["component"] == "airflow:etl.load"
    )


def test_a_batch_of_only_bad_events_lists_them_all_and_records_nothing(api):
    response = send(api, [{"eventTime": at(0)}, 3], path="/api/v1/lineage/batch")
    assert response.status_code == 200
    assert response.json()["status"] == "partial_success"
    assert response.json()["summary"] == {
        "received": 2,
        "successful": 0,
        "failed": 2,
        "retriable": 0,
        "non_retriable": 2,
    }
    assert [f["index"] for f in response.json()["failed_events"]] == [0, 1]
    assert not Write.objects.exists()


def batch(api, events: list[dict], *, sync: bool = False) -> dict:
    response = send(api, events, path="/api/v1/lineage/batch", sync=sync)
    assert response.status_code == 200, response.content
    return response.json()


def after_end_outcomes() -> int:
    return OpenLineageEvent.objects.filter(outcome="after end").count()


def test_a_rerun_with_the_same_run_ids_is_counted_after_the_end_by_the_batch_and_its_runs(api):
    events = airflow_rerun()
    first, again = events[:4], events[4:]
    assert batch(api, first)["events_after_end"] == 0
    send_all(api, [], sync=False)
    answer = batch(api, again)
    assert answer["events_after_end"] == 4
    assert answer["status"] == "success" and answer["summary"]["successful"] == 4  # the spec's keys hold
    send_all(api, [], sync=False)
    for label in ("rerun-dag", "rerun-task"):
        run = ol_run(api, label)
        assert (run["events"], run["events_after_end"], run["end_timestamp"]) == (
            4,
            2,
            at(2 if "task" in label else 3),
        )
    assert Run.objects.count() == 2


def test_the_batch_counts_what_the_commit_will_record_after_the_end(api):
    done, shared, fresh = run_uuid("ended"), run_uuid("shared-ended"), run_uuid("fresh")
    complete = event("COMPLETE", done, "j", 5)
    send_all(api, [event("START", done, "j", 0), complete, event("COMPLETE", shared, "first", 1)], sync=True)
    events = [
        event("RUNNING", done, "j", 6),  # after the committed end: counted
        copy.deepcopy(complete),  # a duplicate of a recorded event: not counted
        event("COMPLETE", shared, "second", 7),  # another job's runId: not counted
        event("START", fresh, "j", 8),
        event("COMPLETE", fresh, "j", 9),
        event("OTHER", fresh, "j", 10),  # after an end earlier in the batch: counted
        event("OTHER", fresh, "j", 10),  # the same again in the batch: a duplicate
        {"eventTime": at(11), "job": {"namespace": "airflow", "name": "j"}},  # a JobEvent
    ]
    answer = batch(api, events)
    assert answer["events_after_end"] == 2
    before = after_end_outcomes()
    send_all(api, [], sync=False)
    assert after_end_outcomes() - before == 2
    assert ol_run(api, "ended")["events_after_end"] == 1 and ol_run(api, "fresh")["events_after_end"] == 1


def test_with_sync_the_batch_counts_what_the_commit_recorded(api):
    task = run_uuid("queued-end")
    assert send(api, event("COMPLETE", task, "j", 0)).status_code == 202  # queued, not committed
    answer = batch(api, [event("START", task, "j", 1), event("RUNNING", task, "j", 2)], sync=True)
    assert answer["events_after_end"] == 2 == after_end_outcomes()


def test_without_sync_an_end_still_queued_is_not_counted_but_the_run_counts_it(api):
    task = run_uuid("queued-end")
    assert send(api, event("COMPLETE", task, "j", 0)).status_code == 202  # queued, not committed
    assert batch(api, [event("START", task, "j", 1)])["events_after_end"] == 0
    send_all(api, [], sync=False)
    assert ol_run(api, "queued-end")["events_after_end"] == 1


def test_the_batch_count_takes_one_query_or_two_when_a_run_has_ended(api, django_assert_num_queries):
    from ingest.openlineage import events_after_end_count
    from runs.openlineage import read_event

    def count(events: list[dict]) -> int:
        return events_after_end_count([(read_event(body, max_datasets=10), body) for body in events])

    send_all(api, airflow_dag(), sync=True)
    with django_assert_num_queries(1):
        assert count(airflow_dag(day=1) + never_ends()) == 0  # fresh runs: nothing fingerprinted
    with django_assert_num_queries(2):
        assert count(airflow_dag()) == 0  # day 0 again: duplicates
    late = event("OTHER", run_uuid("etl-load-0"), "etl.load", 99)
    with django_assert_num_queries(2):
        assert count([*airflow_dag(day=1), late, *airflow_dag(day=2)]) == 1


@pytest.mark.parametrize("body", [{}, [], "events"])
def test_a_batch_that_is_not_a_non_empty_array_is_a_400(api, body, settings):
    response = send(api, body, path="/api/v1/lineage/batch")
    detail = BATCH_SIZE.format(limit=settings.MLTRACE_MAX_BATCH_RUNS, count=0) if body == [] else NOT_AN_ARRAY
    assert response.status_code == 400 and response.json() == {"detail": detail}


@override_settings(MLTRACE_MAX_BATCH_RUNS=3)
def test_a_batch_over_the_limit_is_refused_whole(api):
    response = send(api, never_ends() * 2, path="/api/v1/lineage/batch")
    assert response.status_code == 400
    assert response.json() == {"detail": "A batch holds 1 to 3 events; this one holds 4."}
    assert not Write.objects.exists()


@override_settings(MLTRACE_MAX_BATCH_POINTERS=3)
def test_a_batch_over_the_dataset_limit_is_refused_whole(api):
    two = [dataset("a"), dataset("b")]
    events = [event("COMPLETE", run_uuid(f"d{i}"), "j", i, inputs=two) for i in range(2)]
    response = send(api, events, path="/api/v1/lineage/batch")
    assert response.status_code == 400
    assert response.json() == {
        "detail": "A batch holds at most 3 datasets (the inputs and outputs of all its events); this one holds 4."
    }
    assert not Write.objects.exists()
