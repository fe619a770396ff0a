"""SLOs and error-budget burn rates for the alerting stage.

Per minute and service it stores the SLO's total and bad calls (`slo_total:<slo>`, `slo_bad:<slo>`);
burn rates over each window ((bad / total) / (1 - objective), grain = the window) roll those
minutes up, so an incremental run reads back at most the longest window of its own rows.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pyarrow as pa

from analysis.base import Result, Window
from analysis.settings import SLO, AnalysisSettings
from core.grains import GRAIN_SECONDS, ceil_time, floor_time
from store import analytics
from store.base import Store

MIN_COVERAGE_MIN = 1440   # minutes of history before a burn window longer than that is judged


class SLOAnalyzer:
    name = "slo"
    source = "spans"
    owns = ("slo_total:", "slo_bad:", "burn_rate_availability", "burn_rate_latency", "slo_attainment",
            "slo_attainment_latency", "slo_objective", "slo_objective_latency")

    def __init__(self, store: Store, settings: AnalysisSettings | None = None) -> None:
        self.store = store
        self.settings = settings or AnalysisSettings()

    def _span(self, window: Window) -> tuple[datetime, datetime]:
        # Whole hours are recomputed so that the hourly attainment and the minutes agree.
        return floor_time(window.start, "1h"), window.aligned("1m")[1]

    def replaces(self, window: Window) -> list:
        start, end = self._span(window)
        return ([("1m", start, end), ("1h", start, ceil_time(end, "1h"))]
                + [(g, start, end) for g in self.settings.burn_windows if g not in ("1m", "1h")])

    def run(self, window: Window) -> Result:
        # one read of this analyzer's own stored minutes (every SLO) over the longest burn window
        start, _ = self._span(window)
        longest = max(GRAIN_SECONDS[g] // 60 for g in self.settings.burn_windows)
        names = [f"slo_{kind}:{slo.name}" for slo in self.settings.slos for kind in ("total", "bad")]
        if not names:
            return Result(analytics.empty_metrics())
        history = pl.DataFrame(analytics.stored_metric(self.store, names, "1m", start - timedelta(minutes=longest),
                                                       start))
        tables = [t for slo in self.settings.slos for t in self._one(slo, window, history)]
        return Result(pa.concat_tables(tables) if tables else analytics.empty_metrics())

    def _one(self, slo: SLO, window: Window, history: pl.DataFrame) -> list[pa.Table]:
        start, end = self._span(window)
        route = slo.route or None
        windows = {g: GRAIN_SECONDS[g] // 60 for g in self.settings.burn_windows}
        longest = max(windows.values())
        history_start = start - timedelta(minutes=longest)
        fresh = pl.DataFrame(analytics.slo_minute_counts(
            self.store, start, end, route, slo.threshold_ms if slo.kind == "latency" else None))
        hist_total = history.filter(pl.col("metric") == f"slo_total:{slo.name}")
        hist_bad = history.filter(pl.col("metric") == f"slo_bad:{slo.name}")
        if slo.service not in ("*", ""):
            fresh = fresh.filter(pl.col("service_name") == slo.service)
        route_match = pl.col("route").is_null() if route is None else pl.col("route") == route
        hist_total, hist_bad = hist_total.filter(route_match), hist_bad.filter(route_match)
        services = set(fresh["service_name"].to_list()) | set(hist_total["service_name"].to_list())
        n_minutes = int((end - history_start).total_seconds() // 60)
        offset = longest
        metric = f"burn_rate_{slo.kind}"
        attain = "slo_attainment" if slo.kind == "availability" else "slo_attainment_latency"
        objective = "slo_objective" if slo.kind == "availability" else "slo_objective_latency"
        out: list[pa.Table] = []
        for service in sorted(s for s in services if s is not None):
            total, bad = np.zeros(n_minutes), np.zeros(n_minutes)
            for frame, total_col, bad_col in ((hist_total.filter(pl.col("service_name") == service), "value", None),
                                              (hist_bad.filter(pl.col("service_name") == service), None, "value"),
                                              (fresh.filter(pl.col("service_name") == service), "total", "bad")):
                if frame.height == 0:
                    continue
                idx = ((frame["time"].cast(pl.Datetime("us")).to_numpy() - np.datetime64(history_start, "us"))
                       // np.timedelta64(1, "m")).astype(int)
                if total_col:
                    total[idx] = frame[total_col].to_numpy()
                if bad_col:
                    bad[idx] = frame[bad_col].to_numpy()
            cs_total = np.concatenate([[0.0], np.cumsum(total)])
            cs_bad = np.concatenate([[0.0], np.cumsum(bad)])
            idx = np.arange(offset, n_minutes)
            times = np.datetime64(start, "us") + (idx - offset).astype("timedelta64[m]")
            live = total[idx] > 0
            parts = [(times[live], "1m", f"slo_total:{slo.name}", total[idx][live]),
                     (times[live], "1m", f"slo_bad:{slo.name}", bad[idx][live])]
            # A window is judged once the service's history covers it, or MIN_COVERAGE_MIN of it for
            # long windows: a 3-day burn over the first minutes of a deployment is those minutes' noise.
            seen = np.flatnonzero(total > 0)
            covered = idx - (seen[0] if len(seen) else n_minutes) + 1
            for grain, k in windows.items():
                tot = cs_total[idx + 1] - cs_total[np.maximum(idx + 1 - k, 0)]
                bd = cs_bad[idx + 1] - cs_bad[np.maximum(idx + 1 - k, 0)]
                ok = (tot > 0) & (covered >= min(k, MIN_COVERAGE_MIN))
                parts.append((times[ok], grain, metric, bd[ok] / tot[ok] / (1 - slo.objective)))
            hours = (n_minutes - offset + 59) // 60
            padded = np.zeros(hours * 60)
            padded[: n_minutes - offset] = total[offset:]
            hour_total = padded.reshape(hours, 60).sum(axis=1)
            padded[: n_minutes - offset] = bad[offset:]
            hour_bad = padded.reshape(hours, 60).sum(axis=1)
            ok = hour_total > 0
            hour_times = np.datetime64(start, "us") + (np.arange(hours) * 60).astype("timedelta64[m]")
            parts.append((hour_times[ok], "1h", attain, 1 - hour_bad[ok] / hour_total[ok]))
            # the objective in force, beside its attainment: budgets read both from the same hour
            parts.append((hour_times[ok], "1h", objective, np.full(int(ok.sum()), slo.objective)))
            for t, grain, name, values in parts:
                out.append(_table(t, grain, name, values, service, route, window.computed_at))
        return out


def _table(times: np.ndarray, grain: str, metric: str, values: np.ndarray, service: str, route: str | None,
           computed_at: datetime) -> pa.Table:
    n = len(times)
    const = lambda v: pa.array([v] * n, pa.string())  # noqa: E731
    return pa.Table.from_arrays([
        pa.array(times.astype("datetime64[us]"), pa.timestamp("us")), const(grain), const(metric), const(service),
        const(None), const(None), const(route), const(None), pa.array(values.astype(float), pa.float64()),
        pa.array([computed_at] * n, pa.timestamp("us"))], schema=analytics.METRICS_SCHEMA)
