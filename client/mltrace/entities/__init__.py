from mltrace.entities import components, tests
from mltrace.entities.base_component import Component
from mltrace.entities.base_test import Test
from mltrace.entities.component_run import ComponentRun
from mltrace.entities.io_pointer import IOPointer
from mltrace.entities.metrics import Metric, supported_sklearn_metrics
from mltrace.entities.task import Task

__all__ = [
    "Component",
    "ComponentRun",
    "IOPointer",
    "components",
    "Test",
    "tests",
    "Task",
    "supported_sklearn_metrics",
    "Metric",
]
