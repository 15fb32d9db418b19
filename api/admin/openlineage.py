"""The admins of the OpenLineage intake: its runs (open or ended, with their mltrace run) and
every event as received, with what it did."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from api.admin.base import NoAddNoDeleteAdmin
from api.admin.filters import OpenFilter
from api.admin.html import json_or_why_not, run_link
from runs.models import OpenLineageEvent, OpenLineageRun


@admin.register(OpenLineageRun)
class OpenLineageRunAdmin(NoAddNoDeleteAdmin):
    """OpenLineage runs: the open ones (no terminal event yet) and the ended, with their run."""

    list_display = [
        "run_uuid",
        "job",
        "state",
        "open_marker",
        "start_timestamp",
        "end_timestamp",
        "mltrace_run",
        "events_after_end",
    ]
    list_filter = [OpenFilter, "state"]
    search_fields = ["run_uuid", "job", "parent_run_uuid"]
    search_help_text = "A runId, a parent's runId, or a component name (exact)."
    ordering = ["-first_event_id"]
    fields = [
        "run_uuid",
        "state",
        "open_marker",
        "mltrace_run",
        "job",
        "namespace",
        "name",
        "start_timestamp",
        "end_timestamp",
        "parent",
        "children",
        "producer",
        "inputs_pretty",
        "outputs_pretty",
        "git_hash",
        "error_message",
        "upstream_run_uuids",
        "events",
        "events_link",
        "after_end_link",
    ]
    readonly_fields = [f for f in fields if isinstance(f, str)]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[OpenLineageRun], search_term: str
    ) -> tuple[QuerySet[OpenLineageRun], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(run_uuid=term) | Q(parent_run_uuid=term) | Q(job=term)), False

    @admin.display(description="open", boolean=True)
    def open_marker(self, ol: OpenLineageRun) -> bool:
        return ol.is_open

    @admin.display(description="run")
    def mltrace_run(self, ol: OpenLineageRun) -> str:
        return run_link(ol.run_id) if ol.run_id is not None else "- (open: no run yet)"

    @admin.display(description="parent")
    def parent(self, ol: OpenLineageRun) -> str:
        if not ol.parent_run_uuid:
            return "-"
        url = reverse("admin:runs_openlineagerun_changelist") + "?" + urlencode({"q": ol.parent_run_uuid})
        return format_html('{} <a href="{}">{}</a>', ol.parent_job, url, ol.parent_run_uuid)

    @admin.display(description="children")
    def children(self, ol: OpenLineageRun) -> str:
        count = OpenLineageRun.objects.filter(parent_run_uuid=ol.run_uuid).count()
        if not count:
            return "-"
        url = reverse("admin:runs_openlineagerun_changelist") + "?" + urlencode({"q": ol.run_uuid})
        return format_html('<a href="{}">{} runs</a>', url, count)

    @admin.display(description="inputs")
    def inputs_pretty(self, ol: OpenLineageRun) -> str:
        return json_or_why_not(lambda: ol.inputs)

    @admin.display(description="outputs (a FAIL or ABORT run's mltrace run has none)")
    def outputs_pretty(self, ol: OpenLineageRun) -> str:
        return json_or_why_not(lambda: ol.outputs)

    @admin.display(description="events received")
    def events_link(self, ol: OpenLineageRun) -> str:
        url = reverse("admin:runs_openlineageevent_changelist") + "?" + urlencode({"q": ol.run_uuid})
        return format_html('<a href="{}">{} events</a>', url, ol.events)

    @admin.display(description="events after the end")
    def after_end_link(self, ol: OpenLineageRun) -> str:
        if not ol.events_after_end:
            return "0"
        query = urlencode({"q": ol.run_uuid, "outcome__exact": OpenLineageEvent.Outcome.AFTER_END})
        url = reverse("admin:runs_openlineageevent_changelist") + "?" + query
        return format_html(
            '<a href="{}">{} events after the end</a> (recorded; they changed nothing: a second '
            "terminal event, a late START, or a rerun that sent the same runId)",
            url,
            ol.events_after_end,
        )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(OpenLineageEvent)
class OpenLineageEventAdmin(NoAddNoDeleteAdmin):
    """Every OpenLineage event as received, and what it did: read-only."""

    list_display = ["id", "kind", "event_type", "event_time", "run_uuid", "job", "outcome", "received_at"]
    list_filter = ["kind", "event_type", "outcome"]
    search_fields = ["run_uuid"]
    search_help_text = "A runId (exact)."
    ordering = ["-id"]
    fields = [
        "id",
        "kind",
        "event_type",
        "event_time",
        "run_uuid",
        "job",
        "producer",
        "outcome",
        "received_at",
        "fingerprint",
        "body_pretty",
    ]
    readonly_fields = [f for f in fields if isinstance(f, str)]

    def get_queryset(self, request: HttpRequest) -> QuerySet[OpenLineageEvent]:
        return super().get_queryset(request).defer("body")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[OpenLineageEvent], search_term: str
    ) -> tuple[QuerySet[OpenLineageEvent], bool]:
        term = search_term.strip()
        return (queryset.filter(run_uuid=term), False) if term else (queryset, False)

    @admin.display(description="event, as received")
    def body_pretty(self, event: OpenLineageEvent) -> str:
        return json_or_why_not(lambda: event.body)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
