"""The routes of /api/v1/: one view per endpoint, in api/views/."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from api.views.components import ComponentViewSet, TagViewSet
from api.views.openlineage import OpenLineageBatchView, OpenLineageRunsView, OpenLineageView
from api.views.runs import FlagView, ImpactView, QueueView, ReviewView, RunViewSet, TraceView, UnflagView
from api.views.task_flag import TaskFlagView
from api.views.task_reads import TaskListView, TaskMetricsView, TaskPairsView, TaskSeriesView, TaskView
from api.views.tasks import TaskFeedbackView, TaskOutputsView

router = SimpleRouter()
router.register("components", ComponentViewSet, basename="component")
router.register("tags", TagViewSet, basename="tag")
router.register("runs", RunViewSet, basename="run")

urlpatterns = [
    *router.urls,
    path("trace/", TraceView.as_view(), name="trace"),
    path("impact/", ImpactView.as_view(), name="impact"),
    path("flag/", FlagView.as_view(), name="flag"),
    path("unflag/", UnflagView.as_view(), name="unflag"),
    path("review/", ReviewView.as_view(), name="review"),
    path("queue/", QueueView.as_view(), name="queue"),
    # OpenLineage's paths, exactly: its clients never add a slash, and a redirect would turn
    # their POST into a GET.
    path("lineage", OpenLineageView.as_view(), name="openlineage"),
    path("lineage/batch", OpenLineageBatchView.as_view(), name="openlineage-batch"),
    path("lineage/runs/", OpenLineageRunsView.as_view(), name="openlineage-runs"),
    # Monitoring. <path:task> takes a "/" too, so that a name holding one (sent as %2F) is a
    # 400 that says why on a write, not a 404; the paths with a suffix come first.
    path("tasks/", TaskListView.as_view(), name="tasks"),
    path("tasks/<path:task>/outputs/", TaskOutputsView.as_view(), name="task-outputs"),
    path("tasks/<path:task>/feedback/", TaskFeedbackView.as_view(), name="task-feedback"),
    path("tasks/<path:task>/pairs/", TaskPairsView.as_view(), name="task-pairs"),
    path("tasks/<path:task>/metrics/", TaskMetricsView.as_view(), name="task-metrics"),
    path("tasks/<path:task>/series/", TaskSeriesView.as_view(), name="task-series"),
    path("tasks/<path:task>/flag/", TaskFlagView.as_view(), name="task-flag"),
    path("tasks/<path:task>/", TaskView.as_view(), name="task"),
]
