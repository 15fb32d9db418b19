"""mltrace 0.17's tests/test_client.py, run against the server.

mltrace's tests only ran the calls; each test here also reads back what the server committed,
through the client, as mltrace's own reads return it.
"""

from __future__ import annotations

import pytest

from mltrace import (
    create_component,
    get_history,
    load,
    log_component_run,
    register,
    save,
)
from mltrace.db import PointerTypeEnum
from mltrace.entities import ComponentRun, IOPointer


def pointers(items):
    return [(p["name"], p["value"], p["pointer_type"]) for p in items]


def test_log_empty_component_run():
    create_component("test_component", "test_description", "shreya")

    cr = ComponentRun("test_component")

    with pytest.raises(RuntimeError) as raised:
        log_component_run(cr)
    assert str(raised.value) == (
        "test_component ComponentRun has no start timestamp. "
        "test_component ComponentRun has no end timestamp. "
        "test_component ComponentRun has no inputs. "
        "test_component ComponentRun has no outputs. "
        "test_component ComponentRun has no dependencies. "
    )
    assert get_history("test_component") == []


def test_log_basic_component_run():
    create_component("test_component", "test_description", "shreya")

    cr = ComponentRun(component_name="test_component")
    cr.set_start_timestamp()
    cr.code_snapshot = b"def main(): return"
    cr.add_inputs(["duplicate_input", "duplicate_input"])
    cr.add_outputs(["duplicate_output", "duplicate_output"])
    cr.set_end_timestamp()

    log_component_run(cr)

    (run,) = get_history("test_component")
    assert run.id == 2  # the component write took id 1
    assert pointers(run.inputs) == [("duplicate_input", "", PointerTypeEnum.UNKNOWN)]
    assert pointers(run.outputs) == [("duplicate_output", "", PointerTypeEnum.UNKNOWN)]
    assert run.code_snapshot == "def main(): return"
    assert (run.start_timestamp, run.end_timestamp) == (cr.start_timestamp, cr.end_timestamp)
    assert run.git_tags is None and run.git_hash is None
    assert run.dependencies == [] and run.stale == []


def test_log_kv_component_run():
    create_component(name="valtest", description="Tests implementation of values in iopointer.", owner="me")

    iop1 = IOPointer(name="iop1", value=["this", "is", "the", "first"])
    iop2 = IOPointer(name="iop2", value=["this", "is", "the", "second"])
    cr = ComponentRun("valtest")
    cr.set_start_timestamp()
    cr.set_end_timestamp()
    cr.add_input(iop1)
    cr.add_output(iop2)
    log_component_run(cr)

    (run,) = get_history("valtest")
    # A value that is not a string is stored as its repr (mltrace stored a digest of it).
    assert pointers(run.inputs) == [("iop1", "['this', 'is', 'the', 'first']", PointerTypeEnum.UNKNOWN)]
    assert pointers(run.outputs) == [("iop2", "['this', 'is', 'the', 'second']", PointerTypeEnum.UNKNOWN)]


def test_register():
    create_component("test_component", "test_description", "shreya")

    @register(component_name="test_component", input_vars=["foo"], output_vars=["bar"])
    def test_func():
        foo = "foo"  # noqa: F841
        bar = "bar"  # noqa: F841
        return

    assert test_func() is None

    (run,) = get_history("test_component")
    assert pointers(run.inputs) == [("foo", "", PointerTypeEnum.UNKNOWN)]
    assert pointers(run.outputs) == [("bar", "", PointerTypeEnum.UNKNOWN)]
    assert '@register(component_name="test_component"' in run.code_snapshot
    assert run.start_timestamp <= run.end_timestamp


def test_register_no_return():
    create_component("test_component", "test_description", "shreya")

    @register(component_name="test_component", input_vars=["foo"], output_vars=["bar"])
    def test_func():
        x = 0
        foo = x + 1  # noqa: F841
        bar = x + 2  # noqa: F841

    test_func()

    (run,) = get_history("test_component")
    assert pointers(run.inputs) == [("1", "", PointerTypeEnum.UNKNOWN)]
    assert pointers(run.outputs) == [("2", "", PointerTypeEnum.UNKNOWN)]


def test_register_wrong_var():
    create_component("test_component", "test_description", "shreya")

    @register(component_name="test_component", input_vars=["foory"], output_vars=["bar"])
    def test_func():
        x = 0
        foo = x + 1  # noqa: F841
        bar = x + 2  # noqa: F841

    @register(component_name="test_component", input_vars=["foo"], output_vars=["barry"])
    def test_func2():
        x = 0
        foo = x + 1  # noqa: F841
        bar = x + 2  # noqa: F841

    with pytest.raises(ValueError, match="^Variable foory not in current stack frame.$"):
        test_func()
    with pytest.raises(ValueError, match="^Variable barry not in current stack frame.$"):
        test_func2()
    assert get_history("test_component") == []


def test_register_kwargs():
    create_component("test_component", "test_description", "shreya")

    @register(
        component_name="test_component",
        input_kwargs={"inp_key": "inp_val"},
        output_kwargs={"out_key": "out_val"},
    )
    def some_func(inp_key, inp_val):
        out_key = "another_filename.pkl"  # noqa: F841
        out_val = [1, 2, 3, 4, 5]  # noqa: F841

    some_func(inp_key="some_filename.pkl", inp_val=[1, 2, 3, 4, 5])

    (run,) = get_history("test_component")
    assert pointers(run.inputs) == [("some_filename.pkl", "[1, 2, 3, 4, 5]", PointerTypeEnum.MODEL)]
    assert pointers(run.outputs) == [("another_filename.pkl", "[1, 2, 3, 4, 5]", PointerTypeEnum.MODEL)]


def test_register_kwargs_list():
    create_component("test_component", "test_description", "shreya")

    @register(
        component_name="test_component",
        input_kwargs={"inp_key": "inp_val"},
        output_kwargs={"out_key": "out_val"},
    )
    def some_func(inp_key, inp_val):
        out_key = ["another_filename1.pkl", "another_filename2.pkl"]  # noqa: F841
        out_val = [1, 2]  # noqa: F841

    some_func(inp_key=["some_filename1.pkl", "some_filename2.pkl"], inp_val=[11, 22])

    (run,) = get_history("test_component")
    assert pointers(run.inputs) == [
        ("some_filename1.pkl", "11", PointerTypeEnum.MODEL),
        ("some_filename2.pkl", "22", PointerTypeEnum.MODEL),
    ]
    assert pointers(run.outputs) == [
        ("another_filename1.pkl", "1", PointerTypeEnum.MODEL),
        ("another_filename2.pkl", "2", PointerTypeEnum.MODEL),
    ]


def test_register_kwargs_list_wrong_lengths():
    create_component("test_component", "test_description", "shreya")

    @register(
        component_name="test_component",
        input_kwargs={"inp_key": "inp_val"},
        output_kwargs={"out_key": "out_val"},
    )
    def some_func(inp_key, inp_val):
        out_key = ["another_filename1.pkl", "another_filename2.pkl"]  # noqa: F841
        out_val = 1  # noqa: F841

    with pytest.raises(
        ValueError, match='^Value "inp_val" does not have the same length as the key "inp_key."$'
    ):
        some_func(inp_key=["some_filename1.pkl", "some_filename2.pkl"], inp_val=1)
    assert get_history("test_component") == []


def test_register_kwargs_list_wrong_names():
    create_component("test_component", "test_description", "shreya")

    @register(
        component_name="test_component",
        input_kwargs={"inp_keyeyey": "inp_valalalal"},
        output_kwargs={"out_key": "out_val"},
    )
    def some_func_wrong_input(inp_key, inp_val):
        out_key = "another_filename.pkl"  # noqa: F841
        out_val = 1  # noqa: F841

    @register(
        component_name="test_component",
        input_kwargs={"inp_key": "inp_val"},
        output_kwargs={"out_keyeyeyey": "out_valalalal"},
    )
    def some_func_wrong_output(inp_key, inp_val):
        out_key = "another_filename.pkl"  # noqa: F841
        out_val = 1  # noqa: F841

    with pytest.raises(
        ValueError, match=r"^Variables \(inp_keyeyey, inp_valalalal\) not in current stack frame.$"
    ):
        some_func_wrong_input(inp_key="some_filename.pkl", inp_val=[1])
    with pytest.raises(
        ValueError, match=r"^Variables \(out_keyeyeyey, out_valalalal\) not in current stack frame.$"
    ):
        some_func_wrong_output(inp_key="some_filename.pkl", inp_val=[1])
    assert get_history("test_component") == []


def test_save_and_load(tmp_path):
    obj = {"foo": "bar"}
    pathname = save(obj)
    assert pathname.startswith(str(tmp_path / "saved"))
    assert pathname.endswith(".mlt")
    assert obj == load(pathname)
