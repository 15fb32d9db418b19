"""mltrace 0.17's configuration helpers, kept for code that imports them from here."""

from __future__ import annotations

from mltrace.client import get_db_uri, set_address, set_db_uri

__all__ = ["get_db_uri", "set_address", "set_db_uri"]
