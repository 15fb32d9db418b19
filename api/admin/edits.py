"""The admin of the record of edits: who flagged, unflagged or edited what, and when."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from api.admin.base import NoAddNoDeleteAdmin
from runs.models import Edit


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
