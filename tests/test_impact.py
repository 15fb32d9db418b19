"""Downstream lineage: GET /api/v1/impact/, /api/v1/runs/{id}/impact/ and flag downstream.

What a bad input touched: the runs that read it, every run that depends on them, and what
they output; each run once at its shortest distance, paged in a constant number of queries.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import log_run, moment, run_request_body

pytestmark = pytest.mark.django_db


def impact(api, output_id: str, **params) -> dict:
    response = api.get("/api/v1/impact/", {"output_id": output_id, **params})
    assert response.status_code == 200, response.content
    return response.json()


def nodes(body: dict) -> list[tuple[int, str]]:
    return [(n["depth"], n["run"]["component"]) for n in body["nodes"]]


def diamond(api) -> dict[str, int]:
    """raw.csv -> etl -> (left, right) -> join -> report."""
    ids = {}
    ids["etl"] = log_run(api, "etl", inputs=["raw.csv"], outputs=["clean.csv"])["id"]
    ids["left"] = log_run(api, "left", inputs=["clean.csv"], outputs=["left.pq"])["id"]
    ids["right"] = log_run(
        api, "right", inputs=["clean.csv"], outputs=[{"name": "model.pkl", "pointer_type": "MODEL"}]
    )["id"]
    ids["join"] = log_run(api, "join", inputs=["left.pq", "model.pkl"], outputs=["joined.csv"])["id"]
    ids["report"] = log_run(
        api, "report", inputs=["joined.csv"], outputs=[{"name": "pred_1", "pointer_type": "ENDPOINT"}]
    )["id"]
    return ids


def test_a_chain_is_listed_nearest_first_with_its_edges(api):
    a = log_run(api, "a", inputs=["raw.csv"], outputs=["one.csv"])["id"]
    b = log_run(api, "b", inputs=["one.csv"], outputs=["two.csv"])["id"]
    c = log_run(api, "c", inputs=["two.csv"], outputs=["three.csv"])["id"]

    body = impact(api, "raw.csv")

    assert nodes(body) == [(1, "a"), (2, "b"), (3, "c")]
    assert body["edges"] == [[b, a], [c, b]]
    assert body["outputs"] == {"DATA": 3, "MODEL": 0, "ENDPOINT": 0, "UNKNOWN": 0}
    assert body["next"] is None and body["output_id"] == "raw.csv"


def test_a_diamond_lists_both_paths_and_each_run_once(api):
    ids = diamond(api)

    body = impact(api, "raw.csv")

    assert nodes(body) == [(1, "etl"), (2, "left"), (2, "right"), (3, "join"), (4, "report")]
    assert sorted(map(tuple, body["edges"])) == sorted(
        [
            (ids["left"], ids["etl"]),
            (ids["right"], ids["etl"]),
            (ids["join"], ids["left"]),
            (ids["join"], ids["right"]),
            (ids["report"], ids["join"]),
        ]
    )
    assert body["outputs"] == {"DATA": 3, "MODEL": 1, "ENDPOINT": 1, "UNKNOWN": 0}


def test_a_run_at_two_distances_is_listed_at_the_shorter(api):
    first = log_run(api, "first", inputs=["raw.csv"], outputs=["a.csv"])["id"]
    log_run(api, "middle", inputs=["a.csv"], outputs=["b.csv"])
    # Reads raw.csv itself (1 hop) and b.csv (3 hops through first and middle).
    late = log_run(api, "late", inputs=["raw.csv", "b.csv"], outputs=["c.csv"])["id"]

    body = impact(api, "raw.csv")

    assert nodes(body) == [(1, "first"), (1, "late"), (2, "middle")]
    assert late != first


def test_depth_bounds_the_hops(api):
    diamond(api)
    assert nodes(impact(api, "raw.csv", depth=1)) == [(1, "etl")]
    assert nodes(impact(api, "raw.csv", depth=2)) == [(1, "etl"), (2, "left"), (2, "right")]
    assert impact(api, "raw.csv", depth=0)["nodes"] == []


def test_an_output_no_run_read_has_no_downstream(api):
    log_run(api, "etl", inputs=["raw.csv"], outputs=["clean.csv"])
    body = impact(api, "clean.csv")
    assert body["nodes"] == [] and body["edges"] == []
    assert body["outputs"] == {"DATA": 0, "MODEL": 0, "ENDPOINT": 0, "UNKNOWN": 0}


def test_unknown_names_and_runs_are_404(api):
    response = api.get("/api/v1/impact/", {"output_id": "nope.csv"})
    assert response.status_code == 404
    assert response.json() == {"detail": "No IO pointer is named 'nope.csv'."}
    assert api.get("/api/v1/runs/999999/impact/").status_code == 404


def test_the_impact_of_a_run_starts_at_the_run(api):
    ids = diamond(api)

    body = api.get(f"/api/v1/runs/{ids['left']}/impact/").json()

    assert body["run"] == ids["left"]
    assert nodes(body) == [(0, "left"), (1, "join"), (2, "report")]
    alone = api.get(f"/api/v1/runs/{ids['report']}/impact/").json()
    assert nodes(alone) == [(0, "report")] and alone["edges"] == []


def test_pages_follow_the_cursor_through_every_run_once(api):
    diamond(api)
    seen, outputs = [], []
    url, params = "/api/v1/impact/", {"output_id": "raw.csv", "limit": 2}
    while url:
        response = api.get(url, params)
        assert response.status_code == 200, response.content
        body = response.json()
        assert len(body["nodes"]) <= 2
        seen += nodes(body)
        outputs.append(body["outputs"])
        url, params = body["next"], None
    assert seen == [(1, "etl"), (2, "left"), (2, "right"), (3, "join"), (4, "report")]
    # The whole impact's outputs are counted once, on the first page.
    assert outputs == [{"DATA": 3, "MODEL": 1, "ENDPOINT": 1, "UNKNOWN": 0}, None, None]


@pytest.mark.parametrize("cursor", ["x", "1", "1.x", "1.99999999999999999999", "-1.2"])
def test_a_bad_cursor_is_a_400(api, cursor):
    log_run(api, "etl", inputs=["raw.csv"])
    response = api.get("/api/v1/impact/", {"output_id": "raw.csv", "cursor": cursor})
    assert response.status_code == 400 and "cursor" in response.json()


def first_page_queries(api, output_id: str) -> int:
    # A request first, so the token is in its 10 s cache for the one counted (seeding 10,000
    # runs between two counts can take longer than that, and the token's query would count).
    assert api.get("/api/v1/impact/", {"output_id": output_id, "limit": 1}).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert api.get("/api/v1/impact/", {"output_id": output_id, "limit": 50}).status_code == 200
    return len(queries)


def test_the_first_page_costs_the_same_queries_whatever_the_fan_out_and_the_depth(api):
    log_run(api, "train", inputs=["small.csv"], outputs=["small_model.pkl"])
    for i in range(3):
        log_run(api, "infer", inputs=["small_model.pkl"], outputs=[f"s_{i}"])
    small = first_page_queries(api, "small.csv")

    log_run(api, "train", inputs=["big.csv"], outputs=["big_model.pkl"])
    for n in range(10):  # 10,000 inference runs read the model
        runs = [
            run_request_body(
                "infer", inputs=["big_model.pkl"], outputs=[f"p_{n}_{i}"], start=moment(10_000 + n * 1000 + i)
            )
            for i in range(1000)
        ]
        assert api.post("/api/v1/runs/batch/?sync=true", {"runs": runs}, format="json").status_code == 201
    previous = "deep_0"
    for i in range(30):  # a chain 30 runs deep
        log_run(api, "step", inputs=[previous], outputs=[f"deep_{i + 1}"])
        previous = f"deep_{i + 1}"

    fan_out = impact(api, "big.csv", limit=50)
    assert len(fan_out["nodes"]) == 50 and fan_out["next"]
    assert fan_out["outputs"]["UNKNOWN"] + fan_out["outputs"]["MODEL"] + fan_out["outputs"]["DATA"] > 10_000
    assert first_page_queries(api, "big.csv") == small
    assert first_page_queries(api, "deep_0") == small
    assert len(impact(api, "deep_0", limit=1000)["nodes"]) == 30


def test_flag_downstream_flags_every_output_downstream_and_review_ranks_the_runs(api):
    ids = diamond(api)

    response = api.post("/api/v1/flag/", {"output_id": "clean.csv", "downstream": True}, format="json")

    assert response.status_code == 200
    # clean.csv, and left.pq, model.pkl, joined.csv, pred_1 downstream of it.
    assert response.json() == {"output_id": "clean.csv", "flag": True, "pointers": 5}
    review = api.get("/api/v1/review/").json()
    assert review["flagged"] == ["clean.csv", "joined.csv", "left.pq", "model.pkl", "pred_1"]
    assert review["runs"][0]["run"]["id"] == ids["etl"]  # behind all five
    raw = api.get("/api/v1/trace/", {"output_id": "raw.csv"})
    assert raw.status_code == 404  # raw.csv, upstream, was not flagged nor produced
    assert (
        api.post("/api/v1/flag/", {"output_id": "nope", "downstream": True}, format="json").status_code == 404
    )
