from __future__ import annotations

import json
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.common import CommonMiddleware

from api.exceptions import BODY_TOO_LARGE, LENGTH_REQUIRED


class BodySizeLimitMiddleware:
    """Answers 413 for a body over MLTRACE_MAX_BODY_BYTES, before anything reads it.

    Django's WSGI request reads exactly Content-Length bytes (none without the header), so the
    declared length is the size of the body the views will see.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower() and not request.META.get(
            "CONTENT_LENGTH"
        ):
            # Django reads no body without a Content-Length: the request would be taken as
            # empty. gunicorn as shipped reads a chunked body first (mltrace_site/serving.py)
            # and gives it one; other servers get this answer.
            body = {"detail": LENGTH_REQUIRED}
            return HttpResponse(json.dumps(body), status=411, content_type="application/json")
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.MLTRACE_MAX_BODY_BYTES:
            body = {"detail": BODY_TOO_LARGE.format(limit=settings.MLTRACE_MAX_BODY_BYTES)}
            return HttpResponse(json.dumps(body), status=413, content_type="application/json")
        return self.get_response(request)


class ApiCommonMiddleware(CommonMiddleware):
    """Django's CommonMiddleware, minus the trailing-slash redirect of API writes.

    A client follows a 301 with a GET and no body, so `POST /api/v1/runs` would come back a
    confusing listing instead of an error; it gets the JSON 404 naming the URL with a slash.
    """

    def should_redirect_with_slash(self, request: HttpRequest) -> bool:
        if request.path_info.startswith("/api/") and request.method not in ("GET", "HEAD"):
            return False
        return super().should_redirect_with_slash(request)
