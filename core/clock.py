"""The one `utcnow`: naive UTC, the store's time convention (its TIMESTAMP columns hold UTC without a zone)."""
from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
