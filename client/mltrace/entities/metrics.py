"""Metrics of a task's pairs (feedback as y_true, outputs as y_pred), as mltrace defined them.

mltrace's twelve named metrics are scikit-learn's functions, with their defaults. Here the
server computes a named metric (GET /api/v1/tasks/{task}/metrics/), so the client needs no
scikit-learn: a named Metric's `fn` imports it only if called in this process
(`pip install 'mltrace-client[metrics]'`). A metric given as a function runs in this
process, over the window's pairs.
"""

from __future__ import annotations

import inspect
import typing

# mltrace's names, in its order, and the scikit-learn function each one is.
SKLEARN_FUNCTION_NAMES = {
    "accuracy": "accuracy_score",
    "precision": "precision_score",
    "recall": "recall_score",
    "f1": "f1_score",
    "roc_auc": "roc_auc_score",
    "mean_absolute_error": "mean_absolute_error",
    "mean_squared_error": "mean_squared_error",
    "median_absolute_error": "median_absolute_error",
    "r2": "r2_score",
    "explained_variance": "explained_variance_score",
    "confusion_matrix": "confusion_matrix",
    "mutual_info_score": "mutual_info_score",
}

supported_sklearn_metrics = SKLEARN_FUNCTION_NAMES.keys()


class SklearnMetric:
    """A named metric: computed by the server when a task computes it; called here, it is
    scikit-learn's function (which needs `pip install 'mltrace-client[metrics]'`)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.__name__ = SKLEARN_FUNCTION_NAMES[name]

    def __call__(self, y_true: typing.Any, y_pred: typing.Any, **kwargs: typing.Any) -> typing.Any:
        try:
            from sklearn import metrics
        except ImportError:
            raise ImportError(
                f"computing {self.name} in this process needs scikit-learn: "
                "pip install 'mltrace-client[metrics]' (a Task computes it on the server)"
            ) from None
        return getattr(metrics, self.__name__)(y_true, y_pred, **kwargs)

    def __repr__(self) -> str:
        return f"<metric {self.name}: sklearn.metrics.{self.__name__}>"


def get_metric_function(name: typing.Any) -> SklearnMetric:
    """The named metric. Raises ValueError for a name mltrace did not support."""
    if isinstance(name, str) and name in SKLEARN_FUNCTION_NAMES:
        return SklearnMetric(name)
    raise ValueError(
        f"The metric {name} is not supported. Supported metrics are: {list(supported_sklearn_metrics)}"
    )


def check_metric_function(fn: typing.Callable) -> None:
    """mltrace's check: a metric takes y_true and y_pred. Raises RuntimeError."""
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin without a signature: let the call say
        return
    if len(parameters) < 2:
        raise RuntimeError("The function must take at least 2 arguments: y_true, y_pred.")


class Metric:
    """A metric to register on a Task: a supported name, or any name with `fn(y_true, y_pred)`.

    window_size: computeMetrics() computes it over the last window_size pairs (mltrace's views),
    or over the pairs of the last window_size seconds with use_views=False. None: every pair.
    """

    def __init__(
        self,
        name: str,
        window_size: int | None = None,
        fn: typing.Callable | None = None,
    ):
        self.name = name
        self.window_size = window_size

        self.fn = fn
        if name in supported_sklearn_metrics and not self.fn:
            self.fn = get_metric_function(name)

        if not self.fn:
            raise ValueError("You must pass a supported metric name or fn yourself.")

        # Check the function is well formed (has y_true, y_pred signature)
        check_metric_function(self.fn)

    def getIdentifier(self) -> str:
        return f"{self.name}_window{self.window_size}"

    def __repr__(self) -> str:
        return f"Metric({self.name!r}, window_size={self.window_size!r})"
