from __future__ import annotations

from django.db import models

COMPONENT_NAME_MAX_LENGTH = 255
TAG_NAME_MAX_LENGTH = 255
OWNER_MAX_LENGTH = 255


class Tag(models.Model):
    name = models.CharField(max_length=TAG_NAME_MAX_LENGTH, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Component(models.Model):
    name = models.CharField(max_length=COMPONENT_NAME_MAX_LENGTH, unique=True)
    description = models.TextField(blank=True, default="")
    owner = models.CharField(max_length=OWNER_MAX_LENGTH, blank=True, default="", db_index=True)
    tags = models.ManyToManyField(Tag, related_name="components", blank=True)
    # Kept by the commit of each run, in the same transaction: listing components never
    # counts the runs table.
    run_count = models.BigIntegerField(default=0)
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    # In the component list without ?all=true: created or used by a native write, or an
    # OpenLineage job one of whose runs named a dataset. A job whose runs never did (dbt-ol's
    # per-statement jobs, a DAG run) is still served by name. Once true, never false again.
    listed = models.BooleanField(default=True, db_default=True)  # db_default: for raw INSERTs (bench)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
