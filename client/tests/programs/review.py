"""Flagged predictions and review_flagged_outputs(): which runs they share, ranked.

etl -> train v1 -> 3 infer runs; train v2 (same data) -> 3 infer runs; prediction_2 is then
produced a second time, from model v2, so that its trace starts at that newer run.
Flagged: prediction_1 and prediction_2, prediction_5 (twice), and model v1 itself;
prediction_6 is flagged, then unflagged. The review ranks runs by how many flagged outputs'
traces hold them (etl: all 4), then newest (highest id) first; after unflag_all() it is
empty.
"""

import observe

from mltrace import create_component, flag_output_id, register, unflag_all, unflag_output_id


@register("etl", input_vars=["raw"], output_vars=["data"])
def etl(raw):
    data = "clean_data.csv"
    return data


@register("train", input_vars=["data"], output_vars=["model"])
def train(data, version):
    model = f"model_v{version}.pkl"
    return model


@register("infer", input_vars=["model"], output_vars=["prediction"], endpoint=True)
def infer(model, n):
    prediction = f"prediction_{n}"
    return prediction


if __name__ == "__main__":
    create_component("etl", "", "")
    data = etl("raw.csv")
    model_v1 = train(data, 1)
    predictions = [infer(model_v1, n) for n in range(1, 4)]
    model_v2 = train(data, 2)
    predictions += [infer(model_v2, n) for n in range(4, 7)]
    infer(model_v2, 2)  # prediction_2 again: its latest producer reads model v2

    flag_output_id("prediction_1")
    flag_output_id("prediction_2")
    flag_output_id("prediction_5")
    flag_output_id("prediction_5")  # twice: still one flagged output
    flag_output_id(model_v1)
    flag_output_id("prediction_6")
    unflag_output_id("prediction_6")
    flagged = observe.review()
    unflag_all()
    after_unflag_all = observe.review()

    observe.report(
        backtraces={"prediction_5": "prediction_5", "prediction_2": "prediction_2", "model_v1": model_v1},
        review=flagged,
        review_after_unflag_all=after_unflag_all,
    )
