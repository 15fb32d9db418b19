"""Kinds of tests to run before and after a component (pandas is needed for these)."""

from __future__ import annotations

from mltrace.entities.base_test import Test


class OutliersTest(Test):
    def __init__(self):
        super().__init__("Outliers")

    def testZscore(self, df=None, stdev_cutoff: float = 5.0):  # noqa: N802 (mltrace's name)
        """Checks that there are no outliers by z-score."""
        z_scores = ((df - df.mean(axis=0, skipna=True)) / df.std(axis=0, skipna=True)).abs()
        if (z_scores > stdev_cutoff).to_numpy().sum() > 0:
            raise Exception("There are outlier values!")
