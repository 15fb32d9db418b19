from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token

from api.models import TokenGrant


class Command(BaseCommand):
    help = "Lists the API tokens: user, the key's first 8 characters, scopes, created, expires."

    def handle(self, *args: Any, **options: Any) -> None:
        grants = {grant.token_id: grant for grant in TokenGrant.objects.all()}
        for token in Token.objects.select_related("user").order_by("user__username"):
            grant = grants.get(token.key)
            scopes = ",".join(grant.scopes) if grant and grant.scopes else "all"
            expires = grant.expires_at.isoformat() if grant and grant.expires_at else "never"
            self.stdout.write(
                f"{token.user.username}\t{token.key[:8]}\t{scopes}\t{token.created.isoformat()}\t{expires}"
            )
