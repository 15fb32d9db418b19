"""The admins of components (edited through the service, in acceptance order) and tags."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from api.admin.base import LargeTableAdmin
from api.admin.filters import ListedFilter
from components.models import Component, Tag
from ingest.edits import component_update_in_order


@admin.register(Component)
class ComponentAdmin(LargeTableAdmin):
    list_display = ["name", "owner", "tag_list", "run_count", "last_run_at", "runs_link"]
    list_filter = [ListedFilter, "tags"]
    search_fields = ["name", "owner"]
    filter_horizontal = ["tags"]
    readonly_fields = ["run_count", "last_run_at", "created_at", "listed", "runs_link"]
    fields = [
        "name",
        "description",
        "owner",
        "tags",
        "run_count",
        "last_run_at",
        "created_at",
        "listed",
        "runs_link",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Component]:
        return super().get_queryset(request).prefetch_related("tags")

    # Components are created through the API, in acceptance order; here people edit the
    # description, owner and tags. Saving all columns would write back a run_count or
    # last_run_at that a worker changed meanwhile, so the change goes through the service.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Component | None = None) -> list[str]:
        return ["name", *self.readonly_fields]

    def save_model(self, request: HttpRequest, obj: Component, form: Any, change: bool) -> None:
        component_update_in_order(
            name=obj.name, description=obj.description, owner=obj.owner, user=request.user
        )

    @admin.display(description="tags")
    def tag_list(self, component: Component) -> str:
        return ", ".join(sorted(tag.name for tag in component.tags.all()))

    @admin.display(description="runs")
    def runs_link(self, component: Component) -> str:
        url = reverse("admin:runs_run_changelist") + f"?component__id__exact={component.id}"
        return format_html('<a href="{}">runs of {}</a>', url, component.name)


@admin.register(Tag)
class TagAdmin(LargeTableAdmin):
    list_display = ["name", "component_count"]
    search_fields = ["name"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tag]:
        return super().get_queryset(request).annotate(components_count=Count("components"))

    @admin.display(description="components", ordering="components_count")
    def component_count(self, tag: Tag) -> int:
        return tag.components_count  # type: ignore[attr-defined]  # annotated by get_queryset
