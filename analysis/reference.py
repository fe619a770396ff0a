"""The reference period a window is compared with: pinned in settings, else the trailing
`baseline_days` that end at the start of the window's day (so one day's hours share a reference)."""
from __future__ import annotations

from datetime import datetime, timedelta

from analysis.settings import AnalysisSettings
from core.grains import floor_time
from store.queries import parse_time


def reference_period(settings: AnalysisSettings, bucket: datetime) -> tuple[datetime, datetime]:
    if settings.reference_start and settings.reference_end:
        return parse_time(settings.reference_start), parse_time(settings.reference_end)
    end = floor_time(bucket, "1d")
    return end - timedelta(days=settings.baseline_days), end
