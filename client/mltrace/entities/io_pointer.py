from __future__ import annotations

import json
from typing import Any

from mltrace.db.models import PointerTypeEnum, infer_pointer_type
from mltrace.entities.base import Base


class IOPointer(Base):
    """An input or output of a run: a file, a table, a model, a prediction id.

    A pointer is identified by (name, value). Without a pointer_type, the type is inferred
    from the name (mltrace 0.17 left such pointers UNKNOWN).
    """

    def __init__(
        self,
        name: str,
        value: Any = "",
        pointer_type: PointerTypeEnum | str | None = None,
        flag: bool = False,
    ):
        self._name = name
        self._value = value
        self._pointer_type = (
            infer_pointer_type(str(name)) if pointer_type is None else PointerTypeEnum(pointer_type)
        )
        self._flag = flag

    @property
    def name(self) -> str:
        return self._name

    @property
    def value(self) -> Any:
        return self._value

    @property
    def pointer_type(self) -> PointerTypeEnum:
        return self._pointer_type

    @property
    def flag(self) -> bool:
        return self._flag

    def __repr__(self) -> str:
        params = self.to_dictionary()
        del params["value"]
        params["pointer_type"] = params["pointer_type"].value
        return json.dumps(params)
