from __future__ import annotations

import os
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token

ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = (
        "Creates the local admin user and its API token if missing, and prints how to use them. "
        "The password comes from MLTRACE_ADMIN_PASSWORD, or is generated once and kept in "
        "var/admin-password."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))

    def handle(self, *args: Any, host: str, port: str, **options: Any) -> None:
        password = self.admin_password()
        User = get_user_model()
        user = User.objects.filter(username=ADMIN_USERNAME).first()
        if user is None:
            user = User.objects.create_superuser(ADMIN_USERNAME, password=password)
        elif not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
        token, _ = Token.objects.get_or_create(user=user)
        base = f"http://{host}:{port}"
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"mltrace server on {base}",
                    f"  admin:     {base}/admin/   user {ADMIN_USERNAME}, password {password}",
                    f"  API token: {token.key}",
                    f"  API docs:  {base}/api/docs/",
                    "  try:",
                    f'    curl -H "Authorization: Token {token.key}" {base}/api/v1/components/',
                    f'    curl -H "Authorization: Token {token.key}" -H "Content-Type: application/json" \\',
                    f'      -d \'{{"component": "etl", "start_timestamp": "2024-01-01T00:00:00Z", '
                    f'"end_timestamp": "2024-01-01T00:01:00Z", "outputs": ["clean.csv"]}}\' {base}/api/v1/runs/',
                    "",
                    "  point the mltrace client (pip install ./client; .venv has it) at this server:",
                    f"    export MLTRACE_SERVER_URL={base}",
                    f"    export MLTRACE_TOKEN={token.key}",
                    "  then run examples/pipeline.py, or `mltrace recent`.",
                    "",
                ]
            )
        )

    def admin_password(self) -> str:
        from_env = os.environ.get("MLTRACE_ADMIN_PASSWORD")
        if from_env:
            return from_env
        path = settings.VAR_DIR / "admin-password"
        if path.exists():
            return path.read_text().strip()
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(12)
        path.write_text(password + "\n")
        path.chmod(0o600)
        return password
