"""The analyzers' shape: a time `Window` in, a `Result` (metric rows + optional reports) out.

Every analyzer reads through store/analytics.py and never writes; the runner (analysis/runner.py)
replaces its rows for the window in one writer call, so reruns are idempotent.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import pyarrow as pa

from core.grains import GRAIN_SECONDS, ceil_time, floor_time


@dataclass(frozen=True)
class Window:
    """Data time [start, end) to (re)compute, in naive UTC; `computed_at` stamps the output rows."""

    start: datetime
    end: datetime
    computed_at: datetime
    # A last retry of a minute that failed (analysis/runner.py): compute the window's own buckets
    # only, not wider ones an analyzer would refresh on the way (traffic's open hour), so a bad row
    # elsewhere in the hour cannot make an innocent minute fail.
    narrow: bool = False

    def aligned(self, grain: str) -> tuple[datetime, datetime]:
        """The buckets of `grain` that the window touches, as [first bucket start, last bucket end)."""
        return floor_time(self.start, grain), ceil_time(self.end, grain)

    def buckets(self, grain: str) -> list[datetime]:
        start, end = self.aligned(grain)
        step = timedelta(seconds=GRAIN_SECONDS[grain])
        out = []
        while start < end:
            out.append(start)
            start += step
        return out


@dataclass
class Result:
    metrics: pa.Table | None           # tall analysis_metrics rows (store.analytics.METRICS_SCHEMA)
    reports: pa.Table | None = None    # analysis_reports rows (store.analytics.REPORTS_SCHEMA)
    traffic: pa.Table | None = None    # wide traffic rows (store.analytics.TRAFFIC_SCHEMA), instead of tall ones


class Analyzer(Protocol):
    """One analysis. `owns` lists the metric names it writes (a trailing ':' is a prefix)."""

    # read-only members: an analyzer states them as class attributes
    @property
    def name(self) -> str: ...
    @property
    def source(self) -> str: ...       # spans | feedback | resource_metrics: how late data is found
    @property
    def owns(self) -> tuple[str, ...]: ...

    def replaces(self, window: Window) -> list[tuple[str, datetime, datetime]]:
        """(grain, start, end) ranges whose owned rows this run replaces."""
        ...

    def run(self, window: Window) -> Result: ...


def minute_and_hour_ranges(window: Window) -> list[tuple[str, datetime, datetime]]:
    return [("1m", *window.aligned("1m")), ("1h", *window.aligned("1h"))]


def runs(values: list) -> list[tuple[int, int]]:
    """[lo, hi) index ranges of runs of equal consecutive values."""
    out, lo = [], 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[lo]:
            out.append((lo, i))
            lo = i
    return out
