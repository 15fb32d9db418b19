from mltrace.entities import components, tests
from mltrace.entities.base_component import Component
from mltrace.entities.base_test import Test
from mltrace.entities.component_run import ComponentRun
from mltrace.entities.io_pointer import IOPointer

__all__ = [
    "Component",
    "ComponentRun",
    "IOPointer",
    "components",
    "Test",
    "tests",
]
