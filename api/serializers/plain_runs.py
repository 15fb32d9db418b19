"""Run payloads validated without DRF's field machinery, when they are plain.

DRF's serializers cost about 0.4 ms for an inference run and 0.4 s of CPU for a batch of
1,000, before anything is stored: per field, a run_validation, its empty-value checks, its
validators and an error-collecting wrapper. Nearly every run an ML pipeline logs is plain:
strings where strings go, a list where a list goes, ISO timestamps. For those, the functions
here compute the same payload as RunCreateSerializer followed by run_write_payload, directly.

The fastest path reads a JSON body straight into typed structures (msgspec, in C) before
anything parses it as Python objects: plain_run_from_json and plain_batch_from_json. What it
cannot read (any other shape, a number out of range, an escaped NUL) goes to the parsed path,
and from there to DRF.

They never refuse anything. For any run they are not sure of (a wrong type, a blank or
too-long name, a NUL, a timestamp DRF's DateTimeField would not read, an unknown key, an end
before its start, a float for an integer), they return None, and the view validates the
request with DRF's serializers as before, whose errors, shape and wording, are what the API
answers. So what is accepted, and its payload, are the serializers' own:
`tests/test_plain_runs.py` checks, on generated runs both valid and not, that every payload
given here equals the serializers', and that the plain runs of the API's examples take
this path.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import msgspec
from django.conf import settings
from django.utils.dateparse import parse_datetime

from api.parsers import json_depth
from api.serializers.runs import RunCreateSerializer, has_null_character, pointers_in
from components.models import COMPONENT_NAME_MAX_LENGTH
from runs.models import (
    DEFAULT_STALENESS_THRESHOLD,
    GIT_HASH_MAX_LENGTH,
    POINTER_NAME_MAX_LENGTH,
    PointerType,
    infer_pointer_type,
)

# What DRF's CharField refuses in any string: NUL and UTF-16 surrogates.
_REFUSED_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
_POINTER_TYPES = frozenset(PointerType.values)
# The serializer's own field names: a key outside them is DRF's "Unknown field.".
_FIELDS = frozenset(RunCreateSerializer().fields)
_POINTER_KEYS = frozenset({"name", "value", "pointer_type"})


class _NotPlain(Exception):
    """This run needs DRF's serializers (it may still be valid)."""


class _Pointer(msgspec.Struct, forbid_unknown_fields=True):
    """A pointer given as an object, as msgspec reads it; an absent pointer_type is UNSET (an
    empty one is DRF's to refuse)."""

    name: str
    value: str = ""
    pointer_type: str | msgspec.UnsetType = msgspec.UNSET


class _Run(msgspec.Struct, forbid_unknown_fields=True):
    """A run's JSON shape: only the types the plain path takes. Anything else fails to decode."""

    component: str
    start_timestamp: str
    end_timestamp: str
    inputs: list[str | _Pointer] = []
    outputs: list[str | _Pointer] = []
    dependencies: list[str] = []
    infer_dependencies: bool = True
    staleness_threshold: int = DEFAULT_STALENESS_THRESHOLD
    notes: str = ""
    git_hash: str = ""
    git_tags: list[str] = []
    code_snapshot: str = ""
    test_results: Any = None


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    runs: list[_Run]


_decode_run = msgspec.json.Decoder(_Run).decode
_decode_batch = msgspec.json.Decoder(_Batch).decode
_as_dict = msgspec.structs.asdict
# The one escape that gives a string what the plain path must look for: a decoded NUL. (A
# lone surrogate fails to decode, and raw control characters are not JSON.)
_ESCAPED_NUL = b"\\u0000"


def _text(value: Any, *, max_length: int | None = None, blank: bool = True, clean: bool = False) -> str:
    """A string as DRF's CharField takes it; clean: it is known to hold no refused character."""
    if (
        type(value) is not str
        or (not blank and not value)
        or (not clean and _REFUSED_CHARACTERS.search(value))
    ):
        raise _NotPlain
    if max_length is not None and len(value) > max_length:
        raise _NotPlain
    return value


def _component_name(value: Any, clean: bool = False) -> str:
    name = _text(value, max_length=COMPONENT_NAME_MAX_LENGTH, blank=False, clean=clean)
    if "/" in name:
        raise _NotPlain
    return name


def _timestamp(value: Any) -> dt.datetime:
    """DRF's DateTimeField (django's parse_datetime; naive is UTC, the server's only zone),
    in UTC."""
    if type(value) is not str:
        raise _NotPlain
    try:
        parsed = parse_datetime(value)
        if parsed is None:
            raise _NotPlain
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise _NotPlain from None


def _pointers(value: Any, clean: bool = False) -> list[dict[str, str]]:
    """PointerListField: names or {name, value, pointer_type}, once per (name, value).

    clean: no string in it holds a refused character (a body read by msgspec without an
    escaped NUL), so the per-string search is skipped.
    """
    if type(value) is not list or len(value) > settings.MLTRACE_MAX_POINTERS_PER_RUN:
        raise _NotPlain
    unique: dict[tuple[str, str], dict[str, str]] = {}
    search = not clean  # a clean body skips the per-string search, not even a call
    refused = _REFUSED_CHARACTERS.search
    name: Any
    pointer_value: Any
    pointer_type: Any
    for item in value:
        # Inline, not through _text: a batch holds up to 100,000 pointers.
        kind = type(item)
        if kind is str:
            name, pointer_value, pointer_type = item, "", ""
        elif kind is _Pointer:
            # Typed by msgspec: name and value are strings already.
            name, pointer_value, pointer_type = item.name, item.value, item.pointer_type
            if search and refused(pointer_value):
                raise _NotPlain
            if pointer_type is msgspec.UNSET:
                pointer_type = ""
            else:
                pointer_type = pointer_type.upper()
                if pointer_type not in _POINTER_TYPES:
                    raise _NotPlain
        elif kind is dict and item.keys() <= _POINTER_KEYS:
            name = item.get("name")
            pointer_value = item.get("value", "")
            if type(pointer_value) is not str or (search and refused(pointer_value)):
                raise _NotPlain
            pointer_type = item.get("pointer_type", "")
            if pointer_type or "pointer_type" in item:
                if type(pointer_type) is not str:
                    raise _NotPlain
                pointer_type = pointer_type.upper()
                if pointer_type not in _POINTER_TYPES:
                    raise _NotPlain
        else:
            raise _NotPlain
        if (
            type(name) is not str
            or not name
            or len(name) > POINTER_NAME_MAX_LENGTH
            or (search and refused(name))
        ):
            raise _NotPlain
        key = (name, pointer_value)
        if key not in unique:
            unique[key] = {
                "name": name,
                "value": pointer_value,
                "pointer_type": pointer_type or infer_pointer_type(name),
            }
    return list(unique.values())


def _has_non_finite(value: Any) -> bool:
    """Whether a JSON value holds an infinite or NaN float, which DRF's JSONField refuses
    (msgspec refuses to read one, so a body it read has none)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is float:
            if not math.isfinite(item):
                return True
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return False


def _run(data: Any, clean: bool = False) -> dict[str, Any]:
    if type(data) is not dict or not data.keys() <= _FIELDS:
        raise _NotPlain
    if "component" not in data or "start_timestamp" not in data or "end_timestamp" not in data:
        raise _NotPlain
    start = _timestamp(data["start_timestamp"])
    end = _timestamp(data["end_timestamp"])
    if end < start:
        raise _NotPlain
    dependencies = data.get("dependencies", [])
    git_tags = data.get("git_tags", [])
    infer = data.get("infer_dependencies", True)
    threshold = data.get("staleness_threshold", DEFAULT_STALENESS_THRESHOLD)
    test_results = data.get("test_results")
    if type(dependencies) is not list or type(git_tags) is not list or type(infer) is not bool:
        raise _NotPlain
    if type(threshold) is not int or not 0 <= threshold <= 2**53:
        raise _NotPlain
    if test_results is not None and (
        (not clean and (has_null_character(test_results) or _has_non_finite(test_results)))
        or json_depth(test_results) > settings.MLTRACE_MAX_JSON_DEPTH
    ):
        raise _NotPlain
    return {
        "component": _component_name(data["component"], clean),
        "start_timestamp": start.isoformat(),
        "end_timestamp": end.isoformat(),
        "inputs": _pointers(data.get("inputs", []), clean),
        "outputs": _pointers(data.get("outputs", []), clean),
        "dependencies": list(dict.fromkeys(_component_name(name, clean) for name in dependencies)),
        "infer_dependencies": infer,
        "staleness_threshold": threshold,
        "notes": _text(data.get("notes", ""), clean=clean),
        "git_hash": _text(data.get("git_hash", ""), max_length=GIT_HASH_MAX_LENGTH, clean=clean),
        "git_tags": [_text(tag, max_length=255, blank=False, clean=clean) for tag in git_tags],
        "code_snapshot": _text(data.get("code_snapshot", ""), clean=clean),
        "test_results": test_results,
    }


def plain_run_write_payload(data: Any) -> dict[str, Any] | None:
    """The stored payload of a plain run (RunCreateSerializer, then run_write_payload); None: ask DRF."""
    try:
        return _run(data)
    except _NotPlain:
        return None


def _batch(runs: Any, clean: bool = False) -> list[dict[str, Any]] | None:
    if type(runs) is not list or not 1 <= len(runs) <= settings.MLTRACE_MAX_BATCH_RUNS:
        return None
    if pointers_in(runs) > settings.MLTRACE_MAX_BATCH_POINTERS:
        return None
    try:
        return [_run(run, clean) for run in runs]
    except _NotPlain:
        return None


def plain_batch_payloads(data: Any) -> list[dict[str, Any]] | None:
    """The stored payloads of a batch of plain runs (RunBatchSerializer); None: ask DRF."""
    if type(data) is not dict or data.keys() != {"runs"}:
        return None
    return _batch(data["runs"])


def _read(decode: Any, body: bytes) -> Any:
    """The body decoded into the typed shape, or None (not that shape, or not for this path)."""
    if _ESCAPED_NUL in body:
        return None
    try:
        return decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def plain_run_from_json(body: bytes) -> dict[str, Any] | None:
    """plain_run_write_payload of a JSON body (UTF-8), read by msgspec: about a fifth of the cost of
    parsing it with json and then checking each value in Python. None: ask the parsed path."""
    run = _read(_decode_run, body)
    if run is None:
        return None
    try:
        return _run(_as_dict(run), clean=True)
    except _NotPlain:
        return None


def plain_batch_from_json(body: bytes) -> list[dict[str, Any]] | None:
    """plain_batch_payloads of a JSON body (UTF-8), read by msgspec; None: ask the parsed path."""
    batch = _read(_decode_batch, body)
    if batch is None:
        return None
    return _batch([_as_dict(run) for run in batch.runs], clean=True)
