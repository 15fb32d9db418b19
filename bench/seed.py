#!/usr/bin/env python
"""Fills the server's database with pipeline-shaped runs (bench/payloads.py: etl -> train ->
100 inference runs), in batches, through the server's own commit path, or into its queue
for the workers (--queue). bench/run.py seeds each database size with it.

It uses the server's code directly, as a management command would: it is a benchmark tool
that lives here so that the shipped server imports nothing of bench/.

    DATABASE_URL=postgres://... python bench/seed.py --runs 100000 --queue
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.payloads import pipeline  # noqa: E402


def seed(
    *, runs: int, batch: int = 1000, predictions: int = 1, queue: bool = False, say: Callable = print
) -> None:
    """Seeds `runs` runs: committed now (as the workers commit them), or queued with --queue."""
    from django.utils import timezone

    from api.serializers.runs import RunCreateSerializer, run_write_payload
    from ingest.accept import writes_accept
    from runs.models import Write

    # Runs start back in time and end now, so live traffic afterwards is the newest.
    start = timezone.now() - dt.timedelta(seconds=runs)
    stream = pipeline(start=start, predictions=predictions)
    validator = RunCreateSerializer()
    done = 0
    began = time.perf_counter()
    verb = "queued" if queue else "seeded"
    while done < runs:
        size = min(batch, runs - done)
        # The payloads the API would store: validated and normalized the same way.
        payloads = [run_write_payload(validator.run_validation(p)) for p in itertools.islice(stream, size)]
        if queue:
            # The accept door, as the batch endpoint uses it; the workers commit them.
            writes_accept(kind=Write.Kind.RUN, payloads=payloads)
        else:
            commit_now(payloads)
        done += size
        say(f"{verb} {done}/{runs} runs ({done / (time.perf_counter() - began):.0f} runs/s)")
    say(f"{verb} {runs} runs in {time.perf_counter() - began:.1f} s")


def commit_now(payloads: list[dict]) -> list[int]:
    """Commits validated run payloads as the workers would (one transaction, the commit
    lock held); returns their ids."""
    from django.db import transaction
    from django.utils import timezone

    from ingest.batch import batch_apply
    from ingest.locks import commit_lock
    from runs.models import Write

    with transaction.atomic():
        commit_lock()
        now = timezone.now()
        writes = Write.objects.bulk_create(
            [
                Write(kind=Write.Kind.RUN, status=Write.Status.COMMITTED, accepted_at=now, committed_at=now)
                for _ in payloads
            ]
        )
        for write, payload in zip(writes, payloads, strict=True):
            write.payload = payload
        batch_apply(writes, refuse_unresolved=False)
    return [write.id for write in writes]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--predictions", type=int, default=1, help="ENDPOINT outputs per inference run")
    parser.add_argument(
        "--queue",
        action="store_true",
        help="accept the runs as queued writes for the workers (qcluster) to commit",
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mltrace_site.settings")
    import django

    django.setup()
    seed(runs=args.runs, batch=args.batch, predictions=args.predictions, queue=args.queue)


if __name__ == "__main__":
    main()
