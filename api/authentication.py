from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

from api.models import TokenGrant

TOKEN_EXPIRED = "The token has expired."
# DRF's own messages for these two, as its TokenAuthentication gives them.
INVALID_TOKEN = "Invalid token."
USER_INACTIVE = "User inactive or deleted."
_MAX_ENTRIES = 10_000
_cache: dict[str, tuple[float, Any, Any]] = {}


class CachedTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, remembering each token's user for a few seconds per process.

    An inference service logging every prediction sends the same token thousands of times a
    second; looking it up each time would cost a third of an accept's time. A deleted (revoked)
    token, a changed grant or a deactivated user keeps working for at most
    MLTRACE_TOKEN_CACHE_SECONDS in each process. An expiry is checked on every request.
    """

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        """`Authorization: Token <key>`, or `Bearer <key>` with the same keys: what every
        OpenLineage producer sends for its api_key. The 401's WWW-Authenticate stays Token."""
        parts = get_authorization_header(request).split()
        if parts and parts[0].lower() == b"bearer":
            self.keyword = "Bearer"
            try:
                return super().authenticate(request)
            finally:
                self.keyword = "Token"
        return super().authenticate(request)

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        now = time.monotonic()
        hit = _cache.get(key)
        if hit is None or hit[0] <= now:
            user, token = self._look_up(key)
            if len(_cache) >= _MAX_ENTRIES:
                _cache.clear()
            hit = _cache[key] = (now + settings.MLTRACE_TOKEN_CACHE_SECONDS, user, token)
        grant = hit[2].mltrace_grant
        if grant is not None and grant.expired():
            raise AuthenticationFailed(TOKEN_EXPIRED)
        return hit[1], hit[2]

    def _look_up(self, key: str) -> tuple[Any, Any]:
        """DRF's lookup, with the token's grant in the same query."""
        try:
            token = Token.objects.select_related("user", "grant").get(key=key)
        except Token.DoesNotExist:
            raise AuthenticationFailed(INVALID_TOKEN) from None
        if not token.user.is_active:
            raise AuthenticationFailed(USER_INACTIVE)
        found: Any = token  # the reverse accessor `grant`, and an attribute of our own
        try:
            grant = found.grant
        except TokenGrant.DoesNotExist:
            grant = None
        found.mltrace_grant = grant  # kept on the (cached) token for api/permissions.py
        return token.user, token
