from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from api.models import Scope, TokenGrant


class Command(BaseCommand):
    help = (
        "Creates the user if needed and prints its API token (the same token on every call). "
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
        self.stdout.write(token.key)
