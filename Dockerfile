# The mltrace server: one image for the web process (gunicorn), the workers (qcluster) and
# the one-off migration. docker-compose.yml runs them against PostgreSQL and Redis.
# No Docker engine runs in CI: tests/test_image.py reads this file and does what it says (the
# install from requirements.txt alone, the RUN steps, the CMD as written) in a venv of its own.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY manage.py gunicorn.conf.py ./
COPY mltrace_site ./mltrace_site
COPY api ./api
COPY ingest ./ingest
COPY runs ./runs
COPY components ./components
COPY monitoring ./monitoring
COPY common ./common
COPY templates ./templates
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput \
    && useradd --system --home /app mltrace \
    && mkdir -p /app/var && chown -R mltrace /app/var

USER mltrace
EXPOSE 8000
# gunicorn.conf.py (copied above, read from the working directory) sets the gevent workers
# that keep slow clients from holding them, and the timeout.
CMD ["gunicorn", "mltrace_site.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4", "--access-logfile", "-"]
