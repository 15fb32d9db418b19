"""The server's answers: the reads, and the writes whose answer a call returns, made once this
process's own writes are committed (so a read sees every write made before it, as with
mltrace); their JSON back to mltrace's entities, and their errors to mltrace's.

_request_bodies.py is the other way: mltrace's entities to the server's JSON.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote_plus, urlsplit

from mltrace import _state
from mltrace._http import error_for
from mltrace.db.models import PointerTypeEnum
from mltrace.entities.base_component import Component
from mltrace.entities.component_run import ComponentRun
from mltrace.entities.io_pointer import IOPointer
from mltrace.errors import ServerError, ServerUnreachable

PAGE_LIMIT = 1000

# Run id -> component name: dependencies are read as ids and shown as component names.
_component_of_run: dict[int, str] = {}


class Missing(Exception):
    """A 404 from a read; `error` is the ServerError that says what the server answered."""

    def __init__(self, error: ServerError) -> None:
        super().__init__(str(error))
        self.error = error


# --- requests, after this process's writes -----------------------------------------------


def wait_for_own_writes(*, committed: bool = True) -> None:
    """Waits until this process's writes are accepted (and committed), for as long as the
    server answers. Raises ServerUnreachable once it has not answered for the read timeout."""
    current = _state.current_sender()
    if current is None:
        return
    give_up = _state.settings.read_give_up_seconds
    unreachable_since = None
    while True:
        try:
            done = current.flush(timeout=1.0) if committed else current.wait_sent(timeout=1.0)
            stuck = current.outage_since is not None
        except ServerUnreachable:
            done, stuck = False, True
        if done or current._in_sending_thread():
            return
        now = time.monotonic()
        if not stuck:
            unreachable_since = None
        elif unreachable_since is None:
            unreachable_since = min(now, current.outage_since or now)
        elif now - unreachable_since > give_up:
            raise ServerUnreachable(
                f"cannot reach the mltrace server at {current.transport.url}: {current.pending()} "
                f"writes of this process wait to be sent"
            )


def read(path: str, params: dict | None = None, *, missing: str | None = None) -> Any:
    """GET after this process's writes are committed; a 404 is RuntimeError(missing), or
    Missing when no message is given."""
    wait_for_own_writes()
    try:
        return _state.sender().transport.get_json(
            path, params, give_up_after=_state.settings.read_give_up_seconds
        )
    except ServerError as exc:
        if exc.status == 404 and missing is not None:
            raise RuntimeError(missing) from None
        if exc.status == 404:
            raise Missing(exc) from None
        raise


def pages(path: str, params: dict, limit: int | None, *, page_limit: int = PAGE_LIMIT) -> list:
    """The results of a paged list, following `next` until `limit` (None: all of them)."""
    wait_for_own_writes()
    transport = _state.sender().transport
    results: list = []
    params = {key: value for key, value in params.items() if value is not None}
    while limit is None or len(results) < limit:
        wanted = page_limit if limit is None else min(page_limit, limit - len(results))
        try:
            page = transport.get_json(
                path, {**params, "limit": wanted}, give_up_after=_state.settings.read_give_up_seconds
            )
        except ServerError as exc:
            if exc.status == 404:
                raise Missing(exc) from None
            raise
        results += page["results"]
        if not page.get("next"):
            break
        # The next page's link, against this client's base URL (a proxy may rewrite hosts).
        link = urlsplit(page["next"])
        path, params = link.path, dict(pair.split("=", 1) for pair in link.query.split("&") if "=" in pair)
        params = {key: unquote_plus(value) for key, value in params.items() if key != "limit"}
        prefix = urlsplit(transport.url).path
        if prefix and path.startswith(prefix):
            path = path[len(prefix) :]
    return results if limit is None else results[:limit]


def write_now(method: str, path: str, body: dict, *, missing: str | None = None) -> Any:
    """A write whose answer mltrace returned: after this process's writes are committed.

    A 400 is ValueError, a 409 RuntimeError, and a 404 RuntimeError(missing) when `missing`
    is given; any other error a ServerError."""
    wait_for_own_writes()
    transport = _state.sender().transport
    response = transport.request(
        method,
        path,
        body=json.dumps(body, ensure_ascii=False).encode(),
        give_up_after=_state.settings.read_give_up_seconds,
    )
    if response.status == 404 and missing is not None:
        raise RuntimeError(missing)
    if response.status == 400:
        raise ValueError(f"the mltrace server refused this: {response.error_text()}")
    if response.status == 409:
        raise RuntimeError(response.error_text())
    if response.status >= 300:
        raise error_for(transport.url, response)
    return response.json()


# --- the server's JSON back to mltrace's entities ----------------------------------------


def parse_timestamp(text: str | None) -> datetime | None:
    """The server's UTC timestamps as naive UTC datetimes, as mltrace returned them."""
    if not text:
        return None
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    ts = datetime.fromisoformat(text)
    return ts.astimezone(timezone.utc).replace(tzinfo=None) if ts.tzinfo else ts


def pointer_dict(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": body["name"],
        "value": body["value"],
        "pointer_type": PointerTypeEnum(body["pointer_type"]),
        "flag": body["flag"],
    }


def pointer_object(body: dict[str, Any]) -> IOPointer:
    return IOPointer(body["name"], body["value"], PointerTypeEnum(body["pointer_type"]), body["flag"])


def component(body: dict[str, Any]) -> Component:
    return Component(
        name=body["name"], description=body["description"], owner=body["owner"], tags=list(body["tags"])
    )


def component_run(
    body: dict[str, Any], dependency_names: list[str], *, pointers_as_objects: bool
) -> ComponentRun:
    """A committed run of the API as mltrace's ComponentRun."""
    convert = pointer_object if pointers_as_objects else pointer_dict
    return ComponentRun(
        component_name=body["component"],
        notes=body["notes"],
        start_timestamp=parse_timestamp(body["start_timestamp"]),
        end_timestamp=parse_timestamp(body["end_timestamp"]),
        inputs=[convert(pointer) for pointer in body["inputs"]],
        outputs=[convert(pointer) for pointer in body["outputs"]],
        git_hash=body["git_hash"] or None,
        git_tags=body["git_tags"] or None,
        code_snapshot=body["code_snapshot"] or None,
        id=body["id"],
        stale=list(body["stale"]),
        dependencies=dependency_names,
        test_results=body.get("test_results"),
    )


def component_runs(bodies: list[dict], *, pointers_as_objects: bool) -> list[ComponentRun]:
    """ComponentRuns, their dependencies named by component as mltrace named them."""
    for body in bodies:
        _component_of_run[body["id"]] = body["component"]
    unknown = sorted({dep for body in bodies for dep in body["dependencies"] if dep not in _component_of_run})
    transport = _state.sender().transport
    for run_id in unknown:
        try:
            dep = transport.get_json(
                f"/api/v1/runs/{run_id}/", give_up_after=_state.settings.read_give_up_seconds
            )
        except ServerError as exc:
            if exc.status != 404:
                raise
            continue
        if dep.get("component"):
            _component_of_run[run_id] = dep["component"]
    return [
        component_run(
            body,
            [_component_of_run.get(dep, f"run {dep}") for dep in body["dependencies"]],
            pointers_as_objects=pointers_as_objects,
        )
        for body in bodies
    ]
