"""gunicorn's settings: every `gunicorn` started from the repository root reads this file.

The Dockerfile, docker-compose.yml, bench/ and the tests' live servers all start gunicorn here,
so they all get the same protection from slow clients: gevent workers read each connection on
a greenlet of their own, and Django serves only requests that have arrived whole
(mltrace_site/serving.py says how and at what cost). A command-line flag overrides a setting.
"""

import os

wsgi_app = "mltrace_site.wsgi:application"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gevent"
# Open connections per worker, slow or not: each costs a greenlet and a socket, not a handler.
worker_connections = int(os.environ.get("WEB_CONNECTIONS", "1000"))
# Seconds a kept-alive connection may idle, and also the time a client has to send a request's
# headers: gevent workers drop a connection whose headers are not in by then.
keepalive = 5
# Above MLTRACE_SYNC_LOCK_TIMEOUT_MS (30 s): a ?sync=true write that waits that long answers
# 503 with Retry-After instead of being killed mid-request (a 502).
timeout = 120
graceful_timeout = 30
# No limit on the request line: a query may name an output id of 1,024 characters of any
# kind, up to 12 KB URL-encoded, past gunicorn's largest finite limit (8,190). The keepalive
# timeout, the time to send the headers, bounds it instead. Headers keep gunicorn's limits.
limit_request_line = 0
# No control socket: it sits at one path per user, which two servers on a machine would share.
control_socket_disable = True


def post_worker_init(worker):
    """Serve the app behind mltrace_site.serving.Handlers, once gevent has patched this worker."""
    from mltrace_site.serving import answer_gunicorn_errors_in_json, serve_with_handlers

    answer_gunicorn_errors_in_json()
    worker.wsgi = serve_with_handlers(worker.wsgi)
