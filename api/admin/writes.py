"""The admin of the accepted-write log: every write with its status, and retrying failed ones."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from api.admin.base import NoAddNoDeleteAdmin
from api.admin.filters import WriteStatusFilter
from api.admin.html import json_or_why_not, run_link
from ingest.retry import writes_retry_failed
from runs.models import Write

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
        return json_or_why_not(lambda: write.payload, none="- (dropped once committed)")

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
