"""A diamond: etl -> features_a, features_b -> train -> 3 infer runs, then an uneven one.

Both feature runs read etl's output and train reads both feature files, so etl is upstream
of train twice. mltrace 0.17's backtrace walks every path and lists etl once per path; the
server lists each run once, at its shortest depth (a documented difference, see
test_mltrace017.py).

Then `audit` reads etl's output directly and `monitor` reads a prediction and audit's
report: etl is 4 hops from monitor through the prediction (monitor, infer, train, features,
etl) and 2 through audit, and the longer path comes first in a walk by ascending id. So the
server's "shortest depth" is not "first met in mltrace's walk". monitor's staleness threshold
is 0 s: each of its dependencies "was run 0 days ago".

Last, prediction_3 and alert_1 are flagged: the review counts each run once per flagged
output, however many paths lead to it (etl: 2).
"""

import observe

from mltrace import create_component, flag_output_id, register


@register("etl", input_vars=["raw"], output_vars=["clean"])
def etl(raw):
    clean = "clean_data.csv"
    return clean


@register("features_a", input_vars=["clean"], output_vars=["features"])
def features_a(clean):
    features = "features_a.csv"
    return features


@register("features_b", input_vars=["clean"], output_vars=["features"])
def features_b(clean):
    features = "features_b.csv"
    return features


@register("train", input_vars=["features"], output_vars=["model"])
def train(features):
    model = "model.pkl"
    return model


@register("infer", input_vars=["model"], output_vars=["prediction"], endpoint=True)
def infer(model, n):
    prediction = f"prediction_{n}"
    return prediction


@register("audit", input_vars=["clean"], output_vars=["report"])
def audit(clean):
    report = "audit_report.txt"
    return report


@register("monitor", input_vars=["inputs"], output_vars=["alert"], endpoint=True, staleness_threshold=0)
def monitor(inputs):
    alert = "alert_1"
    return alert


if __name__ == "__main__":
    create_component("etl", "Cleans the raw events", "ana", ["nightly", "data"])
    create_component("train", "Fits the model", "bo", ["weekly"])
    clean = etl("raw_events.parquet")
    features = [features_a(clean), features_b(clean)]
    model = train(features)
    predictions = [infer(model, n) for n in range(1, 4)]
    report = audit(clean)
    alert = monitor([predictions[0], report])
    flag_output_id(predictions[-1])
    flag_output_id(alert)

    observe.report(
        backtraces={
            "prediction_3": predictions[-1],
            "model": model,
            "features_b": features[1],
            "alert": alert,
        },
        review=observe.review(),
    )
