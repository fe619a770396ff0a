"""One reading of `Retry-After` for the shim (model providers) and the alerts (receivers)."""
from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return max(0.0, value) if math.isfinite(value) else None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or HTTP date), or None when absent or
    unreadable (NaN and infinity included: no server means them)."""
    if not value or not value.strip():
        return None
    value = value.strip()
    seconds = _number(value)
    if seconds is not None or value[0] in "+-.0123456789":
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Retry-After, else OpenAI's `retry-after-ms`, from response headers (a case-insensitive mapping)."""
    if headers is None:
        return None
    seconds = parse_retry_after(headers.get("retry-after"))
    if seconds is None and headers.get("retry-after-ms"):
        ms = _number(headers.get("retry-after-ms", ""))
        seconds = None if ms is None else ms / 1000
    return seconds
