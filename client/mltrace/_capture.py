"""What mltrace's decorators (`register`, `Component.run`) take from a call: the function's
local variables when it returns, the pointers they name, its code, and the files that
`mltrace.load` and `mltrace.save` touched during the call."""

from __future__ import annotations

import contextvars
import inspect
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Callable, cast

from mltrace import _git
from mltrace._request_bodies import value_text
from mltrace.db.models import PointerTypeEnum
from mltrace.entities.io_pointer import IOPointer

logger = logging.getLogger("mltrace")

CODE_SNAPSHOT_MAX = 2**16


@dataclass(frozen=True)
class Declared:
    """What a decorator was told to log: mltrace's arguments of register and Component.run."""

    inputs: Any
    outputs: list
    input_vars: list
    output_vars: list
    input_kwargs: dict
    output_kwargs: dict
    endpoint: bool
    auto_log: bool
    kwargs_message: str  # register and Component.run word a missing pair differently


class Capture:
    """The pointers that load() and save() add to the decorated call in progress."""

    def __init__(self, component_name: str) -> None:
        self.component_name = component_name
        # path -> the stored text of the value read or written (see value_text)
        self.loaded: dict[str, str] = {}
        self.saved: dict[str, str] = {}


_current: contextvars.ContextVar[Capture | None] = contextvars.ContextVar("mltrace_capture", default=None)
# Values this process logged as outputs, by their stored text: auto_log finds the pointer an
# argument came from here (mltrace searched its database by the value's digest).
_outputs_by_value: dict[str, str] = {}


def current_capture() -> Capture | None:
    return _current.get()


@contextmanager
def capturing(component_name: str) -> Iterator[Capture]:
    capture = Capture(component_name)
    token = _current.set(capture)
    try:
        yield capture
    finally:
        _current.reset(token)


def run_capturing_locals(func: Callable, args: tuple, kwargs: dict) -> tuple[dict[str, Any], Any]:
    """Calls func and returns (its local variables when it returned, its return value).

    As mltrace did: a trace function catches the frame of the call's first Python function
    and steps aside at once, so the function itself runs untraced.
    """
    frame = None
    previous = sys.gettrace()

    def snatch(candidate: Any, event: str, arg: Any) -> Any:
        nonlocal frame
        if frame is None and event == "call":
            frame = candidate
            sys.settrace(previous)
        return previous

    sys.settrace(snatch)
    try:
        value = func(*args, **kwargs)
    finally:
        sys.settrace(previous)
    return (dict(frame.f_locals) if frame is not None else {}), value


def code_snapshot(func: Callable) -> str | None:
    """The function's source, decorator lines included, if shorter than 2**16 characters."""
    cached = getattr(func, "__mltrace_source__", None)
    if cached is not None:
        return cached or None
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        source = ""
    if len(source) >= CODE_SNAPSHOT_MAX:
        source = ""
    with suppress(AttributeError, TypeError):
        cast(Any, func).__mltrace_source__ = source
    return source or None


def _pointer(name: Any, value: Any = "", pointer_type: PointerTypeEnum | None = None) -> IOPointer:
    return IOPointer(name=str(name), value=value, pointer_type=pointer_type)


def _pointers(names: list, values: list | None = None, pointer_type: PointerTypeEnum | None = None) -> list:
    values = values if values else [""] * len(names)
    return [_pointer(name, value, pointer_type) for name, value in zip(names, values)]


def pointers_from_locals(
    local_vars: dict[str, Any],
    *,
    input_vars: list[str],
    output_vars: list[str],
    input_kwargs: dict[str, str],
    output_kwargs: dict[str, str],
    endpoint: bool,
    kwargs_message: str,
) -> tuple[list[IOPointer], list[IOPointer]]:
    """The pointers named by mltrace's input_vars, output_vars, input_kwargs and output_kwargs.

    Raises mltrace's ValueErrors for a variable that is not there or lists of unequal length.
    """
    output_type = PointerTypeEnum.ENDPOINT if endpoint else None
    inputs: list[IOPointer] = []
    outputs: list[IOPointer] = []
    for names, found, pointer_type in ((input_vars, inputs, None), (output_vars, outputs, output_type)):
        for var in names:
            if var not in local_vars:
                raise ValueError(f"Variable {var} not in current stack frame.")
            val = local_vars[var]
            if val is None:
                logger.debug(f"Variable {var} has value {val}.")
                continue
            if isinstance(val, list):
                found += _pointers(val, pointer_type=pointer_type)
            else:
                found.append(_pointer(val, pointer_type=pointer_type))
    for pairs, found, pointer_type in ((input_kwargs, inputs, None), (output_kwargs, outputs, output_type)):
        for key, val in pairs.items():
            if key not in local_vars or val not in local_vars:
                raise ValueError(kwargs_message.format(key=key, val=val))
            if local_vars[key] is None:
                logger.debug(f"Variable {key} has value {local_vars[key]}.")
                continue
            if isinstance(local_vars[key], list):
                if not isinstance(local_vars[val], list) or len(local_vars[key]) != len(local_vars[val]):
                    raise ValueError(f'Value "{val}" does not have the same length as the key "{key}."')
                found += _pointers(local_vars[key], local_vars[val], pointer_type)
            else:
                found.append(_pointer(local_vars[key], local_vars[val], pointer_type))
    return inputs, outputs


def artifact_pointers(capture: Capture) -> tuple[list[IOPointer], list[IOPointer]]:
    """The files mltrace.load() read and mltrace.save() wrote during the call."""
    inputs = [_pointer(name, value) for name, value in capture.loaded.items()]
    outputs = [_pointer(name, value) for name, value in capture.saved.items()]
    for pointer in outputs:
        _outputs_by_value[pointer.value] = pointer.name
    return inputs, outputs


def _looks_like_data_or_model(key: str, value: Any) -> bool:
    if "data" in key or "model" in key:
        return True
    kind = type(value)
    if kind.__name__ == "DataFrame" and kind.__module__.startswith("pandas"):
        return True
    return sys.getsizeof(value) > 1e6


def auto_log_pointers(arguments: dict[str, Any], *, save: Callable) -> list[IOPointer]:
    """mltrace's auto_log: data- and model-like arguments as pointers.

    A value this process already logged as an output keeps that output's name; any other
    is saved with joblib and logged under the file's path.
    """
    pointers = []
    for key, value in arguments.items():
        if not _looks_like_data_or_model(key, value):
            continue
        stored = value_text(value)
        name = _outputs_by_value.get(stored)
        if name is None:
            name = save(value, var_name=key)
            _outputs_by_value[stored] = name
        pointers.append(IOPointer(name=name, value=value))
    return pointers


def input_arguments(func: Callable, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The call's arguments by name, defaults included (what auto_log looks at)."""
    arguments = {
        name: parameter.default
        for name, parameter in inspect.signature(func).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    arguments.update(zip(inspect.getfullargspec(func).args, args))
    arguments.update(kwargs)
    return arguments


def call_and_capture(
    run: Any, func: Callable, args: tuple, kwargs: dict, declared: Declared, *, save: Callable
) -> tuple[Any, dict[str, Any]]:
    """Calls func for a decorator, ends `run`, and adds what the call logs: the pointers its
    variables name, the declared ones, load/save and auto_log, the code and the git commit.

    Returns (the function's value, its local variables at return). Raises mltrace's
    ValueErrors for variables that are not there, after the call, as mltrace did.
    """
    with capturing(run.component_name) as capture:
        local_vars, value = run_capturing_locals(func, args, kwargs)
    run.set_end_timestamp()
    inputs, outputs = pointers_from_locals(
        local_vars,
        input_vars=declared.input_vars,
        output_vars=declared.output_vars,
        input_kwargs=declared.input_kwargs,
        output_kwargs=declared.output_kwargs,
        endpoint=declared.endpoint,
        kwargs_message=declared.kwargs_message,
    )
    if declared.auto_log:
        arguments = input_arguments(func, args, kwargs)
        inputs += auto_log_pointers(arguments, save=save)
    if not callable(declared.inputs):
        inputs += [IOPointer(name=name) for name in declared.inputs]
    output_type = PointerTypeEnum.ENDPOINT if declared.endpoint else None
    outputs += [IOPointer(name=name, pointer_type=output_type) for name in declared.outputs]
    loaded, saved = artifact_pointers(capture)
    inputs += loaded
    outputs += saved
    if declared.auto_log:
        produced = {k: v for k, v in local_vars.items() if k not in arguments}
        outputs += auto_log_pointers(produced, save=save)
    run.add_inputs(inputs)
    run.add_outputs(outputs)
    git_hash, git_tags = _git.hash_and_tags()
    if git_hash:
        run.git_hash = git_hash
    if git_tags is not None:
        run.git_tags = git_tags
    snapshot = code_snapshot(func)
    if snapshot:
        run.code_snapshot = snapshot
    return value, local_vars
