from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from api.models import Scope, TokenGrant

# Printed after the token, on stderr: stdout holds the token alone, for `TOKEN=$(...)` and
# for every script that reads it. A producer refused for want of a scope gets a 403, which
# dbt-ol and other OpenLineage clients log as a warning before exiting 0: the events are
# lost with nothing failing, so the scope it needs is said where the token is made.
WRITE_NEEDED = (
    "OpenLineage producers (dbt-ol, Airflow, Spark) and the mltrace client's writes need the write scope."
)
HAS_SCOPES = "This token has the scopes: {scopes}."
HAS_EVERY_SCOPE = "This token has every scope: read, write, admin."
LACKS_WRITE = (
    "It lacks write: a producer given it gets 403s, which dbt-ol and others only log as warnings, "
    "and its events are lost. To add write, run this again with --scope write and each scope to keep."
)
EXPIRES = "It expires at {at}."


class Command(BaseCommand):
    help = (
        "Creates the user if needed and prints its API token (the same token on every call), "
        "alone on stdout; on stderr, its scopes and the one OpenLineage producers need. "
        "--scope narrows what the token may do (read, write, admin; repeat it for more than "
        "one); a new token made without it may do everything. --expires-in-days gives it an "
        "expiry. A call with neither option leaves an existing token's scopes and expiry as "
        "they are; a call with either sets both."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--scope", action="append", choices=Scope.values, default=[], dest="scopes")
        parser.add_argument("--expires-in-days", type=int, default=None)

    def handle(
        self, *args: Any, username: str, scopes: list[str], expires_in_days: int | None, **options: Any
    ) -> None:
        with transaction.atomic():
            user, created = get_user_model().objects.get_or_create(username=username)
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
            token, _ = Token.objects.get_or_create(user=user)
            if scopes or expires_in_days is not None:
                expires = (
                    None if expires_in_days is None else timezone.now() + dt.timedelta(days=expires_in_days)
                )
                TokenGrant.objects.update_or_create(
                    token=token, defaults={"scopes": sorted(set(scopes)), "expires_at": expires}
                )
            grant = TokenGrant.objects.filter(token=token).first()
        self.stdout.write(token.key)
        # Notes, not errors: not in stderr's error style (red on a terminal).
        self.stderr.write("\n".join(scope_lines(grant)), style_func=lambda text: text)


def scope_lines(grant: TokenGrant | None) -> list[str]:
    """What a token may do, and whether an OpenLineage producer or the client may write with it."""
    lines = [WRITE_NEEDED]
    if grant is None or not grant.scopes:
        lines.append(HAS_EVERY_SCOPE)
    else:
        lines.append(HAS_SCOPES.format(scopes=", ".join(grant.scopes)))
        if not grant.allows(Scope.WRITE):
            lines.append(LACKS_WRITE)
    if grant is not None and grant.expires_at is not None:
        lines.append(EXPIRES.format(at=grant.expires_at.isoformat()))
    return lines
