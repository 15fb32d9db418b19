from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ingest.retry import writes_retry_failed


class Command(BaseCommand):
    help = (
        "Puts failed writes back in the queue (all, or the ids given) under their own ids; "
        "a worker commits them."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("ids", nargs="*", type=int, help="write ids; default: every failed write")

    def handle(self, *args: Any, ids: list[int], **options: Any) -> None:
        requeued = writes_retry_failed(ids=ids or None)
        if not requeued:
            self.stdout.write("no failed writes to retry")
            return
        self.stdout.write(f"requeued {len(requeued)} failed writes: {', '.join(map(str, requeued))}")
