"""The commit's bulk SQL (ingest/sql.py): COPY where it can, the same rows where it cannot.

COPY is refused while psycopg2 has a wait callback (gunicorn's gevent workers set one), so
a ?sync=true write there inserts with plain statements. Both must store every character as
sent, create pointers in first-mention order and leave existing pointers as they were.
"""

from __future__ import annotations

import json

import psycopg2.extensions
import psycopg2.extras
import pytest
from django.db import connection

from common.jsontext import json_decode
from runs.models import IOPointer
from tests.factories import run_payload

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
        run_payload("etl", outputs=[{"name": "shared", "pointer_type": "DATA"}]),
        format="json",
    )
    assert first.status_code == 201, first.content
    runs = [
        run_payload(
            "train",
            inputs=[{"name": "shared", "pointer_type": "MODEL"}],
            outputs=[AWKWARD, "b", "a"],
            notes=AWKWARD,
            code_snapshot=AWKWARD,
            git_tags=[AWKWARD],
            test_results={AWKWARD: [AWKWARD, None]},
        ),
        run_payload("infer", inputs=["a"], outputs=["c", "b"]),
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
        runs = [run_payload("infer", outputs=[f"prediction-{n}-{i}" for i in range(200)]) for _ in range(5)]
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
