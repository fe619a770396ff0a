"""Requests, throughput, exact latency percentiles, error split, retries, breaker, fallbacks, tokens,
cost and output quality per minute and hour, by service, model, version, route and arm."""
from __future__ import annotations

from typing import Any

import pyarrow as pa

from analysis.base import Result, Window, minute_and_hour_ranges
from analysis.prices import resolve_prices
from store import analytics


class TrafficAnalyzer:
    name = "traffic"
    source = "spans"
    owns = analytics.TRAFFIC_METRICS

    def __init__(self, store: Any, settings: Any = None) -> None:
        self.store = store

    def replaces(self, window: Window) -> list:
        return minute_and_hour_ranges(window)

    def run(self, window: Window) -> Result:
        hours = window.aligned("1h")
        prices = resolve_prices(analytics.distinct_models(self.store, *hours))
        return Result(analytics.traffic_metrics(self.store, window.aligned("1m"), hours, prices, window.computed_at))


class ResourceAnalyzer:
    """CPU, GPU, memory utilisation and queue depth from OTLP metrics (mean of the points per bucket)."""

    name = "resources"
    source = "resource_metrics"
    owns = analytics.RESOURCE_METRICS

    def __init__(self, store: Any, settings: Any = None) -> None:
        self.store = store

    def replaces(self, window: Window) -> list:
        return minute_and_hour_ranges(window)

    def run(self, window: Window) -> Result:
        return Result(pa.concat_tables([
            analytics.resource_metrics(self.store, *window.aligned("1m"), "1m", window.computed_at),
            analytics.resource_metrics(self.store, *window.aligned("1h"), "1h", window.computed_at)]))


class OverrideAnalyzer:
    """Human override rate: (modified + rejected) / reviewed, by route and model (reasons: `overrides` query)."""

    name = "overrides"
    source = "feedback"
    owns = analytics.OVERRIDE_METRICS

    def __init__(self, store: Any, settings: Any = None) -> None:
        self.store = store

    def replaces(self, window: Window) -> list:
        return minute_and_hour_ranges(window)

    def run(self, window: Window) -> Result:
        return Result(pa.concat_tables([
            analytics.override_metrics(self.store, *window.aligned("1m"), "1m", window.computed_at),
            analytics.override_metrics(self.store, *window.aligned("1h"), "1h", window.computed_at)]))
