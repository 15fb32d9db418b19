"""mltrace's Task: a model's outputs, the feedback that answers them, and metrics of the pairs.

An output and its feedback meet by identifier. Writes are buffered and sent in the
background (logOutput costs microseconds); reads wait for this process's writes. See
_monitoring.py for the requests.
"""

from __future__ import annotations

import typing

from mltrace import _monitoring, _request_bodies
from mltrace._sender import FEEDBACK, OUTPUT
from mltrace.entities.metrics import Metric


class Task:
    def __init__(self, task_name: str):
        self.task_name = _request_bodies.task_name(task_name)
        self.metrics: list[Metric] = []

    def registerMetric(self, metric: Metric, create_view: bool = True):
        """Adds a metric that computeMetrics() computes. create_view is accepted for mltrace's
        code and changes nothing: the server reads any window without a view."""
        if not isinstance(metric, Metric):
            raise TypeError(f"registerMetric takes a Metric, not {type(metric).__name__}.")
        self.metrics.append(metric)

    def computeMetrics(self, use_views: bool = True) -> dict[str, typing.Any]:
        """{metric.getIdentifier(): value} of every registered metric. A metric's window_size
        is a count of pairs (the last window_size pairs, as mltrace's views kept), or with
        use_views=False a number of seconds (as mltrace's compute_metric took it)."""
        results = {}
        cache: dict = {}
        for metric in self.metrics:
            if use_views:
                window = _monitoring.pairs_window(metric.window_size)
            else:
                window = _monitoring.seconds(metric.window_size)
            results[metric.getIdentifier()] = _monitoring.compute(
                self.task_name, metric.fn, window, cache=cache
            )
        return results

    def logOutput(
        self,
        output_value: float,
        identifier: str,
    ):
        _monitoring.log(OUTPUT, self.task_name, [identifier], [output_value])

    def logOutputs(
        self,
        output_values: list[float],
        identifiers: list[str],
    ):
        _monitoring.log(OUTPUT, self.task_name, identifiers, output_values)

    def logFeedbacks(
        self,
        feedback_values: list[float],
        identifiers: list[str],
    ):
        _monitoring.log(FEEDBACK, self.task_name, identifiers, feedback_values)

    def logFeedback(
        self,
        feedback_value: float,
        identifier: str,
    ):
        _monitoring.log(FEEDBACK, self.task_name, [identifier], [feedback_value])

    def getOutputs(
        self, limit: int | None = None, window_size: int | None = None
    ) -> list[_monitoring.Record]:
        """The outputs, newest first: (timestamp, identifier, value) rows, at most `limit`,
        logged in the last `window_size` seconds."""
        return _monitoring.records(OUTPUT, self.task_name, limit, window_size)

    def getFeedback(
        self, limit: int | None = None, window_size: int | None = None
    ) -> list[_monitoring.Record]:
        """The feedback, newest first, as getOutputs()."""
        return _monitoring.records(FEEDBACK, self.task_name, limit, window_size)

    def computeMetric(
        self,
        metric: typing.Callable | str,
        window_size: int | None = None,
    ):
        """A metric of the pairs whose output was logged in the last `window_size` seconds
        (None: every pair): a supported name (computed by the server) or fn(y_true, y_pred)."""
        return _monitoring.compute(self.task_name, metric, _monitoring.seconds(window_size))

    def __repr__(self) -> str:
        return f"Task({self.task_name!r})"
