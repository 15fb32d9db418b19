"""POST /api/v1/runs/?sync=true: the run it commits and answers with, or a 400 that writes
nothing.

A run's pointers (their types inferred from the names as mltrace does), its timestamps, its
dependencies (explicit, and inferred from the outputs it reads), its staleness, and the payloads
its serializer refuses.
"""

from __future__ import annotations

import datetime as dt

import pytest

from api.serializers.runs import END_BEFORE_START, POINTER_SHAPE
from common.errors import DEPENDENCY_UNRESOLVED
from components.models import Component
from runs.models import IOPointer, Run, RunDependency
from tests.factories import SYNC, log_run, moment, nothing_written, run_request_body

pytestmark = pytest.mark.django_db


DAY = 24 * 60 * 60


def test_it_commits_a_run_and_returns_it(api):
    payload = run_request_body(
        "train",
        start="2024-01-01T10:00:00",
        end="2024-01-01T11:00:00+01:00",
        inputs=["clean.csv", {"name": "s3://bucket/features", "value": "v2", "pointer_type": "DATA"}],
        outputs=[{"name": "model.pkl"}],
        notes="first",
        git_hash="abc123",
        git_tags=["v1"],
        code_snapshot="def train(): ...",
        test_results={"accuracy": 0.9},
    )

    response = api.post(SYNC, payload, format="json")

    assert response.status_code == 201
    body = response.json()
    assert response["Location"] == f"/api/v1/runs/{body['id']}/"
    assert body["status"] == "committed"
    assert body["error"] is None
    assert body["component"] == "train"
    assert body["start_timestamp"] == "2024-01-01T10:00:00Z"
    assert body["end_timestamp"] == "2024-01-01T10:00:00Z"
    assert body["inputs"] == [
        {"name": "clean.csv", "value": "", "pointer_type": "DATA", "flag": False},
        {"name": "s3://bucket/features", "value": "v2", "pointer_type": "DATA", "flag": False},
    ]
    assert body["outputs"] == [{"name": "model.pkl", "value": "", "pointer_type": "MODEL", "flag": False}]
    assert body["dependencies"] == []
    assert body["stale"] == []
    assert body["unresolved_dependencies"] == []
    assert (body["notes"], body["git_hash"], body["git_tags"]) == ("first", "abc123", ["v1"])
    assert body["code_snapshot"] == "def train(): ..."
    assert body["test_results"] == {"accuracy": 0.9}
    assert body["created_at"].endswith("Z")
    assert Component.objects.get(name="train").description == ""
    assert api.get(f"/api/v1/runs/{body['id']}/").json() == body


@pytest.mark.parametrize(
    ("name", "pointer_type"),
    [
        ("raw_DATA_2024", "DATA"),
        ("my_model_v2", "MODEL"),
        ("datamodel", "DATA"),
        ("out.CSV", "DATA"),
        ("x.pq", "DATA"),
        ("x.parquet", "DATA"),
        ("notes.txt", "DATA"),
        ("README.md", "DATA"),
        ("x.rtf", "DATA"),
        ("x.tsv", "DATA"),
        ("x.xml", "DATA"),
        ("x.pdf", "DATA"),
        ("x.mlt", "DATA"),
        ("weights.h5", "MODEL"),
        ("weights.hdf5", "MODEL"),
        ("clf.joblib", "MODEL"),
        ("clf.PKL", "MODEL"),
        ("clf.pickle", "MODEL"),
        ("epoch.ckpt", "MODEL"),
        ("x.mlmodel", "MODEL"),
        ("prediction_42", "UNKNOWN"),
        ("archive.tar.gz", "UNKNOWN"),
    ],
)
def test_it_infers_the_pointer_type_from_the_name_as_mltrace_does(api, name, pointer_type):
    run = log_run(api, "c", outputs=[name])

    assert run["outputs"][0]["pointer_type"] == pointer_type


def test_an_explicit_pointer_type_wins_over_inference_but_not_over_an_existing_pointer(api):
    first = log_run(api, "infer", outputs=[{"name": "pred_1", "pointer_type": "ENDPOINT"}])
    second = log_run(api, "infer", inputs=[{"name": "pred_1", "pointer_type": "DATA"}])

    assert first["outputs"][0]["pointer_type"] == "ENDPOINT"
    assert second["inputs"][0]["pointer_type"] == "ENDPOINT"


@pytest.mark.parametrize("value", ["endpoint", "Endpoint", "ENDPOINT"])
def test_a_pointer_type_is_taken_in_any_case(api, value):
    run = log_run(api, "infer", outputs=[{"name": "pred_1", "pointer_type": value}])

    assert run["outputs"][0]["pointer_type"] == "ENDPOINT"
    assert IOPointer.objects.get().pointer_type == "ENDPOINT"


def test_a_1024_character_pointer_name_of_any_characters_is_accepted(api):
    name = "🙂" * 1024

    run = log_run(api, "etl", outputs=[name])

    assert run["outputs"][0]["name"] == name
    assert api.get("/api/v1/trace/", {"output_id": name}).json()["root"] == run["id"]


def test_a_surrogate_pair_is_a_character_like_any_other(api):
    run = log_run(api, "etl", outputs=["\U0001f600.csv"], test_results={"note": "\U0001f600"})

    assert run["outputs"][0]["name"] == "\U0001f600.csv"
    assert run["test_results"] == {"note": "\U0001f600"}


def test_a_naive_timestamp_is_utc_and_responses_are_utc(api):
    run = log_run(api, "etl", start="2024-06-01T12:00:00", end="2024-06-01T14:30:00+02:00")

    assert run["start_timestamp"] == "2024-06-01T12:00:00Z"
    assert run["end_timestamp"] == "2024-06-01T12:30:00Z"
    assert Run.objects.get().start_timestamp == dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC)


def test_explicit_dependencies_are_the_latest_run_of_each_component(api):
    early = log_run(api, "etl", start="2024-01-02T00:00:00Z")
    latest = log_run(api, "etl", start="2024-01-03T00:00:00Z")
    log_run(api, "etl", start="2024-01-01T00:00:00Z")  # accepted later, began earlier

    run = log_run(api, "train", start="2024-01-04T00:00:00Z", dependencies=["etl"])

    assert run["dependencies"] == [latest["id"]]
    assert early["id"] not in run["dependencies"]


def test_an_explicit_dependency_without_a_run_is_400_on_the_sync_path_and_writes_nothing(api):
    response = api.post(
        SYNC, run_request_body("train", outputs=["m.pkl"], dependencies=["etl"]), format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"dependencies": [DEPENDENCY_UNRESOLVED.format(name="etl")]}
    assert nothing_written()


def test_infer_dependencies_false_keeps_only_explicit_ones(api):
    producer = log_run(api, "etl", outputs=["clean.csv"])
    other = log_run(api, "other")

    run = log_run(api, "train", inputs=["clean.csv"], dependencies=["other"], infer_dependencies=False)

    assert run["dependencies"] == [other["id"]]
    assert producer["id"] not in run["dependencies"]


def test_inferred_and_explicit_dependencies_merge_without_repeats(api):
    producer = log_run(api, "etl", outputs=["clean.csv"])

    run = log_run(api, "train", inputs=["clean.csv"], dependencies=["etl"])

    assert run["dependencies"] == [producer["id"]]
    assert RunDependency.objects.filter(run_id=run["id"]).count() == 1


def test_a_dependency_older_than_the_threshold_is_stale_in_whole_days(api):
    etl = log_run(api, "etl", start=moment(0), outputs=["clean.csv"])

    run = log_run(api, "train", start=moment(31 * DAY + 23 * 3600), inputs=["clean.csv"])

    assert run["stale"] == [f"etl (ID {etl['id']}) was run 31 days ago."]


def test_a_dependency_exactly_at_the_threshold_is_not_stale(api):
    log_run(api, "etl", start=moment(0), outputs=["clean.csv"])

    run = log_run(api, "train", start=moment(30 * DAY), inputs=["clean.csv"])

    assert run["stale"] == []


def test_the_staleness_threshold_is_configurable_per_run(api):
    etl = log_run(api, "etl", start=moment(0), outputs=["clean.csv"])

    run = log_run(api, "train", start=moment(2 * DAY), inputs=["clean.csv"], staleness_threshold=DAY)

    assert run["stale"] == [f"etl (ID {etl['id']}) was run 2 days ago."]


def test_fresher_runs_of_a_dependency_are_reported_with_run_or_runs(api):
    etl = log_run(api, "etl", start=moment(0), outputs=["clean.csv"])
    # Later runs of etl that output something else: train still reads etl's clean.csv.
    log_run(api, "etl", start=moment(10), outputs=["other.csv"])
    one = log_run(api, "train", start=moment(20), inputs=["clean.csv"])
    log_run(api, "etl", start=moment(30), outputs=["other.csv"])
    two = log_run(api, "train", start=moment(40), inputs=["clean.csv"])

    assert one["stale"] == [
        f"etl (ID {etl['id']}) has 1 fresher run that began before this component run started."
    ]
    assert two["stale"] == [
        f"etl (ID {etl['id']}) has 2 fresher runs that began before this component run started."
    ]


def test_runs_that_began_after_this_run_are_not_fresher(api):
    etl = log_run(api, "etl", start=moment(0), outputs=["clean.csv"])
    log_run(api, "etl", start=moment(100), outputs=["other.csv"])

    run = log_run(api, "train", start=moment(50), inputs=["clean.csv"])

    assert run["dependencies"] == [etl["id"]]
    assert run["stale"] == []


def test_both_staleness_messages_come_in_dependency_order(api):
    a = log_run(api, "a", start=moment(0), outputs=["a.csv"])
    log_run(api, "a", start=moment(40 * DAY), outputs=["a2.csv"])
    b = log_run(api, "b", start=moment(41 * DAY), outputs=["b.csv"])

    run = log_run(api, "c", start=moment(42 * DAY), inputs=["b.csv", "a.csv"])

    assert run["dependencies"] == [a["id"], b["id"]]
    assert run["stale"] == [
        f"a (ID {a['id']}) was run 42 days ago.",
        f"a (ID {a['id']}) has 1 fresher run that began before this component run started.",
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"component": None}, "component"),
        ({"component": ""}, "component"),
        ({"component": "a/b"}, "component"),
        ({"component": "x" * 256}, "component"),
        ({"component": ["etl"]}, "component"),
        ({"start_timestamp": "yesterday"}, "start_timestamp"),
        ({"start_timestamp": 1700000000}, "start_timestamp"),
        ({"end_timestamp": "2024-13-01T00:00:00"}, "end_timestamp"),
        (
            {"start_timestamp": "2024-01-02T00:00:00Z", "end_timestamp": "2024-01-01T00:00:00Z"},
            "end_timestamp",
        ),
        ({"inputs": "clean.csv"}, "inputs"),
        ({"inputs": [5]}, "inputs"),
        ({"inputs": [{"value": "x"}]}, "inputs"),
        ({"inputs": [""]}, "inputs"),
        ({"outputs": ["x" * 1025]}, "outputs"),
        ({"outputs": [{"name": "a", "pointer_type": "TABLE"}]}, "outputs"),
        ({"outputs": [{"name": "a", "value": 3}]}, "outputs"),
        ({"outputs": ["a\x00b"]}, "outputs"),
        ({"dependencies": ["a/b"]}, "dependencies"),
        ({"dependencies": "etl"}, "dependencies"),
        ({"infer_dependencies": "yes"}, "infer_dependencies"),
        ({"staleness_threshold": -1}, "staleness_threshold"),
        ({"staleness_threshold": "10"}, "staleness_threshold"),
        ({"notes": 5}, "notes"),
        ({"git_hash": "x" * 256}, "git_hash"),
        ({"git_tags": "v1"}, "git_tags"),
        ({"code_snapshot": ["x"]}, "code_snapshot"),
        ({"test_results": {"k\x00": 1}}, "test_results"),
    ],
)
def test_bad_run_payloads_are_400_and_write_nothing(api, change, field):
    payload = {**run_request_body("etl"), **change}

    response = api.post(SYNC, payload, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert nothing_written()


def test_end_before_start_says_why(api):
    payload = run_request_body("etl", start="2024-01-02T00:00:00Z", end="2024-01-01T00:00:00Z")

    assert api.post(SYNC, payload, format="json").json() == {"end_timestamp": [END_BEFORE_START]}


def test_a_pointer_of_the_wrong_shape_says_why(api):
    response = api.post(SYNC, run_request_body("etl", inputs=[5]), format="json")

    assert response.json() == {"inputs": {"0": [POINTER_SHAPE]}}
