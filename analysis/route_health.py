"""Per route and model: calls, failures and slow calls each minute, beside the baseline they are
judged against, learned from the route's own trailing hours (from its first hour on).

A call is slow when it is slower than the route's latency SLO threshold (settings `slos`, kind
latency, naming the service and route), else than its learned p99: the median of its hourly p99s
over the trailing `route_baseline_hours`, so one bad hour does not move it. The hourly rows say
what is in force for the hour: `route_slow_threshold_ms`, `route_slow_budget` (the SLO's 1 -
objective, or the share of calls expected over a learned p99: `learned_budget`), `route_error_baseline` (failures / calls over the trailing
hours), `route_baseline_ok_calls` (successful calls behind them: a learned p99 waits for
MIN_OK_FOR_LEARNED) and `route_baseline_hours` (hours with calls behind them; a rule's `min_history` says when
that is too few to trust: the alert then says the baseline is immature). The alert rules test the minute counts against these rates
(alerts/conditions.py, `evidence`).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from analysis.base import Result, Window
from analysis.settings import SLO, AnalysisSettings
from store import analytics
from store.base import Store

LEARNED_BUDGET = 0.01     # share of calls over a true p99
MIN_OK_PER_HOUR = 20      # an hour with fewer successful calls has no p99 of its own
# A learned p99 needs this many successful calls behind it: a p99 of a few hundred calls is a guess
# at the tail, and a low guess makes ordinary slow calls look like an incident (a quiet route's
# first hours). Until then the route has no slow-call test unless it has a latency SLO.
MIN_OK_FOR_LEARNED = 500

Key = tuple[str, str, str]    # service, route, model


def learned_budget(ok_calls_per_hour: float) -> float:
    """The share of calls expected over a p99 learned from hours of `ok_calls_per_hour` calls each.

    An hour's p99 (linear interpolation, as DuckDB's quantile_cont and numpy) of n calls sits at
    rank h = 1 + 0.99 (n - 1); by order statistics the share of calls above it is Beta(n + 1 - h, h)
    whatever the latency distribution, and the median of the hourly p99s is exceeded about as
    often as that Beta's median (simulated: exact for busy hours, up to 15% over for hours of 20-70
    calls, the side of fewer false pages). That is 1% for hours of thousands of calls, but 2.7% for
    hours of 40 (a route at a call a minute): taking 1% there made ordinary slow calls of a quiet route page
    (3 of 4 calls over the threshold at a tolerated 6% is p 8.6e-4; measured: 2.4% of a quiet
    route's calls were over its learned p99)."""
    from scipy.stats import beta

    n = max(float(ok_calls_per_hour), 2.0)
    h = 1 + 0.99 * (n - 1)
    return max(LEARNED_BUDGET, float(beta.median(n + 1 - h, h)))


class RouteHealthAnalyzer:
    name = "route_health"
    source = "spans"
    owns = ("route_calls", "route_errors", "route_slow_calls", "route_slow_threshold_ms", "route_slow_budget",
            "route_error_baseline", "route_baseline_hours", "route_baseline_ok_calls")

    def __init__(self, store: Store, settings: AnalysisSettings | None = None) -> None:
        self.store = store
        self.settings = settings or AnalysisSettings()

    def replaces(self, window: Window) -> list:
        return [("1m", *window.aligned("1m")), ("1h", *window.aligned("1h"))]

    def _slo(self, service: str, route: str) -> SLO | None:
        return next((s for s in self.settings.slos if s.kind == "latency" and s.route == route
                     and s.service in (service, "*", "")), None)

    def baselines(self, hours: list[datetime]) -> list[dict[str, Any]]:
        """What is in force for each hour and route x model that had calls in the trailing hours."""
        span = timedelta(hours=self.settings.route_baseline_hours)
        stats = analytics.route_hourly_stats(self.store, hours[0] - span, hours[-1]).to_pylist()
        history: dict[Key, list[dict[str, Any]]] = defaultdict(list)
        for row in stats:
            history[(row["service_name"], row["route"], row["model"])].append(row)
        out = []
        for hour in hours:
            for key, rows in history.items():
                past = [r for r in rows if hour - span <= r["hour"] < hour and r["calls"] > 0]
                if not past:
                    continue
                slo = self._slo(key[0], key[1])
                learned = [r for r in past if r["ok_calls"] >= MIN_OK_PER_HOUR and r["p99_ms"] is not None]
                p99s = [r["p99_ms"] for r in learned]
                enough = sum(r["ok_calls"] for r in past) >= MIN_OK_FOR_LEARNED
                threshold = slo.threshold_ms if slo else (float(np.median(p99s)) if p99s and enough else None)
                budget = (1 - slo.objective) if slo else (
                    learned_budget(float(np.median([r["ok_calls"] for r in learned]))) if learned else LEARNED_BUDGET)
                calls = sum(r["calls"] for r in past)
                out.append({"hour": hour, "service_name": key[0], "route": key[1], "model": key[2],
                            "threshold_ms": threshold, "budget": budget,
                            "error_baseline": sum(r["errors"] for r in past) / calls,
                            "baseline_hours": float(len(past)),
                            "ok_calls": float(sum(r["ok_calls"] for r in past))})
        return out

    def run(self, window: Window) -> Result:
        start, end = window.aligned("1m")
        hours = window.buckets("1h")
        base = self.baselines(hours)
        thresholds = pa.table({c: pa.array([b[k] for b in base], t) for c, k, t in (
            ("hour", "hour", pa.timestamp("us")), ("service_name", "service_name", pa.string()),
            ("route", "route", pa.string()), ("model", "model", pa.string()),
            ("threshold_ms", "threshold_ms", pa.float64()))})
        counts = analytics.route_minute_counts(self.store, start, end, thresholds).to_pylist()
        rows: list[dict[str, Any]] = []

        def add(time: datetime, grain: str, metric: str, labels: dict[str, Any], value: float | None) -> None:
            if value is not None:
                rows.append({"time": time, "grain": grain, "metric": metric, "service_name": labels["service_name"],
                             "model": labels["model"], "model_version": None, "route": labels["route"], "arm": None,
                             "value": float(value), "computed_at": window.computed_at})
        for c in counts:
            add(c["time"], "1m", "route_calls", c, c["calls"])
            add(c["time"], "1m", "route_errors", c, c["errors"])
            add(c["time"], "1m", "route_slow_calls", c, c["slow"])
        for b in base:
            add(b["hour"], "1h", "route_slow_threshold_ms", b, b["threshold_ms"])
            add(b["hour"], "1h", "route_slow_budget", b, b["budget"] if b["threshold_ms"] is not None else None)
            add(b["hour"], "1h", "route_error_baseline", b, b["error_baseline"])
            add(b["hour"], "1h", "route_baseline_hours", b, b["baseline_hours"])
            add(b["hour"], "1h", "route_baseline_ok_calls", b, b["ok_calls"])
        return Result(analytics.metrics_table(rows))
