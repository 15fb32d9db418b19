from __future__ import annotations

import datetime as dt
import itertools
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from runs.commit import writes_commit
from runs.models import Write
from runs.serializers import RunCreateSerializer, run_payload
from runs.services import Answer, commit_lock, writes_accept

sys.path.insert(0, str(Path(settings.BASE_DIR)))
from bench.payloads import pipeline  # noqa: E402


class Command(BaseCommand):
    help = (
        "Fills the database with pipeline-shaped runs (etl -> train -> 100 inference runs of 10 "
        "predictions each) through the same commit path the workers use, in batches."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--runs", type=int, required=True)
        parser.add_argument("--batch", type=int, default=1000)
        parser.add_argument("--predictions", type=int, default=1, help="ENDPOINT outputs per inference run")
        parser.add_argument(
            "--queue",
            action="store_true",
            help="accept the runs as queued writes and let the workers (qcluster) commit them",
        )

    def handle(
        self, *args: Any, runs: int, batch: int, predictions: int, queue: bool, **options: Any
    ) -> None:
        # Runs start back in time and end now, so live traffic afterwards is the newest.
        start = timezone.now() - dt.timedelta(seconds=runs)
        stream = pipeline(start=start, predictions=predictions)
        validator = RunCreateSerializer()
        done = 0
        began = time.perf_counter()
        while done < runs:
            size = min(batch, runs - done)
            # The payloads the API would store: validated and normalized the same way.
            payloads = [run_payload(validator.run_validation(p)) for p in itertools.islice(stream, size)]
            if queue:
                # The accept door, as the batch endpoint uses it; the workers commit them.
                writes_accept(kind=Write.Kind.RUN, payloads=payloads, answer=lambda writes: Answer(202, None))
            else:
                with transaction.atomic():
                    commit_lock()
                    now = timezone.now()
                    writes = Write.objects.bulk_create(
                        [
                            Write(
                                kind=Write.Kind.RUN,
                                status=Write.Status.COMMITTED,
                                accepted_at=now,
                                committed_at=now,
                            )
                            for _ in payloads
                        ]
                    )
                    for write, payload in zip(writes, payloads, strict=True):
                        write.payload = payload
                    writes_commit(writes, strict=False)
            done += size
            elapsed = time.perf_counter() - began
            verb = "queued" if queue else "seeded"
            self.stdout.write(f"{verb} {done}/{runs} runs ({done / elapsed:.0f} runs/s)")
        verb = "queued" if queue else "seeded"
        self.stdout.write(self.style.SUCCESS(f"{verb} {runs} runs in {time.perf_counter() - began:.1f} s"))
