"""Reads of runs, pointers and the accepted-write log."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, TextField
from django.db.models.functions import Cast

from common.db import StoredSize, TextBytes
from common.lookups import chunked, one_of
from components.models import Component
from runs.bodies import openlineage_run_body, run_body
from runs.models import IOPointer, OpenLineageRun, Run, RunDependency, RunInput, RunOutput

RUN_FIELDS = (
    "id",
    "component__name",
    "start_timestamp",
    "end_timestamp",
    "stale",
    "unresolved_dependencies",
    "notes",
    "git_hash",
    "git_tags",
    "code_snapshot",
    # As text, decoded by run_body: a value stored before MLTRACE_MAX_JSON_DEPTH, too deep
    # for this process to decode, then spoils its own body, not every list it is in.
    Cast("test_results", TextField()),
    "created_at",
    # The OpenLineage run it came from, if any (a join on a unique key; NULLs otherwise).
    "openlineage__run_uuid",
    "openlineage__state",
    "openlineage__namespace",
    "openlineage__name",
    "openlineage__producer",
    "openlineage__parent_run_uuid",
    "openlineage__parent_job",
    Subquery(
        OpenLineageRun.objects.filter(run_uuid=OuterRef("openlineage__parent_run_uuid")).values("run_id")[:1]
    ),
)


def run_bodies(
    ids: Sequence[int], *, known_dependencies: dict[int, list[int]] | None = None
) -> list[dict[str, Any]]:
    """The bodies of the committed runs with these ids, in this order, five queries per 5,000 (CHUNK).

    known_dependencies: every run's dependencies, ascending, when the caller has them
    already (a trace walked them), which saves their query.

    Inputs and outputs keep the order the run listed them in. Links and pointers are read
    apart, each by its own index, rather than joined: a join's plan hangs on statistics that
    lag behind a table growing by thousands of rows a second. Rows, not model instances: for
    a trace of thousands of runs, building instances cost more than the queries.
    """
    rows: dict[int, tuple] = {}
    links: dict[str, dict[int, list[tuple[int, int]]]] = {
        "inputs": defaultdict(list),
        "outputs": defaultdict(list),
    }
    dependencies: dict[int, list[int]] = defaultdict(list)
    pointer_ids: set[int] = set()
    for chunk in chunked(ids):
        rows.update(
            (row[0], row) for row in Run.objects.filter(**one_of("id", chunk)).values_list(*RUN_FIELDS)
        )
        for side, model in (("inputs", RunInput), ("outputs", RunOutput)):
            for link_id, run_id, pointer_id in model.objects.filter(**one_of("run_id", chunk)).values_list(
                "id", "run_id", "pointer_id"
            ):
                links[side][run_id].append((link_id, pointer_id))
                pointer_ids.add(pointer_id)
        if known_dependencies is None:
            edges = RunDependency.objects.filter(**one_of("run_id", chunk)).values_list(
                "run_id", "depends_on_id"
            )
            for run_id, depends_on_id in edges:
                dependencies[run_id].append(depends_on_id)
        else:
            for run_id in chunk:
                dependencies[run_id] = known_dependencies.get(run_id, [])
    pointers: dict[int, dict[str, Any]] = {}
    for chunk in chunked(sorted(pointer_ids)):
        for pointer_id, name, value, pointer_type, flag in IOPointer.objects.filter(
            **one_of("id", chunk)
        ).values_list("id", "name", "value", "pointer_type", "flag"):
            pointers[pointer_id] = {"name": name, "value": value, "pointer_type": pointer_type, "flag": flag}

    def listed(side: str, run_id: int) -> list[dict[str, Any]]:
        return [pointers[pointer_id] for _, pointer_id in sorted(links[side][run_id])]

    return [
        run_body(
            rows[run_id],
            inputs=listed("inputs", run_id),
            outputs=listed("outputs", run_id),
            dependencies=sorted(dependencies[run_id]),
        )
        for run_id in ids
    ]


# What a run's body weighs at least, in bytes of JSON: its fields, empty, and each of its
# pointers (a body's other lists count for nothing here).
RUN_BODY_BYTES = 300
POINTER_BODY_BYTES = 55


def run_body_weights(ids: Sequence[int]) -> dict[int, int]:
    """About how many bytes of JSON each run's body holds, at least, in one query that reads
    no body: its pointer counts, its text as UTF-8 (which JSON only lengthens, escaping), and
    its test results as stored (jsonb, maybe compressed: the one part that can weigh less here).

    At least, so that the runs cut by weight hold every run that can fit; whoever sends them
    measures them as sent (run_bodies_within, api/json_stream.py's json_items).
    """

    def pointers(model: type[RunInput] | type[RunOutput]) -> Subquery:
        counted = model.objects.filter(run_id=OuterRef("id")).order_by().values("run_id")
        return Subquery(counted.annotate(n=Count("id")).values("n"))

    rows = (
        Run.objects.filter(**one_of("id", ids))
        .annotate(inputs_n=pointers(RunInput), outputs_n=pointers(RunOutput))
        .values_list(
            "id",
            "inputs_n",
            "outputs_n",
            # Not the stored size: 200 KB of code is stored compressed in a few KB.
            TextBytes("code_snapshot"),
            TextBytes("notes"),
            StoredSize("test_results"),
        )
    )
    weights = {run_id: RUN_BODY_BYTES for run_id in ids}
    for run_id, inputs, outputs, *sizes in rows:
        weights[run_id] += POINTER_BODY_BYTES * ((inputs or 0) + (outputs or 0)) + sum(
            size or 0 for size in sizes
        )
    return weights


def chunked_by_weight(ids: Sequence[int], *, budget: int) -> Iterator[list[int]]:
    """The ids in order, in chunks of at most CHUNK runs whose bodies weigh about `budget`
    bytes at most (a run heavier than that alone): a trace of runs with thousands of
    pointers each is built a few runs at a time, one of small runs 5,000 at a time."""
    for chunk in chunked(ids):
        weights = run_body_weights(chunk)
        piece: list[int] = []
        total = 0
        for run_id in chunk:
            if piece and total + weights[run_id] > budget:
                yield piece
                piece, total = [], 0
            piece.append(run_id)
            total += weights[run_id]
        if piece:
            yield piece


def run_bodies_within(
    ids: Sequence[int], *, budget: int, size: Callable[[dict[str, Any]], int]
) -> list[dict[str, Any]]:
    """The bodies of the first of these committed runs, in order, whose `size`s (their bytes
    as sent) add up to `budget` at most; the first run whatever its size, so never none.

    Only the runs whose weights (at least their size) fit are built: a page of runs of
    200 KB each builds about `budget` bytes of them, not `limit` runs.
    """
    bodies = run_bodies(next(chunked_by_weight(ids, budget=budget), []))
    total = 0
    for count, body in enumerate(bodies):
        total += size(body)
        if count and total > budget:
            return bodies[:count]
    return bodies


def run_body_chunks(
    ids: Sequence[int], *, known_dependencies: dict[int, list[int]] | None = None
) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    """(id, body) of committed runs in the given order, a chunk of runs weighing
    MLTRACE_MAX_PAGE_BYTES at most at a time (their bodies can be larger: api/json_stream.py's
    json_items sends them in pieces that are not).

    So a trace or review of a million runs never holds a million bodies, only their ids.
    """
    for chunk in chunked_by_weight(ids, budget=settings.MLTRACE_MAX_PAGE_BYTES):
        yield list(zip(chunk, run_bodies(chunk, known_dependencies=known_dependencies), strict=True))


def run_body_pairs(
    ids: Sequence[int], *, known_dependencies: dict[int, list[int]] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(id, body) of committed runs in the given order, built as run_body_chunks builds them."""
    for chunk in run_body_chunks(ids, known_dependencies=known_dependencies):
        yield from chunk


def runs_by_id(ids: Sequence[int]) -> dict[int, Run]:
    """Committed runs by id, with their component's name and their staleness only (what a
    tree of a trace shows): not their code snapshots and test results."""
    found: dict[int, Run] = {}
    runs = Run.objects.select_related("component").only("id", "stale", "component__name")
    for chunk in chunked(ids):
        found.update({run.id: run for run in runs.filter(**one_of("id", chunk))})
    return found


def outputs_by_run(run_ids: Iterable[int]) -> dict[int, list[IOPointer]]:
    """The output pointers of these runs; links and pointers read apart, as run_bodies does."""
    links = list(
        RunOutput.objects.filter(**one_of("run_id", list(run_ids))).values_list("run_id", "pointer_id")
    )
    pointers = IOPointer.objects.in_bulk([pointer_id for _, pointer_id in links])
    outputs: dict[int, list[IOPointer]] = defaultdict(list)
    for run_id, pointer_id in links:
        outputs[run_id].append(pointers[pointer_id])
    return outputs


@dataclass(frozen=True)
class RunPage:
    runs: list[Run]
    has_more: bool


def run_page(
    *,
    component: str = "",
    before: Run | None = None,
    after: Run | None = None,
    date_lower: dt.datetime | None = None,
    date_upper: dt.datetime | None = None,
    limit: int,
) -> RunPage:
    """Committed runs, newest start_timestamp first (then highest id), by keyset.

    before/after: only runs that come after/before that run in this order. Date bounds are
    inclusive.
    """
    # The keyset is all a page needs of a run; its body is built from the ids.
    runs: QuerySet[Run] = Run.objects.only("id", "start_timestamp")
    if component:
        # By id, not through a join on the name: the planner then walks run_component_start_idx
        # backwards and stops after `limit` rows, whatever its statistics say.
        component_id = Component.objects.filter(name=component).values_list("id", flat=True).first()
        if component_id is None:
            return RunPage(runs=[], has_more=False)
        runs = runs.filter(component_id=component_id)
    if date_lower is not None:
        runs = runs.filter(start_timestamp__gte=date_lower)
    if date_upper is not None:
        runs = runs.filter(start_timestamp__lte=date_upper)
    if before is not None:
        runs = runs.filter(
            Q(start_timestamp__lt=before.start_timestamp)
            | Q(start_timestamp=before.start_timestamp, id__lt=before.id)
        )
    if after is not None:
        # The page just above `after`: walk up in ascending order, then turn it around.
        newer = runs.filter(
            Q(start_timestamp__gt=after.start_timestamp)
            | Q(start_timestamp=after.start_timestamp, id__gt=after.id)
        ).order_by("start_timestamp", "id")[: limit + 1]
        found = list(newer)
        return RunPage(runs=list(reversed(found[:limit])), has_more=len(found) > limit)
    found = list(runs.order_by("-start_timestamp", "-id")[: limit + 1])
    return RunPage(runs=found[:limit], has_more=len(found) > limit)


def openlineage_runs_page(
    *, run_uuid: str | None, state: str | None, component: str | None, before: int | None, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """OpenLineage runs, newest first event first; state "open": not ended. (bodies, more?)"""
    runs = OpenLineageRun.objects.order_by("-first_event_id")
    if run_uuid is not None:
        runs = runs.filter(run_uuid=run_uuid)
    if state == "open":
        runs = runs.filter(end_timestamp__isnull=True)
    elif state is not None:
        runs = runs.filter(state=state)
    if component is not None:
        runs = runs.filter(job=component)
    if before is not None:
        runs = runs.filter(first_event_id__lt=before)
    page = list(runs[: limit + 1])
    parents = {r.parent_run_uuid for r in page[:limit] if r.parent_run_uuid}
    parent_runs = dict(
        OpenLineageRun.objects.filter(run_uuid__in=parents, run__isnull=False).values_list(
            "run_uuid", "run_id"
        )
    )
    bodies = [openlineage_run_body(r, parent_run=parent_runs.get(r.parent_run_uuid)) for r in page[:limit]]
    return bodies, len(page) > limit


def openlineage_run_get(run_uuid: str) -> dict[str, Any] | None:
    bodies, _ = openlineage_runs_page(run_uuid=run_uuid, state=None, component=None, before=None, limit=1)
    return bodies[0] if bodies else None
