from __future__ import annotations

import os
import sys
from typing import Any

from django.apps import AppConfig
from django.db.backends.signals import connection_created


def configure_session(sender: Any, connection: Any, **kwargs: Any) -> None:
    """Sets up each new PostgreSQL session.

    It is named after its process, so pg_stat_activity and pg_locks tell which web process or
    worker holds what (`mltrace qcluster pid 123`). JIT compilation is off: every query here
    is short, and on a table whose statistics lag behind its growth the planner's inflated
    cost estimates turn JIT on for 100 ms of compiling a 10 ms query.
    """
    if connection.vendor != "postgresql":
        return
    role = "qcluster" if "qcluster" in sys.argv else "web"
    with connection.cursor() as cursor:
        cursor.execute("SET application_name = %s; SET jit = off", [f"mltrace {role} pid {os.getpid()}"])


class MltraceSiteConfig(AppConfig):
    name = "mltrace_site"

    def ready(self) -> None:
        connection_created.connect(configure_session, dispatch_uid="mltrace-configure-session")
