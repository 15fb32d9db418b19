"""The ceiling served as the server is (gunicorn.conf.py): gevent workers behind the same handlers."""

import os

wsgi_app = "bench.ceiling.wsgi:application"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gevent"
worker_connections = 1000
keepalive = 5
control_socket_disable = True


def post_worker_init(worker):
    from mltrace_site.serving import serve_with_handlers

    worker.wsgi = serve_with_handlers(worker.wsgi)
