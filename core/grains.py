"""The bucket sizes the analyzers write and the alert rules read, and bucket arithmetic on them."""
from __future__ import annotations

from datetime import datetime, timedelta

# 1m and 1h are bucket grains (time = bucket start); the others are trailing windows (SLO burn rates).
GRAIN_SECONDS: dict[str, int] = {
    "1m": 60, "5m": 300, "30m": 1800, "1h": 3600, "2h": 7200, "6h": 21_600, "1d": 86_400, "3d": 259_200,
}
_EPOCH = datetime(1970, 1, 1)


def floor_time(t: datetime, grain: str) -> datetime:
    step = GRAIN_SECONDS[grain]
    return _EPOCH + timedelta(seconds=int((t - _EPOCH).total_seconds() // step) * step)


def ceil_time(t: datetime, grain: str) -> datetime:
    floored = floor_time(t, grain)
    return floored if floored == t else floored + timedelta(seconds=GRAIN_SECONDS[grain])
