"""Edits of committed runs and pointers: notes and flags. Writes of runs come through ingest/."""

from __future__ import annotations

import logging

from common.errors import (
    POINTER_NOT_FOUND,
    RUN_NOT_FOUND,
    NotFound,
)
from runs.models import (
    IOPointer,
    Run,
    pointer_name_hash,
)

logger = logging.getLogger(__name__)


def run_notes_update(*, run_id: int, notes: str) -> Run:
    """Replaces the notes of a committed run. Raises NotFound."""
    if not Run.objects.filter(id=run_id).update(notes=notes):
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
