"""The write buffer and the thread that sends it, in program order, over one connection.

A write call checks and copies its write, appends it to a bounded buffer and returns. One
background thread takes the buffer in order: consecutive runs go out as one
`POST /api/v1/runs/batch/` (up to MLTRACE_BATCH_RUNS, 1,000), a component write as one
`POST /api/v1/components/`. The server numbers accepted writes in the order it accepts them,
so one process's writes keep the order it made them in, and the lineage the server infers
is the one synchronous logging would give.

Each request carries an Idempotency-Key that its retries reuse, so a request whose answer
was lost (a timeout, a restart) is never accepted twice. Outages are waited out for as long
as they last; a write the server refuses (4xx) is logged, handed to the error callback, and
dropped from the buffer, and its neighbours are sent again without it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from typing import Any

from mltrace._config import Settings
from mltrace._http import Response, Transport, backoff, error_for
from mltrace.errors import RefusedWrite, ServerError

logger = logging.getLogger("mltrace")

RUN = "run"
COMPONENT = "component"
# A batch that keeps failing with HTTP 500 is split to find the write behind it.
SERVER_ERROR_ATTEMPTS = 3
COMMIT_POLL_FIRST = 0.005
COMMIT_POLL_MAX = 0.2
WARN_EVERY = 30.0
# An outage is worth a warning once it has lasted this long; shorter ones cost only delay.
WARN_AFTER = 10.0


class Sender:
    """Owns the buffer, the sending thread and what it knows of the server's progress."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.transport = Transport(settings.server_url, settings.token)
        self.lock = threading.Lock()
        self.has_work = threading.Condition(self.lock)
        self.progress = threading.Condition(self.lock)
        self.buffer: deque[tuple[int, str, dict]] = deque()
        self.in_flight = 0
        self.next_seq = 1  # the sequence number of the next write
        self.done_seq = 0  # every write up to this one is accepted or refused
        self.last_accepted_id = 0  # the server's id of the newest accepted write
        self.committed_through = 0  # every accepted id up to this one is committed
        self.accepted = 0
        self.refused = 0
        self.auth_error: ServerError | None = None
        self.thread: threading.Thread | None = None
        self.pid = os.getpid()
        self.stopped = threading.Event()
        self._warned_full = 0.0
        self._warned_retry = 0.0
        self._outage_since: float | None = None

    def retarget(self) -> None:
        """Sends every write not sent yet, and what follows, with the current settings'
        server and token (a request in flight finishes where it started)."""
        with self.lock:
            old = self.transport
            self.transport = Transport(self.settings.server_url, self.settings.token)
            if old.url != self.transport.url:
                # Ids are the server's: what this process knew of the old one says nothing here.
                self.last_accepted_id = self.committed_through = 0
            self.auth_error = None
            self.progress.notify_all()

    # --- the caller's side ---------------------------------------------------------------

    def put(self, kind: str, payload: dict) -> None:
        """Buffers one write; waits while the buffer is full (with a warning, never a drop)."""
        with self.lock:
            if self.thread is None:
                self._start()
            # The error callback runs in the sending thread: waiting there would wait for
            # itself. Its writes go over the bound instead.
            full = self.in_flight + len(self.buffer) >= self.settings.buffer_size
            if full and threading.current_thread() is not self.thread:
                self._wait_for_room()
            self.buffer.append((self.next_seq, kind, payload))
            self.next_seq += 1
            if len(self.buffer) == 1:
                self.has_work.notify()

    def _wait_for_room(self) -> None:
        now = time.monotonic()
        if now - self._warned_full > WARN_EVERY:
            self._warned_full = now
            logger.warning(
                "mltrace: the write buffer is full (%d writes); waiting until the server at %s "
                "accepts some (MLTRACE_BUFFER_SIZE sets its size)",
                self.settings.buffer_size,
                self.settings.server_url,
            )
        while self.in_flight + len(self.buffer) >= self.settings.buffer_size:
            self.progress.wait()

    def pending(self) -> int:
        """Writes made but not yet accepted or refused."""
        with self.lock:
            return self.next_seq - 1 - self.done_seq

    def wait_sent(self, timeout: float | None = None) -> bool:
        """Waits until every write made so far is accepted or refused; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            target = self.next_seq - 1
            while self.done_seq < target:
                if self.auth_error is not None and self.done_seq < target:
                    raise self.auth_error
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self.progress.wait(remaining if remaining is None else min(remaining, 1.0))
            return True

    def wait_committed(self, timeout: float | None = None) -> bool:
        """Waits until every accepted write of this process is committed; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            target = self.last_accepted_id
            if self.committed_through >= target:
                return True
        pause = COMMIT_POLL_FIRST
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            queue = self.transport.get_json(
                "/api/v1/queue/", give_up_after=None if remaining is None else max(remaining, 0.1)
            )
            oldest = queue.get("oldest_pending_id")
            if oldest is None or oldest > target:
                with self.lock:
                    self.committed_through = max(self.committed_through, target)
                return True
            time.sleep(pause if remaining is None else min(pause, remaining))
            pause = min(pause * 1.5, COMMIT_POLL_MAX)

    def flush(self, timeout: float | None = None) -> bool:
        """Every write made so far accepted and committed; False if the timeout came first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self.wait_sent(timeout):
            return False
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self.wait_committed(remaining)

    def send_now(self, kind: str, payload: dict) -> None:
        """Sends one write with ?sync=true, after every buffered one, and returns once it is
        committed. Raises ValueError if the server refuses it, ServerError for a bad token."""
        self.wait_sent()
        path = "/api/v1/runs/" if kind == RUN else "/api/v1/components/"
        response = self.transport.request(
            "POST",
            path,
            params={"sync": "true"},
            body=json.dumps(payload, ensure_ascii=False).encode(),
            headers={"Idempotency-Key": uuid.uuid4().hex},
            on_retry=self._log_retry,
        )
        if response.status == 400:
            raise ValueError(f"the mltrace server refused this {kind}: {response.error_text()}")
        if response.status not in (200, 201):
            raise error_for(self.settings.server_url, response)
        # The synchronous door commits everything queued before it: this process's writes too.
        with self.lock:
            if kind == RUN:
                self.last_accepted_id = max(self.last_accepted_id, response.json()["id"])
            self.committed_through = self.last_accepted_id

    # --- the sending thread --------------------------------------------------------------

    def _start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="mltrace-sender", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            with self.lock:
                while not self.buffer:
                    self.has_work.wait()
                batch = self._take()
                self.in_flight = len(batch)
            try:
                outcome = self._send(batch)
            except Exception:  # a bug here must not silently stop every later write
                logger.exception("mltrace: the sender failed; retrying these writes")
                time.sleep(1.0)
                with self.lock:
                    self.buffer.extendleft(reversed(batch))
                    self.in_flight = 0
                continue
            with self.lock:
                self.in_flight = 0
                self.done_seq = batch[-1][0]
                accepted_ids = [write_id for write_id in outcome if write_id is not None]
                if accepted_ids:
                    self.last_accepted_id = max(self.last_accepted_id, max(accepted_ids))
                self.accepted += len(accepted_ids)
                self.refused += len(outcome) - len(accepted_ids)
                self.auth_error = None
                self.progress.notify_all()

    def _take(self) -> list[tuple[int, str, dict]]:
        first = self.buffer.popleft()
        batch = [first]
        if first[1] == RUN:
            limit = self.settings.batch_runs
            while self.buffer and len(batch) < limit and self.buffer[0][1] == RUN:
                batch.append(self.buffer.popleft())
        return batch

    def _send(self, batch: list[tuple[int, str, dict]]) -> list[int | None]:
        """The server's id for each write of the batch, None where it was refused."""
        if batch[0][1] == COMPONENT:
            return [self._send_component(batch[0][2])]
        payloads = [payload for _, _, payload in batch]
        encoded = [
            json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() for payload in payloads
        ]
        ids: list[int | None] = []
        for start, end in _chunks_by_size(encoded, self.settings.max_request_bytes):
            ids += self._send_runs(payloads[start:end], encoded[start:end])
        return ids

    def _send_component(self, payload: dict) -> int | None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        response = self._post("/api/v1/components/", body)
        if response.status in (200, 201, 202):
            return response.json()["id"] if response.status == 202 else None
        self._refuse(COMPONENT, payload, response.status, response.json() or response.error_text())
        return None

    def _send_runs(self, payloads: list[dict], encoded: list[bytes], attempt: int = 0) -> list[int | None]:
        body = b'{"runs":[' + b",".join(encoded) + b"]}"
        response = self._post("/api/v1/runs/batch/", body)
        if response.status in (201, 202):
            return [run["id"] for run in response.json()["runs"]]
        if response.status == 400:
            refused = _refused_indexes(response.json(), len(payloads))
            if refused:
                for index, error in refused.items():
                    self._refuse(RUN, payloads[index], 400, error)
                keep = [i for i in range(len(payloads)) if i not in refused]
                ids: list[int | None] = [None] * len(payloads)
                if keep:
                    resent = self._send_runs([payloads[i] for i in keep], [encoded[i] for i in keep])
                    for i, write_id in zip(keep, resent):
                        ids[i] = write_id
                return ids
        if response.status >= 500 and attempt + 1 < SERVER_ERROR_ATTEMPTS:
            time.sleep(backoff(attempt + 2))
            return self._send_runs(payloads, encoded, attempt + 1)
        if len(payloads) > 1:
            # A 413, an answer that names no index, or a 500 that keeps coming: halve the
            # batch until the write behind it stands alone.
            middle = len(payloads) // 2
            return self._send_runs(payloads[:middle], encoded[:middle]) + self._send_runs(
                payloads[middle:], encoded[middle:]
            )
        self._refuse(RUN, payloads[0], response.status, response.json() or response.error_text())
        return [None]

    def _post(self, path: str, body: bytes) -> Response:
        """POST until an answer that is not transient and not an auth failure."""
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        attempt = 0
        while True:
            response = self.transport.request(
                "POST", path, body=body, headers=headers, stop=self.stopped, on_retry=self._log_retry
            )
            if response.status not in (401, 403):
                self._outage_since = None
                return response
            # A token problem is fixed by configuration, not by dropping writes: keep them,
            # say so, and try again.
            error = error_for(self.settings.server_url, response)
            with self.lock:
                first = self.auth_error is None
                self.auth_error = error
                self.progress.notify_all()
            if first:
                logger.error("mltrace: %s; %d writes wait for a token it accepts", error, self.pending())
            if self.stopped.wait(backoff(attempt + 4)):
                raise error
            attempt += 1

    def _log_retry(self, problem: str, wait: float) -> None:
        now = time.monotonic()
        logger.debug("mltrace: retrying in %.2f s (%s)", wait, problem)
        if self._outage_since is None:
            self._outage_since = now
        if now - self._outage_since >= WARN_AFTER and now - self._warned_retry > WARN_EVERY:
            self._warned_retry = now
            logger.warning(
                "mltrace: %d writes wait for the server at %s (%s); retrying",
                self.pending(),
                self.settings.server_url,
                problem,
            )

    def _refuse(self, kind: str, payload: dict, status: int, error: Any) -> None:
        refused = RefusedWrite(kind=kind, payload=payload, status=status, error=error)
        logger.error("mltrace: the server refused a %s", refused.describe())
        callback = self.settings.error_callback
        if callback is not None:
            try:
                callback(refused)
            except Exception:
                logger.exception("mltrace: the error callback raised")


def _chunks_by_size(encoded: list[bytes], limit: int) -> list[tuple[int, int]]:
    """Consecutive (start, end) slices whose bodies stay under `limit` bytes (one write at least)."""
    chunks, start, size = [], 0, 0
    for index, body in enumerate(encoded):
        if index > start and size + len(body) + 1 > limit:
            chunks.append((start, index))
            start, size = index, 0
        size += len(body) + 1
    chunks.append((start, len(encoded)))
    return chunks


def _refused_indexes(body: Any, count: int) -> dict[int, Any]:
    """{index: errors} from a batch's 400 ({"runs": {"3": {...}}}); {} if it names none."""
    errors = body.get("runs") if isinstance(body, dict) else None
    if not isinstance(errors, dict):
        return {}
    refused = {}
    for key, error in errors.items():
        if not (isinstance(key, str) and key.isdigit() and int(key) < count):
            return {}
        refused[int(key)] = error
    return refused
