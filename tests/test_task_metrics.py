"""Metrics and series over a task's pairs agree with scikit-learn on the same pairs, exactly or
to 1e-9; an empty window and an undefined metric are a null value with its reason."""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import Any

import pytest
from sklearn import metrics as skm

from monitoring import metrics
from monitoring.metrics import (
    METRICS,
    NO_PAIRS,
    NOT_BINARY,
    NOT_BINARY_FEEDBACK,
    NOT_LABELS,
    ONE_CLASS,
    R2_ONE_PAIR,
    TOO_LARGE,
    TOO_MANY_LABELS,
)
from monitoring.selectors import Window, task_metric
from tests.factories import BASE_TIME, create_predictions

pytestmark = pytest.mark.django_db

# scikit-learn's function for each metric, y_true = feedback first, y_pred (or the score) second.
SKLEARN = {
    "accuracy": skm.accuracy_score,
    "precision": skm.precision_score,
    "recall": skm.recall_score,
    "f1": skm.f1_score,
    "roc_auc": skm.roc_auc_score,
    "mean_absolute_error": skm.mean_absolute_error,
    "mean_squared_error": skm.mean_squared_error,
    "median_absolute_error": skm.median_absolute_error,
    "r2": skm.r2_score,
    "explained_variance": skm.explained_variance_score,
    "mutual_info_score": skm.mutual_info_score,
}
BINARY = [*SKLEARN, "confusion_matrix"]
REGRESSION = [
    "mean_absolute_error",
    "mean_squared_error",
    "median_absolute_error",
    "r2",
    "explained_variance",
]
MULTICLASS = ["accuracy", "confusion_matrix", "mutual_info_score", *REGRESSION]


def metric(api, name: str, task: str = "t", **params: Any) -> dict[str, Any]:
    response = api.get(f"/api/v1/tasks/{task}/metrics/", {"metric": name, **params})
    assert response.status_code == 200, response.content
    return response.json()


def expected(name: str, rows: list[tuple[float, float]]) -> Any:
    """scikit-learn's answer on the pairs (output, feedback)."""
    y_pred = [output for output, _ in rows]
    y_true = [feedback for _, feedback in rows]
    if name == "confusion_matrix":
        return skm.confusion_matrix(y_true, y_pred).tolist()
    return SKLEARN[name](y_true, y_pred)


def assert_agrees(api, name: str, rows: list[tuple[float, float]], **params: Any) -> None:
    body = metric(api, name, **params)
    want = expected(name, rows)
    if name == "confusion_matrix":
        assert body["value"] == want
        assert body["labels"] == sorted({value for row in rows for value in row})
    else:
        assert body["value"] == pytest.approx(want, rel=1e-9, abs=1e-9), name
    assert body["pairs"] == len(rows)
    assert "reason" not in body


def binary_rows(seed: int, n: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [(float(rng.randint(0, 1)), float(rng.randint(0, 1))) for _ in range(n)]


@pytest.mark.parametrize(
    "name,seed,n",
    [
        *((name, seed, n) for name in BINARY for seed, n in [(2, 2), (3, 101), (4, 500)]),
        # One pair: roc_auc and r2 are undefined (test_undefined_metrics_are_null_with_a_reason).
        *((name, 1, 1) for name in BINARY if name not in ("roc_auc", "r2")),
    ],
)
def test_binary_metrics_agree_with_scikit_learn(api, name, seed, n):
    rows = binary_rows(seed, n)
    create_predictions("t", rows)

    assert_agrees(api, name, rows)


@pytest.mark.parametrize("name", REGRESSION)
@pytest.mark.parametrize("seed,n", [(5, 2), (6, 3), (7, 250), (8, 251)])
def test_regression_metrics_agree_with_scikit_learn(api, name, seed, n):
    rng = random.Random(seed)
    rows = [(rng.gauss(10, 5), rng.gauss(10, 5)) for _ in range(n)]
    create_predictions("t", rows)

    assert_agrees(api, name, rows)


@pytest.mark.parametrize("seed", [9, 10, 11])
def test_roc_auc_with_tied_scores_agrees_with_scikit_learn(api, seed):
    rng = random.Random(seed)
    # Scores of one decimal: many pairs share each score, across both classes.
    rows = [(round(rng.random(), 1), float(rng.randint(0, 1))) for _ in range(300)]
    create_predictions("t", rows)

    assert_agrees(api, "roc_auc", rows)


def test_roc_auc_of_a_perfect_and_of_a_constant_score(api):
    create_predictions("perfect", [(0.1, 0.0), (0.2, 0.0), (0.8, 1.0), (0.9, 1.0)])
    create_predictions("constant", [(0.5, 0.0), (0.5, 1.0), (0.5, 1.0)])

    assert metric(api, "roc_auc", "perfect")["value"] == 1.0
    assert metric(api, "roc_auc", "constant")["value"] == 0.5


@pytest.mark.parametrize("name", MULTICLASS)
@pytest.mark.parametrize("seed", [12, 13])
def test_multiclass_metrics_agree_with_scikit_learn(api, name, seed):
    rng = random.Random(seed)
    rows = [(float(rng.randint(0, 4)), float(rng.randint(1, 5))) for _ in range(400)]
    create_predictions("t", rows)

    assert_agrees(api, name, rows)


def test_the_confusion_matrix_has_the_sorted_union_of_labels_feedback_rows_output_columns(api):
    create_predictions("t", [(2.0, 0.0), (2.0, 0.0), (0.0, 1.0), (1.0, 1.0), (-1.0, 1.0)])

    body = metric(api, "confusion_matrix")

    assert body == {
        "task": "t",
        "metric": "confusion_matrix",
        "value": [[0, 0, 0, 0], [0, 0, 0, 2], [1, 1, 1, 0], [0, 0, 0, 0]],
        "labels": [-1.0, 0.0, 1.0, 2.0],
        "pairs": 5,
        "window": None,
    }


def test_mutual_information_of_continuous_values_agrees_with_scikit_learn(api):
    rng = random.Random(14)
    rows = [(round(rng.random(), 2), round(rng.random(), 1)) for _ in range(300)]
    create_predictions("t", rows)

    assert_agrees(api, "mutual_info_score", rows)


@pytest.mark.parametrize("name", ["r2", "explained_variance"])
@pytest.mark.parametrize(
    "rows",
    [
        [(3.0, 3.0), (3.0, 3.0), (3.0, 3.0)],  # constant feedback, perfect: 1.0
        [(3.0, 3.0), (4.0, 3.0), (3.0, 3.0)],  # constant feedback, not perfect: 0.0
        [(1.0, 2.0), (2.0, 3.0), (3.0, 4.0)],  # a constant residual: explained variance 1.0
    ],
)
def test_zero_variances_are_finite_as_in_scikit_learn(api, name, rows):
    create_predictions("t", rows)

    assert_agrees(api, name, rows)


@pytest.mark.parametrize(
    "name,rows,reason",
    [
        ("roc_auc", [(0.3, 1.0), (0.7, 1.0)], ONE_CLASS.format(label=1)),
        ("roc_auc", [(0.3, 0.0), (0.7, 0.0)], ONE_CLASS.format(label=0)),
        ("roc_auc", [(0.3, 0.0), (0.7, 2.0)], NOT_BINARY_FEEDBACK),
        ("precision", [(0.0, 1.0), (2.0, 1.0)], NOT_BINARY.format(metric="precision")),
        ("recall", [(0.0, 1.0), (1.0, 0.5)], NOT_BINARY.format(metric="recall")),
        ("f1", [(0.0, 3.0)], NOT_BINARY.format(metric="f1")),
        ("accuracy", [(0.5, 1.0), (1.0, 1.0)], NOT_LABELS.format(metric="accuracy")),
        ("r2", [(1.0, 2.0)], R2_ONE_PAIR),
    ],
)
def test_undefined_metrics_are_null_with_a_reason(api, name, rows, reason):
    create_predictions("t", rows)

    assert metric(api, name) == {
        "task": "t",
        "metric": name,
        "value": None,
        "pairs": len(rows),
        "reason": reason,
        "window": None,
    }


def test_values_whose_squares_overflow_leave_the_other_metrics_be(api):
    rows = [(1e200, 1e200), (0.0, 1.0), (-1e300, 0.0), (1.0, 1.0)]
    create_predictions("t", rows)
    series_rows = api.get(
        "/api/v1/tasks/t/series/?metric=mean_squared_error&bucket=day&start=2024-01-01&end=2024-01-02"
    )

    for name in [
        "mean_absolute_error",
        "mean_squared_error",
        "median_absolute_error",
        "r2",
        "explained_variance",
    ]:
        body = metric(api, name)
        assert (body["value"], body["pairs"], body["reason"]) == (None, 4, TOO_LARGE.format(metric=name))
    assert metric(api, "accuracy")["value"] == 0.5
    assert metric(api, "confusion_matrix")["value"] == [
        [0, 0, 0, 0],
        [1, 0, 0, 0],
        [0, 1, 1, 0],
        [0, 0, 0, 1],
    ]
    assert_agrees(api, "mutual_info_score", rows)
    create_predictions("scores", [(1e300, 1.0), (-1e300, 0.0), (0.5, 1.0)])
    assert metric(api, "roc_auc", "scores")["value"] == 1.0
    assert series_rows.json()["results"] == [
        {
            "start": "2024-01-01T00:00:00Z",
            "value": None,
            "pairs": 4,
            "reason": TOO_LARGE.format(metric="mean_squared_error"),
        }
    ]


def test_scikit_learn_refuses_what_is_null():
    # The null answers stand where scikit-learn raises or answers nan.
    assert math.isnan(skm.roc_auc_score([1.0, 1.0], [0.3, 0.7]))
    assert math.isnan(skm.r2_score([2.0], [1.0]))
    with pytest.raises(ValueError):
        skm.precision_score([1.0, 1.0], [0.0, 2.0])
    with pytest.raises(ValueError):
        skm.accuracy_score([1.0, 1.0], [0.5, 1.0])
    with pytest.raises(ValueError):
        skm.confusion_matrix([1.0, 1.0], [0.5, 1.0])


def test_the_confusion_matrix_of_non_labels_and_of_too_many_labels_is_null(api, monkeypatch):
    create_predictions("continuous", [(0.5, 1.0), (1.0, 1.0)])
    create_predictions("many", [(0.0, 1.0), (2.0, 3.0)])
    create_predictions("enough", [(0.0, 1.0), (2.0, 1.0)])
    monkeypatch.setattr(metrics, "MAX_METRIC_LABELS", 3)

    continuous = metric(api, "confusion_matrix", "continuous")
    many = metric(api, "confusion_matrix", "many")
    many_mi = metric(api, "mutual_info_score", "many")
    enough = metric(api, "confusion_matrix", "enough")

    assert (continuous["value"], continuous["labels"], continuous["reason"]) == (
        None,
        [],
        NOT_LABELS.format(metric="confusion_matrix"),
    )
    assert (many["value"], many["labels"], many["reason"]) == (
        None,
        [],
        TOO_MANY_LABELS.format(metric="confusion_matrix", max=3),
    )
    assert (many_mi["value"], many_mi["reason"]) == (
        None,
        TOO_MANY_LABELS.format(metric="mutual_info_score", max=3),
    )
    assert enough["value"] == [[0, 0, 0], [1, 0, 1], [0, 0, 0]]


@pytest.mark.parametrize("name", METRICS)
def test_an_empty_window_is_a_null_value_with_no_pairs(api, name):
    create_predictions("t", [(1.0, None), (None, 1.0)])  # an output and a feedback, no pair

    body = metric(api, name)

    assert body == {
        "task": "t",
        "metric": name,
        "value": None,
        "pairs": 0,
        "reason": NO_PAIRS,
        "window": None,
        **({"labels": []} if name == "confusion_matrix" else {}),
    }


@pytest.mark.parametrize("name", METRICS)
def test_an_empty_window_of_a_task_with_pairs(api, name):
    create_predictions("t", binary_rows(15, 10))

    body = metric(api, name, window_seconds=60)  # the pairs are from 2024

    assert (body["value"], body["pairs"], body["reason"], body["window"]) == (
        None,
        0,
        NO_PAIRS,
        {"seconds": 60},
    )


def test_only_pairs_count_outputs_never_answered_and_lone_feedback_do_not(api):
    pairs = binary_rows(16, 60)
    rows: list[tuple[float | None, float | None]] = []
    for index, pair in enumerate(pairs):
        rows.append(pair)
        rows.append((pair[0], None) if index % 2 else (None, pair[1]))
    create_predictions("t", rows)

    for name in BINARY:
        assert_agrees(api, name, pairs)


@pytest.mark.parametrize("n", [1, 7, 40])
def test_window_pairs_takes_the_n_latest_outputs(api, n):
    rows = binary_rows(17, 40)
    # Outputs logged in the reverse order of the rows: the latest are the first rows.
    create_predictions("t", rows, start=BASE_TIME + dt.timedelta(seconds=100), step=dt.timedelta(seconds=-1))

    for name in BINARY:
        if n == 1 and name in ("roc_auc", "r2"):
            continue
        assert_agrees(api, name, rows[:n], window_pairs=n)
    assert metric(api, "accuracy", window_pairs=n)["window"] == {"pairs": n}


def test_window_pairs_breaks_ties_of_output_time_by_id(api):
    rows = binary_rows(18, 30)
    create_predictions("t", rows, step=dt.timedelta(0))  # all at one time: the latest ids win

    assert_agrees(api, "f1", rows[-12:], window_pairs=12)
    assert_agrees(api, "confusion_matrix", rows[-12:], window_pairs=12)


def test_window_pairs_skips_outputs_without_feedback(api):
    create_predictions("t", [(1.0, 1.0), (0.0, 1.0), (1.0, None), (0.0, None)])

    assert_agrees(api, "accuracy", [(1.0, 1.0), (0.0, 1.0)], window_pairs=2)


def test_window_seconds_counts_from_now_with_its_first_second_included(api):
    now = BASE_TIME + dt.timedelta(hours=1)
    # Outputs at now - 12 s, now - 11 s, ..., now - 0 s (the last pair).
    rows = binary_rows(19, 13)
    create_predictions("t", rows, start=now - dt.timedelta(seconds=12))

    value = task_metric(task="t", metric="confusion_matrix", window=Window(seconds=10), now=now)

    assert (value.value, value.pairs) == (expected("confusion_matrix", rows[2:]), 11)


def test_window_seconds_of_the_api_reads_the_last_seconds(api):
    from django.utils import timezone

    recent = [(1.0, 1.0), (0.0, 1.0), (1.0, 0.0)]
    old = [(0.0, 0.0)] * 5
    now = timezone.now()
    create_predictions("t", old, start=now - dt.timedelta(days=2))
    create_predictions("t", recent, start=now - dt.timedelta(hours=1), prefix="recent-")

    for name in BINARY:
        assert_agrees(api, name, recent, window_seconds=3 * 3600)


def test_unknown_task_metric_and_bad_windows_are_refused(api):
    create_predictions("t", [(1.0, 1.0)])

    unknown_task = api.get("/api/v1/tasks/nope/metrics/?metric=accuracy")
    unknown_metric = api.get("/api/v1/tasks/t/metrics/?metric=auc")
    both = api.get("/api/v1/tasks/t/metrics/?metric=accuracy&window_seconds=1&window_pairs=1")
    too_many = api.get("/api/v1/tasks/t/metrics/?metric=accuracy&window_pairs=10000001")
    no_metric = api.get("/api/v1/tasks/t/metrics/")

    from api.serializers.task_reads import WINDOW_EXCLUSIVE

    supported = ", ".join(METRICS)
    assert (unknown_task.status_code, unknown_task.json()) == (404, {"detail": "Unknown task: nope."})
    assert (unknown_metric.status_code, unknown_metric.json()) == (
        400,
        {"metric": [f"Unknown metric: auc. Supported: {supported}."]},
    )
    assert (both.status_code, both.json()) == (400, {"window_pairs": [WINDOW_EXCLUSIVE]})
    assert (too_many.status_code, too_many.json()) == (
        400,
        {"window_pairs": ["Ensure this value is less than or equal to 10000000."]},
    )
    assert (no_metric.status_code, no_metric.json()) == (400, {"metric": ["This field is required."]})
    assert metric(api, "accuracy", window_pairs=10_000_000)["value"] == 1.0


# --- series -----------------------------------------------------------------------------------


def series(api, task: str = "t", **params: Any):
    return api.get(f"/api/v1/tasks/{task}/series/", params)


@pytest.mark.parametrize(
    "name", ["accuracy", "precision", "recall", "f1", *REGRESSION[:2], "r2", "explained_variance"]
)
def test_a_series_has_each_non_empty_bucket_as_scikit_learn_computes_it(api, name):
    rng = random.Random(20)
    hours = {0: 40, 1: 25, 3: 60}  # no pair in the hour from 02:00
    buckets = {}
    for hour, n in hours.items():
        rows = [(float(rng.randint(0, 1)), float(rng.randint(0, 1))) for _ in range(n)]
        start = BASE_TIME + dt.timedelta(hours=hour)
        create_predictions("t", rows, start=start, prefix=f"h{hour}-")
        buckets[start] = rows

    response = series(api, metric=name, bucket="hour", start="2024-01-01T00:00:00", end="2024-01-01T05:00:00")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["task"], body["metric"], body["bucket"]) == ("t", name, "hour")
    assert [(point["start"], point["pairs"]) for point in body["results"]] == [
        ("2024-01-01T00:00:00Z", 40),
        ("2024-01-01T01:00:00Z", 25),
        ("2024-01-01T03:00:00Z", 60),
    ]
    for point, rows in zip(body["results"], buckets.values(), strict=True):
        assert point["value"] == pytest.approx(expected(name, rows), rel=1e-9, abs=1e-9)


def test_a_series_reads_start_inclusive_end_exclusive_by_minute_and_day(api):
    rows = binary_rows(21, 180)  # a pair a second from 00:00:00, three minutes
    create_predictions("t", rows)

    minutes = series(
        api, metric="accuracy", bucket="minute", start="2024-01-01T00:00:30", end="2024-01-01T00:02:00"
    )
    days = series(api, metric="accuracy", bucket="day", start="2023-12-31", end="2024-01-03")

    assert [(p["start"], p["pairs"]) for p in minutes.json()["results"]] == [
        ("2024-01-01T00:00:00Z", 30),
        ("2024-01-01T00:01:00Z", 60),
    ]
    assert minutes.json()["results"][0]["value"] == pytest.approx(expected("accuracy", rows[30:60]))
    assert [(p["start"], p["pairs"]) for p in days.json()["results"]] == [("2024-01-01T00:00:00Z", 180)]


def test_a_bucket_where_the_metric_is_undefined_is_null_with_its_reason(api):
    create_predictions("t", [(1.0, 1.0), (0.0, 2.0)], step=dt.timedelta(hours=1))

    response = series(api, metric="precision", bucket="hour", start="2024-01-01", end="2024-01-02")

    assert response.json()["results"] == [
        {"start": "2024-01-01T00:00:00Z", "value": 1.0, "pairs": 1},
        {
            "start": "2024-01-01T01:00:00Z",
            "value": None,
            "pairs": 1,
            "reason": NOT_BINARY.format(metric="precision"),
        },
    ]


def test_a_series_refuses_other_metrics_too_many_buckets_and_an_empty_range(api):
    from api.serializers.task_reads import END_NOT_AFTER_START, NOT_A_SERIES_METRIC, TOO_MANY_BUCKETS

    create_predictions("t", [(1.0, 1.0)])
    day = {"start": "2024-01-01", "end": "2024-01-02"}

    roc = series(api, metric="roc_auc", bucket="hour", **day)
    minutes = series(api, metric="accuracy", bucket="minute", **day)
    exactly = series(
        api, metric="accuracy", bucket="minute", start="2024-01-01T00:00:30", end="2024-01-01T16:40:00"
    )
    over = series(
        api, metric="accuracy", bucket="minute", start="2024-01-01T00:00:30", end="2024-01-01T16:40:01"
    )
    backwards = series(api, metric="accuracy", bucket="hour", start="2024-01-02", end="2024-01-01")
    unknown = series(api, task="nope", metric="accuracy", bucket="hour", **day)

    assert (roc.status_code, roc.json()) == (400, {"metric": [NOT_A_SERIES_METRIC.format(metric="roc_auc")]})
    assert (minutes.status_code, minutes.json()) == (
        400,
        {"bucket": [TOO_MANY_BUCKETS.format(count=1440, bucket="minute", max=1000)]},
    )
    assert exactly.status_code == 200  # 00:00 to 16:39: 1,000 minute buckets
    assert (over.status_code, over.json()) == (
        400,
        {"bucket": [TOO_MANY_BUCKETS.format(count=1001, bucket="minute", max=1000)]},
    )
    assert (backwards.status_code, backwards.json()) == (400, {"end": [END_NOT_AFTER_START]})
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "Unknown task: nope."})


def test_the_metrics_agree_with_scikit_learn_on_sqlite_too(tmp_path):
    """The embedded default (DATABASE_URL unset) runs the same SQL: a share of this module's
    tests, run again on SQLite."""
    from tests.live import pytest_on_sqlite

    chosen = (
        "((agree and (101 or 251 or tied)) or confusion_matrix_has or series or window_pairs"
        " or an_empty_window_is) and not sqlite"
    )
    result = pytest_on_sqlite(__file__, chosen, tmp_path)

    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
