from __future__ import annotations

import datetime as dt


def iso_utc(value: dt.datetime | None) -> str | None:
    """UTC ISO 8601 with a Z, as DRF renders datetimes; None stays None."""
    if value is None:
        return None
    text = value.astimezone(dt.UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
