"""Reads of monitoring: tasks, their outputs, feedback and pairs page by page, metrics and
series over a window of pairs. Each read by task name raises NotFound for an unknown task."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from django.db.models import F, FloatField, Q, QuerySet, Value
from django.db.models.functions import Abs, TruncDay, TruncHour, TruncMinute
from django.db.models.lookups import GreaterThan
from django.utils import timezone

from common.errors import TASK_NOT_FOUND, TOO_MANY_DISAGREEING, InvalidInput, NotFound
from monitoring.metrics import (
    MetricValue,
    Sums,
    bucket_start,
    bucket_sums,
    from_sums,
    grouped_sums,
    metric_compute,
)
from monitoring.models import Prediction, Task

Bucket = Literal["minute", "hour", "day"]
BUCKET_SIZES = {
    "minute": dt.timedelta(minutes=1),
    "hour": dt.timedelta(hours=1),
    "day": dt.timedelta(days=1),
}
_TRUNCATE = {"minute": TruncMinute, "hour": TruncHour, "day": TruncDay}
# A page's position: the (time, id) of the last row of the page before.
Keyset = tuple[dt.datetime, int]
# At most this many disagreeing pairs are flagged by one call (POST .../flag/); more is a 400.
MAX_FLAG_OUTPUTS = 10_000


@dataclass(frozen=True)
class Window:
    """Which pairs a read takes by output time: the last `seconds`, the last `pairs`, or all."""

    seconds: int | None = None
    pairs: int | None = None


@dataclass(frozen=True)
class SeriesPoint:
    """A bucket of a series: its start and the metric over its pairs."""

    start: dt.datetime
    metric: MetricValue


def task_get(*, name: str) -> Task:
    """The task named `name`; raises NotFound for an unknown one."""
    task = Task.objects.filter(name=name).first()
    if task is None:
        raise NotFound(TASK_NOT_FOUND.format(name=name))
    return task


def task_list() -> QuerySet[Task]:
    """Every task, by name."""
    return Task.objects.order_by("name")


def _newest_first(rows: QuerySet[Prediction], field: str, before: Keyset | None) -> QuerySet[Prediction]:
    """Rows newest `field` first (ties by id), after the keyset `before` when given."""
    if before is not None:
        at, row_id = before
        rows = rows.filter(Q(**{f"{field}__lt": at}) | Q(**{field: at, "id__lt": row_id}))
    return rows.order_by(f"-{field}", "-id")


def outputs_page(
    *, task: str, seconds: int | None, before: Keyset | None, limit: int, now: dt.datetime | None = None
) -> list[Prediction]:
    """Up to limit + 1 rows holding an output, newest output first (the extra one says there
    is more), of the last `seconds` by output time when given."""
    found = task_get(name=task)
    rows = Prediction.objects.filter(task=found, output__isnull=False)
    if seconds is not None:
        rows = rows.filter(output_at__gte=(now or timezone.now()) - dt.timedelta(seconds=seconds))
    return list(
        _newest_first(rows, "output_at", before).only("id", "identifier", "output", "output_at")[: limit + 1]
    )


def feedback_page(
    *, task: str, seconds: int | None, before: Keyset | None, limit: int, now: dt.datetime | None = None
) -> list[Prediction]:
    """Up to limit + 1 rows holding feedback, newest feedback first, of the last `seconds`
    by feedback time when given."""
    found = task_get(name=task)
    rows = Prediction.objects.filter(task=found, feedback__isnull=False)
    if seconds is not None:
        rows = rows.filter(feedback_at__gte=(now or timezone.now()) - dt.timedelta(seconds=seconds))
    return list(
        _newest_first(rows, "feedback_at", before).only("id", "identifier", "feedback", "feedback_at")[
            : limit + 1
        ]
    )


def _pairs_of(task: Task) -> QuerySet[Prediction]:
    """The task's rows holding both an output and its feedback."""
    return Prediction.objects.filter(task=task, output__isnull=False, feedback__isnull=False)


def window_pairs(*, task: Task, window: Window, now: dt.datetime | None = None) -> QuerySet[Prediction]:
    """The task's pairs in the window (by output time), unordered."""
    pairs = _pairs_of(task)
    if window.seconds is not None:
        return pairs.filter(output_at__gte=(now or timezone.now()) - dt.timedelta(seconds=window.seconds))
    if window.pairs is not None:
        latest = pairs.order_by("-output_at", "-id").values("id")[: window.pairs]
        return pairs.filter(id__in=latest)
    return pairs


@dataclass(frozen=True)
class Disagreement:
    """When a pair disagrees: `mismatch` (classification) output != feedback; else (regression)
    |feedback - output| > `threshold`."""

    mismatch: bool = False
    threshold: float | None = None


def _disagreeing(pairs: QuerySet[Prediction], disagreement: Disagreement) -> QuerySet[Prediction]:
    if disagreement.mismatch:
        return pairs.filter(~Q(output=F("feedback")))
    threshold = disagreement.threshold
    if threshold is None:
        raise ValueError("a disagreement is a mismatch or a threshold")
    # Halves: |f/2 - o/2| > t/2 is |f - o| > t (halving a double is exact), and f - o of two
    # finite doubles may overflow, which PostgreSQL raises as an error.
    half = Value(0.5, output_field=FloatField())
    distance = Abs(F("feedback") * half - F("output") * half)
    return pairs.filter(GreaterThan(distance, Value(threshold / 2, output_field=FloatField())))


def disagreeing_identifiers(
    *,
    task: Task,
    window: Window,
    disagreement: Disagreement,
    limit: int | None = None,
    now: dt.datetime | None = None,
) -> list[str]:
    """The identifiers of the window's pairs that disagree, newest output first (ties by id).
    Raises InvalidInput when there are more than `limit` (MAX_FLAG_OUTPUTS): one query, LIMIT
    limit + 1."""
    limit = MAX_FLAG_OUTPUTS if limit is None else limit
    pairs = _disagreeing(window_pairs(task=task, window=window, now=now), disagreement)
    identifiers = list(pairs.order_by("-output_at", "-id").values_list("identifier", flat=True)[: limit + 1])
    if len(identifiers) > limit:
        raise InvalidInput(TOO_MANY_DISAGREEING.format(max=limit))
    return identifiers


def pairs_page(
    *, task: str, window: Window, before: Keyset | None, limit: int, now: dt.datetime | None = None
) -> list[Prediction]:
    """Up to limit + 1 pairs of the window, newest output first."""
    found = task_get(name=task)
    pairs = window_pairs(task=found, window=window, now=now)
    return list(_newest_first(pairs, "output_at", before)[: limit + 1])


def task_metric(*, task: str, metric: str, window: Window, now: dt.datetime | None = None) -> MetricValue:
    """The metric over the window's pairs (monitoring/metrics.py)."""
    found = task_get(name=task)
    if window.pairs is not None:
        # The window's own query rather than `id IN (...)`: the N latest, by the pair index.
        pairs = _pairs_of(found).order_by("-output_at", "-id")[: window.pairs]
    else:
        pairs = window_pairs(task=found, window=window, now=now)
    return metric_compute(pairs.values("output", "feedback"), metric)


def bucket_count(*, bucket: Bucket, start: dt.datetime, end: dt.datetime) -> int:
    """How many buckets [start, end) touches, the first being the one `start` falls in."""
    size = BUCKET_SIZES[bucket]
    first = _floor(start, bucket)
    return -((first - end) // size)


def _floor(moment: dt.datetime, bucket: Bucket) -> dt.datetime:
    """The start of the UTC bucket holding `moment`."""
    moment = moment.astimezone(dt.UTC)
    if bucket == "minute":
        return moment.replace(second=0, microsecond=0)
    if bucket == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def task_series(
    *, task: str, metric: str, bucket: Bucket, start: dt.datetime, end: dt.datetime
) -> list[SeriesPoint]:
    """The metric per UTC bucket of output time, for each bucket in [start, end) holding pairs."""
    found = task_get(name=task)
    return [
        SeriesPoint(at, from_sums(metric, sums))
        for at, sums in task_bucket_sums(task=found, bucket=bucket, start=start, end=end, metric=metric)
    ]


def task_bucket_sums(
    *, task: Task, bucket: Bucket, start: dt.datetime, end: dt.datetime, metric: str | None = None
) -> list[tuple[dt.datetime, Sums]]:
    """(bucket start, sums) per UTC bucket of output time in [start, end) holding pairs, in
    one query: every series metric of every bucket comes from them (metrics.from_sums), or
    only `metric` when given (its sums alone, in one pass unless it needs the means)."""
    pairs = (
        _pairs_of(task)
        .filter(output_at__gte=start, output_at__lt=end)
        .annotate(bucket=_TRUNCATE[bucket]("output_at", tzinfo=dt.UTC))
        .values("output", "feedback", "bucket")
    )
    return [(bucket_start(key), sums) for key, sums in bucket_sums(pairs, metric)]


def latest_pairs_sums(*, tasks: list[Task], pairs: int) -> dict[int, Sums]:
    """{task id: sums} of each task's `pairs` latest pairs (the window Window(pairs=...)), for
    all the tasks in one query, each task's part read by the pair index and LIMITed. A task
    without pairs is absent."""
    parts: list[str] = []
    params: list[Any] = []
    for task in tasks:
        latest = _pairs_of(task).order_by("-output_at", "-id").values("output", "feedback")[:pairs]
        sql, part_params = latest.query.sql_with_params()
        # The id is an integer from the database, not text from a request.
        parts.append(f"SELECT w.output, w.feedback, {int(task.id)} AS bucket FROM ({sql}) w")
        params.extend(part_params)
    if not parts:
        return {}
    return {int(key): sums for key, sums in grouped_sums(" UNION ALL ".join(parts), tuple(params))}
