"""The only settings module. Every value comes from the environment with a working default.

DATABASE_URL unset: a SQLite file under var/ (the embedded default).
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "insecure-local-only-change-me")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "api.apps.MltraceAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    # Swagger UI's files, served by the server itself: /api/docs/ works behind a firewall.
    "drf_spectacular_sidecar",
    "django_q",
    "mltrace_site.apps.MltraceSiteConfig",
    "api.apps.ApiConfig",
    "components",
    "runs",
    "monitoring",
]

MIDDLEWARE = [
    "api.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "api.middleware.ApiCommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mltrace_site.urls"
WSGI_APPLICATION = "mltrace_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

VAR_DIR = Path(env_str("MLTRACE_VAR_DIR", str(BASE_DIR / "var")))
DATABASE_URL = env_str("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            # No health check per request (a round trip each): a connection that broke makes its
            # request answer 503 and is replaced at the end of that request.
            DATABASE_URL,
            conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        )
    }
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "mltrace.sqlite3"),
            # Workers and the web process share the file: wait for the write lock instead of
            # failing at once, and let readers run beside the writer.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS: list[dict] = []

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# The admin's CSS and JS, served by the app itself (gunicorn has no static server): collected
# files in production (the Dockerfile runs collectstatic), straight from the apps otherwise.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = not (STATIC_ROOT / "admin").exists()

# The largest request body the API accepts; larger bodies get a 413 before they are read.
MLTRACE_MAX_BODY_BYTES = env_int("MLTRACE_MAX_BODY_BYTES", 10 * 1024 * 1024, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = MLTRACE_MAX_BODY_BYTES
# Under gunicorn (gunicorn.conf.py, mltrace_site/serving.py): how many requests each worker
# serves at once (each with its own database connection), how long a client has to send its
# body (408 after), and how long it may take no part of its response before it is dropped.
MLTRACE_WEB_HANDLERS = env_int("MLTRACE_WEB_HANDLERS", 8, minimum=1)
MLTRACE_BODY_TIMEOUT_SECONDS = env_int("MLTRACE_BODY_TIMEOUT_SECONDS", 30, minimum=1)
MLTRACE_SEND_TIMEOUT_SECONDS = env_int("MLTRACE_SEND_TIMEOUT_SECONDS", 30, minimum=1)
# A batch of 1,000 runs posts far more than Django's default 1,000 fields only as form data;
# JSON bodies are not counted, but the admin's bulk actions are.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10_000

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes a missing credential a 401, not a 403.
        "api.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # A user, then a token's scope or a session's Django permission (api/permissions.py).
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.ScopedAccess"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.SafeJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # ?format= belongs to the trace endpoint (format=tree), not to renderer selection.
    "URL_FORMAT_OVERRIDE": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "mltrace server API",
    "DESCRIPTION": (
        "Lineage and tracing for ML pipelines: components, runs with their input and output "
        "pointers, dependencies inferred from inputs, staleness, trace, history, flag and "
        "review. docs/API.md in the repository is the reference, with examples; this schema "
        "documents the same API."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # A PATCH body is documented as its serializer says (the notes of a run are required).
    "COMPONENT_SPLIT_PATCH": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.request_bodies_are_closed",
        "api.schema.query_parameters_as_enforced",
    ],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "ENUM_NAME_OVERRIDES": {
        "WriteStatusEnum": "runs.models.Write.Status",
        "OpenLineageBatchStatusEnum": ["success", "partial_success"],
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# How long each process trusts a token it has looked up (a revoked token lasts this long).
MLTRACE_TOKEN_CACHE_SECONDS = env_int("MLTRACE_TOKEN_CACHE_SECONDS", 10)

# Sane limits on one write; a payload over them is a 400.
MLTRACE_MAX_POINTERS_PER_RUN = env_int("MLTRACE_MAX_POINTERS_PER_RUN", 10_000, minimum=1)
MLTRACE_MAX_BATCH_RUNS = env_int("MLTRACE_MAX_BATCH_RUNS", 1000, minimum=1)
# About how many bytes of run bodies a page of runs holds (then `next` goes on from there),
# and a streamed trace or review builds at a time.
MLTRACE_MAX_PAGE_BYTES = env_int("MLTRACE_MAX_PAGE_BYTES", 8 * 1024 * 1024, minimum=1)
# Inputs and outputs of all the runs of one batch.
MLTRACE_MAX_BATCH_POINTERS = env_int("MLTRACE_MAX_BATCH_POINTERS", 100_000, minimum=1)
# Items (outputs, or feedback) of one POST to a monitored task: one write holds them all.
MLTRACE_MAX_BATCH_OUTPUTS = env_int("MLTRACE_MAX_BATCH_OUTPUTS", 10_000, minimum=1)
# How deep test_results may nest arrays and objects; a whole body may nest 16 levels more.
MLTRACE_MAX_JSON_DEPTH = env_int("MLTRACE_MAX_JSON_DEPTH", 64, minimum=1)

# --- Asynchronous writes -------------------------------------------------------------------
# REDIS_URL unset: django-q's ORM broker keeps the task queue in the database (embedded default).
REDIS_URL = env_str("REDIS_URL", "")
# Queued writes are committed this many per transaction, in acceptance order.
MLTRACE_COMMIT_BATCH = env_int("MLTRACE_COMMIT_BATCH", 1000, minimum=1)
# ... and at most about this many bytes of payload JSON per transaction (at least one write),
# so a batch of large writes cannot exhaust a worker's memory: a commit holds about 90 bytes of
# Python objects per byte of JSON (1,000 runs of 1,000 pointers, 9.8 MiB: 860 MB), and the
# transaction's locks are held that long.
MLTRACE_COMMIT_BATCH_BYTES = env_int("MLTRACE_COMMIT_BATCH_BYTES", 2 * 1024 * 1024, minimum=1)
# A commit task lets the oldest queued write wait this long, so a stream of single writes is
# committed in batches (on the Redis broker).
MLTRACE_COMMIT_DELAY_MS = env_int("MLTRACE_COMMIT_DELAY_MS", 50, minimum=0)
# Every MLTRACE_SWEEP_SECONDS each cluster looks for writes queued longer than
# MLTRACE_SWEEP_AFTER_SECONDS (their task was lost: Redis flushed, worker killed) and
# enqueues a commit for them.
MLTRACE_SWEEP_SECONDS = env_int("MLTRACE_SWEEP_SECONDS", 5, minimum=1)
MLTRACE_SWEEP_AFTER_SECONDS = env_int("MLTRACE_SWEEP_AFTER_SECONDS", 10, minimum=0)
# How long an accept waits for the acceptance lock before answering 503.
MLTRACE_ACCEPT_LOCK_TIMEOUT_MS = env_int("MLTRACE_ACCEPT_LOCK_TIMEOUT_MS", 5000, minimum=1)
# How long a ?sync=true write waits for the committer before answering 503.
MLTRACE_SYNC_LOCK_TIMEOUT_MS = env_int("MLTRACE_SYNC_LOCK_TIMEOUT_MS", 30000, minimum=1)
MLTRACE_RETRY_AFTER_SECONDS = env_int("MLTRACE_RETRY_AFTER_SECONDS", 5, minimum=1)
# Idempotency keys are remembered this long.
MLTRACE_IDEMPOTENCY_TTL_HOURS = env_int("MLTRACE_IDEMPOTENCY_TTL_HOURS", 24, minimum=1)

# Worker processes per qcluster: each materializes ranges of the queue beside the others.
MLTRACE_WORKERS = env_int("MLTRACE_WORKERS", 2, minimum=1)
Q_CLUSTER = {
    "name": env_str("MLTRACE_QUEUE_NAME", "mltrace"),
    "workers": MLTRACE_WORKERS,
    # A commit task drains at most what was queued when it was enqueued, in batches.
    "timeout": env_int("MLTRACE_TASK_TIMEOUT", 300, minimum=1),
    "retry": env_int("MLTRACE_TASK_TIMEOUT", 300, minimum=1) + 60,
    "max_attempts": 1,
    # The accepted-write log is the record of every write; django-q keeps only failures.
    "save_limit": -1,
    "ack_failures": True,
    "catch_up": False,
    "poll": 0.2,
    "broker_class": ("ingest.brokers.SweepingRedis" if REDIS_URL else "ingest.brokers.SweepingORM"),
}
if REDIS_URL:
    # Bounded waits: an unreachable Redis must not hang a request that enqueues (the write is
    # already recorded; the sweep commits it). The pusher blocks 1 s per poll, under 5 s.
    timeouts = "socket_connect_timeout=2&socket_timeout=5"
    Q_CLUSTER["redis"] = (
        REDIS_URL
        if "socket_timeout" in REDIS_URL
        else (f"{REDIS_URL}{'&' if '?' in REDIS_URL else '?'}{timeouts}")
    )
else:
    Q_CLUSTER["orm"] = "default"
