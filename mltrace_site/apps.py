from __future__ import annotations

import os
import sys
from typing import Any

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.db.backends.signals import connection_created


def name_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    """Names each PostgreSQL session after its process, so pg_stat_activity and pg_locks tell
    which web process or worker holds what (`mltrace qcluster pid 123`)."""
    if connection.vendor != "postgresql":
        return
    role = "qcluster" if "qcluster" in sys.argv else "web"
    with connection.cursor() as cursor:
        cursor.execute("SET application_name = %s", [f"mltrace {role} pid {os.getpid()}"])


class MltraceSiteConfig(AppConfig):
    name = "mltrace_site"

    def ready(self) -> None:
        connection_created.connect(name_connection, dispatch_uid="mltrace-name-connection")


class MltraceAdminConfig(AdminConfig):
    """Django's admin, with the site that adds the lineage pages."""

    default_site = "mltrace_site.admin.MltraceAdminSite"
