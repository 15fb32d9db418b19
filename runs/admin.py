from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from runs.models import Write
from runs.services import writes_retry_failed


@admin.register(Write)
class WriteAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "accepted_at", "committed_at", "short_error"]
    list_filter = ["status", "kind"]
    readonly_fields = ["id", "kind", "status", "payload", "error", "accepted_at", "committed_at"]
    show_full_result_count = False
    actions = ["retry"]

    @admin.display(description="error")
    def short_error(self, write: Write) -> str:
        return write.error[:120]

    @admin.action(description="Retry the selected failed writes")
    def retry(self, request: HttpRequest, queryset: QuerySet[Write]) -> None:
        requeued = writes_retry_failed(ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"Requeued {len(requeued)} failed writes.", messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
