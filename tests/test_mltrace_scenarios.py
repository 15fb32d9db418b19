"""The scenarios of mltrace's own tests (tests/test_store.py, tests/test_client.py), as API tests.

Run ids here are acceptance ids; each test starts on an empty database, but ids keep counting
across tests, so the tests map mltrace's 1-based ids onto the ids the server gave.
"""

from __future__ import annotations

import pytest

from tests.factories import create_component, log_run

pytestmark = pytest.mark.django_db


def set_up_computation(api) -> list[int]:
    """mltrace's _set_up_computation: runs 1 and 2 both output iop_1; 3 reads it; 4 reads iop_3."""
    for i in range(1, 5):
        create_component(api, f"test_component_{i}", description="test_description", owner="shreya")
    cr1 = log_run(api, "test_component_1", outputs=["iop_1"])
    cr2 = log_run(api, "test_component_2", outputs=["iop_1"])
    cr3 = log_run(api, "test_component_3", inputs=["iop_1"], outputs=["iop_2", "iop_3"])
    cr4 = log_run(api, "test_component_4", inputs=["iop_3"], outputs=["iop_4"])
    return [cr1["id"], cr2["id"], cr3["id"], cr4["id"]]


def test_trace_of_the_four_run_dag_is_4_3_2(api):
    ids = set_up_computation(api)

    response = api.get("/api/v1/trace/", {"output_id": "iop_4"})

    assert response.status_code == 200
    body = response.json()
    assert body["output_id"] == "iop_4"
    assert body["root"] == ids[3]
    # mltrace: [(0, 4), (1, 3), (2, 2)]
    assert [(n["depth"], n["run"]["id"]) for n in body["nodes"]] == [(0, ids[3]), (1, ids[2]), (2, ids[1])]
    assert body["edges"] == [[ids[3], ids[2]], [ids[2], ids[1]]]
    assert body["nodes"][0]["run"]["component"] == "test_component_4"


def test_web_trace_of_the_four_run_dag_matches_mltrace(api):
    ids = set_up_computation(api)
    cr2, cr3, cr4 = (f"componentrun_{i}" for i in ids[1:])

    response = api.get("/api/v1/trace/", {"output_id": "iop_4", "format": "tree"})

    assert response.status_code == 200
    assert response.json() == [
        {
            "id": cr4,
            "label": "test_component_4",
            "hasCaret": True,
            "isExpanded": True,
            "stale": [],
            "childNodes": [
                {"id": "iopointer_iop_4", "label": "iop_4", "hasCaret": False, "parent": cr4},
                {
                    "id": cr3,
                    "label": "test_component_3",
                    "hasCaret": True,
                    "isExpanded": True,
                    "stale": [],
                    "childNodes": [
                        {"id": "iopointer_iop_2", "label": "iop_2", "hasCaret": False, "parent": cr3},
                        {"id": "iopointer_iop_3", "label": "iop_3", "hasCaret": False, "parent": cr3},
                        {
                            "id": cr2,
                            "label": "test_component_2",
                            "hasCaret": True,
                            "isExpanded": True,
                            "stale": [],
                            "childNodes": [
                                {"id": "iopointer_iop_1", "label": "iop_1", "hasCaret": False, "parent": cr2}
                            ],
                        },
                    ],
                },
            ],
        }
    ]


def test_trace_of_an_unknown_output_is_404(api):
    for params in (
        {"output_id": "some_weird_pointer"},
        {"output_id": "some_weird_pointer", "format": "tree"},
    ):
        response = api.get("/api/v1/trace/", params)
        assert response.status_code == 404
        assert "some_weird_pointer" in response.json()["detail"]


def test_review_ranks_the_shared_upstream_run_first(api):
    """mltrace testBasicFlaggedOutputs: expected [(1, 2), (3, 1), (2, 1)]."""
    a1 = log_run(api, "test_component_A", outputs=["iop_1", "iop_2"])["id"]
    b1 = log_run(api, "test_component_B", inputs=["iop_1"], outputs=["iop_3"])["id"]
    b2 = log_run(api, "test_component_B", inputs=["iop_2"], outputs=["iop_4"])["id"]
    for name in ("iop_3", "iop_4"):
        assert api.post("/api/v1/flag/", {"output_id": name}, format="json").status_code == 200

    response = api.get("/api/v1/review/")

    assert response.status_code == 200
    body = response.json()
    assert body["flagged"] == ["iop_3", "iop_4"]
    assert [(r["run"]["id"], r["count"]) for r in body["runs"]] == [(a1, 2), (b2, 1), (b1, 1)]


def test_review_of_many_flagged_outputs_sorts_ties_by_id_descending(api):
    """mltrace testManyFlaggedOutputs."""
    a1 = log_run(api, "test_component_A", outputs=["iop_1", "iop_2"])["id"]
    b1 = log_run(api, "test_component_B", inputs=["iop_1"], outputs=["iop_3"])["id"]
    c = [
        log_run(api, "test_component_C", inputs=["iop_2", "iop_3"], outputs=[f"iop_{i}"])["id"]
        for i in range(4, 8)
    ]
    for i in range(4, 8):
        api.post("/api/v1/flag/", {"output_id": f"iop_{i}"}, format="json")

    body = api.get("/api/v1/review/").json()

    assert [(r["run"]["component"], r["run"]["id"], r["count"]) for r in body["runs"]] == [
        ("test_component_B", b1, 4),
        ("test_component_A", a1, 4),
        ("test_component_C", c[3], 1),
        ("test_component_C", c[2], 1),
        ("test_component_C", c[1], 1),
        ("test_component_C", c[0], 1),
    ]


def test_dependencies_are_the_latest_producer_of_each_input(api):
    """mltrace testSetDependenciesFromInputs: two producers of out, two of another_out."""
    create_component(api, "test_component", description="test_description", owner="shreya")
    out_runs = [log_run(api, "test_component", inputs=["inp"], outputs=["out"])["id"] for _ in range(2)]
    other_runs = [
        log_run(api, "test_component", inputs=["inp"], outputs=["another_out"])["id"] for _ in range(2)
    ]

    run = log_run(api, "test_component", inputs=["out", "another_out"])

    assert run["dependencies"] == [out_runs[1], other_runs[1]]
    history = api.get("/api/v1/components/test_component/history/", {"limit": 100}).json()["results"]
    assert [r["id"] for r in history] == [run["id"], *reversed(other_runs), *reversed(out_runs)]


def test_a_complete_run_is_in_the_history(api):
    """mltrace testCompleteComponentRun."""
    create_component(api, "test_component", description="test_description", owner="shreya")
    run = log_run(api, "test_component", inputs=["inp"], outputs=["out"])

    history = api.get("/api/v1/components/test_component/history/").json()["results"]

    assert [r["id"] for r in history] == [run["id"]]
    assert history[0] == api.get(f"/api/v1/runs/{run['id']}/").json()


def test_a_run_without_timestamps_is_refused(api):
    """mltrace testLogEmptyComponentRun / testIncompleteComponentRun."""
    response = api.post("/api/v1/runs/?sync=true", {"component": "test_component"}, format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"start_timestamp", "end_timestamp"}
    assert api.get("/api/v1/runs/").json()["results"] == []


def test_duplicate_inputs_and_outputs_are_logged_once(api):
    """mltrace testLogBasicComponentRun."""
    run = log_run(
        api,
        "test_component",
        inputs=["duplicate_input", "duplicate_input"],
        outputs=["duplicate_output", "duplicate_output"],
        code_snapshot="def main(): return",
    )

    assert [p["name"] for p in run["inputs"]] == ["duplicate_input"]
    assert [p["name"] for p in run["outputs"]] == ["duplicate_output"]
    assert run["code_snapshot"] == "def main(): return"


def test_pointers_with_values_are_distinct_by_value(api):
    """mltrace testLogKVComponentRun: pointers are (name, value)."""
    first = log_run(
        api, "valtest", inputs=[{"name": "iop1", "value": "first"}], outputs=[{"name": "iop2", "value": "a"}]
    )
    second = log_run(api, "valtest", inputs=[{"name": "iop1", "value": "second"}])

    assert first["inputs"] == [{"name": "iop1", "value": "first", "pointer_type": "UNKNOWN", "flag": False}]
    assert second["inputs"][0]["value"] == "second"


def test_tags_are_added_once(api):
    """mltrace testTags and testDuplicateTags."""
    create_component(api, "test_component", description="test_description", owner="shreya")

    response = api.post(
        "/api/v1/components/test_component/tags/", {"tags": ["tag1", "tag1", "tag2"]}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["tags"] == ["tag1", "tag2"]
    assert api.get("/api/v1/tags/").json()["results"] == ["tag1", "tag2"]


def test_components_are_found_by_owner(api):
    """mltrace testComponent."""
    create_component(api, "test_component", description="test_description", owner="shreya")
    create_component(api, "other", owner="someone")

    response = api.get("/api/v1/components/", {"owner": "shreya"})

    assert [c["name"] for c in response.json()["results"]] == ["test_component"]
