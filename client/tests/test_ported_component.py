"""mltrace's tests/test_component.py, test_componentIntegration.py and test_Test.py against the
server, with what each run left read back through the client."""

from __future__ import annotations

import pandas as pd
import pytest

from mltrace import Component, Test, get_component_information, get_history


def test_basic_component():
    c = Component("aditi", "test", "test_description")

    @c.run
    def function():
        foo = "foo"  # noqa: F841
        bar = "bar"  # noqa: F841
        return

    function()

    (run,) = get_history("aditi")
    assert run.inputs == [] and run.outputs == []
    assert "@c.run\n    def function():" in run.code_snapshot
    assert run.test_results is None  # the component has no tests
    component = get_component_information("aditi")
    assert (component.name, component.owner, component.description) == ("aditi", "test", "test_description")


def test_function_no_return_vars():
    c = Component("aditi", "test", "test_description")

    @c.run
    def function():
        x = 0
        foo = x + 1  # noqa: F841
        bar = x + 2  # noqa: F841

    assert function() is None
    assert len(get_history("aditi")) == 1


def test_component_wrong_var():
    c = Component("aditi", "test", "test_description")

    @c.run(component_name="test_component", input_vars=["idontexist"], output_vars=["bar"])
    def test_function():
        x = 0
        foo = x + 1  # noqa: F841
        bar = x + 2  # noqa: F841

    @c.run(component_name="test_component", input_vars=["foo"], output_vars=["barry"])
    def test_function2():
        x = 0
        foo = x + 1  # noqa: F841
        bar = x + 2  # noqa: F841

    with pytest.raises(ValueError, match="^Variable idontexist not in current stack frame.$"):
        test_function()
    with pytest.raises(ValueError, match="^Variable barry not in current stack frame.$"):
        test_function2()
    assert get_history("aditi") == []
    assert get_history("test_component") == []


def test_component_run_with_arguments_logs_its_variables():
    c = Component("train", "me", "Trains")

    @c.run(input_vars=["data_file"], output_vars=["model_file"])
    def train(data_file):
        model_file = data_file.replace("data", "model").replace(".csv", ".pkl")  # noqa: F841

    train("data.csv")

    (run,) = get_history("train")
    assert [p["name"] for p in run.inputs] == ["data.csv"]
    assert [p["name"] for p in run.outputs] == ["model.pkl"]


# --- test_componentIntegration.py ------------------------------------------------------------


def test_before_test_has_all_vars():
    class DummyTest(Test):
        def __init__(self):
            super().__init__("Dummy")

        def testCorrect(self, n: str):  # noqa: N802
            if n + "_before" != "test_before":
                raise Exception("Wrong Value")

    c = Component("aditi", "test", "test_description", beforeTests=[DummyTest])

    @c.run
    def function(n: str = "test"):
        return

    # mltrace's test defined the function and never called it; called, its test passes.
    function("test")

    (run,) = get_history("aditi")
    assert run.test_results == {"before": {"Dummy": {"testCorrect": "passed"}}, "after": {}}


def test_before_test_not_have_all_vars():
    class DummyTest(Test):
        def __init__(self):
            super().__init__("Dummy")

        def testCorrect(self, n: int):  # noqa: N802
            if n * 10 != 10:
                raise Exception("Wrong Value")

    c = Component("aditi", "test", "test_description", beforeTests=[DummyTest])

    @c.run
    def function():
        n = 1  # noqa: F841
        return

    with pytest.raises(TypeError, match="missing 1 required positional argument: 'n'"):
        function()
    # A failing before test stops the call: nothing is logged.
    assert get_history("aditi") == []


def test_after_test_has_all_vars():
    class DummyTest(Test):
        def __init__(self):
            super().__init__("Dummy")

        def testCorrect(self, n: str):  # noqa: N802
            if n + "check" != "test_aftercheck":
                raise Exception("Wrong Value")

    c = Component("aditi", "test", "test_description", afterTests=[DummyTest])

    @c.run
    def function(n: str = "test"):
        n += "_after"
        return

    function("test")

    (run,) = get_history("aditi")
    assert run.test_results == {"before": {}, "after": {"Dummy": {"testCorrect": "passed"}}}


def test_after_test_not_have_all_vars():
    class DummyTest(Test):
        def __init__(self):
            super().__init__("Dummy")

        def testCorrect(self, n: int):  # noqa: N802
            if n * 10 != 10:
                raise Exception("Wrong Value")

    c = Component("aditi", "test", "test_description", afterTests=[DummyTest])

    @c.run
    def function():
        k = 1  # noqa: F841
        return

    with pytest.raises(TypeError):
        function()
    # As in mltrace, the run is logged before its failing after test raises; here it also
    # records the failure.
    (run,) = get_history("aditi")
    (outcome,) = run.test_results["after"]["Dummy"].values()
    assert outcome.startswith("failed: TypeError:")


def test_value_change():
    class BeforeTest(Test):
        def __init__(self):
            super().__init__("Before")

        def testCorrect(self, data: pd.DataFrame):  # noqa: N802
            if data["A"].mean() != 2:
                raise Exception("Wrong Value in Before Test")

    class AfterTest(Test):
        def __init__(self):
            super().__init__("After")

        def testCorrect(self, data: pd.DataFrame):  # noqa: N802
            if data["A"].mean() != 4:
                raise Exception("Wrong Value in After Test")

    c = Component("aditi", "test", "test_description", beforeTests=[BeforeTest], afterTests=[AfterTest])

    @c.run
    def function(data: pd.DataFrame):
        data = data.replace([0, 1, 2, 3], 4)
        return

    function(pd.DataFrame({"A": [0, 1, 2, 3, 4], "B": [5, 6, 7, 8, 9]}))

    (run,) = get_history("aditi")
    assert run.test_results == {
        "before": {"Before": {"testCorrect": "passed"}},
        "after": {"After": {"testCorrect": "passed"}},
    }


# --- test_Test.py -------------------------------------------------------------------------------


def test_runs_all_test_func(capsys):
    class DummyTest(Test):
        def __init__(self):
            super().__init__("Dummy")

        def testCorrect(self, n: list):  # noqa: N802
            n[0] += 10
            print("testCorrect called")

        def testAlsoCorrect(self, n: list):  # noqa: N802
            n[0] += 10
            print("testAlsoCorrect called")

        def TestNotCorrect(self, n: list):  # noqa: N802
            raise Exception("TestNotCorrect called!")

    c = Component("aditi", "test", "test_description", afterTests=[DummyTest])
    val = [100]

    @c.run
    def function():
        n = val  # noqa: F841
        return

    function()

    assert val[0] == 120
    assert capsys.readouterr().out == "testAlsoCorrect called\ntestCorrect called\n"
    (run,) = get_history("aditi")
    assert run.test_results["after"] == {"Dummy": {"testAlsoCorrect": "passed", "testCorrect": "passed"}}


def test_runs_only_test_func():
    class DummyTest(Test):
        def __init__(self):
            super().__init__("Dummy")

        def testCorrect(self, n: str):  # noqa: N802
            print("DEBUG: testCorrect called")

        def TestNotCorrect(self, n: str):  # noqa: N802
            raise Exception("TestNotCorrect called!")

        def notCorrect(self, n: str):  # noqa: N802
            raise Exception("notCorrect called!")

        def Test(self, n: str):  # noqa: N802
            raise Exception("Test called!")

    c = Component("aditi", "test", "test_description", afterTests=[DummyTest])

    @c.run
    def function():
        n = "test"  # noqa: F841
        return

    function()

    (run,) = get_history("aditi")
    assert run.test_results["after"] == {"Dummy": {"testCorrect": "passed"}}
