"""Every read of mltrace's API, and the writes whose answers mltrace returned (flags, notes,
tags), against the live server."""

from __future__ import annotations

import subprocess
import warnings
from datetime import datetime, timedelta

import pytest

import mltrace
from mltrace import ComponentRun, IOPointer
from mltrace.db import PointerTypeEnum

T0 = datetime(2024, 1, 1)


def log(component, start_minutes, inputs=(), outputs=(), dependencies=(), **kwargs):
    run = ComponentRun(component, **kwargs)
    run.set_start_timestamp(T0 + timedelta(minutes=start_minutes))
    run.set_end_timestamp(T0 + timedelta(minutes=start_minutes + 1))
    run.add_inputs(list(inputs))
    run.add_outputs(list(outputs))
    if dependencies:
        run.set_upstream(list(dependencies))
    mltrace.log_component_run(run)


def pipeline():
    """etl (2) -> train (3) -> infer (4, 5): ids as the server gives them, from 2 on."""
    mltrace.create_component("etl", "Cleans", "ana", ["nightly", "data"])
    log("etl", 0, ["raw.csv"], ["clean_data.csv"])
    log("train", 10, ["clean_data.csv"], ["model.pkl"])
    log("infer", 20, ["model.pkl"], [IOPointer("pred_1", pointer_type=PointerTypeEnum.ENDPOINT)])
    log("infer", 30, ["model.pkl"], [IOPointer("pred_2", pointer_type=PointerTypeEnum.ENDPOINT)])


def test_history_is_newest_first_with_mltrace_shapes():
    pipeline()

    runs = mltrace.get_history("infer")

    assert [run.id for run in runs] == [5, 4]
    run = runs[0]
    assert isinstance(run, ComponentRun)
    assert run.component_name == "infer"
    assert run.start_timestamp == T0 + timedelta(minutes=30)
    assert run.end_timestamp == T0 + timedelta(minutes=31)
    assert run.inputs == [
        {"name": "model.pkl", "value": "", "pointer_type": PointerTypeEnum.MODEL, "flag": False}
    ]
    assert run.outputs == [
        {"name": "pred_2", "value": "", "pointer_type": PointerTypeEnum.ENDPOINT, "flag": False}
    ]
    assert run.dependencies == ["train"]
    assert run.stale == []
    assert run.git_hash is None and run.git_tags is None and run.code_snapshot is None


def test_history_limit_and_inclusive_bounds_as_datetimes_or_strings():
    for minute in range(5):
        log("etl", minute * 10, outputs=[f"out_{minute}.csv"])

    assert [r.start_timestamp.minute for r in mltrace.get_history("etl", limit=2)] == [40, 30]
    bounded = mltrace.get_history(
        "etl", date_lower=T0 + timedelta(minutes=10), date_upper=T0 + timedelta(minutes=30)
    )
    assert [r.start_timestamp.minute for r in bounded] == [30, 20, 10]
    as_strings = mltrace.get_history(
        "etl", date_lower="2024-01-01T00:10:00", date_upper="2024-01-01 00:30:00"
    )
    assert [r.id for r in as_strings] == [r.id for r in bounded]
    assert [r.id for r in mltrace.get_history("etl", limit=None)] == [5, 4, 3, 2, 1]
    assert mltrace.get_history("nobody") == []


def test_history_without_a_limit_reads_every_page():
    run = ComponentRun("many", start_timestamp=T0, end_timestamp=T0)
    for _ in range(1203):
        mltrace.log_component_run(run)

    assert len(mltrace.get_history("many", limit=None)) == 1203


def test_component_information_and_not_found():
    pipeline()

    component = mltrace.get_component_information("etl")

    assert (component.name, component.description, component.owner) == ("etl", "Cleans", "ana")
    assert component.tags == ["data", "nightly"]
    with pytest.raises(RuntimeError, match="^Component with name nobody not found.$"):
        mltrace.get_component_information("nobody")


def test_component_run_information_and_not_found():
    pipeline()

    run = mltrace.get_component_run_information(3)

    assert (run.id, run.component_name, run.dependencies) == (3, "train", ["etl"])
    assert run.inputs[0]["name"] == "clean_data.csv"
    assert run.inputs[0]["pointer_type"] is PointerTypeEnum.DATA
    with pytest.raises(RuntimeError, match="^Component run with id 999 not found.$"):
        mltrace.get_component_run_information(999)
    with pytest.raises(RuntimeError, match="^Component run with id nope not found.$"):
        mltrace.get_component_run_information("nope")


def test_get_components_by_tag_and_owner():
    mltrace.create_component("etl", "", "ana", ["nightly"])
    mltrace.create_component("train", "", "ana", ["weekly"])
    mltrace.create_component("serve", "", "bo", ["nightly"])

    assert sorted(c.name for c in mltrace.get_components()) == ["etl", "serve", "train"]
    assert sorted(c.name for c in mltrace.get_components(tag="nightly")) == ["etl", "serve"]
    assert [c.name for c in mltrace.get_components(owner="ana", tag="nightly")] == ["etl"]
    with pytest.raises(RuntimeError, match="^Search yielded no components.$"):
        mltrace.get_components(owner="nobody")


def test_recent_run_ids_page_past_a_run():
    pipeline()

    assert mltrace.get_recent_run_ids() == [5, 4, 3, 2]
    assert mltrace.get_recent_run_ids(limit=2) == [5, 4]
    assert mltrace.get_recent_run_ids(limit=2, last_run_id=4) == [3, 2]


def test_tags_and_tag_component():
    mltrace.create_component("etl", "", "", ["b"])

    mltrace.tag_component("etl", ["a", "c"])

    assert mltrace.get_component_information("etl").tags == ["a", "b", "c"]
    assert mltrace.get_all_tags() == ["a", "b", "c"]
    with pytest.raises(RuntimeError, match='^Component with name "nobody" not found.$'):
        mltrace.tag_component("nobody", ["a"])


def test_notes_are_replaced_and_returned():
    pipeline()

    assert mltrace.add_notes_to_component_run(3, "trained on January") == "trained on January"
    assert mltrace.get_component_run_information(3).notes == "trained on January"
    with pytest.raises(RuntimeError, match='^ComponentRun with ID "999" not found.$'):
        mltrace.add_notes_to_component_run(999, "x")
    with pytest.raises(TypeError, match="notes field must be of type str"):
        mltrace.add_notes_to_component_run(3, 5)


def test_flag_and_unflag_an_output():
    pipeline()

    assert mltrace.flag_output_id("pred_1") is True
    assert mltrace.get_component_run_information(4).outputs[0]["flag"] is True
    assert mltrace.unflag_output_id("pred_1") is False
    assert mltrace.get_component_run_information(4).outputs[0]["flag"] is False
    with pytest.raises(RuntimeError, match="^IOPointer with name nothing does not exist.$"):
        mltrace.flag_output_id("nothing")
    with pytest.raises(RuntimeError, match="^IOPointer with name nothing does not exist.$"):
        mltrace.unflag_output_id("nothing")


def test_a_string_output_can_be_flagged():
    # mltrace 0.17 gave a string pointer a value, then looked for an empty one: RuntimeError.
    run = ComponentRun("infer", start_timestamp=T0, end_timestamp=T0)
    run.add_output("prediction_7")
    mltrace.log_component_run(run)

    assert mltrace.flag_output_id("prediction_7") is True


def test_backtrace_depth_first_each_run_once():
    # A diamond: model.pkl <- train <- (features_a <- etl, features_b <- etl).
    log("etl", 0, outputs=["clean.csv"])
    log("features_a", 1, ["clean.csv"], ["a.csv"])
    log("features_b", 2, ["clean.csv"], ["b.csv"])
    log("train", 3, ["a.csv", "b.csv"], ["model.pkl"])

    trace = mltrace.backtrace("model.pkl")

    assert [(depth, run.component_name, run.id) for depth, run in trace] == [
        (0, "train", 4),
        (1, "features_a", 2),
        (2, "etl", 1),
        (1, "features_b", 3),
    ]
    train = trace[0][1]
    assert [type(p) for p in train.inputs] == [IOPointer, IOPointer]
    assert [(p.name, p.pointer_type) for p in train.inputs] == [
        ("a.csv", PointerTypeEnum.DATA),
        ("b.csv", PointerTypeEnum.DATA),
    ]
    assert train.dependencies == ["features_a", "features_b"]
    with pytest.raises(RuntimeError, match="^ID nothing does not exist.$"):
        mltrace.backtrace("nothing")
    with pytest.raises(RuntimeError, match="^Please specify an output id of string type.$"):
        mltrace.backtrace(5)


def test_web_trace_is_mltraces_tree():
    pipeline()

    tree = mltrace.web_trace("pred_1")

    assert tree == [
        {
            "id": "componentrun_4",
            "label": "infer",
            "hasCaret": True,
            "isExpanded": True,
            "stale": [],
            "childNodes": [
                {
                    "id": "iopointer_pred_1",
                    "label": "pred_1",
                    "hasCaret": False,
                    "parent": "componentrun_4",
                    "icon": "flow-end",
                },
                {
                    "id": "componentrun_3",
                    "label": "train",
                    "hasCaret": True,
                    "isExpanded": True,
                    "stale": [],
                    "childNodes": [
                        {
                            "id": "iopointer_model.pkl",
                            "label": "model.pkl",
                            "hasCaret": False,
                            "parent": "componentrun_3",
                            "icon": "function",
                        },
                        {
                            "id": "componentrun_2",
                            "label": "etl",
                            "hasCaret": True,
                            "isExpanded": True,
                            "stale": [],
                            "childNodes": [
                                {
                                    "id": "iopointer_clean_data.csv",
                                    "label": "clean_data.csv",
                                    "hasCaret": False,
                                    "parent": "componentrun_2",
                                    "icon": "database",
                                }
                            ],
                        },
                    ],
                },
            ],
        }
    ]
    with pytest.raises(RuntimeError, match="^ID nothing does not exist.$"):
        mltrace.web_trace("nothing")


def test_review_ranks_the_runs_behind_flagged_outputs():
    pipeline()
    mltrace.flag_output_id("pred_1")
    mltrace.flag_output_id("pred_2")

    flagged, ranked = mltrace.review_flagged_outputs()

    assert flagged == ["pred_1", "pred_2"]
    assert [(run.component_name, run.id, count) for run, count in ranked] == [
        ("train", 3, 2),
        ("etl", 2, 2),
        ("infer", 5, 1),
        ("infer", 4, 1),
    ]
    assert isinstance(ranked[0][0].outputs[0], IOPointer)
    mltrace.unflag_all()
    assert mltrace.review_flagged_outputs() == ([], [])


def test_a_flagged_name_no_run_output_adds_no_runs():
    # mltrace 0.17 raised here; the server lists the name and ranks nothing behind it.
    log("etl", 0, ["raw.csv"], ["clean.csv"])
    mltrace.flag_output_id("raw.csv")

    assert mltrace.review_flagged_outputs() == (["raw.csv"], [])


def test_io_pointers_and_random_ids():
    pointer = mltrace.get_io_pointer("weights.h5", [1, 2])
    assert (pointer.name, pointer.value, pointer.pointer_type) == (
        "weights.h5",
        "[1, 2]",
        PointerTypeEnum.MODEL,
    )
    ids = mltrace.create_random_ids(3)
    assert len(set(ids)) == 3 and all(len(i) == 36 for i in ids)
    with pytest.raises(mltrace.NotSupported, match="create=False"):
        mltrace.get_io_pointer("weights.h5", create=False)


def test_what_mltrace_017_lacks_or_a_server_cannot_do_says_so():
    with pytest.raises(NotImplementedError, match="clean_db"):
        mltrace.clean_db()
    with pytest.raises(NotImplementedError, match="not its labels"):
        mltrace.get_labels()
    from mltrace import get_tags

    with pytest.raises(mltrace.NotSupported):
        get_tags()
    with pytest.raises(AttributeError):
        mltrace.not_a_function  # noqa: B018


def test_set_db_uri_warns_once_and_changes_nothing(server):
    from mltrace import client

    client._warned_db_uri = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mltrace.set_db_uri("postgresql://admin:admin@localhost:5432/sqlalchemy")
        mltrace.set_db_uri("test")
    assert len(caught) == 1
    assert "talks to the mltrace server" in str(caught[0].message)
    assert mltrace.get_db_uri() == "test"
    assert mltrace.get_server() == server.url
    log("etl", 0, outputs=["x.csv"])
    assert len(mltrace.get_history("etl")) == 1


def test_set_address_is_the_servers_host(server):
    mltrace.set_address("localhost")
    assert mltrace.get_server() == f"http://localhost:{server.port}"
    log("etl", 0, outputs=["x.csv"])
    assert len(mltrace.get_history("etl")) == 1
    mltrace.set_server(server.url)
    assert mltrace.get_server() == server.url


def test_git_hash_and_tags_of_the_working_directory(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "one"], check=True)
    subprocess.run([*git, "tag", "v1"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    monkeypatch.chdir(repo)

    assert mltrace.get_git_hash() == head
    assert mltrace.get_git_tags() == ["v1"]

    @mltrace.register("tagged", outputs=["out.csv"])
    def step():
        return 1

    step()
    (run,) = mltrace.get_history("tagged")
    assert (run.git_hash, run.git_tags) == (head, ["v1"])

    monkeypatch.chdir(tmp_path)
    assert mltrace.get_git_hash() is None and mltrace.get_git_tags() is None


def test_test_results_with_a_nul_character_are_refused_at_the_call():
    run = ComponentRun("etl", start_timestamp=T0, end_timestamp=T0, test_results={"note": "a\x00b"})

    with pytest.raises(ValueError, match="NUL"):
        mltrace.log_component_run(run)
    assert mltrace.get_history("etl") == []


def test_impact_lists_every_run_downstream_nearest_first():
    # A diamond: clean.csv -> (features_a, features_b) -> train -> infer.
    log("etl", 0, ["raw.csv"], ["clean.csv"])
    log("features_a", 1, ["clean.csv"], ["a.csv"])
    log("features_b", 2, ["clean.csv"], ["b.csv"])
    log("train", 3, ["a.csv", "b.csv"], ["model.pkl"])
    log("infer", 4, ["model.pkl"], [IOPointer("pred_1", pointer_type=PointerTypeEnum.ENDPOINT)])

    found = mltrace.impact("clean.csv")

    assert [(depth, run.component_name, run.id) for depth, run in found] == [
        (1, "features_a", 2),
        (1, "features_b", 3),
        (2, "train", 4),
        (3, "infer", 5),
    ]
    assert isinstance(found[0][1], ComponentRun) and found[2][1].dependencies == ["features_a", "features_b"]
    assert [(d, r.component_name) for d, r in mltrace.impact("clean.csv", depth=1)] == [
        (1, "features_a"),
        (1, "features_b"),
    ]
    assert [r.component_name for _, r in mltrace.impact("raw.csv")] == [
        "etl",
        "features_a",
        "features_b",
        "train",
        "infer",
    ]
    with pytest.raises(RuntimeError, match="ID nope does not exist."):
        mltrace.impact("nope")
