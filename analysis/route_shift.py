"""Per route and model: where each call's confidence and output tokens fall among the route's own
trailing calls, summed per minute, for the alert rules' rank test (alerts/conditions.py, `rank`).

Each successful call gets its percentile among the successful calls of the route and model in the
trailing `route_baseline_hours` before its hour (the reference): for confidence the lower tail,
u = (#reference <= x + 1) / (m + 1); for output tokens the upper tail, u = (#reference >= x + 1) /
(m + 1). Under "nothing changed" a call is exchangeable with its reference, so u is (super-)uniform
and the sum of u over n calls is at least an Irwin-Hall(n) variable: the rule's p-value is its lower
tail, the Mann-Whitney test of the window against the reference as the reference grows. A few calls
far in the tail are evidence (5 calls at the reference's 5th percentile: p ~ 8e-6) where a mean over
few calls is not, and no distribution shape is assumed. A route is scored once MIN_REFERENCE calls
are behind its reference (a percentile among a few dozen calls is mostly the reference's own noise).

The scheduled tick analyzes the last minute or so, but a reference is a day of calls: reading and
sorting it every minute cost ~1.8 s a tick at 1.5M calls a day. The sorted references of the newest
hour are kept between runs, so a tick inside that hour reads only its own minutes. A window that
reaches into another hour (a backfill, late data, the hour rolling over) reads and sorts afresh.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from analysis.base import Result, Window
from analysis.settings import AnalysisSettings
from store import analytics
from store.base import Store

MIN_REFERENCE = 500
_EMPTY = np.empty(0)
# (value column, metric prefix, tail): confidence falls, output tokens rise
SCORED = (("confidence", "route_conf", "low"), ("output_tokens", "route_out", "high"))


def tail_scores(reference: np.ndarray, values: np.ndarray, tail: str) -> np.ndarray:
    """Per value, its conservative percentile among the sorted `reference` on `tail`'s side: ties
    count against the value, and the +1s make it super-uniform under exchangeability."""
    m = len(reference)
    if tail == "low":
        at_or_beyond = np.searchsorted(reference, values, side="right")
    else:
        at_or_beyond = m - np.searchsorted(reference, values, side="left")
    return (at_or_beyond + 1) / (m + 1)


class RouteShiftAnalyzer:
    name = "route_shift"
    source = "spans"
    owns = ("route_conf_scored", "route_conf_low_score", "route_out_scored", "route_out_high_score",
            "route_conf_reference_calls", "route_out_reference_calls")

    def __init__(self, store: Store, settings: AnalysisSettings | None = None) -> None:
        self.store = store
        self.settings = settings or AnalysisSettings()
        # (hour, baseline hours) -> {route key -> {value column -> sorted reference}}
        self._references: tuple[tuple[datetime, int], dict[tuple, dict[str, np.ndarray]]] | None = None

    def replaces(self, window: Window) -> list:
        return [("1m", *window.aligned("1m")), ("1h", *window.aligned("1h"))]

    def run(self, window: Window) -> Result:
        start, end = window.aligned("1m")
        hours = window.buckets("1h")
        span = timedelta(hours=self.settings.route_baseline_hours)
        cache_key = (hours[-1], self.settings.route_baseline_hours)
        cached = self._references[1] if len(hours) == 1 and self._references and \
            self._references[0] == cache_key else None
        # with the hour's references in hand, only the window's own calls are read
        calls = analytics.route_call_values(self.store, start if cached is not None else hours[0] - span, end)
        times = calls.column("time").to_numpy().astype("datetime64[us]")
        keys = list(zip(*(calls.column(c).to_pylist() for c in analytics.ROUTE_KEYS), strict=True))
        by_key: dict[tuple, list[int]] = defaultdict(list)
        for i, key in enumerate(keys):
            by_key[key].append(i)
        rows: list[dict[str, Any]] = []
        newest: dict[tuple, dict[str, np.ndarray]] = {}

        def add(time: Any, grain: str, metric: str, key: tuple, value: float) -> None:
            rows.append({"time": time, "grain": grain, "metric": metric, "service_name": key[0], "model": key[2],
                         "model_version": None, "route": key[1], "arm": None, "value": float(value),
                         "computed_at": window.computed_at})

        def reference_of(key: tuple, column: str, hour: datetime, t: np.ndarray, values: np.ndarray) -> np.ndarray:
            if cached is not None:
                return cached.get(key, {}).get(column, _EMPTY)
            h = np.datetime64(hour, "us")
            lo, hi = np.searchsorted(t, [h - np.timedelta64(span), h])
            reference = values[lo:hi]
            reference = np.sort(reference[~np.isnan(reference)])
            if hour == hours[-1]:
                newest.setdefault(key, {})[column] = reference
            return reference

        # every route with a reference reports its size each run (the hour's row is replaced)
        for key in (cached or {}).keys() - by_key.keys():
            for column, prefix, _ in SCORED:
                n = len(cached[key].get(column, _EMPTY)) if cached else 0
                if n:
                    add(hours[0], "1h", f"{prefix}_reference_calls", key, n)
        for key, idx in by_key.items():
            index = np.asarray(idx)
            t = times[index]                              # ascending (the query orders by time)
            for column, prefix, tail in SCORED:
                values = calls.column(column).to_numpy(zero_copy_only=False)[index].astype(float)
                for hour in hours:
                    reference = reference_of(key, column, hour, t, values)
                    if len(reference) == 0:
                        continue
                    add(hour, "1h", f"{prefix}_reference_calls", key, len(reference))
                    if len(reference) < MIN_REFERENCE:
                        continue
                    h = np.datetime64(hour, "us")
                    first, last = np.searchsorted(t, [max(h, np.datetime64(start, "us")),
                                                      min(h + np.timedelta64(1, "h"), np.datetime64(end, "us"))])
                    current = values[first:last]
                    minutes = t[first:last].astype("datetime64[m]")
                    keep = ~np.isnan(current)
                    if not keep.any():
                        continue
                    scores = tail_scores(reference, current[keep], tail)
                    buckets, inverse = np.unique(minutes[keep], return_inverse=True)
                    sums = np.bincount(inverse, weights=scores)
                    counts = np.bincount(inverse)
                    for b, s, n in zip(buckets, sums, counts, strict=True):
                        minute = b.astype("datetime64[us]").item()
                        add(minute, "1m", f"{prefix}_scored", key, n)
                        add(minute, "1m", f"{prefix}_{tail}_score", key, s)
        if cached is None:
            self._references = (cache_key, newest)
        return Result(analytics.metrics_table(rows))
