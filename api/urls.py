"""The routes of /api/v1/: one view per endpoint, in api/views/."""

from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from api.views.components import ComponentViewSet, TagViewSet
from api.views.openlineage import OpenLineageBatchView, OpenLineageRunsView, OpenLineageView
from api.views.runs import FlagView, ImpactView, QueueView, ReviewView, RunViewSet, TraceView, UnflagView
from api.views.task_writes import TaskFeedbackWriteView, TaskOutputsWriteView

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
    # Monitoring: writes. <path:task> takes a "/" too, so that a name holding one (sent as
    # %2F) is a 400 that says why, not a 404.
    path("tasks/<path:task>/outputs/", TaskOutputsWriteView.as_view(), name="task-outputs"),
    path("tasks/<path:task>/feedback/", TaskFeedbackWriteView.as_view(), name="task-feedback"),
]
