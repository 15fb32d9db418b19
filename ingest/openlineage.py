"""OpenLineage events in a commit batch: each event applied to its run, in acceptance order.

`OpenLineageBatch.plan` reads what the database holds about the batch's runIds, then walks the
batch's writes in order. Each OpenLineage event (an "openlineage" write) updates its
OpenLineageRun; the first terminal event (COMPLETE, FAIL, ABORT) of a run becomes a run write
with that event's id, so the mltrace run takes the terminal event's place in acceptance
order; a JobEvent becomes a component write, and so does a RunEvent applied to its run
that carries an ownership facet, or names the first dataset of its job (which lists the
component), before the run write if it ends the run. The batch (ingest/batch.py's
`batch_apply`) then applies those writes with the native ones, as if they had been sent so;
`save` records every event and run state, and `results` maps the batch's answers back to
its writes. Nothing here calls back into the batch.

Per event, in order:
- seen before (same fingerprint): a duplicate, it changes nothing;
- its run has ended: recorded only (a late START, a second COMPLETE, OTHER);
- else it updates the run: start from the START event (else the earliest eventTime), the
  union of inputs and outputs, the facets (the latest non-empty value of each; the run's
  code_snapshot is its sourceCode, else its sql facet's query); a terminal event ends it.
  FAIL and ABORT runs are committed without outputs, so that no later run depends on what
  they did not produce; the run's openlineage record keeps them.

Call inside the commit's transaction, under the commit lock, before the batch's BatchWriter.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection

from common.lookups import chunked, one_of
from components.models import Component
from ingest.sql import insert_rows, update_rows
from runs.models import DEFAULT_STALENESS_THRESHOLD, OpenLineageEvent, OpenLineageRun, Write
from runs.openlineage import Event, fingerprint, read_event

logger = logging.getLogger(__name__)

EVENT_COLUMNS = [
    "id",
    "kind",
    "event_type",
    "event_time",
    "run_uuid",
    "job",
    "producer",
    "outcome",
    "fingerprint",
    "body",
    "received_at",
]
RUN_STATE_FIELDS = [
    "state",
    "run",
    "start_timestamp",
    "started",
    "end_timestamp",
    "parent_run_uuid",
    "parent_job",
    "producer",
    "inputs",
    "outputs",
    "git_hash",
    "code_snapshot",
    "sql",
    "error_message",
    "upstream_run_uuids",
    "events",
    "events_after_end",
    "last_event_id",
]
# A new run's row: its identity, then its state (run_id: the attribute behind `run`).
RUN_COLUMNS = [
    "run_uuid",
    "job",
    "namespace",
    "name",
    "first_event_id",
    *("run_id" if name == "run" else name for name in RUN_STATE_FIELDS),
]
JSON_RUN_COLUMNS = frozenset({"inputs", "outputs", "upstream_run_uuids"})


@dataclass
class DerivedWrite:
    """A run or component write that an event makes, under the event's id."""

    id: int
    kind: str
    payload: dict[str, Any]
    accepted_at: dt.datetime
    materialized: bool = False  # an event's writes are made and written by the resolver


def _union(pointers: list[dict[str, str]], more: list[dict[str, str]]) -> list[dict[str, str]]:
    """pointers, then those of `more` not listed yet by (name, value), up to the run's limit."""
    seen = {(p["name"], p["value"]) for p in pointers}
    out = list(pointers)
    for pointer in more:
        key = (pointer["name"], pointer["value"])
        if key not in seen and len(out) < settings.MLTRACE_MAX_POINTERS_PER_RUN:
            seen.add(key)
            out.append(pointer)
    return out


class OpenLineageBatch:
    def __init__(self, writes: Sequence[Any]) -> None:
        self.writes = writes
        self.events: list[OpenLineageEvent] = []
        self.runs: dict[str, OpenLineageRun] = {}
        self.new_runs: list[OpenLineageRun] = []
        self.dirty: set[str] = set()
        # The mltrace run id of each runId known to be committed: upstream dependencies.
        self.committed: dict[str, int] = {}
        # Components listed (Component.listed), as of the event being applied.
        self.listed: set[str] = set()

    def plan(self) -> list[Any]:
        """The batch's writes with each event replaced by what it makes (nothing, a run write
        or a component write), in acceptance order."""
        read = [
            (w, read_event(w.payload["event"], max_datasets=settings.MLTRACE_MAX_POINTERS_PER_RUN))
            if w.kind == Write.Kind.OPENLINEAGE
            else (w, None)
            for w in self.writes
        ]
        events = [(w, e) for w, e in read if e is not None]
        fingerprints = {id(w): fingerprint(w.payload["event"]) for w, _ in events}
        seen = self._seen(set(fingerprints.values()))
        self._load_runs(events)
        existing = self._existing_components({e.job for _, e in events if e.job})

        derived: list[Any] = []
        for write, event in read:
            if event is None:
                derived.append(write)
                continue
            digest = fingerprints[id(write)]
            outcome: str
            made: list[DerivedWrite]
            if digest in seen:
                outcome, made = OpenLineageEvent.Outcome.DUPLICATE, []
            else:
                seen.add(digest)
                outcome, made = self._apply(write, event, existing)
            derived.extend(made)
            self.events.append(
                OpenLineageEvent(
                    id=write.id,
                    kind=event.kind,
                    event_type=event.event_type,
                    event_time=event.event_time,
                    run_uuid=event.run_id,
                    job=event.job,
                    producer=event.producer,
                    outcome=outcome,
                    fingerprint=digest,
                    body=write.payload["event"],
                    received_at=write.accepted_at,
                )
            )
        return derived

    def results(self, derived: Sequence[Any], results: Sequence[tuple[Any, bool]]) -> list[tuple[Any, bool]]:
        """One (result, created) per write of the batch, from those of the writes `plan` made
        (`derived`, applied by the batch): a native write's and a run-ending event's are its
        own, any other event's (None, True)."""
        by_id: dict[int, tuple[Any, bool]] = {}
        for write, result in zip(derived, results, strict=True):
            by_id[write.id] = result
        return [by_id.get(write.id, (None, write.kind == Write.Kind.OPENLINEAGE)) for write in self.writes]

    def save(self) -> None:
        """Records the batch's events and the state of their runs (after BatchWriter's inserts).

        Rows, not bulk_create: preparing every value of a thousand events' model instances
        cost as much as inserting them.
        """
        adapt, dump = connection.ops.adapt_datetimefield_value, json.dumps
        insert_rows(
            OpenLineageEvent._meta.db_table,
            EVENT_COLUMNS,
            [
                (
                    e.id,
                    e.kind,
                    e.event_type,
                    adapt(e.event_time),
                    e.run_uuid,
                    e.job,
                    e.producer,
                    e.outcome,
                    e.fingerprint,
                    dump(e.body),
                    adapt(e.received_at),
                )
                for e in self.events
            ],
        )
        insert_rows(
            OpenLineageRun._meta.db_table,
            RUN_COLUMNS,
            [
                tuple(
                    dump(value)
                    if name in JSON_RUN_COLUMNS
                    else adapt(value)
                    if isinstance(value, dt.datetime)
                    else value
                    for name, value in ((name, getattr(r, name)) for name in RUN_COLUMNS)
                )
                for r in self.new_runs
            ],
        )
        new = {r.run_uuid for r in self.new_runs}
        changed = [self.runs[uuid] for uuid in sorted(self.dirty - new)]
        columns = ["run_id" if name == "run" else name for name in RUN_STATE_FIELDS]
        fields = [OpenLineageRun._meta.get_field(name) for name in ("id", *RUN_STATE_FIELDS)]
        update_rows(
            OpenLineageRun._meta.db_table,
            "id",
            columns,
            [_cast_type(f) for f in fields],
            [(r.id, *(self._column(getattr(r, name), name) for name in columns)) for r in changed],
        )

    @staticmethod
    def _column(value: Any, name: str) -> Any:
        if name in JSON_RUN_COLUMNS:
            return json.dumps(value)
        if isinstance(value, dt.datetime):
            return connection.ops.adapt_datetimefield_value(value)
        return value

    # --- reads ---------------------------------------------------------------------------

    def _seen(self, digests: set[str]) -> set[str]:
        seen: set[str] = set()
        for chunk in chunked(sorted(digests)):
            seen.update(
                OpenLineageEvent.objects.filter(fingerprint__in=chunk).values_list("fingerprint", flat=True)
            )
        return seen

    def _load_runs(self, events: list[tuple[Any, Event]]) -> None:
        uuids = {e.run_id for _, e in events if e.run_id}
        for chunk in chunked(sorted(uuids)):
            for run in OpenLineageRun.objects.filter(run_uuid__in=chunk):
                self.runs[run.run_uuid] = run
                if run.run_id is not None:
                    self.committed[run.run_uuid] = run.run_id
        upstream = {u for _, e in events for u in e.upstream_run_ids} - uuids
        for chunk in chunked(sorted(upstream)):
            rows = OpenLineageRun.objects.filter(run_uuid__in=chunk, run__isnull=False).values_list(
                "run_uuid", "run_id"
            )
            self.committed.update(dict(rows))

    def _existing_components(self, names: set[str]) -> set[str]:
        """The names that are components, noting in self.listed those that are listed."""
        found: set[str] = set()
        for chunk in chunked(sorted(names)):
            for name, listed in Component.objects.filter(name__in=chunk).values_list("name", "listed"):
                found.add(name)
                if listed:
                    self.listed.add(name)
        return found

    # --- one event, in acceptance order ----------------------------------------------------

    def _apply(self, write: Any, event: Event, existing: set[str]) -> tuple[str, list[DerivedWrite]]:
        """The event's outcome and the writes it makes: component writes first, then its run's."""
        if event.kind == "dataset":
            return OpenLineageEvent.Outcome.RECORDED, []
        if event.kind == "job":
            existing.add(event.job)
            return OpenLineageEvent.Outcome.APPLIED, [self._component_write(write, event)]

        run = self.runs.get(event.run_id)
        made: list[DerivedWrite] = []
        new_job = False
        if run is None:
            run = OpenLineageRun(
                run_uuid=event.run_id,
                job=event.job,
                namespace=write.payload["event"]["job"]["namespace"],
                name=write.payload["event"]["job"]["name"],
                state=OpenLineageRun.State.OTHER,
                start_timestamp=event.event_time,
                first_event_id=write.id,
                last_event_id=write.id,
            )
            self.runs[event.run_id] = run
            self.new_runs.append(run)
            new_job = event.job not in existing
            existing.add(event.job)
        elif run.job != event.job:
            return OpenLineageEvent.Outcome.OTHER_JOB, []
        self.dirty.add(event.run_id)
        run.events += 1
        run.last_event_id = write.id
        if not run.is_open:
            run.events_after_end += 1
            return OpenLineageEvent.Outcome.AFTER_END, []

        # The job's component exists from the run's first event (an open run has one; a
        # terminal first event's run write creates it), and a RunEvent's ownership facet sets
        # its owner as a JobEvent's does, in this event's place in acceptance order.
        # It is listed once a run of it names a dataset.
        names_a_dataset = bool(event.inputs or event.outputs) and event.job not in self.listed
        if (new_job and not event.terminal) or event.owner or names_a_dataset:
            made.append(self._component_write(write, event, listed=names_a_dataset))
            if names_a_dataset:
                self.listed.add(event.job)
        if event.event_type == "START":
            if not run.started:
                run.start_timestamp, run.started = event.event_time, True
            if run.state == OpenLineageRun.State.OTHER:
                run.state = OpenLineageRun.State.START
        elif not run.started:
            run.start_timestamp = min(run.start_timestamp, event.event_time)
        if event.event_type == "RUNNING":
            run.state = OpenLineageRun.State.RUNNING
        run.inputs = _union(run.inputs, [d.spec() for d in event.inputs])
        run.outputs = _union(run.outputs, [d.spec() for d in event.outputs])
        run.producer = event.producer or run.producer
        run.git_hash = event.git_hash or run.git_hash
        run.code_snapshot = event.code_snapshot or run.code_snapshot
        run.sql = event.sql or run.sql
        run.error_message = event.error_message or run.error_message
        if event.parent is not None and not run.parent_run_uuid:
            run.parent_run_uuid, run.parent_job = event.parent.run_id, event.parent.job
        run.upstream_run_uuids = list(dict.fromkeys([*run.upstream_run_uuids, *event.upstream_run_ids]))
        if event.terminal:
            run.state = event.event_type
            run.end_timestamp = event.event_time
            run.start_timestamp = min(run.start_timestamp, event.event_time)
            run.run_id = write.id
            self.committed[run.run_uuid] = write.id
            made.append(
                DerivedWrite(
                    write.id, Write.Kind.RUN, self._run_write_payload(run, write.id), write.accepted_at
                )
            )
        return OpenLineageEvent.Outcome.APPLIED, made

    def _component_write(self, write: Any, event: Event, *, listed: bool = False) -> DerivedWrite:
        payload = _component_payload(event.job)
        payload.update(description=event.description, owner=event.owner, listed=listed)
        return DerivedWrite(write.id, Write.Kind.COMPONENT, payload, write.accepted_at)

    def _run_write_payload(self, run: OpenLineageRun, write_id: int) -> dict[str, Any]:
        """The native run payload of an ended OpenLineage run."""
        assert run.end_timestamp is not None
        upstream = sorted(
            {
                self.committed[uuid]
                for uuid in run.upstream_run_uuids
                if uuid in self.committed and self.committed[uuid] < write_id
            }
        )
        return {
            "component": run.job,
            "start_timestamp": run.start_timestamp.isoformat(),
            "end_timestamp": run.end_timestamp.isoformat(),
            "inputs": run.inputs,
            "outputs": run.outputs if run.state == OpenLineageRun.State.COMPLETE else [],
            "dependencies": [],
            "dependency_ids": upstream,
            "infer_dependencies": True,
            "staleness_threshold": DEFAULT_STALENESS_THRESHOLD,
            "notes": run.error_message,
            "git_hash": run.git_hash,
            "git_tags": [],
            # The job's source code, else its SQL (dbt's models, Airflow's SQL operators).
            "code_snapshot": run.code_snapshot or run.sql,
            "test_results": None,
            "listed": False,  # an OpenLineage run lists its component by naming a dataset
        }


def _cast_type(field: Any) -> str:
    """The SQL type a column's VALUES need a cast to (a foreign key: its target's id type)."""
    target = field.target_field if field.is_relation else field
    db_type = target.rel_db_type(connection) if field.is_relation else target.db_type(connection)
    return str(db_type).split("(")[0] if db_type.startswith("varchar") else str(db_type)


def _component_payload(name: str) -> dict[str, Any]:
    return {"name": name, "description": "", "owner": "", "tags": []}


def events_after_end_count(events: Sequence[tuple[Event, Any]]) -> int:
    """How many of these events (each read, and as received, in acceptance order) the commit
    would record "after end" if it committed them next, after what is committed now.

    For the batch endpoint's answer, given before its commit. It applies the commit's first
    checks (`OpenLineageBatch._apply`) to the committed OpenLineage runs and duplicates and to
    the events before each in the list: not a duplicate, its runId's run is of the same job
    and had ended, committed or by a terminal event earlier in the list. Events still queued
    are not read: their payloads are text only the commit parses.

    One query, for the batch's runIds. Only the events of a run that has ended, or ends in
    the list before another of its events, can come after an end, and a runId's count
    depends on its own events alone (a duplicate has its runId): only those events are
    fingerprinted, and looked up in a second query, so that a batch of fresh runs pays for
    neither.
    """
    runs = [(event, body) for event, body in events if event.kind == "run"]
    if not runs:
        return 0
    rows = OpenLineageRun.objects.filter(**one_of("run_uuid", sorted({e.run_id for e, _ in runs})))
    state = {
        uuid: (job, end is not None)
        for uuid, job, end in rows.values_list("run_uuid", "job", "end_timestamp")
    }
    ending = {uuid for uuid, (_, ended) in state.items() if ended}
    ended_here: set[str] = set()
    for event, _ in runs:
        if event.run_id in ended_here:
            ending.add(event.run_id)
        if event.terminal:
            ended_here.add(event.run_id)
    candidates = [(event, body) for event, body in runs if event.run_id in ending]
    if not candidates:
        return 0
    digests = [fingerprint(body) for _, body in candidates]
    seen = set(
        OpenLineageEvent.objects.filter(**one_of("fingerprint", sorted(set(digests)))).values_list(
            "fingerprint", flat=True
        )
    )
    count = 0
    for (event, _), digest in zip(candidates, digests, strict=True):
        if digest in seen:
            continue  # a duplicate
        seen.add(digest)
        job, done = state.get(event.run_id, (event.job, False))
        if job != event.job:
            continue  # another job's runId
        if done:
            count += 1
        state[event.run_id] = (job, done or event.terminal)
    return count
