"""What a token may do: its scopes and its expiry, beside DRF's token (one per user)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from rest_framework.authtoken.models import Token


class Scope(models.TextChoices):
    READ = "read"  # every GET
    WRITE = "write"  # accept runs and components (POST runs, batches, components, tags)
    ADMIN = "admin"  # flag and unflag, PATCH of runs and components


class TokenGrant(models.Model):
    """A token's scopes (none: every scope, as tokens made before scopes had) and expiry."""

    token = models.OneToOneField(Token, on_delete=models.CASCADE, primary_key=True, related_name="grant")
    scopes = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return ", ".join(self.scopes) or "all scopes"

    def allows(self, scope: str) -> bool:
        return not self.scopes or scope in self.scopes

    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()
