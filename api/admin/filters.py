"""The admins' list filters (the changelists' sidebar)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from components.models import Component
from runs.models import Run, Write


def yes_no_filter(title: str, field: str) -> type[admin.SimpleListFilter]:
    """A list filter on a boolean field: `title`, or not `title`."""

    class YesNo(admin.SimpleListFilter):
        parameter_name = title

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
            return [("yes", title), ("no", f"not {title}")]

        def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
            if self.value() in ("yes", "no"):
                return queryset.filter(**{field: self.value() == "yes"})
            return queryset

    YesNo.title = title
    return YesNo


StaleFilter = yes_no_filter("stale", "is_stale")
OpenFilter = yes_no_filter("open", "end_timestamp__isnull")
FlaggedFilter = yes_no_filter("flagged", "flag")


class ListedFilter(admin.SimpleListFilter):
    """As GET /api/v1/components/: by default only the listed components, not the OpenLineage
    jobs none of whose runs named a dataset (dbt-ol's job per SQL statement, say)."""

    title = "listed"
    parameter_name = "listed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("all", "all, with jobs that named no dataset"), ("no", "only jobs that named no dataset")]

    def choices(self, changelist: Any) -> Any:
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "listed",
        }
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Component]) -> QuerySet[Component]:
        if self.value() == "all":
            return queryset
        return queryset.filter(listed=self.value() != "no")


class StatusFilter(admin.SimpleListFilter):
    """Runs here are committed; queued and failed ones are accepted writes not committed yet."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("committed", "committed"), ("queued", "queued"), ("failed", "failed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Run]) -> QuerySet[Run]:
        if self.value() in ("queued", "failed"):
            url = reverse("admin:runs_write_changelist") + f"?status__exact={self.value()}&kind__exact=run"
            messages.info(
                request,
                format_html(
                    '{} runs are accepted writes not committed yet: see <a href="{}">accepted writes</a>.',
                    (self.value() or "").capitalize(),
                    url,
                ),
            )
            return queryset.none()
        return queryset


class WriteStatusFilter(admin.SimpleListFilter):
    """Pending and failed writes first: committed ones are the bulk and rarely of interest."""

    title = "status"
    parameter_name = "status__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(s.value, s.label) for s in Write.Status]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Write]) -> QuerySet[Write]:
        if self.value():
            return queryset.filter(status=self.value())
        return queryset
