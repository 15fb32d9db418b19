"""The commit's bulk SQL (ingest/sql.py): COPY where it can, the same rows where it cannot.

COPY is refused while psycopg2 has a wait callback (gunicorn's gevent workers set one), so
a ?sync=true write there inserts with plain statements. Both must store every character as
sent, create pointers in first-mention order and leave existing pointers as they were.
"""

from __future__ import annotations

import datetime as dt
import json

import psycopg2.extensions
import psycopg2.extras
import pytest
from django.db import connection

from common.jsontext import json_decode
from runs.models import IOPointer
from tests.factories import log_run, run_request_body

# What COPY's text format escapes, and its end-of-data marker on a line of its own.
AWKWARD = "tab\there, newline\nthere, CR\r\nback\\slash, \\N, \\t\n\\.\nend"


@pytest.fixture(params=["copy", "wait-callback"])
def path(request):
    if request.param == "wait-callback":
        psycopg2.extensions.set_wait_callback(psycopg2.extras.wait_select)
    yield request.param
    psycopg2.extensions.set_wait_callback(None)


@pytest.mark.django_db
def test_a_committed_batch_stores_its_text_exactly_and_its_pointers_once(api, path):
    first = api.post(
        "/api/v1/runs/?sync=true",
        run_request_body("etl", outputs=[{"name": "shared", "pointer_type": "DATA"}]),
        format="json",
    )
    assert first.status_code == 201, first.content
    runs = [
        run_request_body(
            "train",
            inputs=[{"name": "shared", "pointer_type": "MODEL"}],
            outputs=[AWKWARD, "b", "a"],
            notes=AWKWARD,
            code_snapshot=AWKWARD,
            git_tags=[AWKWARD],
            test_results={AWKWARD: [AWKWARD, None]},
        ),
        run_request_body("infer", inputs=["a"], outputs=["c", "b"]),
    ]

    response = api.post("/api/v1/runs/batch/?sync=true", {"runs": runs}, format="json")

    assert response.status_code == 201, response.content
    train_id, infer_id = (run["id"] for run in response.json()["runs"])
    train = api.get(f"/api/v1/runs/{train_id}/").json()
    assert train["notes"] == train["code_snapshot"] == AWKWARD
    assert train["git_tags"] == [AWKWARD]
    assert train["test_results"] == {AWKWARD: [AWKWARD, None]}
    assert [p["name"] for p in train["outputs"]] == [AWKWARD, "b", "a"]
    infer = api.get(f"/api/v1/runs/{infer_id}/").json()
    assert infer["dependencies"] == [train_id]
    assert infer["test_results"] is None
    # An existing pointer keeps its id and its type; new ones are made once each, with
    # the type of their first mention. (Their ids follow their keys, not the batch's order:
    # ingest/pointers.py writes in key order, so that materializers never deadlock.)
    pointers = list(IOPointer.objects.order_by("id").values_list("name", "pointer_type"))
    assert pointers[0] == ("shared", "DATA")
    assert sorted(pointers[1:]) == sorted(
        [(AWKWARD, "UNKNOWN"), ("b", "UNKNOWN"), ("a", "UNKNOWN"), ("c", "UNKNOWN")]
    )


@pytest.mark.django_db(transaction=True)
def test_the_pointer_stage_is_empty_after_every_commit(api):
    """The stage of new pointers (ingest/sql.py, insert_new_returning) is truncated by every
    commit: a DELETE would leave its rows dead in a temporary table nothing vacuums, and the
    worker's stage would grow with every batch it commits."""
    sizes = []
    for n in range(3):
        runs = [
            run_request_body("infer", outputs=[f"prediction-{n}-{i}" for i in range(200)]) for _ in range(5)
        ]
        response = api.post("/api/v1/runs/batch/?sync=true", {"runs": runs}, format="json")
        assert response.status_code == 201, response.content
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_relation_size('stage_runs_iopointer')")
            sizes.append(cursor.fetchone()[0])

    assert IOPointer.objects.filter(name__startswith="prediction-").count() == 600
    assert sizes == [0, 0, 0]


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": [2.5, -0.0, 12345678901234567890123, "\\u00e9"]}',
        '{"nan": NaN, "inf": -Infinity}',  # json reads these; msgspec refuses them
        '{"past a float": 1e400}',
        '{"lone": "\\ud800"}',
    ],
)
def test_a_stored_payload_is_read_as_json_reads_it(text):
    """The commit decodes payloads with msgspec (common/jsontext.py), and whatever msgspec
    refuses with json: the same values either way, NaN compared as its text."""
    assert repr(json_decode(text)) == repr(json.loads(text))


@pytest.mark.django_db
def test_staleness_windows_count_the_same_read_once_or_each_in_sql(api, monkeypatch):
    from ingest import batch
    from runs.models import Run

    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    starts = [base + dt.timedelta(hours=h) for h in (0, 1, 1, 3, 7, 8)]
    for start in starts:
        log_run(api, "train", start=start)
    log_run(api, "other", start=base + dt.timedelta(hours=2))
    last = Run.objects.order_by("-id").values_list("id", flat=True).first()
    windows = [("train", base, base + dt.timedelta(hours=h)) for h in range(10)]
    windows += [("train", starts[3], base + dt.timedelta(hours=h)) for h in range(3, 12)]
    windows += [("other", base, base + dt.timedelta(hours=5)), ("missing", base, base)]

    monkeypatch.setattr(batch, "SHARED_WINDOWS", 1)
    read_once = batch._committed_runs_in_windows(windows, before_id=last)
    monkeypatch.setattr(batch, "SHARED_WINDOWS", 10**9)
    each_in_sql = batch._committed_runs_in_windows(windows, before_id=last)

    assert read_once == each_in_sql
    assert [read_once[w] for w in windows[:10]] == [1, 3, 3, 4, 4, 4, 4, 5, 6, 6]
    assert [read_once[w] for w in windows[10:19]] == [1, 1, 1, 1, 2, 3, 3, 3, 3]
    assert read_once[("other", base, base + dt.timedelta(hours=5))] == 0  # its run is not below last
    assert read_once[("missing", base, base)] == 0
