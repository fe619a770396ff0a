"""Requests, throughput, exact latency percentiles, error split, retries, breaker, fallbacks, tokens,
cost and output quality per minute and hour, by service, model, version, route and arm."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyarrow as pa

from analysis.base import Result, Window, minute_and_hour_ranges
from store import analytics
from store.base import Store
from store.prices import resolve_prices

HOUR_REFRESH_MINUTES = 5


def refreshes_hours(window: Window) -> bool:
    """Whether a run of `window` recomputes its hour buckets too. A minute tick inside the open hour
    refreshes it only every HOUR_REFRESH_MINUTES minutes (its exact percentiles reread the whole
    hour); a run that closes an hour, spans several hour buckets or covers more than a few minutes
    (catch-up, backfill, late data) always does, so every closed hour ends up exact."""
    if window.narrow:
        return False
    first, last = window.aligned("1h")
    return (last - first > timedelta(hours=1) or window.end - window.start > timedelta(minutes=HOUR_REFRESH_MINUTES)
            or window.end.minute % HOUR_REFRESH_MINUTES == 0)


class TrafficAnalyzer:
    name = "traffic"
    source = "spans"
    owns = analytics.TRAFFIC_METRICS

    def __init__(self, store: Store, settings: Any = None) -> None:
        self.store = store

    def replaces(self, window: Window) -> list:
        return minute_and_hour_ranges(window) if refreshes_hours(window) else [("1m", *window.aligned("1m"))]

    def run(self, window: Window) -> Result:
        minutes, hours = window.aligned("1m"), window.aligned("1h")
        with_hours = refreshes_hours(window)
        prices = resolve_prices(analytics.distinct_models(self.store, *(hours if with_hours else minutes)))
        return Result(None, traffic=analytics.traffic_metrics(self.store, minutes, hours if with_hours else None,
                                                              prices, window.computed_at))


class _MinuteAndHourAnalyzer:
    """An analyzer whose metrics are one store query, run at the minute and at the hour grain."""

    compute: Any  # analytics function (store, start, end, grain, computed_at) -> Table

    def __init__(self, store: Store, settings: Any = None) -> None:
        self.store = store

    def replaces(self, window: Window) -> list:
        return minute_and_hour_ranges(window)

    def run(self, window: Window) -> Result:
        return Result(pa.concat_tables([
            self.compute(self.store, *window.aligned(grain), grain, window.computed_at) for grain in ("1m", "1h")]))


class ResourceAnalyzer(_MinuteAndHourAnalyzer):
    """CPU, GPU, memory utilisation and queue depth from OTLP metrics (mean of the points per bucket)."""

    name = "resources"
    source = "resource_metrics"
    owns = analytics.RESOURCE_METRICS
    compute = staticmethod(analytics.resource_metrics)


class OverrideAnalyzer(_MinuteAndHourAnalyzer):
    """Human override rate: (modified + rejected) / reviewed, by route and model (reasons: `overrides` query)."""

    name = "overrides"
    source = "feedback"
    owns = analytics.OVERRIDE_METRICS
    compute = staticmethod(analytics.override_metrics)
