"""mltrace 0.17 kept its SQLAlchemy store here. This client has no database of its own: it
talks to the mltrace server. What code imports from here, the pointer-type enum, still is."""

from __future__ import annotations

from mltrace.db.models import PointerTypeEnum

__all__ = ["PointerTypeEnum"]
