"""Materialize: the half of a run write's commit that does not depend on the writes before it,
done by any worker, several at once.

A materializer claims the oldest queued run writes that nobody has materialized or claimed
(`FOR UPDATE SKIP LOCKED`: two never take the same write, and a worker that dies frees its
claim with its connection). In one transaction it writes, for each:
- the pointers it names (ingest/pointers.py: whatever the order of materialization, a
  pointer ends with the type of its first mention in acceptance order);
- its input and output links, keyed by the write's id;
- its `materialized` form: what the resolver still needs, the payload with each pointer
  reduced to its name.

The run itself, its dependencies and staleness are written by the resolver, in acceptance
order (ingest/queue.py). Until then no read reaches the links: every read starts from runs.
docs/ARCHITECTURE.md, "Materialize, then resolve", has the argument.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef

from common.jsontext import json_utf8
from common.lookups import id_ranges
from ingest.batch import QueuedWrite, queued_writes, write_failed
from ingest.locks import DATABASE_UNAVAILABLE
from ingest.pointers import pointer_ids
from ingest.sql import copy_id_pairs, synchronous_commit_off, update_rows
from runs.models import IOPointer, RunInput, RunOutput, Write

logger = logging.getLogger(__name__)


def materialize_next(*, through_id: int) -> int:
    """Claims the next queued run writes up to through_id and materializes them, in one
    transaction; returns how many it claimed (0: none is left to claim).

    A write whose materialization raises is marked failed, alone: the others are
    materialized. Database outages propagate and leave the writes queued.
    """
    started = time.perf_counter()
    with transaction.atomic():
        # As a worker's commit (ingest/locks.py, commit_lock): a crash may undo the newest
        # materializations, whole, and the writes are then materialized again.
        synchronous_commit_off()
        claimed = _claim(through_id)
        if not claimed:
            return 0
        writes = queued_writes(Write.objects.filter(id__in=claimed))
        try:
            with transaction.atomic():
                materialize(writes)
        except DATABASE_UNAVAILABLE:
            raise
        except Exception:
            logger.warning(
                "a write in this range failed to materialize; materializing it one write at a time"
            )
            for write in writes:
                try:
                    with transaction.atomic():
                        materialize([write])
                except DATABASE_UNAVAILABLE:
                    raise
                except Exception as exc:
                    write_failed(write, exc)
    # One line a range, naming the process: several materialize at once.
    logger.info(
        "materialized %s run writes in %.1f ms by process %s: %s",
        len(claimed),
        (time.perf_counter() - started) * 1000,
        os.getpid(),
        id_ranges(claimed),
    )
    return len(claimed)


def _claim(through_id: int) -> list[int]:
    """Locks the oldest unclaimed, unmaterialized queued run writes up to through_id: at most
    MLTRACE_COMMIT_BATCH and, but for the first, MLTRACE_COMMIT_BATCH_BYTES of payload."""
    rows = list(
        Write.objects.filter(
            status=Write.Status.QUEUED, kind=Write.Kind.RUN, materialized__isnull=True, id__lte=through_id
        )
        .order_by("id")
        .select_for_update(skip_locked=True)
        .values_list("id", "payload_bytes")[: settings.MLTRACE_COMMIT_BATCH]
    )
    claimed: list[int] = []
    total = 0
    for write_id, size in rows:
        total += size
        if claimed and total > settings.MLTRACE_COMMIT_BATCH_BYTES:
            break
        claimed.append(write_id)
    return claimed


def materialized_form(payload: dict[str, Any]) -> dict[str, Any]:
    """What the resolver needs of a run payload: all of it, but each pointer by its name only,
    once (for an inference run, a tenth of the text), and the JSON columns of its run row
    encoded already (ingest/batch.py writes them as they are)."""

    def names(pointers: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{"name": name} for name in dict.fromkeys(p["name"] for p in pointers)]

    form = {key: value for key, value in payload.items() if key not in ("git_tags", "test_results")}
    form.update(
        inputs=names(payload["inputs"]),
        outputs=names(payload["outputs"]),
        git_tags_json=json.dumps(payload["git_tags"]),
        test_results_json=json.dumps(payload["test_results"]),
    )
    return form


def materialize(writes: list[QueuedWrite]) -> None:
    """Writes the pointers and links of these run writes (ascending ids), and their
    materialized form, in the caller's transaction."""
    named: dict[tuple[str, str], tuple[dict[str, Any], int]] = {}
    forms: list[tuple[int, str]] = []
    for write in writes:
        payload = write.payload
        # One spec per (name, value), the last one listed wins (as ingest/batch.py plans it).
        specs = {(p["name"], p["value"]): p for p in (*payload["inputs"], *payload["outputs"])}
        for key, spec in specs.items():
            named.setdefault(key, (spec, write.id))
        forms.append((write.id, json_utf8(materialized_form(payload)).decode()))
    ids = pointer_ids(named)
    inputs: list[tuple[int, int]] = []
    outputs: list[tuple[int, int]] = []
    for write in writes:
        payload = write.payload
        inputs.extend((write.id, ids[(p["name"], p["value"])]) for p in payload["inputs"])
        outputs.extend((write.id, ids[(p["name"], p["value"])]) for p in payload["outputs"])
    copy_id_pairs(RunInput._meta.db_table, ["run_id", "pointer_id"], inputs)
    copy_id_pairs(RunOutput._meta.db_table, ["run_id", "pointer_id"], outputs)
    update_rows(Write._meta.db_table, "id", ["materialized"], ["bigint", "text"], forms)


def materialized_discard(write_ids: list[int]) -> None:
    """Removes what materializing these writes wrote (they failed later, in the resolver): their
    links, the pointers that they named first and nothing else refers to, and their form."""
    if not write_ids:
        return
    RunInput.objects.filter(run_id__in=write_ids).delete()
    RunOutput.objects.filter(run_id__in=write_ids).delete()
    IOPointer.objects.filter(first_write__in=write_ids).exclude(
        Exists(RunInput.objects.filter(pointer=OuterRef("pk")))
    ).exclude(Exists(RunOutput.objects.filter(pointer=OuterRef("pk")))).delete()
    Write.objects.filter(id__in=write_ids).update(materialized=None)
