"""Request bodies sent with Content-Encoding: gzip, decompressed before Django reads them.

The OpenLineage clients (Python, Java, Spark's listener) can compress what they send. The
size limit, MLTRACE_MAX_BODY_BYTES, applies to the body once decompressed: zlib is asked for
one byte more than the limit and never more, so a small gzip that would expand to gigabytes
costs that much memory and gets a 413. Any other encoding is a 415.

It wraps the WSGI application (mltrace_site/wsgi.py), so runserver and gunicorn both apply
it; under gunicorn the body has been read whole first (mltrace_site/serving.py).
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from api.exceptions import BODY_TOO_LARGE

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

ENCODING_REFUSED = "Content-Encoding {encoding!r} is not accepted; send gzip, or no encoding."
NOT_GZIP = "The body is not a whole gzip stream."


def _answer(start_response: Callable[..., Any], status: str, detail: str) -> list[bytes]:
    body = json.dumps({"detail": detail}).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class GzipRequestBodies:
    def __init__(self, app: WSGIApp, *, max_body: int) -> None:
        self.app, self.max_body = app, max_body

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        encoding = environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()
        if encoding in ("", "identity"):
            return self.app(environ, start_response)
        if encoding not in ("gzip", "x-gzip"):
            return _answer(
                start_response, "415 Unsupported Media Type", ENCODING_REFUSED.format(encoding=encoding)
            )
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if not length:  # a chunked body no server read first: api/middleware.py's 411
            return self.app(environ, start_response)
        if length > self.max_body:
            return _answer(
                start_response, "413 Payload Too Large", BODY_TOO_LARGE.format(limit=self.max_body)
            )
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip's header and trailer
        try:
            body = inflater.decompress(environ["wsgi.input"].read(length), self.max_body + 1)
        except zlib.error:
            return _answer(start_response, "400 Bad Request", NOT_GZIP)
        if len(body) > self.max_body or inflater.unconsumed_tail:
            return _answer(
                start_response, "413 Payload Too Large", BODY_TOO_LARGE.format(limit=self.max_body)
            )
        if not inflater.eof or inflater.unused_data:
            return _answer(start_response, "400 Bad Request", NOT_GZIP)
        environ = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        del environ["HTTP_CONTENT_ENCODING"]
        return self.app(environ, start_response)
