"""Component: a pipeline step with tests to run before and after it, and `run`, the decorator
that logs each call of the step as a run."""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
from typing import Any, cast

from mltrace.entities.base import Base

SKIP_KEYS = ("skip_before", "skip_after")


class Component(Base):
    def __init__(
        self,
        name: str = "",
        owner: str = "",
        description: str = "",
        beforeTests: list = [],  # noqa: B006, N803 (mltrace's signature)
        afterTests: list = [],  # noqa: B006, N803
        tags: list[str] = [],  # noqa: B006
    ):
        """A component has a name, an owner, a description, tags, and Test classes to run
        before and after each run."""
        self._name = name
        self._owner = owner
        self._description = description
        self._tags = list(tags)
        self._beforeTests = list(beforeTests)
        self._afterTests = list(afterTests)

    def beforeRun(self, **kwargs):  # noqa: N802 (mltrace's name)
        """Runs each test of beforeTests with the call's arguments."""
        return _run_tests(self._beforeTests, kwargs)

    def afterRun(self, **local_vars):  # noqa: N802 (mltrace's name)
        """Runs each test of afterTests with the function's variables at return."""
        return _run_tests(self._afterTests, local_vars)

    def run(
        self,
        inputs: list[str] = [],  # noqa: B006 (mltrace's signature)
        outputs: list[str] = [],  # noqa: B006
        input_vars: list[str] = [],  # noqa: B006
        output_vars: list[str] = [],  # noqa: B006
        input_kwargs: dict[str, str] = {},  # noqa: B006
        output_kwargs: dict[str, str] = {},  # noqa: B006
        endpoint: bool = False,
        staleness_threshold: int = (60 * 60 * 24 * 30),
        auto_log: bool = False,
        *user_args,
        **user_kwargs,
    ):
        """Decorator: runs beforeTests, the function, then afterTests, and logs the run.

            c = Component("train", "me", "Trains the model", afterTests=[MyTest])

            @c.run(input_vars=["data_path"], output_vars=["model_path"])
            def train(data_path): ...

        `@c.run` without arguments works too. The tests' outcomes are recorded with the run
        (test_results). A failing before test stops the call and nothing is logged; a
        failing after test raises once the run is logged, as in mltrace.
        """
        from mltrace import _capture, _files, client

        inv_user_kwargs = {v: k for k, v in user_kwargs.items()}
        declared = _capture.Declared(
            inputs=inputs,
            outputs=outputs,
            input_vars=input_vars,
            output_vars=output_vars,
            input_kwargs=input_kwargs,
            output_kwargs=output_kwargs,
            endpoint=endpoint,
            auto_log=auto_log,
            kwargs_message="({key}, {val}) not in current stack frame.",
        )

        def rename(arguments: dict) -> dict:
            return {inv_user_kwargs.get(k, k): v for k, v in arguments.items()}

        def actual_decorator(func):
            @functools.wraps(func)
            def wrapper(*args, **kwargs):
                from mltrace.entities.component_run import ComponentRun

                run = ComponentRun(self.name)
                run.set_start_timestamp()
                arg_names = inspect.getfullargspec(func).args
                if set(SKIP_KEYS) & (set(arg_names) | set(kwargs)):
                    raise ValueError(
                        "skip_before or skip_after cannot be in "
                        + f"the arguments of the function {func.__name__}"
                    )
                results: dict = {}
                if not user_kwargs.get("skip_before"):
                    results["before"] = self.beforeRun(**{**rename(dict(zip(arg_names, args))), **kwargs})
                value, local_vars = _capture.call_and_capture(
                    run, func, args, kwargs, declared, save=_files.save
                )
                failure = None
                if not user_kwargs.get("skip_after"):
                    try:
                        results["after"] = self.afterRun(**rename(local_vars))
                    except Exception as exc:
                        failure = exc
                        results["after"] = getattr(exc, "__mltrace_results__", {})
                if self._beforeTests or self._afterTests:
                    run.set_test_results(results)
                client.create_component(self.name, self.description, self.owner, self.tags)
                client.log_component_run(run, staleness_threshold=staleness_threshold)
                if failure is not None:
                    raise failure
                return value

            return wrapper

        if callable(inputs):
            # Used as @c.run, without arguments.
            return actual_decorator(inputs)
        return actual_decorator

    @property
    def name(self) -> str:
        return self._name

    @property
    def owner(self) -> str:
        return self._owner

    @property
    def description(self) -> str:
        return self._description

    @property
    def tags(self) -> list[str]:
        return self._tags

    @property
    def beforeTests(self) -> list:  # noqa: N802 (mltrace's name)
        return self._beforeTests

    @property
    def afterTests(self) -> list:  # noqa: N802 (mltrace's name)
        return self._afterTests

    def __repr__(self):
        params = self.to_dictionary()
        del params["beforeTests"]
        del params["afterTests"]
        return json.dumps(params)


def _run_tests(test_classes: list, arguments: dict) -> dict:
    """{test name: {method: outcome}}; the first failing test raises, its outcomes attached."""
    results: dict = {}
    for test_class in test_classes:
        test = test_class()
        label = getattr(test, "name", "") or type(test).__name__
        try:
            outcome = test.runTests(**arguments)
        except Exception as exc:
            results[label] = dict(getattr(test, "results", None) or {"runTests": f"failed: {exc}"})
            with contextlib.suppress(AttributeError):
                cast(Any, exc).__mltrace_results__ = results
            raise
        results[label] = dict(getattr(test, "results", None) or outcome or {"runTests": "passed"})
    return results
