"""HTTP to the server over kept-alive connections (urllib3), with retries that wait out outages.

Transient answers are retried with exponential backoff and full jitter: connection errors,
timeouts, 429 and 502-504, and 503 after its Retry-After. Everything else comes back to the
caller, which knows what a 400 or a 401 means for what it sent.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import urllib3

from mltrace._version import __version__
from mltrace.errors import ServerError, ServerUnreachable

logger = logging.getLogger("mltrace")

TRANSIENT_STATUSES = frozenset((429, 502, 503, 504))
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 10.0
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 120.0


@dataclass
class Response:
    status: int
    headers: Any
    data: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.data) if self.data else None
        except ValueError:
            return None

    def error_text(self) -> str:
        body = self.json()
        if isinstance(body, dict) and set(body) == {"detail"}:
            return str(body["detail"])
        if body is not None:
            return json.dumps(body, ensure_ascii=False)
        return self.data[:200].decode("utf-8", "replace") or f"HTTP {self.status}"


def backoff(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait before attempt+1: Retry-After when given, else jittered exponential."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), 60.0)
    return random.uniform(0, min(BACKOFF_MAX, BACKOFF_FIRST * 2**attempt))


def retry_after_seconds(response: Response) -> float | None:
    raw = response.headers.get("Retry-After") if response.headers is not None else None
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


class Retargeted(Exception):
    """The transport was replaced (set_server, set_address) while a request was retrying."""


class Transport:
    """One server, one small pool of kept-alive connections, safe to share between threads."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.token = token
        self.timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT)
        self.pool = urllib3.PoolManager(num_pools=2, maxsize=4, timeout=self.timeout, retries=False)
        self.headers = {
            "Accept": "application/json",
            "User-Agent": f"mltrace-client/{__version__}",
        }
        if token:
            self.headers["Authorization"] = f"Token {token}"
        # Set when the settings change: a request retrying against this transport stops, and
        # its sender sends it again through the new one.
        self.abort = threading.Event()

    def request_once(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Response:
        """One request; raises urllib3's errors or OSError when nothing came back.

        timeout: a bound on this request's connect and read (seconds), below the defaults.
        """
        url = self.url + path
        if params:
            url += "?" + urlencode({k: v for k, v in params.items() if v is not None})
        all_headers = dict(self.headers)
        if body is not None:
            all_headers["Content-Type"] = "application/json"
        if headers:
            all_headers.update(headers)
        bound = self.timeout
        if timeout is not None:
            bound = urllib3.Timeout(connect=min(CONNECT_TIMEOUT, timeout), read=min(READ_TIMEOUT, timeout))
        raw = self.pool.request(method, url, body=body, headers=all_headers, redirect=False, timeout=bound)
        return Response(raw.status, raw.headers, raw.data)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        give_up_after: float | None = None,
        on_retry: Any = None,
    ) -> Response:
        """The first answer that is not transient, retrying until `give_up_after` seconds
        (None: for ever). Raises ServerUnreachable when it gives up without an answer, and
        Retargeted once retarget() has replaced this transport (see abort)."""
        deadline = None if give_up_after is None else time.monotonic() + give_up_after
        attempt = 0
        while True:
            if self.abort.is_set():
                raise Retargeted(self.url)
            remaining = None if deadline is None else max(0.05, deadline - time.monotonic())
            answer: Response | None = None
            try:
                answer = self.request_once(
                    method, path, params=params, body=body, headers=headers, timeout=remaining
                )
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                problem, wait = _reason(exc), backoff(attempt)
            else:
                if answer.status not in TRANSIENT_STATUSES:
                    return answer
                problem = f"HTTP {answer.status}: {answer.error_text()}"
                wait = backoff(attempt, retry_after_seconds(answer))
            if deadline is not None and time.monotonic() + wait > deadline:
                if answer is not None:
                    return answer
                raise ServerUnreachable(f"cannot reach the mltrace server at {self.url}: {problem}")
            if on_retry is not None:
                on_retry(self.url, problem, wait)
            if self.abort.wait(wait):
                raise Retargeted(self.url)
            attempt += 1

    def get_json(
        self, path: str, params: dict[str, Any] | None = None, *, give_up_after: float | None
    ) -> Any:
        """GET, and the JSON of a 200. Raises ServerError for any other answer (404 included)."""
        response = self.request("GET", path, params=params, give_up_after=give_up_after)
        if response.status != 200:
            raise error_for(self.url, response)
        return response.json()

    def close(self) -> None:
        self.pool.clear()


def path_segment(name: str) -> str:
    """A name (a task's, say) as one segment of a URL path: '/' and the rest quoted, and '.'
    and '..' too, which a URL would resolve."""
    segment = quote(name, safe="")
    return segment.replace(".", "%2E") if name in (".", "..") else segment


def error_for(url: str, response: Response) -> ServerError:
    """A ServerError that says what went wrong in words a user can act on."""
    text = response.error_text()
    if response.status == 401:
        message = f"the mltrace server at {url} needs a valid token (MLTRACE_TOKEN or set_server): {text}"
    elif response.status == 403:
        message = f"the mltrace server at {url} refused this token: {text}"
    else:
        message = f"the mltrace server at {url} answered HTTP {response.status}: {text}"
    return ServerError(message, status=response.status, body=response.json())


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    return text.split(": ", 1)[-1] if isinstance(reason, urllib3.exceptions.HTTPError) else text
