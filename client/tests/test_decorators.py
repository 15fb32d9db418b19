"""What the decorators take from a call beyond mltrace's ported tests: lists, endpoints,
auto_log, load and save, the component write, and runs that mltrace 0.17 refused."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

import mltrace
from mltrace import Component, ComponentRun, register
from mltrace.db import PointerTypeEnum
from mltrace.entities.components import PreprocessingComponent


def names_and_types(pointers):
    return [(p["name"], p["pointer_type"]) for p in pointers]


def test_a_list_gives_a_pointer_per_element_each_with_its_own_type():
    @register("split", input_vars=["source"], output_vars=["parts"])
    def split(source):
        parts = ["train_data.csv", "weights.h5", "notes"]  # noqa: F841

    split("raw.txt")

    (run,) = mltrace.get_history("split")
    assert names_and_types(run.inputs) == [("raw.txt", PointerTypeEnum.DATA)]
    assert names_and_types(run.outputs) == [
        ("train_data.csv", PointerTypeEnum.DATA),
        ("weights.h5", PointerTypeEnum.MODEL),
        ("notes", PointerTypeEnum.UNKNOWN),
    ]


def test_endpoint_outputs_and_declared_inputs_and_outputs():
    @register("infer", inputs=["model.pkl"], output_vars=["ids"], endpoint=True)
    def infer():
        ids = ["p1", "p2"]  # noqa: F841

    @register("report", inputs=["p1"], outputs=["summary.pdf"])
    def report():
        pass

    infer()
    report()

    (run,) = mltrace.get_history("infer")
    assert names_and_types(run.inputs) == [("model.pkl", PointerTypeEnum.MODEL)]
    assert names_and_types(run.outputs) == [
        ("p1", PointerTypeEnum.ENDPOINT),
        ("p2", PointerTypeEnum.ENDPOINT),
    ]
    (summary,) = mltrace.get_history("report")
    assert names_and_types(summary.outputs) == [("summary.pdf", PointerTypeEnum.DATA)]
    assert summary.dependencies == ["infer"]


def test_a_variable_holding_none_is_skipped():
    @register("etl", input_vars=["source"], output_vars=["destination"])
    def etl():
        source = None  # noqa: F841
        destination = "out.csv"  # noqa: F841

    etl()

    (run,) = mltrace.get_history("etl")
    assert run.inputs == [] and [p["name"] for p in run.outputs] == ["out.csv"]


def test_load_and_save_in_a_decorated_call_are_its_inputs_and_outputs(tmp_path):
    weights = str(tmp_path / "weights.joblib")
    mltrace.save({"w": [1, 2]}, weights)

    def helper(model):
        return mltrace.save(model)  # called from a helper, still inside the decorated call

    @register("finetune")
    def finetune():
        model = mltrace.load(weights)
        model["w"].append(3)
        return helper(model)

    saved = finetune()

    (run,) = mltrace.get_history("finetune")
    assert [(p["name"], p["value"]) for p in run.inputs] == [(weights, "{'w': [1, 2]}")]
    assert [(p["name"], p["value"]) for p in run.outputs] == [(saved, "{'w': [1, 2, 3]}")]
    assert saved.startswith(str(tmp_path / "saved" / "finetune"))
    assert mltrace.load(saved) == {"w": [1, 2, 3]}


def test_auto_log_links_steps_by_the_values_they_pass():
    @register("featurize", auto_log=True)
    def featurize(raw):
        features_data = [x * 2 for x in raw]
        return features_data

    @register("fit", auto_log=True)
    def fit(features_data):
        model = sum(features_data)
        return model

    fit(featurize([1, 2, 3]))

    (made,) = mltrace.get_history("featurize")
    (fitted,) = mltrace.get_history("fit")
    (features,) = [p["name"] for p in made.outputs]
    assert features.endswith(".mlt")  # saved with joblib, as mltrace did
    assert mltrace.load(features) == [2, 4, 6]
    assert [p["name"] for p in fitted.inputs] == [features]
    assert fitted.dependencies == ["featurize"]


def test_a_run_reading_and_writing_the_same_name_is_logged():
    # mltrace 0.17 raised "circular dependency" for this.
    for minute in range(2):
        run = ComponentRun(
            "append",
            start_timestamp=datetime(2024, 1, 1, 0, minute),
            end_timestamp=datetime(2024, 1, 1, 0, minute),
        )
        run.add_input("log.txt")
        run.add_output("log.txt")
        mltrace.log_component_run(run)

    first, second = sorted(mltrace.get_history("append"), key=lambda r: r.id)
    assert first.dependencies == [] and second.dependencies == ["append"]


def test_the_component_write_is_sent_once_per_process_for_identical_fields(server):
    c = Component("train", "ml", "Trains", tags=["weekly"])

    @c.run
    def step():
        pass

    for _ in range(3):
        step()
    mltrace.flush()

    assert server.query("SELECT count(*) FROM runs_write WHERE kind = 'component'") == [(1,)]
    assert len(mltrace.get_history("train")) == 3
    info = mltrace.get_component_information("train")
    assert (info.owner, info.description, info.tags) == ("ml", "Trains", ["weekly"])


def test_skip_keys_cannot_be_arguments():
    c = Component("x", "me", "")

    @c.run
    def step(skip_before):
        pass

    with pytest.raises(
        ValueError, match="skip_before or skip_after cannot be in the arguments of the function step"
    ):
        step(1)


def test_preprocessing_component_runs_its_outliers_test():
    c = PreprocessingComponent(owner="data")

    @c.run(output_vars=["destination"])
    def preprocess():
        df = pd.DataFrame({"x": [1.0] * 50 + [1000.0]})  # noqa: F841
        destination = "features.csv"  # noqa: F841

    with pytest.raises(Exception, match="There are outlier values!"):
        preprocess()

    (run,) = mltrace.get_history("Preprocessing")
    assert (
        run.test_results["after"]["Outliers"]["testZscore"] == "failed: Exception: There are outlier values!"
    )


def test_a_function_with_non_ascii_source_is_logged_with_its_source():
    # mltrace 0.17 encoded the source as ASCII: UnicodeEncodeError, and nothing logged.
    @register("café", outputs=["données.csv"])
    def prépare():
        return "é"

    prépare()

    (run,) = mltrace.get_history("café")
    assert "def prépare():" in run.code_snapshot
    assert [p["name"] for p in run.outputs] == ["données.csv"]
