from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serves the API (Django's server) with a qcluster worker beside it; Ctrl-C stops both."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")

    def handle(self, *args: Any, host: str, port: str, **options: Any) -> None:
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        commands = [[*manage, "runserver", "--noreload", f"{host}:{port}"]]
        if "django_q" in settings.INSTALLED_APPS:
            commands.append([*manage, "qcluster"])
        children = [subprocess.Popen(command) for command in commands]

        def stop(*_: Any) -> None:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        try:
            # Either process dying takes the other down: a server without its worker would
            # accept writes that nothing commits.
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
            stop()
        except KeyboardInterrupt:
            # Ctrl-C in a terminal reaches every process of its group: give the children a
            # moment to stop on their own (signalling them at once would interrupt their
            # shutdown), then stop those that got no signal (a SIGINT sent to this process alone).
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(child.poll() is None for child in children):
                time.sleep(0.2)
            stop()
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        codes = [child.returncode for child in children]
        self.stdout.write(f"stopped (exit codes {codes})")
