"""What every mltrace entity shares: its properties as a dictionary, and back.

mltrace 0.17 ran each attribute lookup through the descriptor protocol by hand, which breaks
on Python 3.11 and newer (a bound classmethod re-binds, and `to_dictionary()` returns `{}`).
Plain properties do the same job on every version.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class Base(ABC):
    """Saves, restores and prints an entity's properties."""

    def __iter__(self):
        for name in self._properties():
            yield name, getattr(self, name)

    @classmethod
    def _properties(cls) -> list[str]:
        return [name for name, value in vars(cls).items() if isinstance(value, property)]

    @classmethod
    def from_dictionary(cls, d: dict[str, Any]):
        properties = cls._properties()
        return cls(**{key: value for key, value in d.items() if key in properties})

    def to_dictionary(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._properties()}

    @abstractmethod
    def __repr__(self) -> str: ...
