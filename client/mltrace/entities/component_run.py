from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from mltrace.db.models import PointerTypeEnum
from mltrace.entities.base import Base
from mltrace.entities.io_pointer import IOPointer


def _pointer_key(pointer: IOPointer) -> tuple:
    value = pointer.value
    return (pointer.name, value if isinstance(value, str) else id(value))


class ComponentRun(Base):
    """One run of a component: its timestamps, inputs, outputs, code and dependencies.

    Timestamps are datetimes; naive ones are UTC, as mltrace's `datetime.utcnow()` gives.
    """

    def __init__(
        self,
        component_name: str,
        notes: str = "",
        start_timestamp: datetime | None = None,
        end_timestamp: datetime | None = None,
        inputs: list | None = None,
        outputs: list | None = None,
        git_hash: str | None = None,
        git_tags: list[str] | None = None,
        code_snapshot: str | bytes | None = None,
        id: int | None = None,  # noqa: A002 (mltrace's name)
        stale: list[str] | None = None,
        dependencies: list[str] | None = None,
        test_results: Any = None,
    ):
        self._component_name = component_name
        self._notes = notes
        self._start_timestamp = start_timestamp
        self._end_timestamp = end_timestamp
        self._inputs = list(inputs or [])
        self._outputs = list(outputs or [])
        self._git_hash = git_hash
        self._git_tags = git_tags
        self._code_snapshot = (
            code_snapshot.decode("utf-8") if isinstance(code_snapshot, (bytes, bytearray)) else code_snapshot
        )
        self._id = id
        self._stale = list(stale or [])
        self._dependencies = list(dependencies or [])
        self._test_results = test_results

    @property
    def component_name(self) -> str:
        return self._component_name

    @property
    def notes(self) -> str:
        return self._notes

    @notes.setter
    def notes(self, notes: str):
        """Add notes describing details of component run"""
        if not isinstance(notes, str):
            raise TypeError("notes field must be of type str")
        self._notes = notes

    @notes.deleter
    def notes(self):
        del self._notes

    @property
    def inputs(self) -> list:
        return self._inputs

    @inputs.setter
    def inputs(self, inputs: list):
        self._inputs = inputs

    @inputs.deleter
    def inputs(self):
        del self._inputs

    @property
    def outputs(self) -> list:
        return self._outputs

    @outputs.setter
    def outputs(self, outputs: list):
        self._outputs = outputs

    @outputs.deleter
    def outputs(self):
        del self._outputs

    @property
    def git_hash(self) -> str | None:
        return self._git_hash

    @git_hash.setter
    def git_hash(self, new_hash: str):
        self._git_hash = new_hash

    @property
    def git_tags(self) -> list[str] | None:
        return self._git_tags

    @git_tags.setter
    def git_tags(self, new_tags: list[str]):
        self._git_tags = new_tags

    @property
    def code_snapshot(self) -> str | None:
        return self._code_snapshot

    @code_snapshot.setter
    def code_snapshot(self, new_snapshot: str | bytes):
        self._code_snapshot = (
            new_snapshot.decode("utf-8") if isinstance(new_snapshot, (bytes, bytearray)) else new_snapshot
        )

    @property
    def start_timestamp(self) -> datetime | None:
        return self._start_timestamp

    @property
    def end_timestamp(self) -> datetime | None:
        return self._end_timestamp

    @property
    def dependencies(self) -> list[str]:
        return self._dependencies

    @property
    def id(self) -> int | None:
        return self._id

    @property
    def stale(self) -> list[str]:
        return self._stale

    @property
    def test_results(self) -> Any:
        return self._test_results

    def set_start_timestamp(self, ts: datetime | None = None):
        if ts is None:
            ts = _utcnow()
        if not isinstance(ts, datetime):
            raise TypeError("Timestamp must be of type datetime.")
        self._start_timestamp = ts

    def set_end_timestamp(self, ts: datetime | None = None):
        if ts is None:
            ts = _utcnow()
        if not isinstance(ts, datetime):
            raise TypeError("Timestamp must be of type datetime.")
        self._end_timestamp = ts

    def set_test_results(self, results: Any):
        """What the component's tests found (recorded by Component.run)."""
        self._test_results = results

    def add_input(self, inp: str | IOPointer, pointer_type: PointerTypeEnum | None = None):
        """Add a single input: a name (its type inferred unless given) or an IOPointer."""
        self._add_io(_as_pointer(inp, pointer_type), True)

    def add_inputs(self, inputs: list):
        """Add a list of inputs: names or IOPointers."""
        for inp in inputs:
            self.add_input(inp)

    def add_output(self, out: str | IOPointer, pointer_type: PointerTypeEnum | None = None):
        """Add a single output: a name (its type inferred unless given) or an IOPointer."""
        self._add_io(_as_pointer(out, pointer_type), False)

    def add_outputs(self, outputs: list):
        """Add a list of outputs: names or IOPointers."""
        for out in outputs:
            self.add_output(out)

    def _add_io(self, elems: list | IOPointer, input: bool):  # noqa: A002 (mltrace's name)
        """Adds pointers once each, in the order given."""
        elems = elems if isinstance(elems, list) else [elems]
        current = self._inputs if input else self._outputs
        seen = {_pointer_key(pointer) for pointer in current if isinstance(pointer, IOPointer)}
        added = list(current)
        for pointer in elems:
            key = _pointer_key(pointer)
            if key not in seen:
                seen.add(key)
                added.append(pointer)
        if input:
            self._inputs = added
        else:
            self._outputs = added

    def set_upstream(self, dependencies: str | list[str]):
        """Depend on the latest run of these components (as Airflow's set_upstream)."""
        dependencies = dependencies if isinstance(dependencies, list) else [dependencies]
        self._dependencies = list(dict.fromkeys(self._dependencies + dependencies))

    def __repr__(self) -> str:
        params = self.to_dictionary()
        for key in ("start_timestamp", "end_timestamp"):
            if params[key] is not None:
                params[key] = params[key].strftime("%Y-%m-%d %H:%M:%S%z")
        for key in ("inputs", "outputs"):
            params[key] = [_without_value(pointer) for pointer in params[key]]
        return json.dumps(params, default=str)


def _without_value(pointer: Any) -> Any:
    if isinstance(pointer, IOPointer):
        return {"name": pointer.name, "pointer_type": pointer.pointer_type.value, "flag": pointer.flag}
    if isinstance(pointer, dict):
        return {key: value for key, value in pointer.items() if key != "value"}
    return pointer


def _as_pointer(pointer: str | IOPointer, pointer_type: PointerTypeEnum | None) -> IOPointer:
    if isinstance(pointer, IOPointer):
        return pointer
    if isinstance(pointer, str):
        return IOPointer(name=pointer, pointer_type=pointer_type)
    raise TypeError(f"An input or output is a name (str) or an IOPointer, not {type(pointer).__name__}.")


def _utcnow() -> datetime:
    # datetime.utcnow() is deprecated from Python 3.12; this is the same naive UTC value.
    from datetime import timezone

    return datetime.now(timezone.utc).replace(tzinfo=None)
