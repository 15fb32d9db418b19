"""One batch's outputs and feedback folded into their tasks' predictions, in acceptance order.

An output write holds a task's name and its items, [identifier, value, timestamp or None]
(api/serializers/task_writes.py); a feedback write the same. Applying them in acceptance order
means, per (task, identifier): the output of the last output write accepted, and within one
write its last item, and the same for feedback; timestamps default to the write's acceptance.

The queries per batch do not grow with its items: the batch's tasks read in one query and the
missing ones inserted in one, each task's rows for the batch's identifiers read in one query
(per CHUNK identifiers), the folded rows upserted in one statement (ingest/sql.py's
upsert_rows, after a COPY on PostgreSQL), each task's latest output time read from its index,
and the tasks' counts written in one UPDATE.

Each side of a row keeps the id of the write that set it (output_write, feedback_write), and an
item replaces a side only when its write is not older: so a failed write retried after later
ones were committed ("Failed writes", docs/ARCHITECTURE.md) does not undo them, and a row holds
what committing every write one at a time in acceptance order would give, in any case.

Call inside a transaction that holds the commit lock (as ingest/batch.py's batch_apply does):
nobody else writes these rows meanwhile, so the rows read are the rows the upsert replaces.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import Max

from common.db import on_postgres
from common.lookups import chunked
from ingest.sql import rows_of_keys, upsert_rows
from monitoring.models import Prediction, Task
from runs.models import Write

PREDICTION_KINDS = frozenset({Write.Kind.OUTPUT, Write.Kind.FEEDBACK})

# A row's state while the batch is folded: output, output_at, output_write, feedback,
# feedback_at, feedback_write (Prediction's columns, in this order).
ROW_COLUMNS = ("output", "output_at", "output_write", "feedback", "feedback_at", "feedback_write")
# Where each kind's side starts in a row's state.
SIDE = {Write.Kind.OUTPUT: 0, Write.Kind.FEEDBACK: 3}
# The upsert's columns: the key, then the state.
UPSERT_COLUMNS = ["task_id", "identifier", *ROW_COLUMNS]
TABLE = Prediction._meta.db_table


def predictions_apply(writes: Sequence[Any]) -> list[tuple[Task, bool]]:
    """Applies output and feedback writes in acceptance order (Task and Prediction rows, in the
    caller's transaction); returns (task, created) for each write, created: it made the task.

    Raises KeyError or ValueError for a payload not in the shape above (the write then fails).
    """
    tasks, created = _tasks_get_or_create(writes)
    rows = _rows_read(writes, tasks, new={task.name for task in created.values()})
    before = {key: (state[0] is not None, state[3] is not None) for key, state in rows.items()}
    changed = _fold(writes, tasks, rows)
    _rows_upsert(rows, changed)
    _counts_update(
        tasks, rows, before, changed, outputs={tasks[w.payload["task"]].id for w in _outputs(writes)}
    )
    return [(tasks[w.payload["task"]], created.get(w.id) is not None) for w in writes]


def _outputs(writes: Sequence[Any]) -> list[Any]:
    return [w for w in writes if w.kind == Write.Kind.OUTPUT]


def _tasks_get_or_create(writes: Sequence[Any]) -> tuple[dict[str, Task], dict[int, Task]]:
    """The batch's tasks by name, made where missing with the acceptance time of the first write
    naming them; and the tasks made, by the id of the write that made each."""
    names = list(dict.fromkeys(w.payload["task"] for w in writes))
    tasks = {t.name: t for chunk in chunked(names) for t in Task.objects.filter(name__in=chunk)}
    created: dict[int, Task] = {}
    for write in writes:
        name = write.payload["task"]
        if name not in tasks:
            tasks[name] = created[write.id] = Task(name=name, created_at=write.accepted_at)
    if created:
        Task.objects.bulk_create(list(created.values()))
    return tasks, created


def _rows_read(
    writes: Sequence[Any], tasks: dict[str, Task], *, new: set[str]
) -> dict[tuple[int, str], list[Any]]:
    """The stored state of each (task id, identifier) the batch names and the database holds:
    one query per task (per CHUNK identifiers); a task made by this batch has none."""
    identifiers: dict[str, dict[str, None]] = {}
    for write in writes:
        identifiers.setdefault(write.payload["task"], {}).update(
            dict.fromkeys(i[0] for i in write.payload["items"])
        )
    rows: dict[tuple[int, str], list[Any]] = {}
    for name, named in identifiers.items():
        if name in new:
            continue
        task_id = tasks[name].id
        for chunk in chunked(named):
            for identifier, *state in rows_of_keys(
                TABLE, list(ROW_COLUMNS), scope="task_id", scope_value=task_id, key="identifier", keys=chunk
            ):
                rows[(task_id, identifier)] = state
    return rows


def _fold(
    writes: Sequence[Any], tasks: dict[str, Task], rows: dict[tuple[int, str], list[Any]]
) -> set[tuple[int, str]]:
    """Folds the writes' items into `rows` in acceptance order (a side set by a later write is
    kept); returns the keys whose state changed."""
    changed: set[tuple[int, str]] = set()
    add, get, parse = changed.add, rows.get, dt.datetime.fromisoformat
    width = len(ROW_COLUMNS)
    for write in sorted(writes, key=lambda w: w.id):
        side = SIDE[write.kind]
        by = side + 2  # the write that set this side
        write_id, accepted_at = write.id, write.accepted_at
        task_id = tasks[write.payload["task"]].id
        for identifier, value, timestamp in write.payload["items"]:
            key = (task_id, identifier)
            state = get(key)
            if state is None:
                state = rows[key] = [None] * width
            elif state[by] is not None and state[by] > write_id:
                continue  # set by a write accepted later (this one is a retried failed write)
            state[side] = float(value)
            state[side + 1] = accepted_at if timestamp is None else parse(timestamp)
            state[by] = write_id
            add(key)
    return changed


def _rows_upsert(rows: dict[tuple[int, str], list[Any]], changed: set[tuple[int, str]]) -> None:
    """Inserts or replaces the changed rows, whole: under the commit lock the folded state is
    the row's new state, both sides, so one statement serves outputs and feedback alike.

    Plain tuples through ingest/sql.py's upsert_rows, in key order: bulk_create built a
    Prediction and prepared eight values field by field for every row, two thirds of the
    commit. Datetimes are adapted as DateTimeField adapts them (on PostgreSQL, as they are).
    """
    tuples = [(*key, *rows[key]) for key in sorted(changed)]
    if not on_postgres():
        adapt = connection.ops.adapt_datetimefield_value
        tuples = [
            (task_id, identifier, output, _adapted(adapt, output_at), output_write)
            + (feedback, _adapted(adapt, feedback_at), feedback_write)
            for task_id, identifier, output, output_at, output_write, feedback, feedback_at, feedback_write in tuples
        ]
    upsert_rows(TABLE, UPSERT_COLUMNS, tuples, conflict=["task_id", "identifier"])


def _adapted(adapt: Any, value: Any) -> Any:
    """A datetime as DateTimeField stores it; None, or a value read as stored (text), as it is."""
    return value if value is None or isinstance(value, str) else adapt(value)


def _counts_update(
    tasks: dict[str, Task],
    rows: dict[tuple[int, str], list[Any]],
    before: dict[tuple[int, str], tuple[bool, bool]],
    changed: set[tuple[int, str]],
    *,
    outputs: set[int],
) -> None:
    """Adds to each task the identifiers newly given an output, feedback or both, and sets its
    latest output time from its index (a replaced output may have been the latest)."""
    by_id = {task.id: task for task in tasks.values()}
    for key in changed:
        had_output, had_feedback = before.get(key, (False, False))
        state = rows[key]
        has_output, has_feedback = state[0] is not None, state[3] is not None
        task = by_id[key[0]]
        task.output_count += has_output and not had_output
        task.feedback_count += has_feedback and not had_feedback
        task.pair_count += (has_output and has_feedback) and not (had_output and had_feedback)
    for task_id in outputs:
        latest = Prediction.objects.filter(task_id=task_id).aggregate(latest=Max("output_at"))["latest"]
        by_id[task_id].last_output_at = latest
    Task.objects.bulk_update(
        list(by_id.values()), ["output_count", "feedback_count", "pair_count", "last_output_at"]
    )
