"""Every write to runs, pointers and the accepted-write log.

The commit of one accepted write (`write_commit`) is the single function both doors use:
the synchronous view calls it right after accepting, a worker's task calls it later. Commits
run one at a time in acceptance order (`commit_lock`), so a commit sees exactly the rows that
every earlier accepted write produced: the database equals synchronous ingestion.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from django.db import connection, transaction
from django.db.models import Case, F, Max, Value, When
from django.utils import timezone

from components.models import Component
from components.services import component_get_or_create, component_upsert
from mltrace_site.exceptions import (
    POINTER_NOT_FOUND,
    RUN_NOT_FOUND,
    DependencyUnresolved,
    NotFound,
)
from runs.models import (
    IOPointer,
    Run,
    RunDependency,
    RunInput,
    RunOutput,
    Write,
    pointer_key,
    pointer_name_hash,
)

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock key that serializes commits ("mltr").
COMMIT_LOCK_KEY = 0x6D6C7472
SECONDS_PER_DAY = 60 * 60 * 24


def commit_lock() -> None:
    """Waits until no other transaction is committing writes; held until this one ends.

    Taken before an accepted write gets its id and around every commit, so ids are assigned
    and committed in one order. On SQLite every transaction already begins IMMEDIATE and
    writers queue on the database lock.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [COMMIT_LOCK_KEY])


def pointers_get_or_create(specs: Iterable[dict[str, str]]) -> dict[tuple[str, str], IOPointer]:
    """Returns the pointers of these (name, value) specs by identity, creating missing ones.

    A pointer that exists keeps its type; a new one takes the spec's (given or inferred) type.
    Runs under the commit lock, so no other transaction creates pointers meanwhile.
    """
    by_key = {pointer_key(s["name"], s["value"]): s for s in specs}
    if not by_key:
        return {}
    found = {p.key: p for p in IOPointer.objects.filter(key__in=list(by_key))}
    missing = [
        IOPointer(
            name=spec["name"],
            value=spec["value"],
            pointer_type=spec["pointer_type"],
            name_hash=pointer_name_hash(spec["name"]),
            key=key,
        )
        for key, spec in by_key.items()
        if key not in found
    ]
    if missing:
        for pointer in IOPointer.objects.bulk_create(missing):
            found[pointer.key] = pointer
    return {(p.name, p.value): p for p in found.values()}


def inferred_dependencies(*, input_names: list[str], before_id: int) -> set[int]:
    """For each input name, the highest run id below before_id that output a pointer of it."""
    if not input_names:
        return set()
    wanted = set(input_names)
    rows = (
        RunOutput.objects.filter(
            pointer__name_hash__in={pointer_name_hash(n) for n in wanted}, run_id__lt=before_id
        )
        .values("pointer__name")
        .annotate(latest=Max("run_id"))
    )
    return {row["latest"] for row in rows if row["pointer__name"] in wanted}


def explicit_dependencies(*, names: list[str], before_id: int) -> tuple[set[int], list[str]]:
    """For each component name, its run below before_id with the latest start_timestamp.

    Ties on start_timestamp go to the later-accepted run. Returns (run ids, unresolved names).
    """
    resolved: set[int] = set()
    unresolved: list[str] = []
    for name in names:
        run_id = (
            Run.objects.filter(component__name=name, id__lt=before_id)
            .order_by("-start_timestamp", "-id")
            .values_list("id", flat=True)
            .first()
        )
        if run_id is None:
            unresolved.append(name)
        else:
            resolved.add(run_id)
    return resolved, unresolved


def staleness_messages(
    *, run_id: int, start: dt.datetime, dependencies: list[Run], threshold: int
) -> list[str]:
    """mltrace's staleness messages, word for word, for dependencies in ascending id."""
    messages = []
    for dep in dependencies:
        name = dep.component.name
        seconds = (start - dep.start_timestamp).total_seconds()
        if seconds > threshold:
            days = int(seconds // SECONDS_PER_DAY)
            messages.append(f"{name} (ID {dep.id}) was run {days} days ago.")
        # The dependency itself counts when it began before this run; k more are fresher.
        runs_in_window = Run.objects.filter(
            component_id=dep.component_id,
            id__lt=run_id,
            start_timestamp__gte=dep.start_timestamp,
            start_timestamp__lte=start,
        ).count()
        fresher = runs_in_window - 1
        if fresher >= 1:
            noun = "run" if fresher == 1 else "runs"
            messages.append(
                f"{name} (ID {dep.id}) has {fresher} fresher {noun} that began before this "
                "component run started."
            )
    return messages


def run_commit(*, run_id: int, payload: dict[str, Any], accepted_at: dt.datetime, strict: bool) -> Run:
    """Commits one accepted run: its component, pointers, dependencies and staleness.

    With strict (the synchronous door), an explicit dependency with no earlier run raises
    DependencyUnresolved; otherwise the run is committed with the name listed in
    unresolved_dependencies. Call inside a transaction holding the commit lock.
    """
    start = dt.datetime.fromisoformat(payload["start_timestamp"])
    end = dt.datetime.fromisoformat(payload["end_timestamp"])

    dependency_ids: set[int] = set()
    if payload.get("infer_dependencies", True):
        dependency_ids |= inferred_dependencies(
            input_names=list(dict.fromkeys(p["name"] for p in payload["inputs"])), before_id=run_id
        )
    explicit, unresolved = explicit_dependencies(names=payload["dependencies"], before_id=run_id)
    if unresolved and strict:
        raise DependencyUnresolved(unresolved)
    dependency_ids |= explicit

    component = component_get_or_create(name=payload["component"], accepted_at=accepted_at)
    pointers = pointers_get_or_create([*payload["inputs"], *payload["outputs"]])
    dependencies = list(Run.objects.filter(id__in=dependency_ids).select_related("component").order_by("id"))
    run = Run.objects.create(
        id=run_id,
        component=component,
        start_timestamp=start,
        end_timestamp=end,
        notes=payload["notes"],
        git_hash=payload["git_hash"],
        git_tags=payload["git_tags"],
        code_snapshot=payload["code_snapshot"],
        test_results=payload["test_results"],
        stale=staleness_messages(
            run_id=run_id,
            start=start,
            dependencies=dependencies,
            threshold=payload["staleness_threshold"],
        ),
        unresolved_dependencies=unresolved,
        created_at=accepted_at,
    )
    RunInput.objects.bulk_create(
        [RunInput(run=run, pointer=pointers[(p["name"], p["value"])]) for p in payload["inputs"]]
    )
    RunOutput.objects.bulk_create(
        [RunOutput(run=run, pointer=pointers[(p["name"], p["value"])]) for p in payload["outputs"]]
    )
    RunDependency.objects.bulk_create([RunDependency(run=run, depends_on_id=dep.id) for dep in dependencies])
    Component.objects.filter(pk=component.pk).update(
        run_count=F("run_count") + 1,
        last_run_at=Case(
            When(last_run_at__gte=start, then=F("last_run_at")),
            default=Value(start),
        ),
    )
    if run.stale:
        logger.warning("run %s of %s is stale: %s", run.id, component.name, run.stale)
    return run


def write_commit(
    *, kind: str, write_id: int, payload: dict[str, Any], accepted_at: dt.datetime, strict: bool
) -> tuple[Component | Run, bool]:
    """Commits one accepted write (a component or a run); returns (object, created).

    Call inside a transaction holding the commit lock, after every earlier write committed.
    """
    if kind == Write.Kind.COMPONENT:
        return component_upsert(
            name=payload["name"],
            description=payload["description"],
            owner=payload["owner"],
            tags=payload["tags"],
            accepted_at=accepted_at,
        )
    run = run_commit(run_id=write_id, payload=payload, accepted_at=accepted_at, strict=strict)
    return run, True


def writes_commit_now(
    *, kind: str, payloads: list[dict[str, Any]]
) -> list[tuple[Write, Component | Run, bool]]:
    """Accepts these writes and commits them before returning (the ?sync=true door).

    All or nothing: one refusal (an unresolved explicit dependency) rolls back every write,
    ids included. Returns (write, committed object, created) in acceptance order.
    """
    with transaction.atomic():
        commit_lock()
        now = timezone.now()
        committed = []
        for payload in payloads:
            write = Write.objects.create(
                kind=kind, status=Write.Status.COMMITTED, accepted_at=now, committed_at=now
            )
            obj, created = write_commit(
                kind=kind, write_id=write.id, payload=payload, accepted_at=now, strict=True
            )
            committed.append((write, obj, created))
    return committed


def run_notes_update(*, run_id: int, notes: str) -> Run:
    """Replaces the notes of a committed run. Raises NotFound."""
    updated = Run.objects.filter(id=run_id).update(notes=notes)
    if not updated:
        raise NotFound(RUN_NOT_FOUND.format(id=run_id))
    return Run.objects.get(id=run_id)


def pointers_flag(*, name: str, flag: bool) -> int:
    """Sets the flag of every pointer of this name; returns how many. Raises NotFound."""
    pointers = IOPointer.objects.filter(name_hash=pointer_name_hash(name), name=name)
    count = pointers.count()
    if not count:
        raise NotFound(POINTER_NOT_FOUND.format(name=name))
    pointers.update(flag=flag)
    return count


def pointers_unflag_all() -> int:
    """Clears every flag; returns how many pointers were flagged."""
    return IOPointer.objects.filter(flag=True).update(flag=False)
