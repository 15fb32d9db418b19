"""A task's outputs and feedback: one path each for reading (GET) and writing (POST).

Django sends a path to one view, so each is the read view and the write view in one class:
GET from api/views/task_reads.py, POST from api/views/task_writes.py, with the query
parameters of both.
"""

from __future__ import annotations

from api.views.task_reads import TaskFeedbackReadView, TaskOutputsReadView
from api.views.task_writes import TaskFeedbackWriteView, TaskOutputsWriteView


class TaskOutputsView(TaskOutputsReadView, TaskOutputsWriteView):
    query_parameters = {**TaskOutputsReadView.query_parameters, **TaskOutputsWriteView.query_parameters}


class TaskFeedbackView(TaskFeedbackReadView, TaskFeedbackWriteView):
    query_parameters = {**TaskFeedbackReadView.query_parameters, **TaskFeedbackWriteView.query_parameters}
