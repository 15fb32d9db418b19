from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from api.dashboard import NoAddNoDeleteAdmin
from ingest.retry import writes_retry_failed
from runs.models import (
    Edit,
    IOPointer,
    OpenLineageEvent,
    OpenLineageRun,
    Run,
    RunDependency,
    RunInput,
    RunOutput,
    Write,
    pointer_name_hash,
)
from runs.services import pointers_flag, run_notes_update

LINKS_SHOWN = 100


def run_link(run_id: int, label: str = "") -> str:
    url = reverse("admin:runs_run_change", args=[run_id])
    return format_html('<a href="{}">{}</a>', url, label or f"run {run_id}")


def trace_link(name: str) -> str:
    url = reverse("admin:mltrace-trace") + "?" + urlencode({"output_id": name})
    return format_html('<a href="{}" title="trace">{}</a>', url, name)


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


@admin.register(Run)
class RunAdmin(NoAddNoDeleteAdmin):
    list_display = ["id", "component", "start_timestamp", "duration", "status", "stale_marker"]
    list_display_links = ["id"]
    list_filter = [StatusFilter, StaleFilter, "component", ("start_timestamp", admin.DateFieldListFilter)]
    list_select_related = ["component"]
    search_fields = ["component__name", "git_hash"]
    search_help_text = (
        "A component name or git hash (or its beginning), or the exact name of an input or output."
    )
    ordering = ["-start_timestamp", "-id"]
    fields = [
        "id",
        "component_link",
        "status",
        "start_timestamp",
        "end_timestamp",
        "duration",
        "stale_messages",
        "unresolved_dependencies",
        "inputs_list",
        "outputs_list",
        "dependencies_list",
        "dependents_list",
        "notes",
        "git_hash",
        "git_tags",
        "test_results_pretty",
        "code",
        "created_at",
        "openlineage_run",
    ]
    readonly_fields = [f for f in fields if isinstance(f, str) and f != "notes"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Run]:
        # The list shows none of these: a page of 100 runs need not read (or decode) their
        # test results and code snapshots. A page that shows one reads it when it does.
        # The component with the run: a run's page is titled with its name (Run.__str__).
        return (
            super().get_queryset(request).select_related("component").defer("test_results", "code_snapshot")
        )

    @admin.display(description="test results")
    def test_results_pretty(self, run: Run) -> str:
        return _json_or_why_not(lambda: run.test_results)

    def save_model(self, request: HttpRequest, obj: Run, form: Any, change: bool) -> None:
        # Through the service, so that the edit is recorded with its user like the API's.
        run_notes_update(run_id=obj.id, notes=obj.notes, user=request.user)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Run], search_term: str
    ) -> tuple[QuerySet[Run], bool]:
        """Prefix searches on indexed columns, and exact pointer names through name_hash.

        A substring search (icontains) would scan every run and pointer of a million-row table.
        """
        term = search_term.strip()
        if not term:
            return queryset, False
        pointers = IOPointer.objects.filter(name_hash=pointer_name_hash(term), name=term).values("id")
        matches = (
            Q(component__name__startswith=term)
            | Q(git_hash__startswith=term)
            | Q(id__in=RunInput.objects.filter(pointer__in=pointers).values("run_id"))
            | Q(id__in=RunOutput.objects.filter(pointer__in=pointers).values("run_id"))
        )
        return queryset.filter(matches), False

    @admin.display(description="duration")
    def duration(self, run: Run) -> str:
        return str(run.end_timestamp - run.start_timestamp)

    @admin.display(description="status")
    def status(self, run: Run) -> str:
        return "committed"

    @admin.display(description="stale", boolean=True, ordering="is_stale")
    def stale_marker(self, run: Run) -> bool:
        return run.is_stale

    @admin.display(description="component")
    def component_link(self, run: Run) -> str:
        url = reverse("admin:components_component_change", args=[run.component_id])
        return format_html('<a href="{}">{}</a>', url, run.component.name)

    @admin.display(description="staleness")
    def stale_messages(self, run: Run) -> str:
        return format_html_join("", '<p class="errornote">{}</p>', ((m,) for m in run.stale)) or "-"

    def _pointers(self, links: QuerySet) -> str:
        rows = list(links.select_related("pointer").order_by("id")[: LINKS_SHOWN + 1])
        items = format_html_join(
            "",
            "<li>{} <small>{}{} {}</small></li>",
            (
                (
                    trace_link(link.pointer.name),
                    link.pointer.pointer_type,
                    f" = {link.pointer.value}" if link.pointer.value else "",
                    "flagged" if link.pointer.flag else "",
                )
                for link in rows[:LINKS_SHOWN]
            ),
        )
        more = format_html("<li>and more</li>") if len(rows) > LINKS_SHOWN else ""
        return format_html("<ul>{}{}</ul>", items, more) if rows else "-"

    @admin.display(description="inputs")
    def inputs_list(self, run: Run) -> str:
        return self._pointers(RunInput.objects.filter(run=run))

    @admin.display(description="outputs")
    def outputs_list(self, run: Run) -> str:
        return self._pointers(RunOutput.objects.filter(run=run))

    def _runs(self, ids: list[int]) -> str:
        runs = (
            Run.objects.filter(id__in=ids[:LINKS_SHOWN])
            .select_related("component")
            .only("id", "component__name")
            .order_by("id")
        )
        items = format_html_join(
            "", "<li>{}</li>", ((run_link(r.id, f"{r.component.name} (run {r.id})"),) for r in runs)
        )
        more = format_html("<li>and more</li>") if len(ids) > LINKS_SHOWN else ""
        return format_html("<ul>{}{}</ul>", items, more) if ids else "-"

    @admin.display(description="depends on")
    def dependencies_list(self, run: Run) -> str:
        ids = RunDependency.objects.filter(run=run).values_list("depends_on_id", flat=True)
        return self._runs(list(ids[: LINKS_SHOWN + 1]))

    @admin.display(description="dependents")
    def dependents_list(self, run: Run) -> str:
        ids = RunDependency.objects.filter(depends_on=run).order_by("run_id").values_list("run_id", flat=True)
        return self._runs(list(ids[: LINKS_SHOWN + 1]))

    @admin.display(description="code snapshot")
    def code(self, run: Run) -> str:
        return format_html("<pre>{}</pre>", run.code_snapshot) if run.code_snapshot else "-"

    @admin.display(description="OpenLineage")
    def openlineage_run(self, run: Run) -> str:
        ol = OpenLineageRun.objects.filter(run_id=run.id).first()
        return openlineage_summary(ol) if ol is not None else "- (logged natively)"


def openlineage_summary(ol: OpenLineageRun) -> str:
    """An OpenLineage run's runId, state, parent and producer, with links."""
    url = reverse("admin:runs_openlineagerun_change", args=[ol.id])
    parent: str = "-"
    if ol.parent_run_uuid:
        parent_run = OpenLineageRun.objects.filter(run_uuid=ol.parent_run_uuid).first()
        label = f"{ol.parent_job} {ol.parent_run_uuid}"
        parent = (
            format_html(
                '<a href="{}">{}</a>',
                reverse("admin:runs_openlineagerun_change", args=[parent_run.id]),
                label,
            )
            if parent_run is not None
            else label
        )
    return format_html(
        '<ul><li>runId <a href="{}">{}</a></li><li>state {}</li><li>parent {}</li><li>producer {}</li>'
        "<li>job {} / {}</li><li>events after the end {}</li></ul>",
        url,
        ol.run_uuid,
        ol.state,
        parent,
        ol.producer or "-",
        ol.namespace,
        ol.name,
        ol.events_after_end,
    )


OpenFilter = yes_no_filter("open", "end_timestamp__isnull")


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
        return _json_or_why_not(lambda: ol.inputs)

    @admin.display(description="outputs (a FAIL or ABORT run's mltrace run has none)")
    def outputs_pretty(self, ol: OpenLineageRun) -> str:
        return _json_or_why_not(lambda: ol.outputs)

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
        return _json_or_why_not(lambda: event.body)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


FlaggedFilter = yes_no_filter("flagged", "flag")


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


def _json_or_why_not(read: Callable[[], Any], *, none: str = "-") -> str:
    """A JSON value as indented text, or why it cannot be shown: a value stored before
    MLTRACE_MAX_JSON_DEPTH was enforced may nest deeper than this process can decode."""
    try:
        value = read()
        if value is None:
            return none
        return format_html("<pre>{}</pre>", json.dumps(value, indent=2))
    except RecursionError:
        return "(nested too deeply to show)"


WRITE_FIELDS = (
    "id",
    "kind",
    "status",
    "accepted_at",
    "accepted_by",
    "committed_at",
    "error",
    "payload_pretty",
    "run",
)


@admin.register(Write)
class WriteAdmin(NoAddNoDeleteAdmin):
    list_display = [
        "id",
        "kind",
        "status",
        "accepted_at",
        "accepted_by",
        "committed_at",
        "short_error",
        "run",
    ]
    list_select_related = ["accepted_by"]
    list_filter = [WriteStatusFilter, "kind"]
    ordering = ["-id"]
    fields = WRITE_FIELDS
    readonly_fields = WRITE_FIELDS
    actions = ["retry"]

    @admin.display(description="error")
    def short_error(self, write: Write) -> str:
        return write.error[:120]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Write]:
        # The list shows no payload: it reads none (a write's page reads its own).
        return super().get_queryset(request).defer("payload")

    @admin.display(description="payload")
    def payload_pretty(self, write: Write) -> str:
        return _json_or_why_not(lambda: write.payload, none="- (dropped once committed)")

    @admin.display(description="run")
    def run(self, write: Write) -> str:
        if write.kind == Write.Kind.RUN and write.status == Write.Status.COMMITTED:
            return run_link(write.id)
        return "-"

    @admin.action(description="Retry the selected failed writes", permissions=["change"])
    def retry(self, request: HttpRequest, queryset: QuerySet[Write]) -> None:
        requeued = writes_retry_failed(ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"Requeued {len(requeued)} failed writes.", messages.SUCCESS)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The changelist's retry action needs change permission; a write's own page does
        # not: saving it would write back a status and payload a worker changed meanwhile.
        return obj is None and super().has_change_permission(request, obj)


@admin.register(Edit)
class EditAdmin(NoAddNoDeleteAdmin):
    """Who flagged, unflagged or edited what, and when: read-only."""

    list_display = ["at", "user", "action", "target", "detail"]
    list_filter = ["action"]
    list_select_related = ["user"]
    search_fields = ["target"]
    readonly_fields = ["at", "user", "action", "target", "detail"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
