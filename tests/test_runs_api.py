from __future__ import annotations

import datetime as dt
import json

import pytest

from api.parsers import LONE_SURROGATE, NOT_UTF8, TOO_DEEP
from api.serializers.runs import END_BEFORE_START, POINTER_SHAPE, TOO_DEEP_FIELD
from common.errors import DEPENDENCY_UNRESOLVED, RUN_NOT_COMMITTED, RUN_NOT_FOUND
from components.models import Component
from runs.models import IOPointer, Run, RunDependency, Write
from tests.factories import log_run, moment, run_payload

pytestmark = pytest.mark.django_db

SYNC = "/api/v1/runs/?sync=true"
DAY = 24 * 60 * 60


def nothing_written() -> bool:
    return not (
        Run.objects.exists()
        or Write.objects.exists()
        or IOPointer.objects.exists()
        or Component.objects.exists()
    )


def test_it_commits_a_run_and_returns_it(api):
    payload = run_payload(
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


def test_explicit_dependencies_are_the_latest_run_of_each_component(api):
    early = log_run(api, "etl", start="2024-01-02T00:00:00Z")
    latest = log_run(api, "etl", start="2024-01-03T00:00:00Z")
    log_run(api, "etl", start="2024-01-01T00:00:00Z")  # accepted later, began earlier

    run = log_run(api, "train", start="2024-01-04T00:00:00Z", dependencies=["etl"])

    assert run["dependencies"] == [latest["id"]]
    assert early["id"] not in run["dependencies"]


def test_an_explicit_dependency_without_a_run_is_400_on_the_sync_path_and_writes_nothing(api):
    response = api.post(SYNC, run_payload("train", outputs=["m.pkl"], dependencies=["etl"]), format="json")

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


def test_history_is_newest_start_first_with_limit_and_inclusive_bounds(api):
    runs = [log_run(api, "etl", start=f"2024-01-0{day}T00:00:00Z")["id"] for day in (3, 1, 2, 5, 4)]
    by_day = dict(zip((3, 1, 2, 5, 4), runs, strict=True))
    url = "/api/v1/components/etl/history/"

    default = api.get(url).json()
    limited = api.get(url, {"limit": 2}).json()
    bounded = api.get(url, {"date_lower": "2024-01-02", "date_upper": "2024-01-04T00:00:00Z"}).json()

    assert [r["id"] for r in default["results"]] == [by_day[d] for d in (5, 4, 3, 2, 1)]
    assert [r["id"] for r in limited["results"]] == [by_day[5], by_day[4]]
    assert [r["id"] for r in api.get(limited["next"]).json()["results"]] == [by_day[3], by_day[2]]
    assert [r["id"] for r in bounded["results"]] == [by_day[4], by_day[3], by_day[2]]


def test_history_defaults_to_10_runs_like_mltrace(api):
    for i in range(12):
        log_run(api, "etl", start=moment(i))

    assert len(api.get("/api/v1/components/etl/history/").json()["results"]) == 10


def test_a_bad_history_date_is_400(api):
    log_run(api, "etl")

    response = api.get("/api/v1/components/etl/history/", {"date_lower": "yesterday"})

    assert response.status_code == 400
    assert "date_lower" in response.json()


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


def test_a_page_of_heavy_runs_stops_at_the_page_bytes_and_links_on(api, settings):
    # Six runs of 40 outputs each, about 3 KB a body as sent: a budget between the size of a
    # page of two and that of a page of three holds two.
    ids = [
        log_run(api, "etl", start=moment(i), outputs=[f"{i}-{n}.csv" for n in range(40)])["id"]
        for i in range(6)
    ]
    two, three = (len(api.get("/api/v1/runs/", {"limit": n}).content) for n in (2, 3))
    settings.MLTRACE_MAX_PAGE_BYTES = (two + three) // 2

    pages, url = [], "/api/v1/runs/?limit=1000"
    while url:
        body = api.get(url).json()
        pages.append([run["id"] for run in body["results"]])
        url = body["next"]
    back = api.get("/api/v1/runs/", {"after": ids[0], "limit": 1000}).json()
    newer = api.get(back["previous"]).json()
    settings.MLTRACE_MAX_PAGE_BYTES = 1
    single = api.get("/api/v1/runs/", {"limit": 1000}).json()

    assert pages == [[ids[5], ids[4]], [ids[3], ids[2]], [ids[1], ids[0]]]
    # Paging back, the page keeps the runs next to its cursor and links on to the newer ones.
    assert [run["id"] for run in back["results"]] == [ids[2], ids[1]]
    assert [run["id"] for run in newer["results"]] == [ids[4], ids[3]]
    assert [run["id"] for run in api.get(newer["previous"]).json()["results"]] == [ids[5]]
    assert [run["id"] for run in single["results"]] == [ids[5]]  # never an empty page


def test_a_trace_of_heavy_runs_is_the_same_built_a_few_runs_at_a_time(api, settings):
    previous: list[str] = []
    for i in range(8):
        outputs = [f"{i}-{n}.csv" for n in range(40)]
        log_run(api, f"step{i}", start=moment(i), inputs=previous, outputs=outputs)
        previous = outputs
    whole = api.get("/api/v1/trace/", {"output_id": previous[0]}).json()
    settings.MLTRACE_MAX_PAGE_BYTES = 6_000

    pieces = api.get("/api/v1/trace/", {"output_id": previous[0]}).json()

    assert len(whole["nodes"]) == 8
    assert pieces == whole


def test_recent_runs_before_an_unknown_run_is_404(api):
    response = api.get("/api/v1/runs/", {"before": 999999})

    assert response.status_code == 404
    assert response.json() == {"detail": RUN_NOT_FOUND.format(id=999999)}


def test_it_replaces_a_runs_notes(api):
    run = log_run(api, "etl", notes="old")

    response = api.patch(f"/api/v1/runs/{run['id']}/", {"notes": "looked fine"}, format="json")

    assert response.status_code == 200
    assert response.json()["notes"] == "looked fine"
    assert Run.objects.get(id=run["id"]).notes == "looked fine"


def test_the_notes_of_a_queued_run_are_409_until_it_is_committed(api):
    queued = api.post("/api/v1/runs/", run_payload("etl"), format="json").json()

    response = api.patch(f"/api/v1/runs/{queued['id']}/", {"notes": "n"}, format="json")

    assert response.status_code == 409
    assert response.json() == {"detail": RUN_NOT_COMMITTED.format(id=queued["id"], status="queued")}
    assert Write.objects.get(id=queued["id"]).status == "queued"


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


def test_a_batch_commits_runs_in_list_order(api):
    payloads = [
        run_payload("etl", outputs=["clean.csv"]),
        run_payload("train", inputs=["clean.csv"], outputs=["model.pkl"]),
        run_payload("infer", inputs=["model.pkl"], dependencies=["train"], outputs=["pred_1"]),
    ]

    response = api.post("/api/v1/runs/batch/?sync=true", {"runs": payloads}, format="json")

    assert response.status_code == 201
    runs = response.json()["runs"]
    assert [r["component"] for r in runs] == ["etl", "train", "infer"]
    assert runs[0]["id"] < runs[1]["id"] < runs[2]["id"]
    assert runs[1]["dependencies"] == [runs[0]["id"]]
    assert runs[2]["dependencies"] == [runs[1]["id"]]


def test_a_batch_with_a_bad_run_names_its_index_and_accepts_none(api):
    payloads = [run_payload("etl"), {"component": "x"}, run_payload("ok"), run_payload("a/b")]

    response = api.post("/api/v1/runs/batch/?sync=true", {"runs": payloads}, format="json")

    assert response.status_code == 400
    errors = response.json()["runs"]
    assert set(errors) == {"1", "3"}
    assert set(errors["1"]) == {"start_timestamp", "end_timestamp"}
    assert "component" in errors["3"]
    assert nothing_written()


def test_a_sync_batch_with_an_unresolved_dependency_accepts_none(api):
    payloads = [run_payload("etl"), run_payload("train", dependencies=["nothing"])]

    response = api.post("/api/v1/runs/batch/?sync=true", {"runs": payloads}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "runs": {"1": {"dependencies": [DEPENDENCY_UNRESOLVED.format(name="nothing")]}}
    }
    assert nothing_written()


@pytest.mark.parametrize("runs", [[], "x", None, [run_payload("a")] * 1001])
def test_a_batch_must_hold_1_to_1000_runs(api, runs):
    response = api.post("/api/v1/runs/batch/?sync=true", {"runs": runs}, format="json")

    assert response.status_code == 400
    assert "runs" in response.json()
    assert nothing_written()


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
    payload = {**run_payload("etl"), **change}

    response = api.post(SYNC, payload, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert nothing_written()


def test_end_before_start_says_why(api):
    payload = run_payload("etl", start="2024-01-02T00:00:00Z", end="2024-01-01T00:00:00Z")

    assert api.post(SYNC, payload, format="json").json() == {"end_timestamp": [END_BEFORE_START]}


def test_a_pointer_of_the_wrong_shape_says_why(api):
    response = api.post(SYNC, run_payload("etl", inputs=[5]), format="json")

    assert response.json() == {"inputs": {"0": [POINTER_SHAPE]}}


def test_a_1024_character_pointer_name_of_any_characters_is_accepted(api):
    name = "🙂" * 1024

    run = log_run(api, "etl", outputs=[name])

    assert run["outputs"][0]["name"] == name
    assert api.get("/api/v1/trace/", {"output_id": name}).json()["root"] == run["id"]


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"component": "etl",}', b"\xff\xfe", b"[1, 2", b"NaN", b"[" * 100_000],
)
def test_malformed_json_is_400_never_500(api, body):
    response = api.post(SYNC, body, content_type="application/json")

    assert response.status_code == 400
    assert "detail" in response.json()
    assert nothing_written()


@pytest.mark.parametrize("url", [SYNC, "/api/v1/runs/"])
@pytest.mark.parametrize(
    "change",
    [
        {"test_results": "\ud800"},
        {"test_results": {"\udc00": 1}},
        {"ignored_field": ["\ud83d"]},
        {"component": "etl\udfff"},
    ],
)
def test_a_lone_surrogate_anywhere_in_the_body_is_400_never_500(api, url, change):
    # json.dumps escapes it as \ud800, as a client's encoder would: valid JSON, no UTF-8 text.
    body = json.dumps({**run_payload("etl"), **change})

    response = api.post(url, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 400
    assert response.json() == {"detail": LONE_SURROGATE}
    assert nothing_written()


@pytest.mark.parametrize("url", [SYNC, "/api/v1/runs/", "/api/v1/runs/batch/"])
@pytest.mark.parametrize("number", ["1e400", "-1E+999"])
def test_a_number_too_large_for_a_float_is_400_never_500(api, url, number):
    # Python's json reads 1e400 as infinity, which no encoder can write back as JSON: it was
    # stored as Infinity and PostgreSQL refused it, a 500.
    run = json.dumps(run_payload("etl"))[:-1] + f', "test_results": {{"loss": {number}}}}}'
    body = f'{{"runs": [{run}]}}' if url.endswith("batch/") else run

    response = api.post(url, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": f"JSON parse error - Out of range float values are not JSON compliant: '{number}'"
    }
    assert nothing_written()


def test_a_surrogate_pair_is_a_character_like_any_other(api):
    run = log_run(api, "etl", outputs=["\U0001f600.csv"], test_results={"note": "\U0001f600"})

    assert run["outputs"][0]["name"] == "\U0001f600.csv"
    assert run["test_results"] == {"note": "\U0001f600"}


def test_deeply_nested_test_results_are_refused_or_stored_never_500(api):
    nested = "[" * 900 + "]" * 900
    body = json.dumps(run_payload("etl"))[:-1] + f', "test_results": {nested}}}'

    response = api.post(SYNC, body, content_type="application/json")

    assert response.status_code in (201, 400), response.content
    if response.status_code == 400:
        assert nothing_written()


# Every door a run comes in by: plain, sync, idempotent, and each of those as a batch.
DOORS = [
    ("/api/v1/runs/", False, {}),
    (SYNC, False, {}),
    ("/api/v1/runs/", False, {"HTTP_IDEMPOTENCY_KEY": "k1"}),
    ("/api/v1/runs/batch/", True, {}),
    ("/api/v1/runs/batch/?sync=true", True, {}),
    ("/api/v1/runs/batch/", True, {"HTTP_IDEMPOTENCY_KEY": "k2"}),
]


def nested(levels: int) -> object:
    value: object = 1
    for level in range(levels):
        value = [value] if level % 2 else {"k": value}
    return value


def post_run(api, url, batch, headers, payload, **kwargs):
    body = {"runs": [run_payload("etl"), payload]} if batch else payload
    return api.post(
        url, json.dumps(body), content_type=kwargs.pop("content_type", "application/json"), **headers
    )


@pytest.mark.parametrize("url,batch,headers", DOORS)
def test_test_results_nested_past_the_bound_is_a_400_on_every_door(api, url, batch, headers):
    response = post_run(api, url, batch, headers, run_payload("etl", test_results=nested(65)))

    assert response.status_code == 400, response.content
    error = [TOO_DEEP_FIELD.format(limit=64)]
    assert response.json() == ({"runs": {"1": {"test_results": error}}} if batch else {"test_results": error})
    assert nothing_written()


@pytest.mark.parametrize("url,batch,headers", DOORS)
def test_test_results_nested_at_the_bound_is_stored_as_sent(api, url, batch, headers, settings):
    response = post_run(api, url, batch, headers, run_payload("etl", test_results=nested(64)))

    assert response.status_code in (201, 202), response.content
    if "sync" in url:
        assert Run.objects.order_by("id").last().test_results == nested(64)
    else:
        assert Write.objects.order_by("id").last().payload["test_results"] == nested(64)


@pytest.mark.parametrize("url,batch,headers", DOORS)
def test_a_body_nested_past_the_envelope_s_bound_is_refused_before_validation(api, url, batch, headers):
    # 930 levels passed the old guard, then failed every later sync write and PATCH.
    response = post_run(api, url, batch, headers, {**run_payload("etl"), "unknown": nested(930)})

    assert response.status_code == 400
    assert response.json() == {"detail": TOO_DEEP.format(limit=80)}
    assert nothing_written()


@pytest.mark.parametrize("url,batch,headers", DOORS)
@pytest.mark.parametrize("charset", ["utf-16", "utf-32", "latin-1"])
def test_a_body_in_another_charset_is_415_on_every_door(api, url, batch, headers, charset):
    # In UTF-16 or UTF-32 a lone surrogate's escape is bytes the UTF-8 check would not see.
    payload = run_payload("etl", test_results={"x": "\udfff"})
    body = json.dumps({"runs": [payload]} if batch else payload).encode(charset)

    response = api.post(url, body, content_type=f"application/json; charset={charset}", **headers)

    assert response.status_code == 415
    assert response.json() == {"detail": NOT_UTF8.format(charset=charset)}
    assert nothing_written()


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8"])
def test_utf8_may_be_named(api, charset):
    body = json.dumps(run_payload("etl", outputs=["é.csv"])).encode()

    response = api.post(SYNC, body, content_type=f"application/json; charset={charset}")

    assert response.status_code == 201
    assert response.json()["outputs"][0]["name"] == "é.csv"


def test_a_json_body_that_is_not_an_object_is_400(api):
    response = api.post(SYNC, [1, 2], format="json")

    assert response.status_code == 400
    assert nothing_written()


def test_a_body_over_the_limit_is_413(api, settings):
    settings.MLTRACE_MAX_BODY_BYTES = 1000
    payload = run_payload("etl", notes="x" * 2000)

    response = api.post(SYNC, payload, format="json")

    assert response.status_code == 413
    assert "1000" in response.json()["detail"]
    assert nothing_written()


def test_a_naive_timestamp_is_utc_and_responses_are_utc(api):
    run = log_run(api, "etl", start="2024-06-01T12:00:00", end="2024-06-01T14:30:00+02:00")

    assert run["start_timestamp"] == "2024-06-01T12:00:00Z"
    assert run["end_timestamp"] == "2024-06-01T12:30:00Z"
    assert Run.objects.get().start_timestamp == dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "url,body,errors",
    [
        (SYNC, {**run_payload("etl"), "ouputs": ["clean.csv"]}, {"ouputs": ["Unknown field."]}),
        (
            "/api/v1/runs/",
            {**run_payload("etl", outputs=[{"name": "a", "flag": True}])},
            {"outputs": {"0": {"flag": ["Unknown field."]}}},
        ),
        (
            "/api/v1/runs/batch/",
            {"runs": [run_payload("etl"), {**run_payload("etl"), "stale": []}]},
            {"runs": {"1": {"stale": ["Unknown field."]}}},
        ),
        ("/api/v1/runs/batch/", {"runs": [run_payload("etl")], "sync": True}, {"sync": ["Unknown field."]}),
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
    response = api.post("/api/v1/runs/?synch=true", run_payload("etl"), format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["synch"]
    assert nothing_written()


@pytest.mark.parametrize("value", ["endpoint", "Endpoint", "ENDPOINT"])
def test_a_pointer_type_is_taken_in_any_case(api, value):
    run = log_run(api, "infer", outputs=[{"name": "pred_1", "pointer_type": value}])

    assert run["outputs"][0]["pointer_type"] == "ENDPOINT"
    assert IOPointer.objects.get().pointer_type == "ENDPOINT"


@pytest.mark.parametrize("value", ["", "yes", "garbage", "2", "on"])
def test_sync_is_true_false_1_or_0_and_nothing_else(api, value):
    response = api.post(f"/api/v1/runs/?sync={value}", run_payload("etl"), format="json")

    assert response.status_code == 400
    assert response.json() == {"sync": ["Must be true, false, 1 or 0."]}
    assert nothing_written()


@pytest.mark.parametrize(
    "value,status", [("true", 201), ("TRUE", 201), ("1", 201), ("false", 202), ("0", 202)]
)
def test_sync_takes_true_false_1_and_0(api, value, status):
    assert api.post(f"/api/v1/runs/?sync={value}", run_payload("etl"), format="json").status_code == status


def test_a_chunked_body_without_a_length_is_411_not_taken_as_empty(api):
    # Django's test client, like runserver, hands Django no length for a chunked body; gunicorn
    # as shipped reads it first (tests/test_serving.py).
    response = api.post(SYNC, b"", content_type="application/json", HTTP_TRANSFER_ENCODING="chunked")

    assert response.status_code == 411
    assert "Content-Length" in response.json()["detail"]
    assert nothing_written()


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


# 200 KB of code, as a producer snapshots it: PostgreSQL stores it compressed, in a few KB.
CODE_SNAPSHOT = 'print("hello, world")\n' * 9_100
MAX_PAGE_BYTES = 8 * 2**20  # MLTRACE_MAX_PAGE_BYTES's default


def heavy_chain(api, count: int = 120) -> list[int]:
    """`count` runs of CODE_SNAPSHOT, each reading the output of the one before (sync, 40 a batch)."""
    ids: list[int] = []
    for first in range(0, count, 40):
        runs = [
            run_payload(
                "etl",
                start=moment(i),
                code_snapshot=CODE_SNAPSHOT,
                inputs=[f"step-{i - 1}.csv"] if i else [],
                outputs=[f"step-{i}.csv"],
            )
            for i in range(first, min(first + 40, count))
        ]
        response = api.post("/api/v1/runs/batch/?sync=true", {"runs": runs}, format="json")
        assert response.status_code == 201, response.content[:300]
        ids += [run["id"] for run in response.json()["runs"]]
    return ids


def walk(api, url: str, link: str) -> tuple[list[list[int]], list[int]]:
    """The run ids of each page from url on, following `link`; and each page's size as sent."""
    pages, sizes = [], []
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content[:300]
        sizes.append(len(response.content))
        body = response.json()
        listed = body["results"] if "results" in body else [node["run"] for node in body["nodes"]]
        pages.append([run["id"] for run in listed])
        url = body[link]
    return pages, sizes


def test_a_page_of_heavy_runs_is_at_most_the_page_bytes_as_sent(api):
    ids = heavy_chain(api)

    recent, recent_sizes = walk(api, "/api/v1/runs/?limit=1000", "next")
    back, back_sizes = walk(api, f"/api/v1/runs/?after={ids[0]}&limit=1000", "previous")
    history, history_sizes = walk(api, "/api/v1/components/etl/history/?limit=1000", "next")
    impact, impact_sizes = walk(api, "/api/v1/impact/?output_id=step-0.csv&limit=1000", "next")

    print("page sizes:", recent_sizes, back_sizes, history_sizes, impact_sizes)
    assert max(recent_sizes + back_sizes + history_sizes + impact_sizes) <= MAX_PAGE_BYTES
    # Every run once, in order, whichever way the pages go.
    assert [run_id for page in recent for run_id in page] == ids[::-1]
    assert [run_id for page in reversed(back) for run_id in page] == ids[:0:-1]
    assert [run_id for page in history for run_id in page] == ids[::-1]
    assert [run_id for page in impact for run_id in page] == ids[1:]
    # A page holds as many runs as fit: a run's body is about 210 KB as sent.
    assert all(len(page) >= 35 for page in recent[:-1])


def test_a_trace_and_a_review_of_heavy_runs_go_out_in_writes_of_at_most_the_page_bytes(api, token):
    from rest_framework.test import APIClient

    ids = heavy_chain(api)
    api.post("/api/v1/flag/", {"output_id": "step-119.csv"}, format="json")
    raw = APIClient()  # the writes as the server streams them, not joined
    raw.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    answers = {}
    for url in ("/api/v1/trace/?output_id=step-119.csv", "/api/v1/review/"):
        response = raw.get(url)
        assert response.status_code == 200 and response.streaming
        writes = [len(piece) for piece in response.streaming_content]
        answers[url] = (writes, json.loads(b"".join(raw.get(url).streaming_content)))

    trace_writes, trace = answers["/api/v1/trace/?output_id=step-119.csv"]
    review_writes, review = answers["/api/v1/review/"]
    print("writes:", trace_writes, review_writes)
    assert sum(trace_writes) > 3 * MAX_PAGE_BYTES  # 27 MB of trace, in pieces
    assert max(trace_writes + review_writes) <= MAX_PAGE_BYTES
    assert [node["run"]["id"] for node in trace["nodes"]] == ids[::-1]
    assert [node["depth"] for node in trace["nodes"]] == list(range(120))
    assert trace["edges"] == [[ids[i], ids[i - 1]] for i in range(119, 0, -1)]
    assert [entry["run"]["id"] for entry in review["runs"]] == ids[::-1]
    assert all(node["run"]["code_snapshot"] == CODE_SNAPSHOT for node in trace["nodes"])
