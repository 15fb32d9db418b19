"""The one door a view calls with a validated write request: accepted and queued (the 202
path, ingest/accept.py), or with ?sync=true committed before the answer (ingest/sync.py)."""

from __future__ import annotations

from typing import Any

from ingest.accept import writes_accept
from ingest.idempotency import Idempotency, Recorded
from ingest.sync import writes_commit_now


def writes_submit(
    *,
    kind: str,
    payloads: list[dict[str, Any]],
    sync: bool,
    idempotency: Idempotency | None = None,
    user: Any = None,
) -> Recorded:
    """Records validated writes: committed now when sync (?sync=true), else accepted and queued.

    Raises what the door raises: DependencyUnresolved from the synchronous one (nothing of the
    request written), OperationalError when the database cannot record them.
    """
    if sync:
        return writes_commit_now(kind=kind, payloads=payloads, idempotency=idempotency, user=user)
    return writes_accept(kind=kind, payloads=payloads, idempotency=idempotency, user=user)
