"""Metrics of a task's pairs, computed by the database over a window in bounded memory.

y_true is the feedback and y_pred the output, with scikit-learn's definitions and defaults.
Each metric is one or a few SQL aggregates over the window's pairs: what comes back to
Python is a row of sums and counts, the median's one or two middle values, one row per
distinct score (roc_auc), or one row per nonzero cell of the contingency table
(confusion_matrix, mutual_info_score, at most MAX_METRIC_LABELS values). No list of pairs is
ever loaded. The SQL is plain enough for PostgreSQL and SQLite alike (CTEs, a window
function, LIMIT/OFFSET).

A metric scikit-learn would refuse on the window (a one-class roc_auc, binary precision over
other labels, ...) is a value of None with a reason, as is an empty window.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from django.db import connection
from django.db.models import QuerySet

METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "mean_absolute_error",
    "mean_squared_error",
    "median_absolute_error",
    "r2",
    "explained_variance",
    "confusion_matrix",
    "mutual_info_score",
)
# The metrics made of sums and counts alone, so one GROUP BY computes them per bucket.
SERIES_METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "mean_absolute_error",
    "mean_squared_error",
    "r2",
    "explained_variance",
)
# At most this many distinct values (feedback and outputs together) for confusion_matrix and
# mutual_info_score: their answer and the contingency table grow with its square.
MAX_METRIC_LABELS = 1000
# The largest |value| the metrics that subtract or square values take: (2e100)² times any
# count of pairs a database can hold is still a finite double.
LARGEST_VALUE = "1e100"
ARITHMETIC = (
    "mean_absolute_error",
    "mean_squared_error",
    "median_absolute_error",
    "r2",
    "explained_variance",
)

NO_PAIRS = "no pairs in the window"
NOT_BINARY = "{metric} is binary (pos_label 1): every output and feedback must be 0 or 1, and the window holds other values."
NOT_BINARY_FEEDBACK = (
    "roc_auc needs feedback of 0 or 1 (the output is the score), and the window holds other feedback."
)
ONE_CLASS = "roc_auc needs both classes in the feedback, and the window's feedback is all {label}."
NOT_LABELS = "{metric} compares class labels (whole numbers), and the window holds other values."
TOO_MANY_LABELS = (
    "{metric} takes at most {max:,} distinct values (outputs and feedback together); the window holds more."
)
TOO_LARGE = "{metric} is computed over values within ±1e100 (so that its sums of squares stay finite), and the window holds larger ones."
NOT_FINITE = "{metric} overflows a double on these values."
R2_ONE_PAIR = "r2 is not defined on a single pair (scikit-learn: less than two samples)."


@dataclass(frozen=True)
class MetricValue:
    """A metric over some pairs: its value, or None and the reason; labels for a matrix."""

    value: float | list[list[int]] | None
    pairs: int
    reason: str | None = None
    labels: list[float] | None = None


@dataclass(frozen=True)
class Sums:
    """The window's sums and counts that the aggregate metrics are made of (those one metric
    reads when computed for it, the others zero)."""

    n: int
    equal: int
    abs_error: float
    squared_error: float
    feedback_deviation: float  # sum of (feedback - mean feedback)^2
    residual_deviation: float  # sum of (residual - mean residual)^2, residual = feedback - output
    feedback_constant: bool
    residual_constant: bool
    tp: int
    fp: int
    fn: int
    not_binary: int
    feedback_not_binary: int
    not_whole: int
    too_large: int  # pairs with a value beyond ±LARGEST_VALUE


def _inner(pairs: QuerySet[Any]) -> tuple[str, tuple[Any, ...]]:
    """The SQL and parameters of a queryset of pairs' values (output, feedback[, bucket])."""
    sql, params = pairs.query.sql_with_params()
    return sql, tuple(params)


def _number(value: Any) -> float:
    """A database sum as a float (PostgreSQL sums integers as numeric); None (no rows) is 0."""
    return 0.0 if value is None else float(value)


# Arithmetic reads only the pairs whose values are within ±LARGEST_VALUE ("fits"): their
# squares and sums stay finite (PostgreSQL raises on an overflow, SQLite gives infinity).
_FITS = f"CASE WHEN ABS(output) <= {LARGEST_VALUE} AND ABS(feedback) <= {LARGEST_VALUE} THEN 1 ELSE 0 END"
# The columns of Sums, in _sums_of's order: (name, aggregate over the pairs p and the means m).
_COLUMNS = (
    ("n", "COUNT(*)"),
    ("equal", "SUM(CASE WHEN p.output = p.feedback THEN 1 ELSE 0 END)"),
    ("abs_error", "SUM(CASE WHEN p.fits = 1 THEN ABS(p.feedback - p.output) END)"),
    ("squared", "SUM(CASE WHEN p.fits = 1 THEN (p.feedback - p.output) * (p.feedback - p.output) END)"),
    ("dev_f", "SUM(CASE WHEN p.fits = 1 THEN (p.feedback - m.mean_f) * (p.feedback - m.mean_f) END)"),
    (
        "dev_d",
        "SUM(CASE WHEN p.fits = 1 THEN (p.feedback - p.output - m.mean_d) * (p.feedback - p.output - m.mean_d) END)",
    ),
    ("min_f", "MIN(p.feedback)"),
    ("max_f", "MAX(p.feedback)"),
    ("min_d", "MIN(CASE WHEN p.fits = 1 THEN p.feedback - p.output END)"),
    ("max_d", "MAX(CASE WHEN p.fits = 1 THEN p.feedback - p.output END)"),
    ("tp", "SUM(CASE WHEN p.output = 1 AND p.feedback = 1 THEN 1 ELSE 0 END)"),
    ("fp", "SUM(CASE WHEN p.output = 1 AND p.feedback = 0 THEN 1 ELSE 0 END)"),
    ("fn", "SUM(CASE WHEN p.output = 0 AND p.feedback = 1 THEN 1 ELSE 0 END)"),
    ("nb", "SUM(CASE WHEN p.output IN (0, 1) AND p.feedback IN (0, 1) THEN 0 ELSE 1 END)"),
    ("fnb", "SUM(CASE WHEN p.feedback IN (0, 1) THEN 0 ELSE 1 END)"),
    ("nw", "SUM(CASE WHEN p.output = ROUND(p.output) AND p.feedback = ROUND(p.feedback) THEN 0 ELSE 1 END)"),
    ("large", "SUM(1 - p.fits)"),
)
# The columns each metric reads (from_sums and metric_compute); the others are not computed.
# Only the deviations (r2, explained_variance) need the means, so a second pass.
_NEEDS: dict[str, frozenset[str]] = {
    "accuracy": frozenset({"equal", "nw"}),
    "precision": frozenset({"tp", "fp", "fn", "nb"}),
    "recall": frozenset({"tp", "fp", "fn", "nb"}),
    "f1": frozenset({"tp", "fp", "fn", "nb"}),
    "roc_auc": frozenset({"fnb"}),
    "mean_absolute_error": frozenset({"abs_error", "large"}),
    "mean_squared_error": frozenset({"squared", "large"}),
    "median_absolute_error": frozenset({"large"}),
    "r2": frozenset({"squared", "dev_f", "min_f", "max_f", "large"}),
    "explained_variance": frozenset({"dev_f", "dev_d", "min_f", "max_f", "min_d", "max_d", "large"}),
    "confusion_matrix": frozenset({"nw"}),
    "mutual_info_score": frozenset(),
}
_MEANS = frozenset({"dev_f", "dev_d"})

# One pass: the CTEs are each read once, so PostgreSQL inlines them into one scan.
_ONE_PASS = """
WITH r AS ({inner}),
p AS (SELECT r.*, {fits} AS fits FROM r)
SELECT {key}{columns}
FROM p
{group}
"""
# Two passes, for the deviations from the means: the window is read for the means, then again
# for the sums (PostgreSQL materializes it).
_TWO_PASS = """
WITH r AS ({inner}),
p AS (SELECT r.*, {fits} AS fits FROM r),
m AS (
    SELECT {m_key}
        AVG(CASE WHEN fits = 1 THEN feedback END) AS mean_f,
        AVG(CASE WHEN fits = 1 THEN feedback - output END) AS mean_d
    FROM p {m_group}
)
SELECT {key}{columns}
FROM p {join}
{group}
"""

# Every sum in two passes, with the placeholders of the query as it was before the one-pass
# form (bench/monitoring.py builds its EXPLAIN from it): what grouped_sums runs for the admin.
_SUMS = (
    _TWO_PASS.replace("{fits}", _FITS)
    .replace("{key}", "{p_key}")
    .replace("{group}", "{p_group}")
    .replace("{columns}", ", ".join(sql for _, sql in _COLUMNS))
)


def _sums_sql(inner: str, metric: str | None, *, grouped: bool) -> str:
    """The query of the sums `metric` reads (every column when None, the others NULL), in one
    pass unless they include deviations from the means; per bucket when `grouped`."""
    every = frozenset(name for name, _ in _COLUMNS)
    needs = every if metric is None else _NEEDS.get(metric, every)
    columns = ", ".join(sql if name == "n" or name in needs else "NULL" for name, sql in _COLUMNS)
    key = "p.bucket, " if grouped else ""
    group = "GROUP BY p.bucket ORDER BY p.bucket" if grouped else ""
    if not needs & _MEANS:
        return _ONE_PASS.format(inner=inner, fits=_FITS, key=key, columns=columns, group=group)
    return _TWO_PASS.format(
        inner=inner,
        fits=_FITS,
        m_key="bucket," if grouped else "",
        m_group="GROUP BY bucket" if grouped else "",
        key=key,
        columns=columns,
        join="JOIN m ON m.bucket = p.bucket" if grouped else "CROSS JOIN m",
        group=group,
    )


def _sums_of(row: tuple[Any, ...]) -> Sums:
    (
        n,
        equal,
        abs_error,
        squared,
        dev_f,
        dev_d,
        min_f,
        max_f,
        min_d,
        max_d,
        tp,
        fp,
        fn,
        nb,
        fnb,
        nw,
        large,
    ) = row
    return Sums(
        n=int(n),
        equal=int(equal or 0),
        abs_error=_number(abs_error),
        squared_error=_number(squared),
        feedback_deviation=_number(dev_f),
        residual_deviation=_number(dev_d),
        # Exactly constant, whatever the rounding of the mean: scikit-learn's zero variance.
        feedback_constant=min_f == max_f,
        residual_constant=min_d == max_d,
        tp=int(tp or 0),
        fp=int(fp or 0),
        fn=int(fn or 0),
        not_binary=int(nb or 0),
        feedback_not_binary=int(fnb or 0),
        not_whole=int(nw or 0),
        too_large=int(large or 0),
    )


def window_sums(pairs: QuerySet[Any], metric: str | None = None) -> Sums:
    """The sums and counts of the pairs (output, feedback): those `metric` reads (the others
    zero), every one when None; one pass over the pairs, two for r2 and explained_variance."""
    inner, params = _inner(pairs)
    with connection.cursor() as cursor:
        cursor.execute(_sums_sql(inner, metric, grouped=False), params)
        return _sums_of(cursor.fetchone())


def bucket_sums(pairs: QuerySet[Any], metric: str | None = None) -> list[tuple[Any, Sums]]:
    """(bucket, sums) for each non-empty bucket of the pairs (output, feedback, bucket), in
    bucket order: the sums `metric` reads, every one when None."""
    inner, params = _inner(pairs)
    return grouped_sums(inner, params, metric)


def grouped_sums(inner: str, params: tuple[Any, ...], metric: str | None = None) -> list[tuple[Any, Sums]]:
    """(bucket, sums) for each bucket of the rows (output, feedback, bucket) that the SQL
    `inner` selects, in bucket order: one query, however many buckets. The sums are those
    `metric` reads (the others zero; one GROUP BY pass unless they need the means), every one
    when None."""
    with connection.cursor() as cursor:
        cursor.execute(_sums_sql(inner, metric, grouped=True), params)
        return [(row[0], _sums_of(row[1:])) for row in cursor.fetchall()]


def _fraction_explained(numerator: float, denominator: float, *, num_zero: bool, den_zero: bool) -> float:
    """1 - numerator/denominator with scikit-learn's force_finite: a zero denominator gives
    1.0 for a zero numerator, else 0.0."""
    if den_zero:
        return 1.0 if num_zero else 0.0
    if num_zero:
        return 1.0
    return 1.0 - numerator / denominator


def _ratio(numerator: int, denominator: int) -> float:
    """numerator / denominator, 0.0 for 0/0 (scikit-learn's zero_division default)."""
    return numerator / denominator if denominator else 0.0


def from_sums(metric: str, sums: Sums) -> MetricValue:
    """One of SERIES_METRICS from the sums, or None with the reason it is undefined."""
    n = sums.n
    if n == 0:
        return MetricValue(None, 0, NO_PAIRS)
    if metric in ARITHMETIC and sums.too_large:
        return MetricValue(None, n, TOO_LARGE.format(metric=metric))
    if metric in ("precision", "recall", "f1") and sums.not_binary:
        return MetricValue(None, n, NOT_BINARY.format(metric=metric))
    if metric == "accuracy":
        if sums.not_whole:
            return MetricValue(None, n, NOT_LABELS.format(metric=metric))
        return MetricValue(sums.equal / n, n)
    if metric == "precision":
        return MetricValue(_ratio(sums.tp, sums.tp + sums.fp), n)
    if metric == "recall":
        return MetricValue(_ratio(sums.tp, sums.tp + sums.fn), n)
    if metric == "f1":
        return MetricValue(_ratio(2 * sums.tp, 2 * sums.tp + sums.fp + sums.fn), n)
    if metric == "mean_absolute_error":
        return MetricValue(sums.abs_error / n, n)
    if metric == "mean_squared_error":
        return MetricValue(sums.squared_error / n, n)
    if metric == "r2":
        if n < 2:
            return MetricValue(None, n, R2_ONE_PAIR)
        value = _fraction_explained(
            sums.squared_error,
            sums.feedback_deviation,
            num_zero=sums.squared_error == 0,
            den_zero=sums.feedback_constant,
        )
        # A residual of 1e100 over feedback spread by 1e-200: a ratio beyond a double.
        return (
            MetricValue(value, n)
            if math.isfinite(value)
            else MetricValue(None, n, NOT_FINITE.format(metric=metric))
        )
    if metric == "explained_variance":
        value = _fraction_explained(
            sums.residual_deviation,
            sums.feedback_deviation,
            num_zero=sums.residual_constant,
            den_zero=sums.feedback_constant,
        )
        # A residual of 1e100 over feedback spread by 1e-200: a ratio beyond a double.
        return (
            MetricValue(value, n)
            if math.isfinite(value)
            else MetricValue(None, n, NOT_FINITE.format(metric=metric))
        )
    raise ValueError(metric)


_MEDIAN = "WITH p AS ({inner}) SELECT ABS(feedback - output) AS e FROM p ORDER BY e LIMIT %s OFFSET %s"

# Mann-Whitney U with average ranks for ties: one row per distinct score, its pairs and its
# positives; a running count of pairs gives each score's last rank. Twice the sum of the
# positives' ranks stays an integer, (2 * last - n + 1) per positive.
_RANK_SUM = """
WITH p AS ({inner}),
s AS (
    SELECT output AS score, COUNT(*) AS n, SUM(CASE WHEN feedback = 1 THEN 1 ELSE 0 END) AS pos
    FROM p GROUP BY output
),
r AS (
    SELECT n, pos, SUM(n) OVER (ORDER BY score ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS last
    FROM s
)
SELECT SUM(pos * (2 * last - n + 1)), SUM(pos) FROM r
"""

_LABEL_COUNT = """
WITH p AS ({inner})
SELECT COUNT(*) FROM (
    SELECT v FROM (SELECT feedback AS v FROM p UNION SELECT output AS v FROM p) u LIMIT %s
) c
"""

_CONTINGENCY = "WITH p AS ({inner}) SELECT feedback, output, COUNT(*) FROM p GROUP BY feedback, output"


def _median_absolute_error(inner: str, params: tuple[Any, ...], n: int) -> float:
    """The median of |feedback - output|: the middle value, or the mean of the two middle."""
    with connection.cursor() as cursor:
        cursor.execute(_MEDIAN.format(inner=inner), (*params, 2 - n % 2, (n - 1) // 2))
        middle = [float(row[0]) for row in cursor.fetchall()]
    return sum(middle) / len(middle)


def _roc_auc(inner: str, params: tuple[Any, ...], n: int) -> MetricValue:
    """The area under the ROC curve of the output as the score of feedback 1."""
    with connection.cursor() as cursor:
        cursor.execute(_RANK_SUM.format(inner=inner), params)
        twice_rank_sum, positives = cursor.fetchone()
    positives, negatives = int(positives), n - int(positives)
    if positives == 0 or negatives == 0:
        return MetricValue(None, n, ONE_CLASS.format(label=1 if positives else 0))
    u_twice = int(twice_rank_sum) - positives * (positives + 1)
    return MetricValue(float(Fraction(u_twice, 2 * positives * negatives)), n)


def _contingency(
    metric: str, inner: str, params: tuple[Any, ...], n: int
) -> MetricValue | dict[tuple[float, float], int]:
    """{(feedback, output): count} for the window, or None with a reason when it holds more
    than MAX_METRIC_LABELS distinct values."""
    with connection.cursor() as cursor:
        cursor.execute(_LABEL_COUNT.format(inner=inner), (*params, MAX_METRIC_LABELS + 1))
        (labels,) = cursor.fetchone()
        if labels > MAX_METRIC_LABELS:
            return MetricValue(None, n, TOO_MANY_LABELS.format(metric=metric, max=MAX_METRIC_LABELS))
        cursor.execute(_CONTINGENCY.format(inner=inner), params)
        return {(float(f), float(o)): int(count) for f, o, count in cursor.fetchall()}


def mutual_info(cells: dict[tuple[float, float], int]) -> float:
    """Mutual information (natural log) of a contingency table, as scikit-learn's
    mutual_info_score computes it from its nonzero cells."""
    rows: dict[float, int] = {}
    columns: dict[float, int] = {}
    for (f, o), count in cells.items():
        rows[f] = rows.get(f, 0) + count
        columns[o] = columns.get(o, 0) + count
    if len(rows) == 1 or len(columns) == 1:
        return 0.0
    total = sum(cells.values())
    log_total = math.log(total)
    terms = []
    for (f, o), count in cells.items():
        share = count / total
        log_outer = -math.log(rows[f] * columns[o]) + log_total + log_total
        term = share * (math.log(count) - log_total) + share * log_outer
        terms.append(0.0 if abs(term) < 2.220446049250313e-16 else term)
    return max(math.fsum(terms), 0.0)


def metric_compute(pairs: QuerySet[Any], metric: str) -> MetricValue:
    """The metric over the pairs, a queryset of values (output, feedback)."""
    sums = window_sums(pairs, metric)
    n = sums.n
    if n == 0:
        return MetricValue(None, 0, NO_PAIRS, labels=[] if metric == "confusion_matrix" else None)
    if metric in SERIES_METRICS:
        return from_sums(metric, sums)
    inner, params = _inner(pairs)
    if metric == "median_absolute_error":
        if sums.too_large:
            return MetricValue(None, n, TOO_LARGE.format(metric=metric))
        return MetricValue(_median_absolute_error(inner, params, n), n)
    if metric == "roc_auc":
        if sums.feedback_not_binary:
            return MetricValue(None, n, NOT_BINARY_FEEDBACK)
        return _roc_auc(inner, params, n)
    if metric == "confusion_matrix" and sums.not_whole:
        return MetricValue(None, n, NOT_LABELS.format(metric=metric), labels=[])
    cells = _contingency(metric, inner, params, n)
    if isinstance(cells, MetricValue):
        return cells if metric != "confusion_matrix" else MetricValue(None, n, cells.reason, labels=[])
    if metric == "mutual_info_score":
        return MetricValue(mutual_info(cells), n)
    labels = sorted({value for cell in cells for value in cell})
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for (f, o), count in cells.items():
        matrix[index[f]][index[o]] = count
    return MetricValue(matrix, n, labels=labels)


def bucket_start(value: Any) -> dt.datetime:
    """A bucket's start as the database returns it (SQLite: text), as an aware UTC datetime."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
