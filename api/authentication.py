from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from rest_framework.authentication import TokenAuthentication

_MAX_ENTRIES = 10_000
_cache: dict[str, tuple[float, Any, Any]] = {}


class CachedTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, remembering each token's user for a few seconds per process.

    An inference service logging every prediction sends the same token thousands of times a
    second; looking it up each time was a third of an accept's time. A deleted token or a
    deactivated user keeps working for at most MLTRACE_TOKEN_CACHE_SECONDS in each process.
    """

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        now = time.monotonic()
        hit = _cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        user, token = super().authenticate_credentials(key)
        if len(_cache) >= _MAX_ENTRIES:
            _cache.clear()
        _cache[key] = (now + settings.MLTRACE_TOKEN_CACHE_SECONDS, user, token)
        return user, token
