"""Durations and times as people write them, with one grammar for every setting, rule and query.

A duration is a number and a unit, `ms`, `s`, `m`, `h`, `d` or `w` (`500ms`, `30s`, `1.5h`, `7d`),
or a plain number of seconds where the caller allows one. A time is ISO 8601, unix seconds, `now`,
or `now` minus a duration (`-15m`, `now-2h`), as naive UTC.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from core.clock import utcnow

UNIT_SECONDS: dict[str, float] = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_AMOUNT = r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)"
_DURATION = re.compile(rf"^{_AMOUNT}$")
_RELATIVE = re.compile(rf"^(?:now)?\s*-\s*{_AMOUNT}$")

# Times a window may name: wide enough for any telemetry, narrow enough that window arithmetic
# (baselines a year back, buckets ahead) never leaves Python's or DuckDB's range.
MIN_TIME, MAX_TIME = datetime(1900, 1, 1), datetime(9000, 1, 1)


class BadTime(ValueError):
    """Not a duration or time; the message quotes (the start of) what was given."""


def parse_duration(value: Any, numbers: bool = True) -> timedelta:
    """'500ms', '30s', '5m', '4h', '7d', '1w', or (when `numbers`) a non-negative number of seconds."""
    if isinstance(value, bool):
        raise BadTime(f"{value!r} is not a duration")
    if isinstance(value, (int, float)) and numbers:
        if not value >= 0 or value == float("inf"):
            raise BadTime(f"{value!r} is not a duration: give a non-negative number of seconds")
        return _seconds(float(value), value)
    m = _DURATION.match(str(value).strip())
    if not m:
        raise BadTime(f"{str(value)[:64]!r} is not a duration like 500ms, 30s, 5m, 4h, 7d or 1w")
    return _seconds(float(m.group(1)) * UNIT_SECONDS[m.group(2)], value)


def _seconds(seconds: float, given: Any) -> timedelta:
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise BadTime(f"{str(given)[:64]!r} is longer than any window") from None


def format_duration(td: timedelta) -> str:
    """The largest whole unit of d, h, m that states `td` exactly ('90m' stays '90m'; '120m' is '2h')."""
    s = int(td.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if s and s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


def is_relative_time(text: str) -> bool:
    """`-15m`, `-7d`: a time relative to now (which a command line would otherwise read as an option)."""
    return bool(_RELATIVE.match(text.strip())) and text.lstrip().startswith("-")


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """ISO 8601, unix seconds, `now`, or relative (`-15m`, `now-2h`, `-7d`) to naive UTC.

    BadTime for anything else, including times outside [MIN_TIME, MAX_TIME)."""
    if not isinstance(text, str):
        raise BadTime(f"{text!r} is not a time: give a string (ISO 8601, unix seconds, 'now' or '-15m')")
    out_of_range = BadTime(f"{text[:64]!r} is outside {MIN_TIME:%Y-%m-%d} .. {MAX_TIME:%Y-%m-%d}")
    dt = _parse_time(text, now or utcnow(), out_of_range)
    if not MIN_TIME <= dt < MAX_TIME:
        raise out_of_range
    return dt


def _parse_time(text: str, now: datetime, out_of_range: BadTime) -> datetime:
    raw = text.strip()
    if raw == "now":
        return now
    m = _RELATIVE.match(raw)
    if m:
        try:
            return now - timedelta(seconds=float(m.group(1)) * UNIT_SECONDS[m.group(2)])
        except OverflowError:
            raise out_of_range from None
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        try:
            return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError):  # 1e20, inf, nan: no such time
            raise out_of_range from None
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt
    except (ValueError, OverflowError):
        raise BadTime(f"{text[:64]!r} is not a time (ISO 8601, unix seconds, 'now' or '-15m')") from None
