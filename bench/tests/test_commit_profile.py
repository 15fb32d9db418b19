"""bench/commit_profile.py: a commit's time by part, beside the limit's COPY of as many runs."""

from __future__ import annotations

from bench.commit_profile import profile, report
from components.models import Component
from ingest.accept import writes_accept
from runs.models import Run, RunDependency, Write
from tests.factories import run_request_body


def test_it_commits_the_queue_the_workers_way_then_copies_as_many_runs_past_every_id(live_db):
    result = profile(batches=2, batch=30, predictions=2)

    assert [batch["writes"] for batch in result["ours"]] == [30, 30]
    assert [batch["runs"] for batch in result["limit"]] == [30, 30]
    assert all(batch["wal_bytes"] > 0 for batch in result["ours"] + result["limit"])
    assert {"COMMIT", "new pointers: stage COPY and INSERT", "COPY: links", "COPY: run rows"} <= set(
        result["ours_parts_mean"]
    )
    # Ours went through the commit: every write committed, counted on its component, and each
    # inference run depends on the train run before it (etl, train, then 58 inference runs).
    assert Run.objects.count() == 120
    assert not Write.objects.exclude(status="committed").exists()
    assert dict(Component.objects.values_list("name", "run_count")) == {"etl": 1, "train": 1, "infer": 58}
    ours = Run.objects.order_by("id")[:60]
    assert RunDependency.objects.filter(run__in=ours).count() == 59
    # The limit's rows took ids the sequences had moved past: what is accepted next is newer.
    (next_id,) = writes_accept(kind=Write.Kind.RUN, payloads=[run_request_body("etl")]).write_ids
    assert next_id > Run.objects.order_by("-id").values_list("id", flat=True).first()
    assert "median ms: ours" in report(result)
