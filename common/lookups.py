"""`field__any=[...]`: membership as one array parameter, `= ANY(%s)`, on PostgreSQL.

`field__in=[...]` prepares and compiles each of its values: for the thousands of ids of a
trace that is a third of the request's time. One array parameter costs the same for ten
ids or ten thousand, and PostgreSQL plans it as an index probe per element like IN.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from django.db.models import Field, ForeignObject, Lookup

from common.db import on_postgres


class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", (*lhs_params, list(self.rhs))  # psycopg2 sends a list as an array


Field.register_lookup(AnyOf)
# Relations keep lookups of their own (RelatedIn, RelatedExact...), not inherited from Field.
ForeignObject.register_lookup(AnyOf)


class Array:
    """Values for __any. Not a list: the ORM would walk a list's items looking for expressions."""

    def __init__(self, values: Any) -> None:
        self.values = list(values)

    def __iter__(self) -> Any:
        return iter(self.values)


def one_of(field: str, values: Any) -> dict[str, Any]:
    """A filter keyword for `field` in values: an array parameter on PostgreSQL, IN elsewhere."""
    if on_postgres():
        return {f"{field}__any": Array(values)}
    return {f"{field}__in": values}


T = TypeVar("T")

# Items per query (ids, names, windows) and run bodies per encoded piece: well under SQLite's
# 32,766 parameters, even at three parameters an item, and few enough bodies to hold at once.
CHUNK = 5_000


def chunked(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """Lists of at most `size` consecutive items (itertools.batched, from Python 3.12)."""
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def id_ranges(ids: list[int]) -> str:
    """Ascending ids as ranges: [1, 2, 3, 5] -> "1-3, 5"."""
    ranges: list[list[int]] = []
    for write_id in ids:
        if ranges and write_id == ranges[-1][1] + 1:
            ranges[-1][1] = write_id
        else:
            ranges.append([write_id, write_id])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)
