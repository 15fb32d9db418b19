"""Trace, web trace, flag and review beyond mltrace's own scenarios; query counts at scale."""

from __future__ import annotations

import datetime as dt
import json
import sys

import pytest

from api.serializers.runs import UNFLAG_TWO_TARGETS
from components.models import Component
from runs.models import IOPointer, Run, RunDependency, RunOutput, pointer_key, pointer_name_hash
from tests.factories import log_run, moment

pytestmark = pytest.mark.django_db


def trace(api, output_id, **params):
    response = api.get("/api/v1/trace/", {"output_id": output_id, **params})
    assert response.status_code == 200, response.content
    return response.json()


def diamond(api) -> dict[str, int]:
    """root reads a.csv and x.csv; a reads x.csv; x reads base.csv."""
    ids = {}
    ids["base"] = log_run(api, "base", outputs=["base.csv"])["id"]
    ids["x"] = log_run(api, "x", inputs=["base.csv"], outputs=["x.csv"])["id"]
    ids["a"] = log_run(api, "a", inputs=["x.csv"], outputs=["a.csv"])["id"]
    ids["root"] = log_run(api, "root", inputs=["a.csv", "x.csv"], outputs=["out"])["id"]
    return ids


def test_a_run_reached_twice_is_listed_once_at_its_shortest_depth(api):
    ids = diamond(api)

    body = trace(api, "out")

    # x is one hop from root (root reads x.csv) though a also reaches it in two.
    assert [(n["depth"], n["run"]["component"]) for n in body["nodes"]] == [
        (0, "root"),
        (1, "x"),
        (2, "base"),
        (1, "a"),
    ]
    assert body["edges"] == [
        [ids["root"], ids["x"]],
        [ids["root"], ids["a"]],
        [ids["x"], ids["base"]],
        [ids["a"], ids["x"]],
    ]


def test_depth_bounds_the_hops(api):
    ids = diamond(api)

    assert [n["run"]["id"] for n in trace(api, "out", depth=0)["nodes"]] == [ids["root"]]
    one = trace(api, "out", depth=1)
    assert [n["run"]["id"] for n in one["nodes"]] == [ids["root"], ids["x"], ids["a"]]
    assert [ids["x"], ids["base"]] not in one["edges"]
    assert len(trace(api, "out", depth=2)["nodes"]) == 4


def test_a_bounded_trace_keeps_every_edge_between_its_runs(api):
    ids = diamond(api)

    one = trace(api, "out", depth=1)

    # a and x are both one hop from root; a's edge to x lies inside the trace.
    assert one["edges"] == [[ids["root"], ids["x"]], [ids["root"], ids["a"]], [ids["a"], ids["x"]]]


@pytest.mark.parametrize("depth", [None, 0, 1, 2])
def test_trace_nodes_carry_the_same_run_bodies_as_the_runs_endpoint(api, depth):
    diamond(api)
    params = {} if depth is None else {"depth": depth}

    for node in trace(api, "out", **params)["nodes"]:
        assert node["run"] == api.get(f"/api/v1/runs/{node['run']['id']}/").json()


def test_a_bounded_tree_holds_the_runs_of_the_bounded_trace(api):
    """root -> [a, b]; a -> y -> x; b -> x; x -> z. x is 2 hops away through b, 3 through a."""
    z = log_run(api, "z", outputs=["z.csv"])["id"]
    x = log_run(api, "x", inputs=["z.csv"], outputs=["x.csv"])["id"]
    log_run(api, "y", inputs=["x.csv"], outputs=["y.csv"])
    log_run(api, "a", inputs=["y.csv"], outputs=["a.csv"])
    log_run(api, "b", inputs=["x.csv"], outputs=["b.csv"])
    log_run(api, "root", inputs=["a.csv", "b.csv"], outputs=["out"])

    (tree,) = trace(api, "out", format="tree", depth=3)

    runs, stack = set(), [tree]
    while stack:
        node = stack.pop()
        if node["id"].startswith("componentrun_"):
            runs.add(int(node["id"].removeprefix("componentrun_")))
        stack.extend(node.get("childNodes", []))
    assert runs == {n["run"]["id"] for n in trace(api, "out", depth=3)["nodes"]}
    assert z in runs and x in runs


def test_the_trace_starts_at_the_latest_producer_by_start_timestamp(api):
    later_start = log_run(api, "etl", start=moment(100), outputs=["clean.csv"])
    log_run(api, "etl", start=moment(50), outputs=["clean.csv"])

    assert trace(api, "clean.csv")["root"] == later_start["id"]


def test_the_tree_repeats_a_run_met_again_as_a_leaf(api):
    ids = diamond(api)

    (tree,) = trace(api, "out", format="tree")

    out_node, x_node, a_node = tree["childNodes"]
    assert out_node["id"] == "iopointer_out"
    # x, root's first dependency, is expanded where depth-first order meets it first ...
    assert x_node["id"] == f"componentrun_{ids['x']}"
    assert x_node["childNodes"][-1]["id"] == f"componentrun_{ids['base']}"
    # ... and a's own edge to x ends in a leaf.
    assert a_node["id"] == f"componentrun_{ids['a']}"
    a_x = a_node["childNodes"][-1]
    assert a_x["id"] == f"componentrun_{ids['x']}"
    assert a_x["childNodes"] == []


def test_tree_outputs_carry_mltraces_icons(api):
    log_run(
        api,
        "infer",
        outputs=["data_out", "model.pkl", {"name": "pred_1", "pointer_type": "ENDPOINT"}, "other"],
    )

    (tree,) = trace(api, "pred_1", format="tree")

    icons = {child["label"]: child.get("icon") for child in tree["childNodes"]}
    assert icons == {"data_out": "database", "model.pkl": "function", "pred_1": "flow-end", "other": None}
    assert [child["label"] for child in tree["childNodes"]] == ["data_out", "model.pkl", "other", "pred_1"]


def test_trace_parameters_are_validated(api):
    for params in (
        {},
        {"output_id": "x", "depth": -1},
        {"output_id": "x", "depth": "a"},
        {"output_id": "x", "format": "xml"},
    ):
        response = api.get("/api/v1/trace/", params)
        assert response.status_code == 400, params


def test_trace_nodes_show_staleness(api):
    etl = log_run(api, "etl", start=moment(0), outputs=["clean.csv"])
    log_run(api, "train", start=moment(40 * 24 * 3600), inputs=["clean.csv"], outputs=["m.pkl"])

    (tree,) = trace(api, "m.pkl", format="tree")

    assert tree["stale"] == [f"etl (ID {etl['id']}) was run 40 days ago."]


def test_flag_flags_every_pointer_of_the_name(api):
    log_run(api, "a", outputs=[{"name": "p", "value": "1"}, {"name": "p", "value": "2"}, "q"])

    response = api.post("/api/v1/flag/", {"output_id": "p"}, format="json")

    assert response.status_code == 200
    assert response.json() == {"output_id": "p", "flag": True, "pointers": 2}
    assert set(IOPointer.objects.filter(flag=True).values_list("name", "value")) == {("p", "1"), ("p", "2")}


def test_flagging_an_unknown_name_is_404_and_changes_nothing(api):
    log_run(api, "a", outputs=["q"])

    for url in ("/api/v1/flag/", "/api/v1/unflag/"):
        response = api.post(url, {"output_id": "nope"}, format="json")
        assert response.status_code == 404
        assert "nope" in response.json()["detail"]
    assert not IOPointer.objects.filter(flag=True).exists()


def test_unflag_one_name_or_all(api):
    log_run(api, "a", outputs=["p", "q", "r"])
    for name in ("p", "q", "r"):
        api.post("/api/v1/flag/", {"output_id": name}, format="json")

    one = api.post("/api/v1/unflag/", {"output_id": "p"}, format="json")
    rest = api.post("/api/v1/unflag/", {"all": True}, format="json")

    assert one.json() == {"output_id": "p", "flag": False, "pointers": 1}
    assert rest.json() == {"flag": False, "pointers": 2}
    assert api.get("/api/v1/review/").json() == {"flagged": [], "runs": []}


def test_unflag_needs_a_name_or_all(api):
    for body in ({}, {"all": False}, {"all": "yes"}, {"output_id": ""}):
        assert api.post("/api/v1/unflag/", body, format="json").status_code == 400


def test_unflag_of_a_name_and_all_at_once_is_400_and_unflags_nothing(api):
    log_run(api, "a", outputs=["p", "q"])
    api.post("/api/v1/flag/", {"output_id": "p"}, format="json")
    api.post("/api/v1/flag/", {"output_id": "q"}, format="json")

    response = api.post("/api/v1/unflag/", {"output_id": "p", "all": True}, format="json")

    assert response.status_code == 400
    assert response.json() == {"all": [UNFLAG_TWO_TARGETS]}
    assert IOPointer.objects.filter(flag=True).count() == 2


def test_review_traces_a_flagged_name_from_its_latest_producer_like_trace(api):
    old = log_run(api, "etl", start=moment(0), outputs=["a.csv"])["id"]
    api.post("/api/v1/flag/", {"output_id": "a.csv"}, format="json")
    base = log_run(api, "base", start=moment(5), outputs=["base.csv"])["id"]
    new = log_run(
        api, "etl", start=moment(10), inputs=["base.csv"], outputs=[{"name": "a.csv", "value": "v2"}]
    )

    review = api.get("/api/v1/review/").json()

    assert trace(api, "a.csv")["root"] == new["id"]
    assert review["flagged"] == ["a.csv"]
    assert [(r["run"]["id"], r["count"]) for r in review["runs"]] == [(new["id"], 1), (base, 1)]
    assert old not in [r["run"]["id"] for r in review["runs"]]


def test_a_flagged_input_that_no_run_output_is_listed_without_runs(api):
    log_run(api, "a", inputs=["raw"], outputs=["out"])
    api.post("/api/v1/flag/", {"output_id": "raw"}, format="json")

    assert api.get("/api/v1/review/").json() == {"flagged": ["raw"], "runs": []}


def test_flags_show_on_runs(api):
    run = log_run(api, "a", outputs=["p"])
    api.post("/api/v1/flag/", {"output_id": "p"}, format="json")

    assert api.get(f"/api/v1/runs/{run['id']}/").json()["outputs"][0]["flag"] is True


# --- scale: queries do not grow with depth ---------------------------------------------


def build_chain(length: int) -> list[int]:
    """A chain of runs, each reading the previous one's output, inserted in bulk."""
    component = Component.objects.create(name="step", created_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    names = [f"chain_{i}" for i in range(length)]
    pointers = IOPointer.objects.bulk_create(
        [IOPointer(name=n, name_hash=pointer_name_hash(n), key=pointer_key(n, "")) for n in names]
    )
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    ids = list(range(1, length + 1))
    Run.objects.bulk_create(
        [
            Run(
                id=i,
                component=component,
                start_timestamp=start + dt.timedelta(seconds=i),
                end_timestamp=start + dt.timedelta(seconds=i),
                created_at=start,
            )
            for i in ids
        ]
    )
    RunOutput.objects.bulk_create(
        [RunOutput(run_id=i, pointer=p) for i, p in zip(ids, pointers, strict=True)]
    )
    RunDependency.objects.bulk_create([RunDependency(run_id=i, depends_on_id=i - 1) for i in ids[1:]])
    return ids


def test_a_trace_over_a_1000_run_chain_takes_a_constant_number_of_queries(api, django_assert_max_num_queries):
    ids = build_chain(1000)

    with django_assert_max_num_queries(10):
        response = api.get("/api/v1/trace/", {"output_id": "chain_999"})

    nodes = response.json()["nodes"]
    assert [(n["depth"], n["run"]["id"]) for n in nodes] == [(d, ids[-1 - d]) for d in range(1000)]
    with django_assert_max_num_queries(10):
        response = api.get("/api/v1/trace/", {"output_id": "chain_999", "format": "tree"})
    # 1,000 runs nest 2,000 levels deep, past Python's default recursion limit.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        tree = json.loads(response.content)
    finally:
        sys.setrecursionlimit(limit)
    depth = 0
    node = tree[0]
    while node["childNodes"][-1]["id"].startswith("componentrun_"):
        node = node["childNodes"][-1]
        depth += 1
    assert depth == 999


def test_a_review_of_100_flagged_outputs_takes_a_constant_number_of_queries(
    api, django_assert_max_num_queries
):
    build_chain(300)
    flagged = [f"chain_{i}" for i in range(200, 300)]
    IOPointer.objects.filter(name__in=flagged).update(flag=True)

    with django_assert_max_num_queries(10):
        response = api.get("/api/v1/review/")

    body = response.json()
    assert body["flagged"] == sorted(flagged)
    # run i+1 (output chain_i) is in the trace of every flagged chain_j with j >= i.
    counts = {r["run"]["id"]: r["count"] for r in body["runs"]}
    assert counts[1] == 100
    assert counts[250] == 51
    assert counts[300] == 1
    assert [r["run"]["id"] for r in body["runs"][:3]] == [201, 200, 199]


@pytest.mark.parametrize("count", [0, 1, 5, 12])
def test_streamed_lists_join_their_chunks_into_one_json_list(count):
    from api.json_stream import json_items
    from common.lookups import chunked

    text = "[" + "".join(json_items(chunked(({"n": i} for i in range(count)), 5))) + "]"

    assert json.loads(text) == [{"n": i} for i in range(count)]


def test_flags_and_unflags_at_once_never_deadlock(live_db, django_user_model):
    """Six clients flag a name of 2,000 pointers and unflag it (by name or all) for 6 s: each
    answer is a 200, none a 503 from a deadlock between their row locks."""
    import threading
    import time

    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    IOPointer.objects.bulk_create(
        IOPointer(name="shared.csv", value=f"v{i}", name_hash=pointer_name_hash("shared.csv"), key=f"k{i}")
        for i in range(2000)
    )
    token = Token.objects.create(user=django_user_model.objects.create(username="flagger")).key
    statuses: list[int] = []
    deadline = time.monotonic() + 6

    def client(n: int) -> None:
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        bodies = [
            ("/api/v1/flag/", {"output_id": "shared.csv"}),
            ("/api/v1/unflag/", {"output_id": "shared.csv"}),
            ("/api/v1/unflag/", {"all": True}),
        ]
        i = n
        try:
            # Each kind of request at least once however slow the machine, then on till the deadline.
            while i < n + 3 or time.monotonic() < deadline:
                url, body = bodies[i % 3]
                statuses.append(api.post(url, body, format="json").status_code)
                i += 1
        finally:
            from django.db import connection

            connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(statuses) >= 18  # every client flagged, unflagged and unflagged all at least once
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
