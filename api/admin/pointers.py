"""The admin of pointers (inputs and outputs): search by exact name, flag and unflag."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from api.admin.base import NoAddNoDeleteAdmin
from api.admin.filters import FlaggedFilter
from api.admin.html import trace_link
from runs.models import IOPointer, pointer_name_hash
from runs.services import pointers_flag


@admin.register(IOPointer)
class IOPointerAdmin(NoAddNoDeleteAdmin):
    list_display = ["name", "value", "pointer_type", "flag", "trace"]
    list_filter = [FlaggedFilter, "pointer_type"]
    search_fields = ["name"]
    search_help_text = "The exact name of a pointer (a file, a table, a prediction id)."
    ordering = ["-id"]
    actions = ["flag", "unflag"]
    fields = ["name", "value", "pointer_type", "flag"]
    readonly_fields = ["name", "value", "pointer_type"]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[IOPointer], search_term: str
    ) -> tuple[QuerySet[IOPointer], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(name_hash=pointer_name_hash(term), name=term), False

    @admin.display(description="trace")
    def trace(self, pointer: IOPointer) -> str:
        return trace_link(pointer.name)

    def _set_flag(self, request: HttpRequest, queryset: QuerySet[IOPointer], flag: bool) -> None:
        names = sorted(set(queryset.values_list("name", flat=True)))
        count = sum(pointers_flag(name=name, flag=flag, user=request.user) for name in names)
        verb = "Flagged" if flag else "Unflagged"
        self.message_user(request, f"{verb} {count} pointers named {', '.join(names)}.", messages.SUCCESS)

    @admin.action(description="Flag every pointer of the selected names", permissions=["change"])
    def flag(self, request: HttpRequest, queryset: QuerySet[IOPointer]) -> None:
        self._set_flag(request, queryset, True)

    @admin.action(description="Unflag every pointer of the selected names", permissions=["change"])
    def unflag(self, request: HttpRequest, queryset: QuerySet[IOPointer]) -> None:
        self._set_flag(request, queryset, False)
