from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class ApiConfig(AppConfig):
    name = "api"
    label = "api"


class MltraceAdminConfig(AdminConfig):
    """Django's admin, with the site that adds the lineage pages."""

    default_site = "api.dashboard.MltraceAdminSite"
