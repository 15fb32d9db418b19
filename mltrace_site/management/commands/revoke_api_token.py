from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = (
        "Revokes (deletes) the API token of a user, or the one whose key starts with the given "
        "characters (at least 8). Each web process may still accept it for "
        "MLTRACE_TOKEN_CACHE_SECONDS (10 s)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("user_or_key", help="a username, or a key's first 8 or more characters")

    def handle(self, *args: Any, user_or_key: str, **options: Any) -> None:
        tokens = Token.objects.filter(user__username=user_or_key)
        if not tokens.exists() and len(user_or_key) >= 8:
            tokens = Token.objects.filter(key__startswith=user_or_key)
        found = list(tokens.select_related("user"))
        if len(found) != 1:
            raise CommandError(
                f"{len(found)} tokens match {user_or_key!r}: give a username or a longer key."
                if found
                else f"No token matches {user_or_key!r}."
            )
        token = found[0]
        username, prefix = token.user.username, token.key[:8]
        token.delete()
        self.stdout.write(f"revoked the token of {username} ({prefix}...)")
