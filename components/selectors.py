"""Reads of components and tags."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from common.errors import COMPONENT_NOT_FOUND, NotFound
from components.models import Component, Tag


def component_list(*, tag: str = "", owner: str = "", unlisted: bool = False) -> QuerySet[Component]:
    """Components with this tag and/or owner (all when both are empty), by name: the listed
    ones, or with unlisted=True those too (OpenLineage jobs whose runs named no dataset)."""
    components = Component.objects.prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
    if not unlisted:
        components = components.filter(listed=True)
    if tag:
        components = components.filter(tags__name=tag)
    if owner:
        components = components.filter(owner=owner)
    return components.order_by("name")


def component_get(*, name: str) -> Component:
    """The component of this name, tags prefetched. Raises NotFound."""
    # A name from a URL may hold a NUL, which no stored name holds and PostgreSQL refuses.
    component = None if "\x00" in name else component_list(unlisted=True).filter(name=name).first()
    if component is None:
        raise NotFound(COMPONENT_NOT_FOUND.format(name=name))
    return component


def tag_list() -> QuerySet[Tag]:
    """Every tag, by name."""
    return Tag.objects.order_by("name")
