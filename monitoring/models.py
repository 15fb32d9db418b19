"""Monitoring: a task's outputs (predictions) and the feedback (ground truth) that answers them.

An output and its feedback meet in one row, keyed by (task, identifier): either may be written
first, and feedback often comes hours after its output. A repeated identifier replaces what it
names: the last output accepted for (task, identifier) is its output, and the last feedback
its feedback (acceptance order, as every write). A *pair* is a row with both.

Windows and series are read by the time of the output (`output_at`): "the last N seconds" are
the pairs whose output was logged in them, "the last N pairs" the N pairs with the latest
outputs, so that an answer arriving late counts in the window of the prediction it answers.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

TASK_NAME_MAX_LENGTH = 255
# 255 characters of up to 4 bytes stay under PostgreSQL's btree entry limit (2,704 bytes),
# so (task, identifier) is indexed as it is.
IDENTIFIER_MAX_LENGTH = 255


class Task(models.Model):
    """A monitored task (mltrace's Task(task_name)), made by its first output or feedback."""

    name = models.CharField(max_length=TASK_NAME_MAX_LENGTH, unique=True)
    created_at = models.DateTimeField()
    # Kept by each commit in its transaction: listing tasks never counts the predictions.
    output_count = models.BigIntegerField(default=0)
    feedback_count = models.BigIntegerField(default=0)
    pair_count = models.BigIntegerField(default=0)
    last_output_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Prediction(models.Model):
    """One identifier of a task: its latest output and its latest feedback, each with the time
    it was logged and the write that set it."""

    id = models.BigAutoField(primary_key=True)
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="+", db_index=False)
    identifier = models.CharField(max_length=IDENTIFIER_MAX_LENGTH)
    output = models.FloatField(null=True, blank=True)
    output_at = models.DateTimeField(null=True, blank=True)
    output_write = models.BigIntegerField(null=True, blank=True)
    feedback = models.FloatField(null=True, blank=True)
    feedback_at = models.DateTimeField(null=True, blank=True)
    feedback_write = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "identifier"], name="prediction_task_identifier_unique"),
        ]
        indexes = [
            # getOutputs: a task's outputs, newest first, or in the last N seconds.
            models.Index(fields=["task", "-output_at"], name="prediction_output_idx"),
            # getFeedback, the same way.
            models.Index(fields=["task", "-feedback_at"], name="prediction_feedback_idx"),
            # Metrics and series: a task's pairs by the time of their output.
            models.Index(
                fields=["task", "-output_at"],
                name="prediction_pair_idx",
                condition=Q(output__isnull=False, feedback__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.identifier} ({self.output} / {self.feedback})"
