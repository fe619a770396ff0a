"""The one `utcnow`: naive UTC, the store's time convention (its TIMESTAMP columns hold UTC without a zone)."""
from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
