"""mltrace.Component: runs logged by `Component.run`, with tests before and after.

clean (before test: n >= 0; after test: total <= 100) runs for n = 1, 2, 4 and -1: the run
for 4 is logged and then its after test raises; the run for -1 fails its before test and
is not logged. score (a Component used as a bare `@score.run`, and one with direct inputs,
input_kwargs and output_kwargs, endpoint) reads what clean wrote.
"""

import observe

from mltrace import Component, Test


class NotNegative(Test):
    def __init__(self):
        super().__init__("not negative")

    def testNotNegative(self, n):
        if n < 0:
            raise ValueError(f"n is {n}")


class Bounded(Test):
    def __init__(self):
        super().__init__("bounded")

    def testBounded(self, total):
        if total > 100:
            raise ValueError(f"total is {total}")


clean = Component(
    name="clean",
    owner="ana",
    description="Cleans a batch",
    beforeTests=[NotNegative],
    afterTests=[Bounded],
    tags=["tested", "batch"],
)
score = Component(name="score", owner="bo", description="Scores batches")
summary = Component(name="summary", owner="bo")


@clean.run(input_vars=["source"], output_vars=["target"])
def clean_batch(n):
    source = f"raw_{n}.csv"  # noqa: F841 (logged by Component.run)
    target = f"clean_{n}.csv"
    total = n * 30  # noqa: F841 (read by the after test)
    return target


@score.run(
    inputs=["clean_1.csv"],
    input_kwargs={"batch": "rows"},
    output_kwargs={"scores": "values"},
    endpoint=True,
)
def score_batches(batch):
    rows = [1, 2, 3]  # noqa: F841 (logged as the value of batch)
    scores = ["score_2", "score_4"]
    values = [0.5, 0.25]  # noqa: F841
    return scores


@summary.run
def summarize():
    return None


if __name__ == "__main__":
    clean_batch(1)
    clean_batch(2)
    failures = {}
    for n in (4, -1):
        try:
            clean_batch(n)
        except ValueError as exc:
            failures[str(n)] = str(exc)
    score_batches("clean_4.csv")
    summarize()

    observe.report(
        backtraces={"score_4": "score_4", "clean_4.csv": "clean_4.csv"},
        failures=failures,
    )
