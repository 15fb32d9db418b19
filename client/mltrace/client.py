"""mltrace's client API over the mltrace server.

Writes (`create_component`, `log_component_run`, `register`, `Component.run`) are checked and
copied at the call and sent by a background thread (see _sender.py): the call costs
microseconds. Reads first wait until this process's writes are committed, so a read sees
every write made before it, as with mltrace. Flags, notes and tags answer mltrace's return
values and errors, so they wait for the server too. The requests whose answer a call returns,
and those answers as mltrace's entities, are in _answers.py; save() and load() in _files.py.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import uuid
import warnings
from datetime import datetime
from typing import Any, Callable
from urllib.parse import parse_qs, quote, urlsplit

from mltrace import _answers, _capture, _git, _monitoring, _state
from mltrace._config import normalize_url, url_with_host
from mltrace._files import load as load  # mltrace.client.load, as in mltrace 0.17
from mltrace._files import save as save  # mltrace.client.save, as in mltrace 0.17
from mltrace._request_bodies import (
    completeness_message,
    component_request_body,
    run_request_body,
    timestamp_text,
    value_text,
)
from mltrace._sender import COMPONENT, FEEDBACK, OUTPUT, RUN
from mltrace.entities.base_component import Component
from mltrace.entities.component_run import ComponentRun
from mltrace.entities.io_pointer import IOPointer
from mltrace.errors import NotSupported

logger = logging.getLogger("mltrace")

_db_uri: str | None = os.environ.get("DB_URI") or None
_warned_db_uri = False
# The last component write this process sent, per server and name: Component.run re-sends
# its component on every call in mltrace; the same write again changes nothing, so it is
# not sent again.
_sent_components: dict[tuple[str, str], str] = {}


# --------------------- Server and database configuration ------------------ #


def set_server(url: str, token: str | None = None) -> None:
    """Sends what follows to the server at `url` (with `token`, or the current one if None)."""
    changes: dict[str, Any] = {"server_url": normalize_url(url)}
    if token is not None:
        changes["token"] = token
    _state.reconfigure(**changes)


def get_server() -> str:
    """The URL of the server this process writes to."""
    return _state.settings.server_url


def set_address(address: str) -> None:
    """mltrace's meaning: the host the data lives on; here the server at http://ADDRESS:8000."""
    _state.reconfigure(server_url=url_with_host(_state.settings.server_url, address))


def set_db_uri(uri: str) -> None:
    """Accepted for mltrace code; the client talks to a server, so this changes nothing."""
    global _db_uri, _warned_db_uri
    _db_uri = uri
    if not _warned_db_uri:
        _warned_db_uri = True
        warnings.warn(
            "mltrace.set_db_uri() changes nothing: this mltrace client talks to the mltrace server "
            f"at {get_server()} (set MLTRACE_SERVER_URL, or call mltrace.set_server()).",
            stacklevel=2,
        )


def get_db_uri() -> str | None:
    """What set_db_uri() (or DB_URI) last gave; the client does not use it."""
    return _db_uri


def set_sync(sync: bool = True) -> None:
    """True: each write waits until the server has committed it (?sync=true), as in mltrace."""
    _answers.wait_for_own_writes(committed=False)
    _state.settings.sync = bool(sync)


def set_error_callback(callback: Callable | None = None) -> None:
    """Calls `callback(refused)` (a mltrace.errors.RefusedWrite) for each write the server refuses."""
    _state.settings.error_callback = callback


def flush(timeout: float | None = None) -> bool:
    """Returns once every write made so far is accepted and committed by the server.

    False if `timeout` seconds passed first. Raises ServerError for a token the server refuses.
    """
    return _state.sender().flush(timeout)


def clean_db():
    """Not over a server: deleting every team's lineage is an administrator's job."""
    raise NotSupported(
        "mltrace.clean_db() is not supported by the mltrace server client: the server keeps "
        "everyone's lineage. Drop and migrate the server's database to start over."
    )


# ----------------------- Creation functions ---------------------------- #


def create_component(name: str, description: str, owner: str, tags: list[str] = []):  # noqa: B006
    """Creates a component, or adds tags to it and replaces non-empty description and owner."""
    payload = component_request_body(name, description, owner, tags)
    key = (_state.settings.server_url, payload["name"])
    fields = json.dumps(payload, sort_keys=True)
    if _sent_components.get(key) == fields and not _state.settings.sync:
        return
    _submit(COMPONENT, payload)
    _sent_components[key] = fields


def tag_component(component_name: str, tags: list[str]):
    """Adds tags to an existing component. Raises RuntimeError if there is none of that name."""
    payload = component_request_body(component_name, "", "", tags)
    path = f"/api/v1/components/{_quote(component_name)}/"
    if not payload.get("tags"):
        _answers.read(path, missing=f'Component with name "{component_name}" not found.')
        return
    _answers.write_now(
        "POST",
        path + "tags/",
        {"tags": payload["tags"]},
        missing=f'Component with name "{component_name}" not found.',
    )


def log_component_run(
    component_run: ComponentRun,
    set_dependencies_from_inputs=True,
    staleness_threshold: int = (60 * 60 * 24 * 30),
):
    """Logs a run: checked now, committed by the server moments later (at once with set_sync).

    Raises RuntimeError for a run without start or end timestamp, as mltrace did.
    """
    complete, message = completeness_message(component_run)
    if not complete:
        raise RuntimeError(message)
    if message:
        logger.info(message)
    payload = run_request_body(
        component_run,
        infer_dependencies=bool(set_dependencies_from_inputs),
        staleness_threshold=staleness_threshold,
    )
    _submit(RUN, payload)


def _submit(kind: str, payload: dict) -> None:
    sender = _state.sender()
    if _state.settings.sync:
        sender.send_now(kind, payload)
    else:
        sender.put(kind, payload)


def create_random_ids(num_outputs=1) -> list[str]:
    """Returns a list of num_outputs ids that a client can use to tag outputs."""
    return [str(uuid.uuid4()) for _ in range(num_outputs)]


def register(
    component_name: str,
    inputs: list[str] = [],  # noqa: B006 (mltrace's signature)
    outputs: list[str] = [],  # noqa: B006
    input_vars: list[str] = [],  # noqa: B006
    output_vars: list[str] = [],  # noqa: B006
    input_kwargs: dict[str, str] = {},  # noqa: B006
    output_kwargs: dict[str, str] = {},  # noqa: B006
    endpoint: bool = False,
    staleness_threshold: int = (60 * 60 * 24 * 30),
    auto_log: bool = False,
):
    """Decorator: logs a run of `component_name` for every call of the function.

    Its inputs and outputs are the values, at return, of the variables that input_vars,
    output_vars, input_kwargs and output_kwargs name; with endpoint, outputs are ENDPOINTs.
    """

    declared = _capture.Declared(
        inputs=inputs,
        outputs=outputs,
        input_vars=input_vars,
        output_vars=output_vars,
        input_kwargs=input_kwargs,
        output_kwargs=output_kwargs,
        endpoint=endpoint,
        auto_log=auto_log,
        kwargs_message="Variables ({key}, {val}) not in current stack frame.",
    )

    def actual_decorator(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            run = ComponentRun(component_name)
            run.set_start_timestamp()
            value, _ = _capture.call_and_capture(run, func, args, kwargs, declared, save=save)
            log_component_run(run, staleness_threshold=staleness_threshold)
            return value

        return wrapper

    return actual_decorator


def get_git_hash() -> str | None:
    """The commit of the git repository around the working directory, or None."""
    return _git.hash_and_tags()[0]


def get_git_tags() -> list[str] | None:
    """The tags of that commit, or None when it has none."""
    return _git.hash_and_tags()[1]


def add_notes_to_component_run(component_run_id: int | str, notes: str) -> str:
    """Replaces a run's notes and returns them. Raises RuntimeError if there is no such run."""
    if not isinstance(notes, str):
        raise TypeError("notes field must be of type str")
    run_id = _run_id(component_run_id, missing=f'ComponentRun with ID "{component_run_id}" not found.')
    body = _answers.write_now(
        "PATCH",
        f"/api/v1/runs/{run_id}/",
        {"notes": notes},
        missing=f'ComponentRun with ID "{component_run_id}" not found.',
    )
    return body["notes"]


def flag_output_id(output_id: str) -> bool:
    """Flags every pointer named output_id. Raises RuntimeError if there is none."""
    _answers.write_now(
        "POST",
        "/api/v1/flag/",
        {"output_id": output_id},
        missing=f"IOPointer with name {output_id} does not exist.",
    )
    return True


def unflag_output_id(output_id: str) -> bool:
    """Unflags every pointer named output_id. Raises RuntimeError if there is none."""
    _answers.write_now(
        "POST",
        "/api/v1/unflag/",
        {"output_id": output_id},
        missing=f"IOPointer with name {output_id} does not exist.",
    )
    return False


def unflag_all():
    """Unflags every pointer."""
    _answers.write_now("POST", "/api/v1/unflag/", {"all": True})


# ----------------- Basic retrieval functions ------------------- #


def get_history(
    component_name: str,
    limit: int = 10,
    date_lower: datetime | str = datetime.min,
    date_upper: datetime | str = datetime.max,
) -> list[ComponentRun]:
    """The component's committed runs, newest start first, bounds inclusive; None: no limit."""
    if not date_lower:
        date_lower = datetime.min
    if not date_upper:
        date_upper = datetime.max
    params: dict[str, Any] = {}
    if date_lower != datetime.min:
        params["date_lower"] = _bound(date_lower)
    if date_upper != datetime.max:
        params["date_upper"] = _bound(date_upper)
    try:
        bodies = _answers.pages(f"/api/v1/components/{_quote(component_name)}/history/", params, limit)
    except _answers.Missing:
        return []
    return _answers.component_runs(bodies, pointers_as_objects=False)


def get_component_information(component_name: str) -> Component:
    """The component's name, description, owner and tags. Raises RuntimeError if unknown."""
    body = _answers.read(
        f"/api/v1/components/{_quote(component_name)}/",
        missing=f"Component with name {component_name} not found.",
    )
    return _answers.component(body)


def get_component_run_information(component_run_id: int | str) -> ComponentRun:
    """One committed run. Raises RuntimeError if there is none with this id."""
    missing = f"Component run with id {component_run_id} not found."
    run_id = _run_id(component_run_id, missing=missing)
    body = _answers.read(f"/api/v1/runs/{run_id}/", missing=missing)
    if body["status"] != "committed":
        detail = f": {body['error']}" if body.get("error") else ""
        raise RuntimeError(f"Component run with id {run_id} is {body['status']}, not committed{detail}.")
    return _answers.component_runs([body], pointers_as_objects=False)[0]


def get_components(tag="", owner="") -> list[Component]:
    """Every component with this tag and/or owner. Raises RuntimeError when none matches."""
    params = {"tag": tag or None, "owner": owner or None}
    components = [_answers.component(body) for body in _answers.pages("/api/v1/components/", params, None)]
    if not components:
        raise RuntimeError("Search yielded no components.")
    return components


def get_recent_run_ids(limit: int = 5, last_run_id=None) -> list[int]:
    """Ids of the newest committed runs by start time; after last_run_id when given."""
    params = {"before": int(last_run_id) if last_run_id else None}
    return [body["id"] for body in _answers.pages("/api/v1/runs/", params, limit)]


def get_io_pointer(io_pointer_id: str, io_pointer_val: Any = None, create=True):
    """The IOPointer a run would log for this name and value (its type inferred from the name).

    Pointers live on the server as part of runs; create=False, which asked mltrace's
    database whether one exists, is not supported.
    """
    if not create:
        raise NotSupported(
            "mltrace.get_io_pointer(create=False) is not supported: the server has no lookup of a "
            "pointer apart from the runs that read or wrote it (try mltrace.backtrace)."
        )
    value = "" if io_pointer_val is None else value_text(io_pointer_val)
    return IOPointer(name=io_pointer_id, value=value)


def get_all_tags() -> list[str]:
    """Every tag name."""
    return list(_answers.pages("/api/v1/tags/", {}, None))


# --------------- Complex retrieval functions ------------------ #


def backtrace(output_pointer: str):
    """The trace of an output: [(depth, ComponentRun)], depth being hops from the run that
    produced output_pointer, each run once (at its shortest depth), depth-first."""
    if not isinstance(output_pointer, str):
        raise RuntimeError("Please specify an output id of string type.")
    body = _answers.read(
        "/api/v1/trace/", {"output_id": output_pointer}, missing=f"ID {output_pointer} does not exist."
    )
    runs = _answers.component_runs([node["run"] for node in body["nodes"]], pointers_as_objects=True)
    return [(node["depth"], run) for node, run in zip(body["nodes"], runs)]


def impact(output_id: str, depth: int | None = None):
    """What an output touched: [(depth, ComponentRun)] of every committed run downstream of it,
    nearest first. The runs that read output_id are at depth 1, the runs that depend on those
    at 2, and so on, each run once at its shortest depth; with depth, at most that many hops.

    Not in mltrace 0.17 (its issue #219 asks for it): an addition of this client.
    """
    nodes, _ = impact_nodes(output_id, depth)
    runs = _answers.component_runs([node["run"] for node in nodes], pointers_as_objects=True)
    return [(node["depth"], run) for node, run in zip(nodes, runs)]


def impact_nodes(output_id: str, depth: int | None = None) -> tuple[list[dict], list[list[int]]]:
    """The server's impact of an output, every page: its nodes ({"depth", "run": body}) and
    edges ([run id, dependency id]). Raises RuntimeError for an unknown output id."""
    if not isinstance(output_id, str):
        raise RuntimeError("Please specify an output id of string type.")
    params: dict[str, Any] = {"output_id": output_id, "limit": _answers.PAGE_LIMIT}
    if depth is not None:
        params["depth"] = int(depth)
    nodes: list[dict] = []
    edges: list[list[int]] = []
    while True:
        body = _answers.read("/api/v1/impact/", params, missing=f"ID {output_id} does not exist.")
        nodes += body["nodes"]
        edges += body["edges"]
        if not body["next"]:
            return nodes, edges
        params["cursor"] = parse_qs(urlsplit(body["next"]).query)["cursor"][0]


def web_trace(output_id: str):
    """The trace of an output as mltrace's UI tree: [node], nodes of runs and their outputs."""
    return _answers.read(
        "/api/v1/trace/",
        {"output_id": output_id, "format": "tree"},
        missing=f"ID {output_id} does not exist.",
    )


def review_flagged_outputs():
    """(flagged output names, [(ComponentRun, count)]): the runs behind flagged outputs, the
    runs shared by more of them first (then newer first)."""
    body = _answers.read("/api/v1/review/")
    runs = _answers.component_runs([item["run"] for item in body["runs"]], pointers_as_objects=True)
    return list(body["flagged"]), [(run, item["count"]) for run, item in zip(runs, body["runs"])]


# --------------- Monitoring (mltrace after 0.17) ------------------ #


def log_output(
    task_name: str,
    identifier: str,
    val: float,
):
    """Logs a task's output (a prediction) under identifier; buffered as runs are."""
    _monitoring.log(OUTPUT, task_name, [identifier], [val])


def log_feedback(
    task_name: str,
    identifier: str,
    val: float,
):
    """Logs the feedback (the true value) for a task's identifier; buffered as runs are."""
    _monitoring.log(FEEDBACK, task_name, [identifier], [val])


def compute_metric(
    task_name: str,
    metric_fn: Callable | str,
    window_size: int | None = None,
):
    """metric_fn(y_true, y_pred) of the task's pairs whose output was logged in the last
    window_size seconds (None: every pair), and returns it; a supported metric's name is
    computed by the server."""
    return _monitoring.compute(task_name, metric_fn, _monitoring.seconds(window_size))


# --------------- The callers' arguments as the server takes them ------------------ #


def _quote(name: str) -> str:
    return quote(str(name), safe="")


def _run_id(value: Any, *, missing: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise RuntimeError(missing) from None


def _bound(value: datetime | str) -> str:
    """A history bound as the server takes it (an ISO date and time). A string that Python
    reads as one ("2024-01-01 00:30", as mltrace took it) is sent in that form; any other
    is sent as given, for the server to refuse."""
    if isinstance(value, str):
        try:
            return timestamp_text(datetime.fromisoformat(value))
        except ValueError:
            return value
    return timestamp_text(value)
