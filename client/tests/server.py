"""A real mltrace server for the client's tests, run as the client meets it: gunicorn and a
qcluster on PostgreSQL, with a private redis-server.

Nothing here imports the server. It is started from the repository with the Python running
the tests, on a database of its own (`<DATABASE_URL's name>_client_<pid>`), and reset between tests
by truncating its tables, so that ids start at 1 in every test as they did in mltrace.
The database is dropped when the session ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

REPO = Path(__file__).resolve().parents[2]
# The server's own test tools (processes, ports, a TCP proxy): test code, not the server.
sys.path.insert(0, str(REPO))
from tests.live import PrivateRedis, TcpProxy, free_port, wait_until  # noqa: E402

# The server's Python: the one running the tests, unless the client is tested on another
# (MLTRACE_TEST_SERVER_PYTHON=.venv/bin/python python3.9 -m pytest client/tests).
SERVER_PYTHON = os.environ.get("MLTRACE_TEST_SERVER_PYTHON") or sys.executable
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/mltrace"


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


class Output:
    """The lines a child process prints, kept for assertions and for failing tests' logs."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        threading.Thread(target=self._read, args=(process,), daemon=True).start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)


class Server:
    def __init__(self, *, env: dict[str, str] | None = None) -> None:
        base = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        parts = urlsplit(base)
        # One database per test session, so that two sessions cannot reset each other's.
        self.database = f"{parts.path.lstrip('/')}_client_{os.getpid()}"
        self.database_url = urlunsplit(parts._replace(path="/" + self.database))
        self.admin_url = urlunsplit(parts._replace(path="/postgres"))
        # The web process reaches PostgreSQL through a proxy that a test can cut.
        self.proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
        auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        self.web_database_url = urlunsplit(
            parts._replace(netloc=f"{auth}127.0.0.1:{self.proxy.port}", path="/" + self.database)
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.redis = PrivateRedis()
        self.env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis.url,
            "DJANGO_SETTINGS_MODULE": "mltrace_site.settings",
            "MLTRACE_QUEUE_NAME": "mltrace-client-tests",
            "MLTRACE_WORKERS": "2",
            "MLTRACE_SWEEP_SECONDS": "1",
            "MLTRACE_SWEEP_AFTER_SECONDS": "1",
            # Lower than the client knows of, so that a test can make the server refuse one
            # run of a batch that the client let through.
            "MLTRACE_MAX_POINTERS_PER_RUN": "50",
            "MLTRACE_RETRY_AFTER_SECONDS": "1",
            # 1 MiB, so that a test can send a run, or a batch, that the server answers 413.
            "MLTRACE_MAX_BODY_BYTES": str(1024 * 1024),
            **(env or {}),
        }
        self.token = ""
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.web_output: Output | None = None
        self.worker_output: Output | None = None

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self._create_database()
        self.proxy.start()
        self._manage("migrate", "--noinput")
        self.token = self._manage("create_api_token", "client-tests").strip().splitlines()[-1]
        self.redis.start()
        self.start_worker()
        self.start_web()

    def start_web(self) -> None:
        self.web = subprocess.Popen(
            [
                SERVER_PYTHON,
                "-m",
                "gunicorn",
                "mltrace_site.wsgi",
                f"--bind=127.0.0.1:{self.port}",
                "--workers=2",
                "--timeout=120",
            ],
            cwd=REPO,
            env={**self.env, "DATABASE_URL": self.web_database_url},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.web_output = Output(self.web)
        wait_until(lambda: answers(self.url + "/readyz"), timeout=60, what="the server to answer /readyz")

    def cut_database(self) -> None:
        """The web process loses PostgreSQL (the workers keep it)."""
        self.proxy.cut()

    def restore_database(self) -> None:
        self.proxy.restore()

    def stop_web(self) -> None:
        _stop(self.web)
        self.web = None

    def kill_web(self) -> None:
        """SIGKILL to gunicorn and its workers at once: requests in flight lose their answers."""
        if self.web is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.web.pid, signal.SIGKILL)
            self.web.wait(10)
        self.web = None

    def start_worker(self) -> None:
        self.worker = subprocess.Popen(
            [SERVER_PYTHON, "manage.py", "qcluster"],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.worker_output = Output(self.worker)
        wait_until(lambda: "running." in self.worker_output.text(), timeout=60, what="qcluster to start")

    def stop(self) -> None:
        for process in (self.web, self.worker):
            _stop(process)
        self.redis.stop()
        self.proxy.cut()
        self._drop_database()

    # --- the database, for resets and for what the API does not show ----------------

    def _create_database(self) -> None:
        connection = psycopg2.connect(self.admin_url)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
                cursor.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            connection.close()

    def _drop_database(self) -> None:
        connection = psycopg2.connect(self.admin_url)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        finally:
            connection.close()

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        connection = psycopg2.connect(self.database_url)
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    def reset(self) -> None:
        """Empties every table of lineage, of monitoring and of the write log; ids start at 1 again."""
        tables = [
            row[0]
            for row in self.query(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND (tablename LIKE 'components\\_%%' OR tablename LIKE 'runs\\_%%' "
                "OR tablename LIKE 'monitoring\\_%%')"
            )
        ]
        self.query("TRUNCATE " + ", ".join(f'"{table}"' for table in tables) + " RESTART IDENTITY CASCADE")

    def _manage(self, *args: str) -> str:
        result = subprocess.run(
            [SERVER_PYTHON, "manage.py", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    # SIGTERM to the main process, as a deployment stops it: it stops its own workers.
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)
