"""Edits of committed runs and pointers: notes and flags. Writes of runs come through ingest/."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from common.db import retry_once_on_deadlock
from common.errors import (
    POINTER_NOT_FOUND,
    RUN_NOT_FOUND,
    NotFound,
)
from common.lookups import chunked, one_of
from runs.models import (
    Edit,
    IOPointer,
    Run,
    pointer_name_hash,
)
from runs.sql import downstream_output_pointer_ids

logger = logging.getLogger(__name__)


def run_notes_update(*, run_id: int, notes: str, user: Any = None) -> Run:
    """Replaces the notes of a committed run, and records who did. Raises NotFound."""
    with transaction.atomic():
        if not Run.objects.filter(id=run_id).update(notes=notes):
            raise NotFound(RUN_NOT_FOUND.format(id=run_id))
        edit_record(user=user, action=Edit.Action.RUN_NOTES, target=str(run_id), detail={"notes": notes})
    return Run.objects.get(id=run_id)


def edit_record(*, user: Any, action: str, target: str, detail: dict[str, Any]) -> None:
    """Records who made an edit that is not a write in the log, and what it changed."""
    Edit.objects.create(at=timezone.now(), user=user, action=action, target=target, detail=detail)


def pointers_flag(*, name: str, flag: bool, user: Any = None) -> int:
    """Sets the flag of every pointer of this name, and records who did; returns how many.
    Raises NotFound."""

    def flag_them() -> int:
        ids = _locked_in_id_order(IOPointer.objects.filter(name_hash=pointer_name_hash(name), name=name))
        if not ids:
            raise NotFound(POINTER_NOT_FOUND.format(name=name))
        _update_flags(ids, flag=flag)
        edit_record(
            user=user,
            action=Edit.Action.FLAG if flag else Edit.Action.UNFLAG,
            target=name,
            detail={"pointers": len(ids)},
        )
        return len(ids)

    return retry_once_on_deadlock(flag_them)


@dataclass(frozen=True)
class NamesFlagged:
    """What flagging a list of names did: pointers flagged now and already flagged, the names
    whose pointers were flagged now (in the order given), the names with no pointer."""

    flagged: int
    already_flagged: int
    names_flagged: list[str]
    not_pointers: list[str]


def pointers_flag_names(
    *, names: list[str], user: Any = None, detail: dict[str, Any] | None = None
) -> NamesFlagged:
    """Flags every pointer of each name, as pointers_flag does for one name, in one transaction.

    A name with no pointer is counted, not an error. One edit is recorded for each name whose
    pointers it flagged now (action flag, the name, {"pointers": flagged now, **detail}); a name
    whose pointers were all flagged already records nothing, so calling again changes nothing.
    """
    wanted = list(dict.fromkeys(names))

    def flag_them() -> NamesFlagged:
        named: list[int] = []
        for some in chunked(wanted):
            named += IOPointer.objects.filter(
                **one_of("name_hash", [pointer_name_hash(name) for name in some]), **one_of("name", some)
            ).values_list("id", flat=True)
        rows: list[tuple[int, str, bool]] = []
        for chunk in chunked(sorted(set(named))):
            # Locked in ascending id order, chunk after chunk, as every flag and unflag does.
            rows += (
                IOPointer.objects.filter(**one_of("id", chunk))
                .order_by("id")
                .select_for_update()
                .values_list("id", "name", "flag")
            )
        # Pointers a name has that this call flags; those flagged already.
        now: dict[str, int] = {}
        already = 0
        for _, name, was_flagged in rows:
            if was_flagged:
                already += 1
            else:
                now[name] = now.get(name, 0) + 1
        _update_flags([row_id for row_id, _, flagged in rows if not flagged], flag=True)
        at = timezone.now()
        Edit.objects.bulk_create(
            Edit(
                at=at,
                user=user,
                action=Edit.Action.FLAG,
                target=name,
                detail={"pointers": now[name], **(detail or {})},
            )
            for name in wanted
            if name in now
        )
        found = {name for _, name, _ in rows}
        return NamesFlagged(
            flagged=sum(now.values()),
            already_flagged=already,
            names_flagged=[name for name in wanted if name in now],
            not_pointers=[name for name in wanted if name not in found],
        )

    return retry_once_on_deadlock(flag_them)


def pointers_unflag_all(*, user: Any = None) -> int:
    """Clears every flag, and records who did; returns how many pointers were flagged."""

    def unflag_them() -> int:
        ids = _locked_in_id_order(IOPointer.objects.filter(flag=True))
        _update_flags(ids, flag=False)
        edit_record(user=user, action=Edit.Action.UNFLAG_ALL, target="", detail={"pointers": len(ids)})
        return len(ids)

    return retry_once_on_deadlock(unflag_them)


def _locked_in_id_order(pointers: QuerySet[IOPointer]) -> list[int]:
    """Locks the rows in ascending id order, inside the caller's transaction.

    Two UPDATEs lock their rows in whatever order their plans visit them (an index on the
    name, a scan for the flagged), so a flag and an unflag-all of overlapping rows deadlock.
    Taken in one order, one waits for the other instead.
    """
    return list(pointers.order_by("id").select_for_update().values_list("id", flat=True))


def _update_flags(ids: list[int], *, flag: bool) -> None:
    for chunk in chunked(ids):
        IOPointer.objects.filter(**one_of("id", chunk)).update(flag=flag)


def pointers_flag_downstream(*, name: str, user: Any = None) -> int:
    """Flags every pointer of this name and every pointer a run downstream of it output;
    records who did; returns how many pointers that is. Raises NotFound."""

    def flag_them() -> int:
        named = list(
            IOPointer.objects.filter(name_hash=pointer_name_hash(name), name=name).values_list(
                "id", flat=True
            )
        )
        if not named:
            raise NotFound(POINTER_NOT_FOUND.format(name=name))
        wanted = sorted(set(named) | set(downstream_output_pointer_ids(seeds=named)))
        ids: list[int] = []
        for chunk in chunked(wanted):
            ids += _locked_in_id_order(IOPointer.objects.filter(**one_of("id", chunk)))
        _update_flags(ids, flag=True)
        edit_record(
            user=user, action=Edit.Action.FLAG, target=name, detail={"pointers": len(ids), "downstream": True}
        )
        return len(ids)

    return retry_once_on_deadlock(flag_them)
