"""The domain's edits of components and tags. Component writes from the API are committed in
ingest/batch.py, which calls tags_get_or_create here."""

from __future__ import annotations

from common.errors import COMPONENT_NOT_FOUND, NotFound
from components.models import Component, Tag


def tags_get_or_create(names: list[str]) -> list[Tag]:
    """Returns the tags of these names, creating the missing ones."""
    if not names:
        return []
    existing = {tag.name: tag for tag in Tag.objects.filter(name__in=names)}
    missing = [Tag(name=name) for name in dict.fromkeys(names) if name not in existing]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing.update({tag.name: tag for tag in Tag.objects.filter(name__in=[t.name for t in missing])})
    return [existing[name] for name in dict.fromkeys(names)]


def component_tags_add(*, component: Component, tags: list[str]) -> Component:
    """Adds tags to a component (existing ones are kept); returns the component."""
    if tags:
        component.tags.add(*tags_get_or_create(tags))
    return component


def component_update(*, name: str, description: str | None = None, owner: str | None = None) -> Component:
    """Replaces the description and/or owner of a component. Raises NotFound."""
    component = None if "\x00" in name else Component.objects.filter(name=name).first()
    if component is None:
        raise NotFound(COMPONENT_NOT_FOUND.format(name=name))
    changed = []
    if description is not None:
        component.description = description
        changed.append("description")
    if owner is not None:
        component.owner = owner
        changed.append("owner")
    if changed:
        component.save(update_fields=changed)
    return component
