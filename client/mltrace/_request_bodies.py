"""mltrace's entities to the server's JSON, checked at the call (_answers.py is the way back).

Everything the server would refuse that can be seen in the write itself is refused here, at
the call, with a ValueError: a write buffered for later must not be refused later, when
nobody is there to read the error.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from datetime import datetime, timezone
from typing import Any

from mltrace.db.models import infer_pointer_type
from mltrace.entities.component_run import ComponentRun
from mltrace.entities.io_pointer import IOPointer

COMPONENT_NAME_MAX = 255
POINTER_NAME_MAX = 1024
GIT_HASH_MAX = 255
OWNER_MAX = 255
TAG_MAX = 255
# A pointer value that is not a string is stored as its repr, or as the repr's digest when
# the repr is longer than this (mltrace 0.17 stored every value as a digest).
VALUE_REPR_MAX = 1024
DEFAULT_STALENESS_THRESHOLD = 60 * 60 * 24 * 30
TASK_NAME_MAX = 255
IDENTIFIER_MAX = 255


def _check_text(what: str, text: Any, *, maximum: int | None = None, allow_empty: bool = True) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a string, not {type(text).__name__}.")
    if not allow_empty and not text:
        raise ValueError(f"{what} must not be empty.")
    if maximum is not None and len(text) > maximum:
        raise ValueError(f"{what} is {len(text)} characters long; the server keeps at most {maximum}.")
    if "\x00" in text:
        raise ValueError(f"{what} holds a NUL character, which the server refuses.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} holds a lone surrogate, which is not text.") from None
    return text


def component_name(name: Any) -> str:
    _check_text("A component name", name, maximum=COMPONENT_NAME_MAX, allow_empty=False)
    if "/" in name:
        raise ValueError(f"A component name cannot contain '/': {name!r}.")
    return name


def value_text(value: Any) -> str:
    """A pointer value as the server stores it: a string as is, else its (bounded) repr."""
    if isinstance(value, str):
        return value
    text = repr(value)
    if len(text) <= VALUE_REPR_MAX:
        return text
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def pointer_request_body(pointer: Any, side: str) -> Any:
    """A name, or {"name", "value", "pointer_type"} when the value or the type must be said."""
    if isinstance(pointer, dict):  # as get_history returns them
        pointer = IOPointer(
            pointer["name"], pointer.get("value", ""), pointer.get("pointer_type"), pointer.get("flag", False)
        )
    if not isinstance(pointer, IOPointer):
        raise TypeError(f"An {side} is a name (str) or an IOPointer, not {type(pointer).__name__}.")
    name = pointer.name if isinstance(pointer.name, str) else str(pointer.name)
    _check_text(f"An {side} name", name, maximum=POINTER_NAME_MAX, allow_empty=False)
    value = _check_text(f"The value of {side} {name!r}", value_text(pointer.value))
    pointer_type = pointer.pointer_type
    if not value and pointer_type is infer_pointer_type(name):
        return name
    body: dict[str, str] = {"name": name, "pointer_type": pointer_type.value}
    if value:
        body["value"] = value
    return body


def timestamp_text(ts: datetime) -> str:
    """ISO 8601 in UTC; a naive datetime is UTC already (mltrace's utcnow())."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc).replace(tzinfo=None)
    return ts.isoformat()


def _utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo is None else ts.astimezone(timezone.utc).replace(tzinfo=None)


def completeness_message(run: ComponentRun) -> tuple[bool, str]:
    """mltrace's check_completeness(): (complete, the messages it would log or raise)."""
    name, ok, message = run.component_name, True, ""
    if run.start_timestamp is None:
        ok = False
        message += f"{name} ComponentRun has no start timestamp. "
    if run.end_timestamp is None:
        ok = False
        message += f"{name} ComponentRun has no end timestamp. "
    if len(run.inputs) == 0:
        message += f"{name} ComponentRun has no inputs. "
    if len(run.outputs) == 0:
        message += f"{name} ComponentRun has no outputs. "
    if len(run.dependencies) == 0 and len(run.inputs) == 0:
        message += f"{name} ComponentRun has no dependencies. "
    return ok, message


def run_request_body(
    run: ComponentRun,
    *,
    infer_dependencies: bool = True,
    staleness_threshold: int = DEFAULT_STALENESS_THRESHOLD,
) -> dict[str, Any]:
    """The request body of a run, a copy that later changes to `run` do not reach."""
    name = component_name(run.component_name)
    start, end = run.start_timestamp, run.end_timestamp
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        what, ts = ("start", start) if not isinstance(start, datetime) else ("end", end)
        raise TypeError(f"The {what} timestamp of a {name} run must be a datetime, not {type(ts).__name__}.")
    if _utc(end) < _utc(start):
        raise ValueError(f"The {name} run ends ({end}) before it starts ({start}).")
    if isinstance(staleness_threshold, bool) or not isinstance(staleness_threshold, int):
        raise TypeError("staleness_threshold is a number of seconds (int).")
    if staleness_threshold < 0:
        raise ValueError("staleness_threshold must not be negative.")
    body: dict[str, Any] = {
        "component": name,
        "start_timestamp": timestamp_text(start),
        "end_timestamp": timestamp_text(end),
    }
    if run.inputs:
        body["inputs"] = [pointer_request_body(pointer, "input") for pointer in run.inputs]
    if run.outputs:
        body["outputs"] = [pointer_request_body(pointer, "output") for pointer in run.outputs]
    if run.dependencies:
        body["dependencies"] = [component_name(dep) for dep in run.dependencies]
    if not infer_dependencies:
        body["infer_dependencies"] = False
    if staleness_threshold != DEFAULT_STALENESS_THRESHOLD:
        body["staleness_threshold"] = staleness_threshold
    if run.notes:
        body["notes"] = _check_text("notes", run.notes)
    if run.git_hash:
        body["git_hash"] = _check_text("git_hash", run.git_hash, maximum=GIT_HASH_MAX)
    if run.git_tags:
        body["git_tags"] = [_check_text("A git tag", tag, maximum=TAG_MAX) for tag in run.git_tags]
    if run.code_snapshot:
        body["code_snapshot"] = _check_text("code_snapshot", run.code_snapshot)
    if run.test_results is not None:
        body["test_results"] = json_copy("test_results", run.test_results)
    return body


def json_copy(what: str, value: Any) -> Any:
    """A copy of a JSON value; ValueError for what is not JSON or holds NUL or lone surrogates."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON (dicts, lists, strings, numbers): {exc}") from None
    copy = json.loads(text)
    stack = [copy]
    while stack:  # iterative: a value may nest deeply
        item = stack.pop()
        if isinstance(item, str):
            _check_text(f"A string in {what}", item)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
    return copy


def component_request_body(name: Any, description: Any, owner: Any, tags: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": component_name(name)}
    if description:
        body["description"] = _check_text("A component description", description)
    if owner:
        body["owner"] = _check_text("A component owner", owner, maximum=OWNER_MAX)
    tags = list(tags or [])
    if tags:
        body["tags"] = [_check_text("A tag", tag, maximum=TAG_MAX, allow_empty=False) for tag in tags]
    return body


# --- monitoring: a task's outputs and feedback ------------------------------------------


def task_name(name: Any) -> str:
    """A task name as the server takes it: 1-255 characters, no '/' (it is a URL path segment)."""
    _check_text("A task name", name, maximum=TASK_NAME_MAX, allow_empty=False)
    if "/" in name:
        raise ValueError(f"A task name cannot contain '/' (it is a part of the server's URLs): {name!r}.")
    return name


def identifier_text(identifier: Any) -> str:
    """An output's identifier: a string of 1-255 characters (an int is taken as its digits)."""
    if isinstance(identifier, numbers.Integral) and not isinstance(identifier, bool):
        identifier = str(int(identifier))
    return _check_text("An identifier", identifier, maximum=IDENTIFIER_MAX, allow_empty=False)


def number_value(what: str, value: Any) -> float:
    """An output's or a feedback's value: a finite real number (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a number, not {type(value).__name__}.")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{what} is too large for a float: {value!r}.") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, not {number}.")
    return number


def monitoring_items(kind: str, task: str, identifiers: Any, values: Any) -> list[dict[str, Any]]:
    """The buffered writes of outputs or feedback: {"task", "identifier", "value", "timestamp"}
    each, timestamped now (UTC). Checks every item before any is written."""
    if isinstance(identifiers, (str, bytes)) or isinstance(values, (str, bytes)):
        raise TypeError(f"identifiers and {kind} values are lists, one identifier for each value.")
    identifiers, values = list(identifiers), list(values)
    if len(identifiers) != len(values):
        raise ValueError(
            f"{len(values)} {kind} values and {len(identifiers)} identifiers: there must be one "
            "identifier for each value."
        )
    now = timestamp_text(datetime.now(timezone.utc))
    items = []
    for identifier, value in zip(identifiers, values):
        text = identifier_text(identifier)
        items.append(
            {
                "task": task,
                "identifier": text,
                "value": number_value(f"The {kind} value for {text!r}", value),
                "timestamp": now,
            }
        )
    return items


def window_size(what: str, size: Any) -> int | None:
    """A window (seconds or pairs) as mltrace took it: None or 0 for no window, else a count."""
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, numbers.Integral):
        raise TypeError(f"{what} must be an int, not {type(size).__name__}.")
    if size < 0:
        raise ValueError(f"{what} must not be negative, not {size}.")
    return int(size) or None
