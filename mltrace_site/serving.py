"""How gunicorn serves the API (gunicorn.conf.py): a slow client costs a greenlet, never a worker.

gunicorn's sync workers read a request on the one thread that serves it. So a client that
sends its headers or its body a byte at a time holds that worker until the 120 s timeout, and
two such clients stop a two-worker server. Here each gunicorn worker is a gevent worker:
- Every connection is read by a greenlet of its own. Its headers must arrive within
  gunicorn's keepalive timeout (gunicorn drops the connection otherwise), and its body within
  MLTRACE_BODY_TIMEOUT_SECONDS (a 408 otherwise).
- Only a request read whole goes to one of MLTRACE_WEB_HANDLERS handler greenlets, which run
  Django. Each handler keeps its own database connection (CONN_MAX_AGE), so a worker opens as
  many connections as it has handlers, however many clients it has.
- psycopg2 waits through gevent (a wait callback), so a query or a lock wait in one handler
  leaves the worker's other greenlets running.

The costs:
- A request's body is held in memory before it is served, at most MLTRACE_MAX_BODY_BYTES.
- A response reaches its client through a queue of a few chunks. A client that takes no chunk
  for MLTRACE_SEND_TIMEOUT_SECONDS loses its connection, so it cannot hold a handler.
- A chunked request body, which Django cannot read without a Content-Length, is read here and
  given one.

Off gunicorn's gevent worker (runserver, the test client, a sync worker), the handlers are
not used; gunicorn's own refusals answer JSON under any worker class.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

logger = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

BODY_TIMEOUT = "The request body did not arrive within {seconds} s."
_END = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        # Raised on the client's greenlet, where gunicorn answers a 500 for an Exception.
        self.error = error if isinstance(error, Exception) else RuntimeError(repr(error))


def gevent_is_serving() -> bool:
    """Whether this process runs under gevent's monkey-patching (gunicorn's gevent worker)."""
    try:
        from gevent import monkey
    except ImportError:
        return False
    return bool(monkey.is_module_patched("socket"))


def make_psycopg_green() -> None:
    """psycopg2 waits for the server through gevent's hub instead of blocking the process.

    psycopg2 refuses COPY while a wait callback is set: ingest.sql inserts without it then.
    """
    import psycopg2.extensions
    from gevent.socket import wait_read, wait_write

    def wait(connection: Any) -> None:
        while True:
            state = connection.poll()
            if state == psycopg2.extensions.POLL_OK:
                return
            if state == psycopg2.extensions.POLL_READ:
                wait_read(connection.fileno())
            elif state == psycopg2.extensions.POLL_WRITE:
                wait_write(connection.fileno())
            else:
                raise psycopg2.OperationalError(f"unexpected state from poll(): {state!r}")

    psycopg2.extensions.set_wait_callback(wait)


class _Job:
    """One request read whole, waiting for a handler; its response comes back in `chunks`."""

    def __init__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> None:
        from gevent.queue import Queue

        self.environ, self.start_response = environ, start_response
        self.chunks: Any = Queue(maxsize=4)
        self.abandoned = False  # the client is gone, or too slow: the handler stops sending


class Handlers:
    """WSGI middleware: read each request whole, then serve it on one of `size` handlers."""

    def __init__(
        self, app: WSGIApp, *, size: int, max_body: int, body_timeout: float, send_timeout: float
    ) -> None:
        import gevent
        from gevent.queue import Queue

        self.app, self.max_body = app, max_body
        self.body_timeout, self.send_timeout = body_timeout, send_timeout
        self.jobs: Any = Queue()
        self.handlers = [gevent.spawn(self._serve) for _ in range(size)]

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        import gevent

        try:
            with gevent.Timeout(self.body_timeout):
                self._read_body(environ)
        except gevent.Timeout:
            # Where the next request would start on this connection is unknown now: gunicorn
            # must close it, not read what comes next as a request.
            environ["wsgi.input"].failed = True
            body = json.dumps({"detail": BODY_TIMEOUT.format(seconds=self.body_timeout)}).encode()
            start_response(
                "408 Request Timeout",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                    ("Connection", "close"),
                ],
            )
            return [body]
        sock = environ.get("gunicorn.socket")
        if sock is not None:
            # A client that takes none of its answer for this long loses the connection, a
            # single-chunk answer included (the handler is free by then; the socket is not).
            sock.settimeout(self.send_timeout)
        job = _Job(environ, start_response)
        self.jobs.put(job)
        return self._relay(job)

    def _read_body(self, environ: dict[str, Any]) -> None:
        """Replaces wsgi.input by the body, read here: Content-Length bytes, or a chunked body.

        A declared length over the limit is left unread: Django's middleware answers 413 from
        the header. A chunked body is read up to one byte over the limit, and given that
        length, so that the same middleware refuses it.
        """
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return
        if length > self.max_body:
            return
        if chunked and not length:
            body = environ["wsgi.input"].read(self.max_body + 1)
        elif length:
            body = environ["wsgi.input"].read(length)
        else:
            return
        if len(body) < length:  # the client left before its body was in: nobody to answer
            from gunicorn.http.errors import NoMoreData

            raise NoMoreData(body)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))

    def _relay(self, job: _Job) -> Iterator[bytes]:
        """The response, chunk by chunk, as the handler makes it (on the client's greenlet)."""
        from gevent.queue import Empty

        try:
            while True:
                try:
                    item = job.chunks.get(timeout=1.0)
                except Empty:
                    if job.abandoned:  # the handler gave up on this client: gunicorn closes quietly
                        raise BrokenPipeError(errno.EPIPE, "the client took no data in time") from None
                    continue
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            job.abandoned = True
            while not job.chunks.empty():  # a handler blocked on a full queue goes on
                job.chunks.get_nowait()

    def _serve(self) -> None:
        """One handler: serves jobs one after the other, with its own database connection."""
        from gevent import GreenletExit

        while True:
            job = self.jobs.get()
            try:
                self._serve_one(job)
            except (GreenletExit, SystemExit, KeyboardInterrupt):
                raise  # the worker is stopping
            except BaseException:  # never lose a handler, even to a gevent.Timeout
                logger.exception(
                    "serving %s %s", job.environ.get("REQUEST_METHOD"), job.environ.get("PATH_INFO")
                )

    def _serve_one(self, job: _Job) -> None:
        try:
            result = self.app(job.environ, job.start_response)
        except BaseException as error:
            self._send(job, _Failure(error))
            raise
        try:
            for chunk in result:
                if chunk and not self._send(job, chunk):
                    return
            self._send(job, _END)
        except BaseException as error:
            self._send(job, _Failure(error))
            raise
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()  # Django's request_finished: the handler's connection is kept or closed

    def _send(self, job: _Job, item: object) -> bool:
        """Puts an item for the client; False once it is gone or took nothing for send_timeout."""
        from gevent.queue import Full

        deadline = time.monotonic() + self.send_timeout
        while not job.abandoned:
            try:
                job.chunks.put(item, timeout=min(1.0, self.send_timeout))
                return True
            except Full:
                if time.monotonic() >= deadline:
                    logger.warning(
                        "%s %s: the client took no data for %s s; its response is dropped",
                        job.environ.get("REQUEST_METHOD"),
                        job.environ.get("PATH_INFO"),
                        self.send_timeout,
                    )
                    job.abandoned = True
        return False


def answer_gunicorn_errors_in_json() -> None:
    """gunicorn's own refusals (a request line over 4,094 bytes is a 414, a header too large
    a 431, a malformed request a 400) answer {"detail": ...} like the rest of the API,
    instead of gunicorn's HTML page. gunicorn writes them with util.write_error; this
    worker's copy of that function is replaced."""
    from gunicorn import util

    def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
        body = json.dumps({"detail": f"{reason}: {mesg}" if mesg else reason}).encode()
        head = (
            f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        util.write_nonblock(sock, head.encode("latin-1") + body)

    util.write_error = write_json_error


def serve_with_handlers(app: WSGIApp) -> WSGIApp:
    """The app as gunicorn.conf.py serves it: behind Handlers under gevent, as it is otherwise."""
    if not gevent_is_serving():
        return app
    from django.conf import settings

    make_psycopg_green()
    return Handlers(
        app,
        size=settings.MLTRACE_WEB_HANDLERS,
        max_body=settings.MLTRACE_MAX_BODY_BYTES,
        body_timeout=settings.MLTRACE_BODY_TIMEOUT_SECONDS,
        send_timeout=settings.MLTRACE_SEND_TIMEOUT_SECONDS,
    )
