"""A private PostgreSQL cluster configured as docker-compose.yml ships it, for the benchmarks.

The settings are read from docker-compose.yml's postgres command (`-c name=value` pairs), so
that what the benchmarks measure and what the compose file runs cannot drift apart. The
cluster is initdb'd into a temporary folder, served on a free port of 127.0.0.1, and stopped
and removed by stop(), as tests/live.py's PrivateRedis does for Redis. Everything else is
initdb's default, as in the postgres image (the locale is C.UTF-8, the machine cluster's, so
that the two compare on the settings alone).

It runs the machine's PostgreSQL binaries (pg_config --bindir, else the newest
/usr/lib/postgresql/*/bin). PostgreSQL refuses to run as root; as root, initdb and the server
run as the `postgres` user, which owns the temporary folder.

    python bench/pgcluster.py          # starts one, prints its URL and settings, stops on Ctrl-C
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import psycopg2
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"


def compose_settings(path: Path = COMPOSE) -> dict[str, str]:
    """{name: value} of every `-c name=value` in the compose file's postgres command, in order."""
    command = yaml.safe_load(path.read_text())["services"]["postgres"]["command"]
    if command[0] != "postgres":
        raise ValueError(f"the postgres service runs {command[0]!r}, not postgres")
    settings: dict[str, str] = {}
    args = iter(command[1:])
    for arg in args:
        if arg != "-c":
            raise ValueError(f"unexpected argument {arg!r} in the postgres command (only -c name=value)")
        name, _, value = next(args).partition("=")
        settings[name] = value
    return settings


def bindir() -> Path | None:
    """The folder of initdb and postgres, or None where PostgreSQL's server is not installed."""
    candidates = []
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
        candidates.append(Path(out))
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True
    )
    if initdb := shutil.which("initdb"):
        candidates.insert(0, Path(initdb).parent)
    return next((c for c in candidates if (c / "initdb").exists() and (c / "postgres").exists()), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivatePostgres:
    """initdb into a temporary folder, postgres with `settings` on a free port; stop() removes it.

    settings defaults to the compose file's. log, if given, receives the server's log (its
    checkpoints among it); otherwise it is written into the folder and removed with it."""

    def __init__(self, settings: dict[str, str] | None = None, *, log: Path | None = None) -> None:
        self.settings = compose_settings() if settings is None else dict(settings)
        self.bin = bindir()
        if self.bin is None:
            raise FileNotFoundError("initdb not found (install postgresql, or put its bin folder on PATH)")
        self.log = log
        self.port = _free_port()
        self.folder: Path | None = None
        self.process: subprocess.Popen | None = None
        self._log_file: IO[bytes] | None = None
        # PostgreSQL will not run as root: as root, its own user runs it.
        self.user = "postgres" if os.geteuid() == 0 else None

    @property
    def data(self) -> Path:
        assert self.folder is not None
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> PrivatePostgres:
        folder = self.folder = Path(tempfile.mkdtemp(prefix="mltrace-pg-"))
        if self.user:
            account = pwd.getpwnam(self.user)
            os.chown(folder, account.pw_uid, account.pw_gid)
        assert self.bin is not None
        subprocess.run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",  # the cluster is thrown away; the server's own writes stay durable
            ],
            user=self.user,
            cwd=folder,
            check=True,
            capture_output=True,
        )
        self._log_file = (self.log or folder / "postgres.log").open("ab")
        command = [
            str(self.bin / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={folder}",
        ]
        for name, value in self.settings.items():
            command += ["-c", f"{name}={value}"]
        self.process = subprocess.Popen(
            command,
            user=self.user,
            cwd=folder,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not self._answers():
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"postgres exited with {self.process.returncode}; see its log")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("postgres did not answer within 60 s")
            time.sleep(0.1)
        return self

    def _answers(self) -> bool:
        try:
            psycopg2.connect(self.url(), connect_timeout=2).close()
        except psycopg2.OperationalError:
            return False
        return True

    def show(self, name: str) -> str:
        connection = psycopg2.connect(self.url())
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_setting(%s)", [name])
                return cursor.fetchone()[0]
        finally:
            connection.close()

    def stop(self) -> None:
        """A fast shutdown (SIGINT: sessions ended, a checkpoint, exit), then the folder removed."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        if self._log_file:
            self._log_file.close()
            self._log_file = None
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> PrivatePostgres:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main() -> None:
    with PrivatePostgres() as cluster:
        print(cluster.url())
        for name in cluster.settings:
            print(f"  {name} = {cluster.show(name)}")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
