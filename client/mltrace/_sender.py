"""The write buffer and the thread that sends it, in program order, over one connection.

A write call checks and copies its write, appends it to a bounded buffer and returns. One
background thread takes the buffer in order: consecutive runs go out as one
`POST /api/v1/runs/batch/` (up to MLTRACE_BATCH_RUNS, 1,000), a component write as one
`POST /api/v1/components/`. The server numbers accepted writes in the order it accepts them,
so one process's writes keep the order it made them in, and the lineage the server infers
is the one synchronous logging would give.

Monitoring's writes (a task's outputs and feedback, one buffered write per item) that follow
each other in the buffer are taken together, up to MLTRACE_BATCH_OUTPUTS (10,000), and sent
as one `POST /api/v1/tasks/{task}/outputs/` (or `/feedback/`) per task and kind, the items in
the order they were made. Items of different tasks, or an output and a feedback, change
different things on the server, so their relative order does not matter; runs and
components before and after them keep their places.

Each request body carries an Idempotency-Key that every retry of that body reuses, so a
request whose answer was lost (a timeout, a restart, a proxy's 500) is never accepted twice.
Outages are waited out for as long as they last. A write the server refuses (a 400, or a
413 or a 500 that stays when the write is sent alone) is logged, handed to the error
callback and dropped, and its neighbours are sent again without it. An answer that says the
configuration is wrong (401, 403, 404, 405) drops nothing: the writes wait, and flush() and
reads raise it, until new settings (set_server) send them.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from typing import Any

from mltrace._config import Settings
from mltrace._http import Response, Retargeted, Transport, backoff, error_for, path_segment
from mltrace.errors import RefusedWrite, ServerError

logger = logging.getLogger("mltrace")

RUN = "run"
COMPONENT = "component"
OUTPUT = "output"
FEEDBACK = "feedback"
MONITORING = frozenset((OUTPUT, FEEDBACK))
# The list a request body of each kind holds its writes in.
BATCH_FIELDS = {RUN: "runs", OUTPUT: "outputs", FEEDBACK: "feedback"}
# A body answered HTTP 500 is tried this many times, with its key, before it is split (or,
# alone, refused).
SERVER_ERROR_ATTEMPTS = 3
# Answers that no retry of the same request can change: the token, or a URL that is not an
# mltrace server's. The writes are kept until the settings change.
CONFIGURATION_ERRORS = frozenset((401, 403, 404, 405))
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
        # Reentrant: the exit flush may run in a signal handler while this thread holds it.
        self.lock = threading.RLock()
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
        self.configuration_error: ServerError | None = None
        self.thread: threading.Thread | None = None
        self.pid = os.getpid()
        self.outage_since: float | None = None
        self._warned_full = 0.0
        self._warned_retry = 0.0

    def retarget(self) -> None:
        """Sends every write not accepted yet, and what follows, with the current settings'
        server and token; a request retrying against the old ones moves over at once."""
        with self.lock:
            old = self.transport
            self.transport = Transport(self.settings.server_url, self.settings.token)
            old.abort.set()
            if old.url != self.transport.url:
                # Ids are the server's: what this process knew of the old one says nothing here.
                self.last_accepted_id = self.committed_through = 0
            self.configuration_error = None
            self.outage_since = None
            self.progress.notify_all()

    # --- the caller's side ---------------------------------------------------------------

    def put(self, kind: str, payload: dict) -> None:
        """Buffers one write; waits while the buffer is full (with a warning, never a drop)."""
        self.put_many(kind, (payload,))

    def put_many(self, kind: str, payloads: Iterable[dict]) -> None:
        """Buffers writes of one kind, in order, as put() does each."""
        with self.lock:
            if self.thread is None:
                self._start()
            for payload in payloads:
                # The error callback runs in the sending thread: waiting there would wait
                # for itself. Its writes go over the bound instead.
                full = self.in_flight + len(self.buffer) >= self.settings.buffer_size
                if full and not self._in_sending_thread():
                    self._wait_for_room()
                self.buffer.append((self.next_seq, kind, payload))
                self.next_seq += 1
                if len(self.buffer) == 1:
                    self.has_work.notify()

    def _in_sending_thread(self) -> bool:
        return threading.current_thread() is self.thread

    def _wait_for_room(self) -> None:
        now = time.monotonic()
        if now - self._warned_full > WARN_EVERY:
            self._warned_full = now
            logger.warning(
                "mltrace: the write buffer is full (%d writes); waiting until the server at %s "
                "accepts some (MLTRACE_BUFFER_SIZE sets its size)",
                self.settings.buffer_size,
                self.transport.url,
            )
        while self.in_flight + len(self.buffer) >= self.settings.buffer_size:
            self.progress.wait()

    def pending(self) -> int:
        """Writes made but not yet accepted or refused."""
        with self.lock:
            return self.next_seq - 1 - self.done_seq

    def wait_sent(self, timeout: float | None = None) -> bool:
        """Waits until every write made so far is accepted or refused; False on timeout.

        Raises the configuration error (a bad token, a wrong URL) that holds the writes back.
        In the sending thread (the error callback) it returns False at once: it would wait
        for itself.
        """
        if self._in_sending_thread():
            return False
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            target = self.next_seq - 1
            while self.done_seq < target:
                if self.configuration_error is not None:
                    raise self.configuration_error
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self.progress.wait(1.0 if remaining is None else min(remaining, 1.0))
            return True

    def wait_committed(self, timeout: float | None = None) -> bool:
        """Waits until every accepted write of this process is committed; False on timeout.

        Raises ServerUnreachable if the server does not answer within the timeout.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            target = self.last_accepted_id
            if self.committed_through >= target:
                return True
            transport = self.transport
        pause = COMMIT_POLL_FIRST
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            queue = transport.get_json(
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
        """Every write made so far accepted (or refused) and committed; False if the timeout
        came first, or in the sending thread."""
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
        body = json.dumps(payload, ensure_ascii=False).encode()
        write_id = self._post_now(kind, path, body)
        # The synchronous door commits everything queued before it: this process's writes too.
        with self.lock:
            if kind == RUN:
                self.last_accepted_id = max(self.last_accepted_id, write_id)
            self.committed_through = self.last_accepted_id

    def send_items_now(self, kind: str, payloads: list[dict]) -> None:
        """Sends outputs or feedback (of one task) with ?sync=true, after every buffered write,
        as few requests as the server's limits allow, and returns once they are committed."""
        self.wait_sent()
        if not payloads:
            return
        path = monitoring_path(kind, payloads[0]["task"])
        encoded = [_item_body(payload) for payload in payloads]
        size = self.settings.batch_outputs
        for first in range(0, len(encoded), size):
            part = encoded[first : first + size]
            for start, end in _chunks_by_size(part, self.settings.max_request_bytes):
                write_id = self._post_now(kind, path, _batch_body(kind, part[start:end]))
                with self.lock:
                    self.last_accepted_id = max(self.last_accepted_id, write_id)
                    self.committed_through = self.last_accepted_id

    def _post_now(self, kind: str, path: str, body: bytes) -> Any:
        """POSTs one body with ?sync=true; the id of the committed write."""
        key = uuid.uuid4().hex
        while True:
            transport = self.transport
            try:
                response = transport.request(
                    "POST",
                    path,
                    params={"sync": "true"},
                    body=body,
                    headers={"Idempotency-Key": key},
                    on_retry=self._log_retry,
                )
                break
            except Retargeted:
                continue
        if response.status == 400:
            raise ValueError(f"the mltrace server refused this {kind}: {response.error_text()}")
        if response.status not in (200, 201):
            raise error_for(transport.url, response)
        answer = response.json()
        return answer.get("id", 0) if isinstance(answer, dict) else 0

    # --- the sending thread --------------------------------------------------------------

    def _start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="mltrace-sender", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            with self.lock:
                while not self.buffer:
                    self.has_work.wait()
                batch = self._take()
                self.in_flight = len(batch)
            try:
                outcome = self._send(batch)
            except Exception:  # a bug here must not silently stop every later write
                logger.exception("mltrace: the sender failed; these writes are tried again")
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
                self.progress.notify_all()

    def _take(self) -> list[tuple[int, str, dict]]:
        """The next writes to send: consecutive runs, or consecutive outputs and feedback,
        up to their batch limit; a component write alone."""
        first = self.buffer.popleft()
        batch = [first]
        if first[1] == RUN:
            limit = self.settings.batch_runs
            while self.buffer and len(batch) < limit and self.buffer[0][1] == RUN:
                batch.append(self.buffer.popleft())
        elif first[1] in MONITORING:
            limit = self.settings.batch_outputs
            while self.buffer and len(batch) < limit and self.buffer[0][1] in MONITORING:
                batch.append(self.buffer.popleft())
        return batch

    def _send(self, batch: list[tuple[int, str, dict]]) -> list[int | None]:
        """The server's id for each write of the batch, None where it was refused."""
        if batch[0][1] == COMPONENT:
            payload = batch[0][2]
            body = json.dumps(payload, ensure_ascii=False).encode()
            response = self._post("/api/v1/components/", body)
            if response.status == 202:
                return [response.json()["id"]]
            self._refuse(COMPONENT, payload, response)
            return [None]
        if batch[0][1] in MONITORING:
            return self._send_items(batch)
        payloads = [payload for _, _, payload in batch]
        encoded = [
            json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() for payload in payloads
        ]
        ids: list[int | None] = []
        for start, end in _chunks_by_size(encoded, self.settings.max_request_bytes):
            ids += self._send_batch(RUN, "/api/v1/runs/batch/", payloads[start:end], encoded[start:end])
        return ids

    def _send_items(self, batch: list[tuple[int, str, dict]]) -> list[int | None]:
        """Outputs and feedback: one request (or as few as the size bound allows) per task and
        kind, each holding its items in the order they were made."""
        groups: dict[tuple[str, str], list[int]] = {}
        for index, (_, kind, payload) in enumerate(batch):
            groups.setdefault((kind, payload["task"]), []).append(index)
        ids: list[int | None] = [None] * len(batch)
        for (kind, task), indexes in groups.items():
            path = monitoring_path(kind, task)
            payloads = [batch[i][2] for i in indexes]
            encoded = [_item_body(payload) for payload in payloads]
            sent: list[int | None] = []
            for start, end in _chunks_by_size(encoded, self.settings.max_request_bytes):
                sent += self._send_batch(kind, path, payloads[start:end], encoded[start:end])
            for i, write_id in zip(indexes, sent):
                ids[i] = write_id
        return ids

    def _send_batch(
        self, kind: str, path: str, payloads: list[dict], encoded: list[bytes]
    ) -> list[int | None]:
        """One batch request: the server's id for each write, None where it was refused.

        A run batch is many writes (an id each); an output or feedback batch is one write
        holding every item, refused whole if any item is bad."""
        response = self._post(path, _batch_body(kind, encoded))
        if response.status == 202:
            answer = response.json()
            if kind == RUN:
                return [run["id"] for run in answer["runs"]]
            return [answer["id"]] * len(payloads)
        if response.status == 400:
            refused = _refused_indexes(response.json(), len(payloads), BATCH_FIELDS[kind])
            if refused:
                for index, error in refused.items():
                    self._refuse(kind, payloads[index], response, error)
                keep = [i for i in range(len(payloads)) if i not in refused]
                ids: list[int | None] = [None] * len(payloads)
                if keep:
                    resent = self._send_batch(
                        kind, path, [payloads[i] for i in keep], [encoded[i] for i in keep]
                    )
                    for i, write_id in zip(keep, resent):
                        ids[i] = write_id
                return ids
            if kind in MONITORING:
                # A 400 that names no item is about the request itself (its task): no part
                # of it would be taken.
                for payload in payloads:
                    self._refuse(kind, payload, response)
                return [None] * len(payloads)
        if len(payloads) > 1:
            # A 413, a 400 that names no index, or a 500 that stayed: halve the batch until
            # the write behind it stands alone.
            middle = len(payloads) // 2
            return self._send_batch(kind, path, payloads[:middle], encoded[:middle]) + self._send_batch(
                kind, path, payloads[middle:], encoded[middle:]
            )
        self._refuse(kind, payloads[0], response)
        return [None]

    def _post(self, path: str, body: bytes) -> Response:
        """POST one body until an answer that is neither transient, nor a configuration
        error, nor a 500 that may pass; every try with the same Idempotency-Key."""
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        server_errors = attempt = 0
        while True:
            transport = self.transport
            try:
                response = transport.request(
                    "POST", path, body=body, headers=headers, on_retry=self._log_retry
                )
            except Retargeted:
                continue  # the same body and key, through the new settings
            if response.status in CONFIGURATION_ERRORS:
                self._hold_for_configuration(error_for(transport.url, response), transport, attempt)
                attempt += 1
                continue
            self.outage_since = None
            with self.lock:
                self.configuration_error = None
            if response.status >= 500 and server_errors + 1 < SERVER_ERROR_ATTEMPTS:
                server_errors += 1
                transport.abort.wait(backoff(server_errors + 2))
                continue
            return response

    def _hold_for_configuration(self, error: ServerError, transport: Transport, attempt: int) -> None:
        """Keeps the writes, says why once, and waits for new settings or the next try."""
        with self.lock:
            first = self.configuration_error is None
            self.configuration_error = error
            self.progress.notify_all()
        if first:
            logger.error("mltrace: %s; %d writes wait until it is fixed (set_server)", error, self.pending())
        transport.abort.wait(backoff(attempt + 4))

    def _log_retry(self, url: str, problem: str, wait: float) -> None:
        now = time.monotonic()
        logger.debug("mltrace: retrying in %.2f s (%s)", wait, problem)
        if self.outage_since is None:
            self.outage_since = now
        if now - self.outage_since >= WARN_AFTER and now - self._warned_retry > WARN_EVERY:
            self._warned_retry = now
            logger.warning(
                "mltrace: %d writes wait for the server at %s (%s); retrying", self.pending(), url, problem
            )

    def _refuse(self, kind: str, payload: dict, response: Response, error: Any = None) -> None:
        if error is None:
            error = response.json() or response.error_text()
        refused = RefusedWrite(kind=kind, payload=payload, status=response.status, error=error)
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


def monitoring_path(kind: str, task: str) -> str:
    """Where a task's outputs (or feedback) are written."""
    return f"/api/v1/tasks/{path_segment(task)}/{BATCH_FIELDS[kind]}/"


def _item_body(payload: dict) -> bytes:
    """An output or feedback item as a request body holds it (its task is in the URL)."""
    item = {"identifier": payload["identifier"], "value": payload["value"], "timestamp": payload["timestamp"]}
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()


def _batch_body(kind: str, encoded: list[bytes]) -> bytes:
    return b'{"' + BATCH_FIELDS[kind].encode() + b'":[' + b",".join(encoded) + b"]}"


def _refused_indexes(body: Any, count: int, field: str = "runs") -> dict[int, Any]:
    """{index: errors} from a batch's 400 ({"runs": {"3": {...}}}); {} if it names none."""
    errors = body.get(field) if isinstance(body, dict) else None
    if not isinstance(errors, dict):
        return {}
    refused = {}
    for key, error in errors.items():
        if not (isinstance(key, str) and key.isdigit() and int(key) < count):
            return {}
        refused[int(key)] = error
    return refused
