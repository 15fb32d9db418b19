"""One batch: accepted writes applied to the domain's tables, the one function both doors use.

`batch_apply` applies a list of accepted writes (components and runs, in acceptance order)
exactly as committing them one at a time would, in a number of queries that does not grow
with the list: it reads what the database holds about the names involved, resolves
dependencies and staleness in memory in acceptance order, then inserts everything in bulk.
The synchronous door commits its writes as one such list; a worker resolving the queue
applies up to MLTRACE_COMMIT_BATCH queued writes per call. A materialized run write comes as
its materialized form (ingest/materialize.py): its pointers and links are written already,
and only its run, dependencies, staleness and component counts are left. The OpenLineage
events of a batch first become the run and component writes they make (ingest/openlineage.py's
OpenLineageBatch); `BatchWriter` then plans and inserts those with the native ones.

What a run sees, as mltrace defines it (docs/API.md):
- inferred dependencies: for each input name, the run accepted earlier (lower id) with the
  highest id among those that output a pointer of that name;
- explicit dependencies: for each component name, its run accepted earlier with the latest
  start_timestamp (ties: the later-accepted one);
- staleness, for each dependency in ascending id: older than the threshold ("was run N days
  ago", whole days), and k >= 1 fresher runs of its component accepted earlier that began in
  [dependency start, run start] ("has k fresher run(s) ...").

Call inside a transaction that holds the commit lock, with every earlier write committed.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Expression,
    ExpressionWrapper,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, NullIf

from common.db import StoredSize
from common.errors import DependencyUnresolved
from common.jsontext import json_decode
from common.lookups import CHUNK, chunked
from components.models import Component
from components.services import tags_get_or_create
from ingest.openlineage import OpenLineageBatch
from ingest.pointers import pointer_ids
from ingest.predictions import PREDICTION_KINDS, predictions_apply
from ingest.sql import copy_id_pairs, copy_rows, runs_in_windows
from monitoring.models import Task
from runs.models import (
    Run,
    RunDependency,
    RunInput,
    RunOutput,
    Write,
    pointer_name_hash,
)

logger = logging.getLogger(__name__)

SECONDS_PER_DAY = 60 * 60 * 24
# Bound on the values of one IN (...) or VALUES list: SQLite allows 32,766 parameters.


class AcceptedWrite(Protocol):
    """A write to apply: a Write row, or a QueuedWrite read from one."""

    @property
    def id(self) -> int: ...
    @property
    def kind(self) -> str: ...
    @property
    def payload(self) -> Any: ...
    @property
    def accepted_at(self) -> dt.datetime: ...
    @property
    def materialized(self) -> Any: ...


@dataclass
class QueuedWrite:
    """What a commit needs of a queued write; rows, not model instances (a batch is large).

    The payload (or, for a materialized run, its materialized form) is read as text and
    decoded when the commit first asks for it: a write that cannot be decoded (one nested
    deeper than this process can recurse, accepted under a larger MLTRACE_MAX_JSON_DEPTH
    or none) then fails inside its own savepoint, and is marked failed, instead of failing
    the query that reads its neighbours too.
    """

    id: int
    kind: str
    payload_text: str | None
    accepted_at: dt.datetime
    materialized: bool = False
    # Bytes of JSON that the batch limit counts: the materialized form as stored, else the
    # payload as accepted (payload_bytes; where that is 0, not recorded, the payload as stored).
    size: int = 0

    @cached_property
    def payload(self) -> Any:
        return None if self.payload_text is None else json_decode(self.payload_text)


def write_failed(write: AcceptedWrite, exc: Exception) -> None:
    """Marks a write failed with its error, logged: either step's fate for a write that raises
    (a database outage is not such an error: it leaves the write queued)."""
    error = f"{type(exc).__name__}: {exc}"
    logger.error("write %s (%s) failed: %s", write.id, write.kind, error)
    Write.objects.filter(id=write.id).update(status=Write.Status.FAILED, error=error[:10_000])


def queued_writes(
    writes: QuerySet[Write], *, limit: int | None = None, unmaterialized_payloads: bool = True
) -> list[QueuedWrite]:
    """These writes, oldest first (the first `limit`), as QueuedWrite: a materialized run by
    its materialized form (COALESCE reads the payload only where that is missing). Without
    unmaterialized_payloads a run write not materialized yet comes without its payload (the
    resolver's look at the queue, which stops there)."""
    form: Expression = Coalesce(Cast("materialized", TextField()), Cast("payload", TextField()))
    if not unmaterialized_payloads:
        form = Case(
            When(materialized__isnull=False, then=Cast("materialized", TextField())),
            When(~Q(kind=Write.Kind.RUN), then=Cast("payload", TextField())),
            default=Value(None),
            output_field=TextField(),
        )
    materialized = ExpressionWrapper(Q(materialized__isnull=False), output_field=BooleanField())
    size = Coalesce(
        StoredSize("materialized"), NullIf("payload_bytes", Value(0)), StoredSize("payload"), Value(0)
    )
    rows = writes.order_by("id").values_list("id", "kind", form, "accepted_at", materialized, size)
    return [QueuedWrite(*row) for row in (rows[:limit] if limit is not None else rows)]


@dataclass
class RunFacts:
    """What later runs of the same batch need to know about a run."""

    id: int
    component: str
    start: dt.datetime


@dataclass(frozen=True)
class CommittedRun:
    """A run that a commit inserted; read it back with selectors.run_bodies."""

    id: int


# What applying a write gives: its object (a component, a run, the task of outputs or
# feedback; None for an event that makes nothing) and whether the write created it.
Applied = tuple[Component | CommittedRun | Task | None, bool]


@dataclass
class PlannedRun:
    write: AcceptedWrite
    facts: RunFacts
    component: Component
    pointers: list[tuple[str, str]]  # inputs then outputs, as keys; inputs counted below
    inputs: int
    dependencies: list[int] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)


def batch_apply(writes: Sequence[AcceptedWrite], *, refuse_unresolved: bool) -> list[Applied]:
    """Applies accepted writes in acceptance order (their rows into the domain's tables, in the
    caller's transaction); returns (object, created) for each.

    refuse_unresolved (the synchronous door): an explicit dependency with no earlier run raises
    DependencyUnresolved (its `index` says which write) before anything is written. Otherwise
    the run is written with the name in unresolved_dependencies.
    """
    if any(write.kind in PREDICTION_KINDS for write in writes):
        return _batch_apply_with_predictions(writes, refuse_unresolved=refuse_unresolved)
    if len(writes) > 1 and Run.objects.filter(id__gt=writes[0].id).exists():
        # A retried write older than committed runs: what it may see differs from what the
        # writes after it may see, so each is applied on its own.
        return [
            result for write in writes for result in batch_apply([write], refuse_unresolved=refuse_unresolved)
        ]
    if not any(write.kind == Write.Kind.OPENLINEAGE for write in writes):
        return BatchWriter(writes, refuse_unresolved=refuse_unresolved).write()
    # OpenLineage events first become the run and component writes they make; those are
    # applied with the native ones, then the events and their runs' states are recorded.
    events = OpenLineageBatch(writes)
    derived = events.plan()
    results = BatchWriter(derived, refuse_unresolved=refuse_unresolved).write() if derived else []
    events.save()
    return events.results(derived, results)


def _batch_apply_with_predictions(
    writes: Sequence[AcceptedWrite], *, refuse_unresolved: bool
) -> list[Applied]:
    """batch_apply for a batch holding outputs or feedback: those are folded into their tasks'
    predictions (ingest/predictions.py), the others applied as always. The two touch no row of
    each other's, so each applied in acceptance order among its own is the batch in that order."""
    others = [(index, write) for index, write in enumerate(writes) if write.kind not in PREDICTION_KINDS]
    results: list[Applied] = []
    if others:
        try:
            results = batch_apply([write for _, write in others], refuse_unresolved=refuse_unresolved)
        except DependencyUnresolved as exc:
            if exc.index is not None:
                exc.index = others[exc.index][0]  # its index in this batch
            raise
    predictions = iter(predictions_apply([w for w in writes if w.kind in PREDICTION_KINDS]))
    by_index = dict(zip((index for index, _ in others), results, strict=True))
    return [by_index[index] if index in by_index else next(predictions) for index in range(len(writes))]


class BatchWriter:
    """Writes one batch: plans every write in memory, in acceptance order, then inserts the
    rows of all of them in bulk."""

    def __init__(self, writes: Sequence[AcceptedWrite], *, refuse_unresolved: bool) -> None:
        self.writes = writes
        self.refuse_unresolved = refuse_unresolved
        # Everything committed before this batch has a lower id than all of it.
        self.bound = writes[0].id if writes else 0

    def write(self) -> list[Applied]:
        """Plans every write in memory, in acceptance order, then inserts the batch in bulk."""
        runs = [w for w in self.writes if w.kind == Write.Kind.RUN]
        self.components = self._load_components()
        self.new_components: list[Component] = []
        self.dirty_components: set[str] = set()
        self.tag_links: list[tuple[str, list[str]]] = []
        # (name, value) -> the spec and write id of its first mention in acceptance order.
        self.pointer_specs: dict[tuple[str, str], tuple[dict[str, str], int]] = {}
        self.pointer_ids: dict[tuple[str, str], int] = {}
        self.db_producers = self._db_latest_producers(runs)
        self.db_latest_runs = self._db_latest_runs(runs)
        self.producers: dict[str, int] = {}
        self.latest_runs: dict[str, RunFacts] = {}
        self.facts: dict[int, RunFacts] = {}
        self.by_component: dict[str, list[RunFacts]] = defaultdict(list)

        results: list[tuple[Any, bool] | PlannedRun] = []
        planned: list[PlannedRun] = []
        for index, write in enumerate(self.writes):
            if write.kind == Write.Kind.COMPONENT:
                results.append(self._plan_component(write))
                continue
            try:
                plan = self._plan_run(write)
            except DependencyUnresolved as exc:
                exc.index = index
                raise
            planned.append(plan)
            results.append(plan)
        self._plan_staleness(planned)
        created_runs = self._insert(planned)
        return [created_runs[r.write.id] if isinstance(r, PlannedRun) else r for r in results]

    # --- reads --------------------------------------------------------------------------

    def _load_components(self) -> dict[str, Component]:
        names = set()
        for write in self.writes:
            payload = write.payload
            names.add(payload["name"] if write.kind == Write.Kind.COMPONENT else payload["component"])
        return {
            c.name: c for chunk in chunked(sorted(names)) for c in Component.objects.filter(name__in=chunk)
        }

    def _db_latest_producers(self, runs: list[AcceptedWrite]) -> dict[str, int]:
        names = sorted(
            {
                p["name"]
                for w in runs
                if w.payload.get("infer_dependencies", True)
                for p in w.payload["inputs"]
            }
        )
        latest: dict[str, int] = {}
        for chunk in chunked(names):
            rows = (
                RunOutput.objects.filter(
                    pointer__name_hash__in={pointer_name_hash(n) for n in chunk}, run_id__lt=self.bound
                )
                .values("pointer__name")
                .annotate(latest=Max("run_id"))
            )
            wanted = set(chunk)
            latest.update({r["pointer__name"]: r["latest"] for r in rows if r["pointer__name"] in wanted})
        return latest

    def _db_latest_runs(self, runs: list[AcceptedWrite]) -> dict[str, RunFacts]:
        """For each explicitly named component, its latest committed run by (start, id).

        Two queries per CHUNK names, whatever their number: a correlated subquery per
        component walks run_component_start_idx backwards and stops at its first row.
        """
        names = sorted({n for w in runs for n in w.payload["dependencies"]})
        latest = {}
        for chunk in chunked(names):
            newest = Run.objects.filter(component_id=OuterRef("pk"), id__lt=self.bound).order_by(
                "-start_timestamp", "-id"
            )
            found = dict(
                Component.objects.filter(name__in=chunk)
                .annotate(latest=Subquery(newest.values("id")[:1]))
                .filter(latest__isnull=False)
                .values_list("latest", "name")
            )
            for run_id, start in Run.objects.filter(id__in=list(found)).values_list("id", "start_timestamp"):
                latest[found[run_id]] = RunFacts(id=run_id, component=found[run_id], start=start)
        return latest

    # --- planning, in acceptance order ----------------------------------------------------

    def _component(self, name: str, accepted_at: dt.datetime, *, listed: bool) -> tuple[Component, bool]:
        """The component of this name, created if missing; listed: the write lists it."""
        component = self.components.get(name)
        if component is not None:
            component.listed = component.listed or listed
            return component, False
        component = Component(name=name, created_at=accepted_at, listed=listed)
        self.components[name] = component
        self.new_components.append(component)
        return component, True

    def _plan_component(self, write: AcceptedWrite) -> tuple[Component, bool]:
        payload = write.payload
        # Native writes have no "listed": they list their component. Writes made from
        # OpenLineage events say (ingest/openlineage.py).
        component, created = self._component(
            payload["name"], write.accepted_at, listed=payload.get("listed", True)
        )
        if created:
            component.description, component.owner = payload["description"], payload["owner"]
        else:
            if payload["description"]:
                component.description = payload["description"]
            if payload["owner"]:
                component.owner = payload["owner"]
        self.dirty_components.add(component.name)
        if payload["tags"]:
            self.tag_links.append((component.name, payload["tags"]))
        return component, created

    def _plan_run(self, write: AcceptedWrite) -> PlannedRun:
        payload = write.payload
        start = dt.datetime.fromisoformat(payload["start_timestamp"])
        facts = RunFacts(id=write.id, component=payload["component"], start=start)
        component, _ = self._component(facts.component, write.accepted_at, listed=payload.get("listed", True))

        dependencies: set[int] = set()
        if payload.get("infer_dependencies", True):
            for name in dict.fromkeys(p["name"] for p in payload["inputs"]):
                producer = self.producers.get(name) or self.db_producers.get(name)
                if producer is not None:
                    dependencies.add(producer)
        # Runs named by id (an OpenLineage run's upstream runs), committed before this one.
        dependencies.update(payload.get("dependency_ids", ()))
        unresolved = []
        for name in payload["dependencies"]:
            latest = self.latest_runs.get(name) or self.db_latest_runs.get(name)
            if latest is None:
                unresolved.append(name)
            else:
                dependencies.add(latest.id)
        if unresolved and self.refuse_unresolved:
            raise DependencyUnresolved(unresolved)

        # The run's pointers: one spec per (name, value), the last one listed wins; a pointer
        # that does not exist yet is created with the type of its first mention. A
        # materialized write has its pointers and links written already, and its payload
        # names its pointers only (ingest/materialize.py).
        if not write.materialized:
            specs = {(p["name"], p["value"]): p for p in (*payload["inputs"], *payload["outputs"])}
            for key, spec in specs.items():
                self.pointer_specs.setdefault(key, (spec, write.id))

        # What later runs of this batch see of this one.
        for p in payload["outputs"]:
            self.producers[p["name"]] = write.id
        current = self.latest_runs.get(facts.component) or self.db_latest_runs.get(facts.component)
        if current is None or (start, write.id) > (current.start, current.id):
            self.latest_runs[facts.component] = facts
        self.facts[write.id] = facts
        self.by_component[facts.component].append(facts)

        component.run_count += 1
        if component.last_run_at is None or start > component.last_run_at:
            component.last_run_at = start
        self.dirty_components.add(component.name)
        return PlannedRun(
            write=write,
            facts=facts,
            component=component,
            pointers=[]
            if write.materialized
            else [(p["name"], p["value"]) for p in (*payload["inputs"], *payload["outputs"])],
            inputs=0 if write.materialized else len(payload["inputs"]),
            dependencies=sorted(dependencies),
            unresolved=unresolved,
        )

    def _plan_staleness(self, planned: list[PlannedRun]) -> None:
        outside = [d for plan in planned for d in plan.dependencies if d not in self.facts]
        for chunk in chunked(sorted(set(outside))):
            for run_id, name, start in Run.objects.filter(id__in=chunk).values_list(
                "id", "component__name", "start_timestamp"
            ):
                self.facts[run_id] = RunFacts(id=run_id, component=name, start=start)
        windows = sorted(
            {
                (self.facts[d].component, self.facts[d].start, plan.facts.start)
                for plan in planned
                for d in plan.dependencies
                if self.facts[d].start <= plan.facts.start
            }
        )
        committed = _committed_runs_in_windows(windows, before_id=self.bound)
        for plan in planned:
            threshold = plan.write.payload["staleness_threshold"]
            for dep in (self.facts[d] for d in plan.dependencies):
                seconds = (plan.facts.start - dep.start).total_seconds()
                if seconds > threshold:
                    days = int(seconds // SECONDS_PER_DAY)
                    plan.stale.append(f"{dep.component} (ID {dep.id}) was run {days} days ago.")
                if dep.start > plan.facts.start:
                    continue
                # The dependency itself is in its window; the others are fresher.
                in_batch = sum(
                    1
                    for other in self.by_component[dep.component]
                    if other.id < plan.facts.id and dep.start <= other.start <= plan.facts.start
                )
                fresher = committed[(dep.component, dep.start, plan.facts.start)] + in_batch - 1
                if fresher >= 1:
                    noun = "run" if fresher == 1 else "runs"
                    plan.stale.append(
                        f"{dep.component} (ID {dep.id}) has {fresher} fresher {noun} that began "
                        "before this component run started."
                    )

    # --- writes ---------------------------------------------------------------------------

    def _insert(self, planned: list[PlannedRun]) -> dict[int, tuple[CommittedRun, bool]]:
        if self.new_components:
            Component.objects.bulk_create(self.new_components)
        new = {c.name for c in self.new_components}
        existing = [c for name, c in self.components.items() if name in self.dirty_components - new]
        if existing:
            Component.objects.bulk_update(
                existing, ["description", "owner", "run_count", "last_run_at", "listed"]
            )
        if self.tag_links:
            self._link_tags()
        if self.pointer_specs:
            self.pointer_ids = pointer_ids(self.pointer_specs)

        # Rows, not model instances: building a thousand Runs cost more than inserting them.
        dump, adapt = json.dumps, connection.ops.adapt_datetimefield_value
        rows = []
        for plan in planned:
            payload = plan.write.payload
            rows.append(
                (
                    plan.write.id,
                    plan.component.id,
                    adapt(plan.facts.start),
                    adapt(dt.datetime.fromisoformat(payload["end_timestamp"])),
                    payload["notes"],
                    payload["git_hash"],
                    payload["git_tags_json"] if plan.write.materialized else dump(payload["git_tags"]),
                    payload["code_snapshot"],
                    payload["test_results_json"]
                    if plan.write.materialized
                    else dump(payload["test_results"]),
                    dump(plan.stale) if plan.stale else "[]",
                    bool(plan.stale),
                    dump(plan.unresolved) if plan.unresolved else "[]",
                    adapt(plan.write.accepted_at),
                )
            )
            if plan.stale:
                logger.info("run %s of %s is stale: %s", plan.write.id, plan.facts.component, plan.stale)
        copy_rows(Run._meta.db_table, RUN_COLUMNS, rows)
        inputs: list[tuple[int, int]] = []
        outputs: list[tuple[int, int]] = []
        edges: list[tuple[int, int]] = []
        for plan in planned:
            run_id = plan.write.id
            for position, key in enumerate(plan.pointers):
                (inputs if position < plan.inputs else outputs).append((run_id, self.pointer_ids[key]))
            edges.extend((run_id, d) for d in plan.dependencies)
        copy_id_pairs(RunInput._meta.db_table, ["run_id", "pointer_id"], inputs)
        copy_id_pairs(RunOutput._meta.db_table, ["run_id", "pointer_id"], outputs)
        copy_id_pairs(RunDependency._meta.db_table, ["run_id", "depends_on_id"], edges)
        return {plan.write.id: (CommittedRun(plan.write.id), True) for plan in planned}

    def _link_tags(self) -> None:
        names = list(dict.fromkeys(tag for _, tags in self.tag_links for tag in tags))
        tags = {tag.name: tag for tag in tags_get_or_create(names)}
        through = Component.tags.through
        links = {
            (self.components[component].id, tags[tag].id)
            for component, names in self.tag_links
            for tag in names
        }
        through.objects.bulk_create(
            [through(component_id=c, tag_id=t) for c, t in sorted(links)], ignore_conflicts=True
        )


RUN_COLUMNS = [
    "id",
    "component_id",
    "start_timestamp",
    "end_timestamp",
    "notes",
    "git_hash",
    "git_tags",
    "code_snapshot",
    "test_results",
    "stale",
    "is_stale",
    "unresolved_dependencies",
    "created_at",
]


# Windows that share a component and a start, past this many, are counted from that
# component's run starts read once (a batch of inference runs that all depend on one model's
# run): one range scan in place of one index probe a window.
SHARED_WINDOWS = 8
# ... unless the range holds more runs than this; then each window is counted in SQL.
SHARED_RANGE_RUNS = 10_000


def _committed_runs_in_windows(
    windows: list[tuple[str, dt.datetime, dt.datetime]], *, before_id: int
) -> dict[tuple[str, dt.datetime, dt.datetime], int]:
    """For each (component, low, high): committed runs of it below before_id starting in
    [low, high]. Windows sharing (component, low) by the SHARED_WINDOWS are counted from the
    starts in [low, highest high], read in one query; the others in one query per CHUNK / 3
    windows (ingest/sql.py's runs_in_windows)."""
    counts: dict[tuple[str, dt.datetime, dt.datetime], int] = {}
    highs: dict[tuple[str, dt.datetime], list[dt.datetime]] = defaultdict(list)
    for name, low, high in windows:
        highs[(name, low)].append(high)
    apart: list[tuple[str, dt.datetime, dt.datetime]] = []
    for (name, low), group in highs.items():
        starts = None
        if len(group) >= SHARED_WINDOWS:
            starts = list(
                Run.objects.filter(
                    component__name=name,
                    start_timestamp__gte=low,
                    start_timestamp__lte=max(group),
                    id__lt=before_id,
                )
                .order_by("start_timestamp")
                .values_list("start_timestamp", flat=True)[: SHARED_RANGE_RUNS + 1]
            )
        if starts is None or len(starts) > SHARED_RANGE_RUNS:
            apart.extend((name, low, high) for high in group)
            continue
        for high in group:
            counts[(name, low, high)] = bisect.bisect_right(starts, high)
    adapt = connection.ops.adapt_datetimefield_value
    for chunk in chunked(apart, CHUNK // 3):
        adapted = [(name, adapt(low), adapt(high)) for name, low, high in chunk]
        for n, count in runs_in_windows(
            Run._meta.db_table, Component._meta.db_table, adapted, before_id=before_id
        ):
            counts[chunk[n]] = count
    return counts
