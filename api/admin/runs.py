"""The admin of committed runs: their list, search, and a run's page with its links."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from api.admin.base import NoAddNoDeleteAdmin
from api.admin.filters import StaleFilter, StatusFilter
from api.admin.html import LINKS_SHOWN, json_or_why_not, openlineage_summary, pointer_links, run_links
from runs.models import IOPointer, OpenLineageRun, Run, RunDependency, RunInput, RunOutput, pointer_name_hash
from runs.services import run_notes_update


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
        return json_or_why_not(lambda: run.test_results)

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

    @admin.display(description="inputs")
    def inputs_list(self, run: Run) -> str:
        return pointer_links(RunInput.objects.filter(run=run))

    @admin.display(description="outputs")
    def outputs_list(self, run: Run) -> str:
        return pointer_links(RunOutput.objects.filter(run=run))

    @admin.display(description="depends on")
    def dependencies_list(self, run: Run) -> str:
        ids = RunDependency.objects.filter(run=run).values_list("depends_on_id", flat=True)
        return run_links(list(ids[: LINKS_SHOWN + 1]))

    @admin.display(description="dependents")
    def dependents_list(self, run: Run) -> str:
        ids = RunDependency.objects.filter(depends_on=run).order_by("run_id").values_list("run_id", flat=True)
        return run_links(list(ids[: LINKS_SHOWN + 1]))

    @admin.display(description="code snapshot")
    def code(self, run: Run) -> str:
        return format_html("<pre>{}</pre>", run.code_snapshot) if run.code_snapshot else "-"

    @admin.display(description="OpenLineage")
    def openlineage_run(self, run: Run) -> str:
        ol = OpenLineageRun.objects.filter(run_id=run.id).first()
        return openlineage_summary(ol) if ol is not None else "- (logged natively)"
