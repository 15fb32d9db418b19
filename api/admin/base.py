"""The base classes of the admins: changelists that never count a whole table, and rows the
admin neither adds nor deletes.

Every changelist answers in a bounded number of queries at a million runs: it counts at most
CAPPED_COUNT rows.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property

CAPPED_COUNT = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most CAPPED_COUNT + 1 rows: COUNT over a LIMITed subquery, never the table.

    Past the cap the changelist says "10,001 results" and pages up to there; filters and
    search narrow a list long before anyone pages that far.
    """

    @cached_property
    def count(self) -> int:
        rows = cast(QuerySet, self.object_list)
        return rows[: CAPPED_COUNT + 1].count()


class LargeTableAdmin(admin.ModelAdmin):
    paginator = CappedCountPaginator
    show_full_result_count = False
    # Facet counts ("Show counts") are one uncapped COUNT per filter option.
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50


class NoAddNoDeleteAdmin(LargeTableAdmin):
    """Rows the admin neither adds nor deletes: what accepted writes create (an admin insert
    or delete would take no place in acceptance order, and a worker's batch could then undo it
    or commit a run that depends on a row that is gone), and the record of edits.
    """

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
