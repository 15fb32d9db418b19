"""bench/seed.py: pipeline-shaped runs through the commit path, or into the queue."""

from __future__ import annotations

import pytest

from bench.seed import seed
from components.models import Component
from runs.models import Run, RunDependency, Write

pytestmark = pytest.mark.django_db


def test_it_commits_pipeline_shaped_runs_through_the_commit_path():
    seed(runs=205, batch=50, say=lambda line: None)

    assert Run.objects.count() == 205
    assert dict(Component.objects.values_list("name", "run_count")) == {"etl": 3, "train": 2, "infer": 200}
    # Every inference run depends on the train run whose model it read.
    infer = Run.objects.filter(component__name="infer")
    assert RunDependency.objects.filter(run__in=infer).count() == 200
    assert not Write.objects.exclude(status="committed").exists()


def test_with_queue_it_accepts_the_runs_for_the_workers_to_commit():
    seed(runs=120, batch=50, queue=True, say=lambda line: None)

    assert Write.objects.filter(status="queued", kind="run").count() == 120
    assert not Run.objects.exists()
