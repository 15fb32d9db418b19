from __future__ import annotations

import json

from mltrace.entities.base import Base


class Component(Base):
    """A component as stored: name, description, owner and tags."""

    def __init__(self, name: str, description: str, owner: str, tags: list[str] | None = None):
        self._name = name
        self._description = description
        self._owner = owner
        self._tags = [] if tags is None else tags

    @property
    def name(self) -> str:
        return self._name

    @property
    def description(self) -> str:
        return self._description

    @property
    def owner(self) -> str:
        return self._owner

    @property
    def tags(self) -> list[str]:
        return self._tags

    def __repr__(self) -> str:
        return json.dumps(self.to_dictionary())
