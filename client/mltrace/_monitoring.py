"""Monitoring over the server: a task's outputs and feedback, and metrics of their pairs.

Writes are checked and timestamped at the call, then buffered and sent as runs are (see
_sender.py): a logOutput costs microseconds. Reads wait for this process's writes first, as
every read does. A named metric is computed by the server; a metric given as a function runs
here, over the window's pairs, read page by page.

Windows: {"window_seconds": N} (the pairs whose output was logged in the last N seconds),
{"window_pairs": N} (the N pairs with the latest outputs), or {} (every pair).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Callable, NamedTuple, cast

from mltrace import _answers, _request_bodies, _state
from mltrace._http import path_segment
from mltrace._sender import OUTPUT
from mltrace.entities import metrics
from mltrace.errors import ServerError

logger = logging.getLogger("mltrace")

# The server's largest page of outputs, feedback or pairs.
PAGE_LIMIT = 10_000


class Record(NamedTuple):
    """An output or a feedback as mltrace's getOutputs() and getFeedback() returned it: a row
    of (timestamp, identifier, value), by index or by name. The timestamp is naive UTC."""

    timestamp: datetime
    identifier: str
    value: float


# --- writes ------------------------------------------------------------------------------


def log(kind: str, task: Any, identifiers: Any, values: Any) -> None:
    """Buffers outputs (or feedback) of a task; with set_sync(True), returns once committed."""
    name = _request_bodies.task_name(task)
    items = _request_bodies.monitoring_items(kind, name, identifiers, values)
    if not items:
        return
    sender = _state.sender()
    if _state.settings.sync:
        sender.send_items_now(kind, items)
    else:
        sender.put_many(kind, items)


# --- reads -------------------------------------------------------------------------------


@contextlib.contextmanager
def queries() -> Iterator[None]:
    """A 400 to a read is a ValueError: a window or a limit beyond what the server takes."""
    try:
        yield
    except ServerError as exc:
        if exc.status != 400:
            raise
        raise ValueError(f"the mltrace server refused this query: {json.dumps(exc.body)}") from None


def task_url(task: str) -> str:
    return f"/api/v1/tasks/{path_segment(task)}/"


def seconds(window_size: Any) -> dict[str, int]:
    size = _request_bodies.window_size("window_size (seconds)", window_size)
    return {} if size is None else {"window_seconds": size}


def pairs_window(window_size: Any) -> dict[str, int]:
    size = _request_bodies.window_size("window_size (pairs)", window_size)
    return {} if size is None else {"window_pairs": size}


def records(kind: str, task: Any, limit: Any, window_size: Any) -> list[Record]:
    """A task's outputs (or feedback), newest first: at most `limit` (None or 0: all), those
    of the last `window_size` seconds (None or 0: all time). [] for an unknown task."""
    name = _request_bodies.task_name(task)
    count = _request_bodies.window_size("limit", limit)
    path = task_url(name) + ("outputs/" if kind == OUTPUT else "feedback/")
    try:
        with queries():
            bodies = _answers.pages(path, seconds(window_size), count, page_limit=PAGE_LIMIT)
    except _answers.Missing as missing:
        unknown_task(missing)
        return []
    return [
        Record(
            cast(datetime, _answers.parse_timestamp(body["timestamp"])),
            body["identifier"],
            float(body["value"]),
        )
        for body in bodies
    ]


def pairs(task: str, window: dict[str, int]) -> tuple[list[float], list[float]]:
    """(y_true, y_pred) of the window's pairs, newest output first: the feedback and the
    outputs. Empty lists for an unknown task."""
    try:
        with queries():
            bodies = _answers.pages(task_url(task) + "pairs/", dict(window), None, page_limit=PAGE_LIMIT)
    except _answers.Missing as missing:
        unknown_task(missing)
        return [], []
    return [float(body["feedback"]) for body in bodies], [float(body["output"]) for body in bodies]


def metric_answer(task: str, name: str, window: dict[str, int]) -> dict | None:
    """The server's answer for a named metric; None for an unknown task."""
    try:
        with queries():
            return _answers.read(task_url(task) + "metrics/", {"metric": name, **window})
    except _answers.Missing as missing:
        unknown_task(missing)
        return None


def unknown_task(missing: _answers.Missing) -> None:
    """Returns for the server's 404 of an unknown task (a task that nothing was logged to);
    raises any other 404: a server without monitoring's API, say."""
    body = missing.error.body
    if isinstance(body, dict) and str(body.get("detail", "")).startswith("Unknown task"):
        return
    raise missing.error


def server_metric(task: str, name: str, window: dict[str, int]) -> Any:
    """A named metric's value, computed by the server; None when it is undefined on the window
    (no pairs, one class for roc_auc, ...), the reason logged."""
    answer = metric_answer(task, name, window)
    if answer is None:
        logger.info("mltrace: %s of task %r: no such task, no pairs", name, task)
        return None
    if answer["value"] is None:
        logger.info("mltrace: %s of task %r is undefined: %s", name, task, answer.get("reason", "no value"))
    return answer["value"]


def compute(task: Any, metric: Any, window: dict[str, int], *, cache: dict | None = None) -> Any:
    """A metric over a window: a supported name (or a named Metric's fn) on the server, any
    other function here, called with (y_true, y_pred) as lists of floats.

    Raises ValueError for an unknown name, RuntimeError for a function of fewer than two
    parameters (mltrace's errors). `cache` keeps the pairs of each window between calls."""
    name = _request_bodies.task_name(task)
    fn: Callable = metric if callable(metric) else metrics.get_metric_function(metric)
    if isinstance(fn, metrics.SklearnMetric):
        return server_metric(name, fn.name, window)
    metrics.check_metric_function(fn)
    key = tuple(sorted(window.items()))
    if cache is not None and key in cache:
        y_true, y_pred = cache[key]
    else:
        y_true, y_pred = pairs(name, window)
        if cache is not None:
            cache[key] = (y_true, y_pred)
    return fn(list(y_true), list(y_pred))


def tasks() -> list[dict]:
    """Every task, by name: {"name", "created_at", "outputs", "feedback", "pairs",
    "feedback_share", "last_output_at"}."""
    return _answers.pages("/api/v1/tasks/", {}, None)
