"""WSGI entry point (gunicorn mltrace_site.wsgi): Django, with gzip request bodies decompressed."""

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mltrace_site.settings")

django_application = get_wsgi_application()

from mltrace_site.encodings import GzipRequestBodies  # noqa: E402  (needs the settings loaded)

application = GzipRequestBodies(django_application, max_body=settings.MLTRACE_MAX_BODY_BYTES)
