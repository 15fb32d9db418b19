"""The plain path (api/serializers/plain_runs.py) gives exactly the serializers' payloads,
whether it reads a parsed body or, typed with msgspec, the JSON itself.

For generated runs, valid and not: whenever the plain path gives a payload, DRF's
serializers accept the run and give the same one; when they refuse it, the plain path gave
none, so the API answers the serializers' error. And the runs pipelines actually log take
the plain path, so it is not a path that never runs.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from api.requests import validated
from api.serializers.plain_runs import (
    plain_batch_from_json,
    plain_batch_payloads,
    plain_run_from_json,
    plain_run_write_payload,
)
from api.serializers.runs import RunBatchSerializer, RunCreateSerializer, run_write_payload
from bench import payloads as pipeline_payloads

pytestmark = pytest.mark.django_db


def drf_payload(data):
    try:
        return run_write_payload(validated(RunCreateSerializer, data))
    except serializers.ValidationError:
        return None


def drf_batch(data):
    try:
        return [run_write_payload(run) for run in validated(RunBatchSerializer, data)["runs"]]
    except serializers.ValidationError:
        return None


texts = st.one_of(
    st.sampled_from(["", " ", "a", "etl", "s3://b/k.csv", "x/y", "model.pkl", "data", "é", "a\x00b"]),
    st.text(max_size=8),
    st.text(min_size=250, max_size=260, alphabet="ab"),
)
anything = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False), texts)


def mostly(valid, invalid=anything):
    """Valid values nine times in ten: a run is then plain often enough to compare payloads."""
    return st.integers(0, 9).flatmap(lambda n: invalid if n == 0 else valid)


names = st.sampled_from(["etl", "train", "infer", "a b", "é", " lead", "x" * 255])
timestamps = mostly(
    st.sampled_from(
        [
            "2026-12-01T10:00:00+00:00",
            "2026-12-01T10:00:00Z",
            "2026-12-01T10:00:00.123456",
            "2026-12-01 10:00:00",
            "2026-12-01T11:00:00+01:00",
            "2026-12-01T09:59:59-05:30",
            "2026-12-01",
            "2026-12-01T10:00",
        ]
    ),
    st.one_of(st.sampled_from(["2026-13-01T10:00:00", "20261201T100000", "not a time", ""]), anything),
)
pointer_names = mostly(st.sampled_from(["s3://b/k.csv", "model.pkl", "data", "pred_1", "x" * 1024]), texts)
pointer_types = mostly(
    st.sampled_from(["DATA", "model", "Endpoint", "UNKNOWN"]), st.sampled_from(["", "CSV", 3, None])
)


@st.composite
def pointers(draw):
    if draw(st.booleans()):
        return draw(pointer_names)
    pointer = {}
    if draw(st.integers(0, 19)):
        pointer["name"] = draw(pointer_names)
    if draw(st.booleans()):
        pointer["value"] = draw(mostly(st.sampled_from(["", "v1", "2"]), st.one_of(texts, st.none())))
    if draw(st.booleans()):
        pointer["pointer_type"] = draw(pointer_types)
    if not draw(st.integers(0, 19)):
        pointer["flag"] = True
    return pointer if draw(st.integers(0, 29)) else draw(anything)


@st.composite
def runs(draw):
    run = {}
    fields = {
        "component": mostly(names, texts),
        "start_timestamp": timestamps,
        "end_timestamp": timestamps,
        "inputs": mostly(st.lists(pointers(), max_size=4)),
        "outputs": mostly(st.lists(pointers(), max_size=4)),
        "dependencies": mostly(st.lists(mostly(names, texts), max_size=3)),
        "infer_dependencies": mostly(st.booleans()),
        "staleness_threshold": mostly(
            st.one_of(st.integers(0, 10**6), st.just(2**53)),
            st.one_of(st.sampled_from([-1, 2**53 + 1, 2.0, 2.5]), anything),
        ),
        "notes": mostly(texts.filter(lambda t: "\x00" not in t)),
        "git_hash": mostly(st.sampled_from(["", "9f1c2ab", " x ", "h" * 255, "h" * 256])),
        "git_tags": mostly(st.lists(mostly(st.sampled_from(["v1", "x" * 255, "é"]), texts), max_size=3)),
        "code_snapshot": mostly(st.text(max_size=20)),
        "test_results": mostly(
            st.one_of(
                st.none(),
                st.dictionaries(
                    st.text(max_size=3), st.one_of(st.integers(), st.text(max_size=3)), max_size=3
                ),
                st.lists(st.integers(), max_size=3),
                st.recursive(st.integers(), lambda inner: st.lists(inner, max_size=1), max_leaves=80),
            ),
        ),
        "ouputs": st.just([]),
    }
    for key, values in fields.items():
        # The required three are there nearly always, the optional ones half the time, a typo rarely.
        chance = {"component": 49, "start_timestamp": 49, "end_timestamp": 49, "ouputs": 1}.get(key, 25)
        if draw(st.integers(0, 49)) < chance:
            run[key] = draw(values)
    return run


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs())
@example(
    {"component": "etl", "start_timestamp": "2026-12-01T10:00:00Z", "end_timestamp": "2026-12-01T10:00:00Z"}
)
@example(
    {
        "component": "c",
        "start_timestamp": "2026-12-01T10:00:00Z",
        "end_timestamp": "2026-12-01T10:00:00Z",
        "outputs": [{"name": "p", "pointer_type": ""}],
    }
)
def test_a_plain_payload_is_the_serializers_payload(run):
    plain = plain_run_write_payload(run)
    if plain is not None:
        assert plain == drf_payload(run)
        # Stored as JSON: the same text, so the same payload_bytes and the same commit.
        assert json.dumps(plain, sort_keys=True) == json.dumps(drf_payload(run), sort_keys=True)


def body(value):
    """A JSON body as a client sends it, or as the parser gets it (json.dumps writes infinity
    and NaN as tokens no JSON reader takes: msgspec must not take them either)."""
    return json.dumps(value).encode()


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs())
def test_a_run_read_typed_from_its_body_is_the_serializers_payload(run):
    typed = plain_run_from_json(body(run))
    if typed is not None:
        assert typed == drf_payload(json.loads(body(run)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(runs(), min_size=0, max_size=4))
def test_a_batch_read_typed_from_its_body_is_the_serializers_batch(batch):
    typed = plain_batch_from_json(body({"runs": batch}))
    if typed is not None:
        assert typed == drf_batch(json.loads(body({"runs": batch})))


@pytest.mark.parametrize(
    "text",
    [
        # msgspec reads these; the parsed path must decide (a NUL is DRF's error to give).
        '{"component": "etl\\u0000", "start_timestamp": "2026-12-01T10:00:00Z", "end_timestamp": "2026-12-01T10:00:00Z"}',
        # What msgspec does not read goes to the parser: its errors are the API's.
        '{"component": "etl", "start_timestamp": "2026-12-01T10:00:00Z", "end_timestamp": "2026-12-01T10:00:00Z", "test_results": 1e400}',
        '{"component": "etl\\ud800", "start_timestamp": "2026-12-01T10:00:00Z", "end_timestamp": "2026-12-01T10:00:00Z"}',
        '{"component": "etl", "start_timestamp": "2026-12-01T10:00:00Z", "end_timestamp": "2026-12-01T10:00:00Z"} x',
        '{"component": "etl", "start_timestamp": "2026-12-01T10:00:00Z", "end_timestamp": "2026-12-01T10:00:00Z", "notes": "\x01"}',
        '{"component": "etl", "start_timestamp": "2026-12-01T10:00:00Z", "end_timestamp": "2026-12-01T10:00:00Z", "staleness_threshold": 1.0}',
        '{"component": "etl", "start_timestamp": "2026-12-01T10:00:00Z", "end_timestamp": "2026-12-01T10:00:00Z", "outputs": [{"name": "p", "pointer_type": ""}]}',
        '{"component": "etl", "start_timestamp": "2026-12-01T10:00:00Z", "end_timestamp": "2026-12-01T10:00:00Z", "outputs": [{"name": "p", "flag": true}]}',
        "\ufeff{}",
    ],
)
def test_what_msgspec_cannot_vouch_for_goes_to_the_parsed_path(text):
    assert plain_run_from_json(text.encode()) is None
    assert plain_batch_from_json(f'{{"runs": [{text}]}}'.encode()) is None


def test_a_typed_body_keeps_what_json_keeps():
    # The last of a repeated key wins, as in json; integers of any size stay integers.
    text = (
        '{"component": "a", "component": "etl", "start_timestamp": "2026-12-01T10:00:00Z",'
        ' "end_timestamp": "2026-12-01T10:00:00Z", "test_results": {"n": 123456789012345678901234567890,'
        ' "x": 0.1, "e": "\\ud83d\\ude00"}, "outputs": [{"name": "p", "pointer_type": "endpoint"}, "p"]}'
    )
    typed = plain_run_from_json(text.encode())
    assert typed is not None
    assert typed == drf_payload(json.loads(text))
    assert typed["component"] == "etl"
    assert typed["test_results"] == {"n": 123456789012345678901234567890, "x": 0.1, "e": "\U0001f600"}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(runs(), min_size=0, max_size=4))
def test_a_plain_batch_is_the_serializers_batch(batch):
    plain = plain_batch_payloads({"runs": batch})
    if plain is not None:
        assert plain == drf_batch({"runs": batch})


def test_the_runs_pipelines_log_take_the_plain_path():
    import datetime as dt

    stream = pipeline_payloads.pipeline(start=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    batch = [next(stream) for _ in range(300)]
    assert all(plain_run_write_payload(run) is not None for run in batch)
    assert plain_batch_payloads({"runs": batch}) == drf_batch({"runs": batch})
    assert plain_batch_from_json(body({"runs": batch})) == drf_batch({"runs": batch})
    full = {
        "component": "train",
        "start_timestamp": "2026-12-01T10:00:00+01:00",
        "end_timestamp": "2026-12-01 10:30:00",
        "inputs": ["s3://features/clean_data.csv", {"name": "config", "value": "v2", "pointer_type": "data"}],
        "outputs": [{"name": "model.pkl"}, "model.pkl"],
        "dependencies": ["etl", "etl", "validate"],
        "infer_dependencies": False,
        "staleness_threshold": 3600,
        "notes": "  kept as sent  ",
        "git_hash": "9f1c2ab",
        "git_tags": ["v1"],
        "code_snapshot": "print(1)",
        "test_results": {"accuracy": 0.93, "runs": [1, 2]},
    }
    assert plain_run_write_payload(full) == drf_payload(full)
    assert plain_run_write_payload(full)["start_timestamp"] == "2026-12-01T09:00:00+00:00"


@pytest.mark.parametrize(
    "change",
    [
        {"component": "a/b"},
        {"component": ""},
        {"end_timestamp": "2026-11-30T10:00:00Z"},
        {"inputs": [{"name": "p", "pointer_type": "TABLE"}]},
        {"outputs": [{"name": "p", "flag": True}]},
        {"staleness_threshold": -1},
        {"notes": None},
        {"ouputs": []},
    ],
)
def test_what_the_serializers_refuse_never_takes_the_plain_path(change):
    run = {
        "component": "etl",
        "start_timestamp": "2026-12-01T10:00:00Z",
        "end_timestamp": "2026-12-01T10:00:00Z",
    }
    run.update(change)
    assert drf_payload(run) is None
    assert plain_run_write_payload(run) is None
    assert plain_batch_payloads({"runs": [run]}) is None
