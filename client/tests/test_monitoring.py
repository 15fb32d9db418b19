"""Monitoring: mltrace's Task, Metric and log_output over the server (its tests/test_task.py
ported with their values asserted), the checks at the call, and how the sender batches a
task's outputs and feedback."""

from __future__ import annotations

import json
import random
import string
import threading
from datetime import datetime, timedelta, timezone

import pytest
from server import wait_until

import mltrace
from mltrace import Metric, Task, _request_bodies, _state, supported_sklearn_metrics
from mltrace._config import Settings
from mltrace._http import Response
from mltrace._sender import FEEDBACK, OUTPUT, RUN, Sender

try:
    from sklearn import metrics as sklearn_metrics
except ImportError:  # the client's tests run without its [metrics] extra too
    sklearn_metrics = None

SKLEARN_FUNCTIONS = {
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


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def count(y_true, y_pred):
    """A custom metric: how many pairs the window holds."""
    return len(y_true)


def random_binary_pairs(task: Task, seed: int) -> tuple[list[float], list[float]]:
    """mltrace's test data: 10 identifiers of 10 random capitals, a random 0/1 output and
    feedback each. Returns (y_true, y_pred) as logged, both classes in each (the seed sees to it)."""
    rng = random.Random(seed)
    y_true, y_pred = [], []
    identifiers = set()
    while len(identifiers) < 10:
        output_id = "".join(rng.choice(string.ascii_uppercase) for _ in range(10))
        if output_id in identifiers:
            continue
        identifiers.add(output_id)
        output, feedback = rng.randint(0, 1), rng.randint(0, 1)
        task.logOutput(output, output_id)
        task.logFeedback(feedback, output_id)
        y_pred.append(float(output))
        y_true.append(float(feedback))
    assert set(y_true) == set(y_pred) == {0.0, 1.0}
    return y_true, y_pred


def expected_value(name: str, y_true: list[float], y_pred: list[float]):
    value = getattr(sklearn_metrics, SKLEARN_FUNCTIONS[name])(y_true, y_pred)
    return value.tolist() if name == "confusion_matrix" else float(value)


def same(value, expected) -> bool:
    """Equal: a confusion matrix exactly, a number to float precision."""
    if isinstance(expected, list):
        return value == expected
    return value == pytest.approx(expected)


# --- mltrace's tests/test_task.py, with their values ------------------------------------


def testLogOutput():
    task = Task("test_output")
    before = utcnow()
    task.logOutput(1, "ABC")
    after = utcnow()
    res = task.getOutputs()
    assert float(res[0][2]) == 1.0
    assert len(res) == 1
    (row,) = res
    assert (row.identifier, row.value) == ("ABC", 1.0)
    assert row == (row.timestamp, "ABC", 1.0)
    # The output's time is the call's (naive UTC), not the time the server got it.
    assert before <= row.timestamp <= after


def testLogFeedback():
    task = Task("test_feedback")
    task.logFeedback(1, "ABC")
    res = task.getFeedback()
    assert float(res[0][2]) == 1.0
    assert [(row.identifier, row.value) for row in res] == [("ABC", 1.0)]
    assert len(task.getOutputs()) == 0


def testComputeMSE():
    task = Task("test_mse")
    task.logOutput(0.5, "ABC")
    task.logFeedback(1, "ABC")

    def mse(y_true, y_pred):
        ret = 0.0

        for i in range(len(y_true)):
            ret += (y_true[i] - y_pred[i]) ** 2

        return ret**0.5

    assert task.computeMetric(mse) == 0.5


def testComputeBadFunction():
    task = Task("test_bad_function")
    task.logOutput(0.5, "ABC")
    task.logFeedback(1, "ABC")

    def bad(onearg):
        pass

    with pytest.raises(RuntimeError, match="at least 2 arguments"):
        task.computeMetric(bad)


def testComputeMetrics():
    task = Task("test_metrics")
    y_true, y_pred = random_binary_pairs(task, seed=29)

    values = {metric: task.computeMetric(metric) for metric in supported_sklearn_metrics}

    assert list(values) == list(SKLEARN_FUNCTIONS)
    assert values["accuracy"] == pytest.approx(sum(t == p for t, p in zip(y_true, y_pred)) / 10)
    assert values["mean_absolute_error"] == pytest.approx(
        sum(abs(t - p) for t, p in zip(y_true, y_pred)) / 10
    )
    assert sum(map(sum, values["confusion_matrix"])) == 10
    if sklearn_metrics is not None:
        for name, value in values.items():
            assert same(value, expected_value(name, y_true, y_pred)), name
            # The same function run here, over the pairs the client reads, agrees with the server.
            function = getattr(sklearn_metrics, SKLEARN_FUNCTIONS[name])
            local = task.computeMetric(function)
            assert same(value, local.tolist() if name == "confusion_matrix" else float(local)), name


def testMetric():
    task = Task("test_metrics")
    y_true, y_pred = random_binary_pairs(task, seed=17)

    for metric in supported_sklearn_metrics:
        task.registerMetric(Metric(metric), create_view=False)

    results = task.computeMetrics(use_views=False)

    assert list(results) == [f"{metric}_windowNone" for metric in supported_sklearn_metrics]
    assert results == {
        f"{metric}_windowNone": task.computeMetric(metric) for metric in supported_sklearn_metrics
    }
    assert results["accuracy_windowNone"] == pytest.approx(sum(t == p for t, p in zip(y_true, y_pred)) / 10)
    assert task.computeMetrics() == results  # with views (pairs): no window either
    if sklearn_metrics is not None:
        for metric in supported_sklearn_metrics:
            assert same(results[f"{metric}_windowNone"], expected_value(metric, y_true, y_pred)), metric


# --- the module's functions --------------------------------------------------------------


def test_log_output_log_feedback_and_compute_metric_return_values():
    mltrace.log_output("churn", "a", 1)
    mltrace.log_output("churn", "b", 0)
    mltrace.log_feedback("churn", "a", 1)
    mltrace.log_feedback("churn", "b", 1)

    # mltrace's compute_metric returned nothing; this one returns its value.
    assert mltrace.compute_metric("churn", count) == 2
    assert mltrace.compute_metric("churn", lambda y_true, y_pred: sorted(zip(y_true, y_pred))) == [
        (1.0, 0.0),
        (1.0, 1.0),
    ]
    assert mltrace.compute_metric("churn", "accuracy") == 0.5
    assert mltrace.compute_metric("churn", count, window_size=3600) == 2
    assert [(row.identifier, row.value) for row in Task("churn").getFeedback()] == [("b", 1.0), ("a", 1.0)]


def test_log_outputs_and_feedbacks_in_lists():
    task = Task("batch")
    task.logOutputs([0.1, 0.2, 0.3], ["a", "b", "c"])
    task.logFeedbacks([1, 0], ["c", "a"])

    assert [(row.identifier, row.value) for row in task.getOutputs()] == [("c", 0.3), ("b", 0.2), ("a", 0.1)]
    assert sorted((row.identifier, row.value) for row in task.getFeedback()) == [("a", 0.0), ("c", 1.0)]
    assert task.computeMetric(lambda y_true, y_pred: sorted(zip(y_true, y_pred))) == [(0.0, 0.1), (1.0, 0.3)]


def test_a_repeated_identifier_replaces_its_output_and_its_feedback():
    task = Task("replace")
    task.logOutput(1, "a")
    task.logOutput(2, "a")
    task.logFeedback(0, "a")
    task.logFeedback(5, "a")

    assert [(row.identifier, row.value) for row in task.getOutputs()] == [("a", 2.0)]
    assert [(row.identifier, row.value) for row in task.getFeedback()] == [("a", 5.0)]
    assert task.computeMetric(lambda y_true, y_pred: list(zip(y_true, y_pred))) == [(5.0, 2.0)]


def test_an_unknown_task_has_no_outputs_and_no_pairs():
    task = Task("nobody")

    assert task.getOutputs() == []
    assert task.getFeedback() == []
    assert task.computeMetric("accuracy") is None
    assert task.computeMetric(lambda y_true, y_pred: (y_true, y_pred)) == ([], [])


def test_a_metric_undefined_on_the_window_is_none():
    task = Task("one_class")
    task.logOutputs([0.2, 0.9], ["a", "b"])
    task.logFeedbacks([1, 1], ["a", "b"])

    assert task.computeMetric("roc_auc") is None  # scikit-learn raises: one class only
    assert task.computeMetric("mean_absolute_error") == pytest.approx(0.45)


def test_a_server_without_monitoring_is_an_error_not_an_empty_task(server):
    mltrace.set_server(server.url + "/not-mltrace")

    with pytest.raises(mltrace.ServerError, match="HTTP 404"):
        Task("t").getOutputs()
    with pytest.raises(mltrace.ServerError, match="HTTP 404"):
        Task("t").computeMetric("accuracy")
    with pytest.raises(mltrace.ServerError, match="HTTP 404"):
        Task("t").computeMetric(count)


# --- windows: seconds for computeMetric, pairs for registered metrics --------------------


def post_output_at(server, task: str, identifier: str, value: float, when: datetime) -> None:
    """An output logged at `when`, as another client could: the API takes a timestamp."""
    body = {"outputs": [{"identifier": identifier, "value": value, "timestamp": when.isoformat()}]}
    response = _state.sender().transport.request(
        "POST",
        f"/api/v1/tasks/{task}/outputs/",
        params={"sync": "true"},
        body=json.dumps(body).encode(),
        give_up_after=30,
    )
    assert response.status == 201, response.data


@pytest.fixture
def windowed(server):
    """Task w: 'old' (output 0, two hours ago), then 'new1' and 'new2' (output 1); feedback 1."""
    post_output_at(server, "w", "old", 0, datetime.now(timezone.utc) - timedelta(hours=2))
    task = Task("w")
    task.logOutput(1, "new1")
    task.logOutput(1, "new2")
    task.logFeedbacks([1, 1, 1], ["old", "new1", "new2"])
    return task


def test_compute_metric_windows_are_seconds_of_output_time(windowed):
    assert windowed.computeMetric("mean_absolute_error") == pytest.approx(1 / 3)
    assert windowed.computeMetric("mean_absolute_error", window_size=3600) == 0.0
    assert windowed.computeMetric(count, window_size=3600) == 2
    assert windowed.computeMetric(count, window_size=3 * 3600) == 3
    assert mltrace.compute_metric("w", count, 3600) == 2
    assert mltrace.compute_metric("w", count, 0) == 3  # 0 is no window, as in mltrace


def test_get_outputs_newest_first_with_limit_and_window(windowed):
    assert [row.identifier for row in windowed.getOutputs()] == ["new2", "new1", "old"]
    assert [row.identifier for row in windowed.getOutputs(limit=1)] == ["new2"]
    assert [row.identifier for row in windowed.getOutputs(window_size=3600)] == ["new2", "new1"]
    assert [row.identifier for row in windowed.getOutputs(limit=1, window_size=3600)] == ["new2"]


def test_registered_metrics_windows_are_pairs_or_seconds_without_views(windowed):
    for metric in [
        Metric("mean_absolute_error", window_size=1),
        Metric("mean_absolute_error", window_size=3600),
        Metric("count", window_size=2, fn=count),
        Metric("count", window_size=3600, fn=count),
        Metric("count", fn=count),
    ]:
        windowed.registerMetric(metric)

    # mltrace's views: the last window_size pairs (here by output time).
    assert windowed.computeMetrics() == {
        "mean_absolute_error_window1": 0.0,
        "mean_absolute_error_window3600": pytest.approx(1 / 3),
        "count_window2": 2,
        "count_window3600": 3,
        "count_windowNone": 3,
    }
    # use_views=False: mltrace's compute_metric, window_size in seconds (the old output is
    # two hours old; the others were logged in the last hour).
    seconds = Task("w")
    for metric in [
        Metric("mean_absolute_error", window_size=3600),
        Metric("count", window_size=3600, fn=count),
    ]:
        seconds.registerMetric(metric)
    assert seconds.computeMetrics(use_views=False) == {
        "mean_absolute_error_window3600": 0.0,
        "count_window3600": 2,
    }


# --- checks at the call ------------------------------------------------------------------


def test_metric_has_mltraces_names_and_errors():
    assert list(supported_sklearn_metrics) == list(SKLEARN_FUNCTIONS)
    assert Metric("f1", window_size=100).getIdentifier() == "f1_window100"
    assert Metric("mine", fn=count).getIdentifier() == "mine_windowNone"
    with pytest.raises(ValueError, match="You must pass a supported metric name or fn yourself."):
        Metric("nope")
    with pytest.raises(RuntimeError, match="at least 2 arguments: y_true, y_pred"):
        Metric("mine", fn=lambda y: y)
    with pytest.raises(
        ValueError, match=r"The metric nope is not supported. Supported metrics are: \['accuracy'"
    ):
        Task("t").computeMetric("nope")
    with pytest.raises(TypeError, match="takes a Metric"):
        Task("t").registerMetric("accuracy")  # type: ignore[arg-type]
    if sklearn_metrics is not None:  # a named metric's fn is scikit-learn's function
        assert Metric("accuracy").fn([1, 0], [1, 1]) == 0.5


def test_bad_writes_are_refused_at_the_call_and_buffer_nothing():
    task = Task("checked")
    for value, error in [
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        (10**400, ValueError),
        (True, TypeError),
        ("1", TypeError),
        (None, TypeError),
    ]:
        with pytest.raises(error, match="output value for 'a'"):
            task.logOutput(value, "a")
    for identifier, error in [
        ("", ValueError),
        ("x" * 256, ValueError),
        ("a\x00b", ValueError),
        (1.5, TypeError),
    ]:
        with pytest.raises(error, match="identifier"):
            task.logFeedback(1, identifier)
    with pytest.raises(ValueError, match="one identifier for each value"):
        task.logOutputs([1, 2, 3], ["a", "b"])
    with pytest.raises(ValueError, match="finite"):
        task.logOutputs([1, float("nan")], ["a", "b"])  # the good one is not written either
    for name, error in [("a/b", ValueError), ("", ValueError), ("x" * 256, ValueError), (7, TypeError)]:
        with pytest.raises(error, match="task name"):
            Task(name)  # type: ignore[arg-type]
        with pytest.raises(error, match="task name"):
            mltrace.log_output(name, "a", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not be negative"):
        task.computeMetric(count, window_size=-1)
    with pytest.raises(TypeError, match="must be an int"):
        task.getOutputs(window_size=1.5)  # type: ignore[arg-type]

    assert _state.sender().pending() == 0
    task.logOutput(2**53, 12)  # an int identifier is its digits; any real number is a value
    assert [(row.identifier, row.value) for row in task.getOutputs()] == [("12", float(2**53))]
    with pytest.raises(ValueError, match="the mltrace server refused this query: .*window_seconds"):
        task.computeMetric("accuracy", window_size=2**40)  # beyond what the server takes


def test_log_output_does_not_wait_for_the_server(server):
    def hundred_calls():
        task = Task("offline")
        for i in range(100):
            task.logOutput(i, f"id_{i}")

    server.stop_web()
    calls = threading.Thread(target=hundred_calls)
    calls.start()
    # The server stays down until they have returned: a call that waited for it would never
    # return. (The 60 s bound only turns such a hang into a failure.)
    calls.join(60)

    assert not calls.is_alive()
    sender = _state.sender()
    assert (sender.pending(), sender.accepted) == (100, 0)
    server.start_web()
    assert mltrace.flush(timeout=60) is True
    rows = Task("offline").getOutputs()
    assert [(row.identifier, row.value) for row in rows] == [
        (f"id_{i}", float(i)) for i in reversed(range(100))
    ]
    # They gathered in the buffer and went out in two requests at most: what the sender had
    # taken when it found the server down, retried, and the rest behind it.
    ((writes,),) = server.query("SELECT count(DISTINCT output_write) FROM monitoring_prediction")
    assert 1 <= writes <= 2


def test_sync_writes_are_committed_when_the_call_returns(server):
    mltrace.set_sync(True)
    try:
        Task("synced").logOutputs([1, 2, 3], ["a", "b", "c"])
        mltrace.log_feedback("synced", "b", 5)
        # No flush, no read: the rows are there when the calls return.
        assert server.query(
            "SELECT p.identifier, p.output, p.feedback FROM monitoring_prediction p "
            "JOIN monitoring_task t ON t.id = p.task_id WHERE t.name = 'synced' ORDER BY p.identifier"
        ) == [("a", 1.0, None), ("b", 2.0, 5.0), ("c", 3.0, None)]
    finally:
        mltrace.set_sync(False)


# --- the sender's batches of outputs and feedback (no server: its answers are faked) ------


class FakeServer:
    """Stands in for Sender._post: records each request, answers from a script (then 202)."""

    def __init__(self, answers=()):
        self.requests: list[tuple[str, list]] = []
        self.answers = list(answers)

    def __call__(self, path: str, body: bytes) -> Response:
        (items,) = json.loads(body).values()
        self.requests.append((path, [item["identifier"] for item in items]))
        status, answer = self.answers.pop(0) if self.answers else (202, {"id": len(self.requests)})
        return Response(status, {}, json.dumps(answer).encode())


def buffered_sender(fake: FakeServer, writes, **settings) -> Sender:
    sender = Sender(Settings(server_url="http://127.0.0.1:9", token=None, **settings))
    sender._post = fake  # type: ignore[method-assign]
    for seq, (kind, task, identifier) in enumerate(writes, start=1):
        if kind == RUN:
            payload = {"component": task}
        else:
            (payload,) = _request_bodies.monitoring_items(kind, task, [identifier], [1])
        sender.buffer.append((seq, kind, payload))
    return sender


def test_the_sender_sends_one_request_per_task_and_kind_in_the_order_written():
    fake = FakeServer()
    sender = buffered_sender(
        fake,
        [
            (OUTPUT, "churn", "a"),
            (FEEDBACK, "churn", "z"),
            (OUTPUT, "fraud", "b"),
            (OUTPUT, "churn", "c"),
            (FEEDBACK, "churn", "y"),
            (OUTPUT, "a b/é", "d"),
            (RUN, "etl", None),
            (OUTPUT, "churn", "e"),
        ],
    )

    batch = sender._take()
    ids = sender._send(batch)

    assert [seq for seq, _, _ in batch] == [1, 2, 3, 4, 5, 6]  # up to the run, which keeps its place
    assert fake.requests == [
        ("/api/v1/tasks/churn/outputs/", ["a", "c"]),
        ("/api/v1/tasks/churn/feedback/", ["z", "y"]),
        ("/api/v1/tasks/fraud/outputs/", ["b"]),
        ("/api/v1/tasks/a%20b%2F%C3%A9/outputs/", ["d"]),
    ]
    assert ids == [1, 2, 3, 1, 2, 4]  # each item gets the id of the write that holds it
    assert [kind for _, kind, _ in sender._take()] == [RUN]
    assert [payload["identifier"] for _, _, payload in sender._take()] == ["e"]


def test_the_sender_takes_at_most_mltrace_batch_outputs_items():
    sender = buffered_sender(FakeServer(), [(OUTPUT, "t", str(i)) for i in range(5)], batch_outputs=2)
    assert [len(sender._take()) for _ in range(3)] == [2, 2, 1]


def test_the_task_names_dot_and_dot_dot_stay_one_segment():
    fake = FakeServer()
    sender = buffered_sender(fake, [(OUTPUT, ".", "a"), (FEEDBACK, "..", "b")])
    sender._send(sender._take())
    assert [path for path, _ in fake.requests] == [
        "/api/v1/tasks/%2E/outputs/",
        "/api/v1/tasks/%2E%2E/feedback/",
    ]


def test_an_item_the_server_refuses_is_reported_and_the_others_sent_again():
    refused = []
    fake = FakeServer([(400, {"outputs": {"1": {"value": ["Expected a finite number."]}}})])
    sender = buffered_sender(fake, [(OUTPUT, "t", "a"), (OUTPUT, "t", "b"), (OUTPUT, "t", "c")])
    sender.settings.error_callback = refused.append

    ids = sender._send(sender._take())

    assert fake.requests == [
        ("/api/v1/tasks/t/outputs/", ["a", "b", "c"]),
        ("/api/v1/tasks/t/outputs/", ["a", "c"]),
    ]
    assert ids == [2, None, 2]
    (write,) = refused
    assert (write.kind, write.status, write.payload["identifier"], write.payload["task"]) == (
        "output",
        400,
        "b",
        "t",
    )
    assert write.error == {"value": ["Expected a finite number."]}
    assert (
        write.describe()
        == "output write of 'b' to task 't' (HTTP 400): {'value': ['Expected a finite number.']}"
    )


def test_a_400_that_names_no_item_refuses_the_request_whole_at_once():
    refused = []
    fake = FakeServer([(400, {"task": ["A task name cannot contain '/'."]})])
    sender = buffered_sender(fake, [(FEEDBACK, "t", "a"), (FEEDBACK, "t", "b")])
    sender.settings.error_callback = refused.append

    assert sender._send(sender._take()) == [None, None]
    assert len(fake.requests) == 1
    assert [(w.kind, w.payload["identifier"]) for w in refused] == [("feedback", "a"), ("feedback", "b")]


def test_a_batch_too_large_for_the_server_is_halved():
    fake = FakeServer([(413, {"detail": "Request body too large."})])
    sender = buffered_sender(fake, [(OUTPUT, "t", str(i)) for i in range(4)])

    assert sender._send(sender._take()) == [2, 2, 3, 3]
    assert [identifiers for _, identifiers in fake.requests] == [["0", "1", "2", "3"], ["0", "1"], ["2", "3"]]


def test_the_sending_thread_counts_items_as_writes():
    fake = FakeServer()
    sender = Sender(Settings(server_url="http://127.0.0.1:9", token=None))
    sender._post = fake  # type: ignore[method-assign]
    items = _request_bodies.monitoring_items(OUTPUT, "t", ["a", "b", "c"], [1, 2, 3])

    sender.put_many(OUTPUT, items)

    wait_until(lambda: sender.pending() == 0, what="the sender to send the items")
    assert (sender.accepted, sender.refused, sender.last_accepted_id) == (3, 0, len(fake.requests))
    assert [identifier for _, identifiers in fake.requests for identifier in identifiers] == ["a", "b", "c"]
