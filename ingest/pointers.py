"""Pointers by (name, value), each with the type its first mention in acceptance order gave.

Writes are materialized in any order of their ids (ingest/materialize.py), so a pointer keeps
`first_write`, the lowest id of the writes that named it so far, with that write's type. A
write that names an existing pointer whose first_write is higher gives it its own type. Once
every write up to a run's id has been written, each pointer the run names has the type of
its first mention, as committing the writes one by one in acceptance order would give it.

Pointers are written in the order of their keys: two transactions that make or retype the
same pointers wait for each other's row locks in one order, and never deadlock on them.
"""

from __future__ import annotations

from typing import Any

from common.lookups import chunked
from ingest.sql import insert_new_returning, pointer_first_write_lower, pointers_by_key
from runs.models import IOPointer, pointer_key, pointer_name_hash

Key = tuple[str, str]  # (name, value)


def pointer_ids(named: dict[Key, tuple[dict[str, Any], int]]) -> dict[Key, int]:
    """The id of each pointer, made where missing; `named` maps (name, value) to the spec and
    id of the lowest write naming it here. Most pointers of a stream of predictions are new,
    so inserting first and looking up the rest is one statement in the common case."""
    table = IOPointer._meta.db_table
    keys = {pointer_key(*key): key for key in named}
    digests = sorted(keys)
    rows = []
    for digest in digests:
        spec, write_id = named[keys[digest]]
        rows.append(
            (
                spec["name"],
                spec["value"],
                spec["pointer_type"],
                False,
                pointer_name_hash(spec["name"]),
                digest,
                write_id,
            )
        )
    columns = ["name", "value", "pointer_type", "flag", "name_hash", "key", "first_write"]
    found = dict(insert_new_returning(table, columns, rows, returning=["key", "id"], on_conflict="key"))
    existing = [digest for digest in digests if digest not in found]
    for chunk in chunked(existing):
        for digest, pointer_id, first_write in sorted(pointers_by_key(table, chunk)):
            found[digest] = pointer_id
            spec, write_id = named[keys[digest]]
            if write_id < first_write:
                pointer_first_write_lower(table, digest, spec["pointer_type"], write_id)
    return {keys[digest]: pointer_id for digest, pointer_id in found.items()}
