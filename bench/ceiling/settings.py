"""Settings of the ceiling endpoint: as few as Django and DRF need, a database from DATABASE_URL."""

import os

import dj_database_url

SECRET_KEY = "bench-ceiling-only"  # noqa: S105 - a local benchmark, no sessions, no cookies
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.ceiling.urls"
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=600)}
USE_TZ = True
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}
# What mltrace_site.serving reads: the server's defaults.
MLTRACE_WEB_HANDLERS = 8
MLTRACE_MAX_BODY_BYTES = 10 * 1024 * 1024
MLTRACE_BODY_TIMEOUT_SECONDS = 30
MLTRACE_SEND_TIMEOUT_SECONDS = 30
