"""Kinds of components, with the tests they run before and after."""

from __future__ import annotations

from mltrace.entities.base_component import Component
from mltrace.entities.tests import OutliersTest


class PreprocessingComponent(Component):
    def __init__(
        self,
        owner: str,
        name: str = "Preprocessing",
        description: str = "Preprocessing features to feed into a model.",
        tags: list[str] = [],  # noqa: B006 (mltrace's signature)
        beforeTests: list = [],  # noqa: B006, N803
        afterTests: list = [],  # noqa: B006, N803
    ):
        super().__init__(
            name=name,
            owner=owner,
            description=description,
            tags=tags,
            beforeTests=beforeTests,
            afterTests=[OutliersTest],
        )
