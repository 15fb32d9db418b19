"""Base class for test objects: Component's beforeTests and afterTests."""

from __future__ import annotations

import inspect


class Test:
    __test__ = False  # not a pytest test class, though its name says Test

    def __init__(self, name: str = ""):
        self._name = name
        self.results: dict[str, str] = {}

    @property
    def name(self):
        return self._name

    @name.setter
    def name(self, value):
        self._name = value

    def getTestMethods(self):  # noqa: N802 (mltrace's name)
        """Gets all methods in this class that start with "test"."""
        methods = inspect.getmembers(self, inspect.ismethod)
        return [function for name, function in methods if name.startswith("test")]

    def runTests(self, **kwargs):  # noqa: N802 (mltrace's name)
        """Runs every test method with the arguments it names; the first failure raises.

        What each method gave is kept in `results` ("passed", or "failed: ..." for the one
        that raised), and Component.run records it with the run.
        """
        self.results = {}
        for method in self.getTestMethods():
            test_args = {k: v for k, v in kwargs.items() if k in inspect.signature(method).parameters}
            try:
                getattr(self, method.__name__)(**test_args)
            except Exception as exc:
                self.results[method.__name__] = f"failed: {type(exc).__name__}: {exc}"
                raise
            self.results[method.__name__] = "passed"
        return dict(self.results)
