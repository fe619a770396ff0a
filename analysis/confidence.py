"""Confidence: hourly quantiles and the shift of each hour against the reference (KS statistic and
p-value, PSI, Wasserstein distance), plus the trend of hourly means over the trailing day."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from analysis import stats
from analysis.base import Result, Window, runs
from analysis.reference import reference_period
from analysis.samples import GroupedSample, ReferenceCache
from analysis.settings import AnalysisSettings
from core.clock import utcnow
from store import analytics
from store.base import Store

KEYS = ("service_name", "model", "model_version")
MIN_ROWS = 30
QUANTILES = ((0.1, "confidence_p10"), (0.5, "confidence_p50"), (0.9, "confidence_p90"))


def _references(sample: GroupedSample) -> dict[tuple, stats.SortedReference]:
    col = sample.columns["confidence"]
    return {key: stats.SortedReference.of(col.group(i)) for i, key in enumerate(sample.keys)}


def _sample(store: Store, start: datetime, end: datetime, cap: int, by_hour: bool) -> GroupedSample:
    return GroupedSample.from_tables(*analytics.confidence_groups(store, start, end, cap, by_hour),
                                     KEYS + (("hour",) if by_hour else ()), {"confidence": "num"})


class ConfidenceAnalyzer:
    name = "confidence"
    source = "spans"
    owns = ("confidence_ks_stat", "confidence_ks_pvalue", "confidence_psi", "confidence_wasserstein",
            "confidence_shift", "confidence_p10", "confidence_p50", "confidence_p90",
            "confidence_trend_slope", "confidence_trend_pvalue")

    def __init__(self, store: Store, settings: AnalysisSettings | None = None) -> None:
        self.store = store
        self.settings = settings or AnalysisSettings()
        self.cache = ReferenceCache()

    def replaces(self, window: Window) -> list:
        return [("1h", *window.aligned("1h"))]

    def run(self, window: Window) -> Result:
        """One sample query for all hour buckets of the window; per group, every hour against the
        (sorted once) reference in vectorised passes (analysis.stats `*_many`)."""
        s = self.settings
        rows: list[dict[str, Any]] = []
        reports: list[dict[str, Any]] = []
        first, last = window.aligned("1h")
        means = pl.DataFrame(analytics.hourly_confidence_means(self.store, first - timedelta(hours=23), last))
        trends = {key: (part["hour"].to_numpy(), part["mean"].to_numpy())
                  for key, part in means.sort("hour").partition_by(list(KEYS), as_dict=True).items()} \
            if means.height else {}
        sample = _sample(self.store, first, last, s.sample_cap, by_hour=True)
        col = sample.columns["confidence"]
        references: dict[tuple, dict[tuple, stats.SortedReference]] = {}
        # groups: one per (version, hour), ordered by both; runs of a version that share a reference
        periods = [(k[:-1], reference_period(s, k[-1])) for k in sample.keys]
        for lo, hi in runs(periods):
            key, ref_period = periods[lo]
            if ref_period not in references:
                # the cache calls the loader at once, while ref_period is still this one's
                references[ref_period] = self.cache.get(ref_period, s.sample_cap, utcnow(), lambda: _references(
                    _sample(self.store, *ref_period, s.sample_cap, by_hour=False)))  # noqa: B023
            ref = references[ref_period].get(key)
            buckets = [k[-1] for k in sample.keys[lo:hi]]
            part = col.slice(lo, hi)
            cur = stats.Samples(part.values, part.starts, part.sizes)
            qs = stats.quantiles_many(cur, tuple(q for q, _ in QUANTILES))
            judged = ref is not None and len(ref) >= MIN_ROWS
            if ref is not None and judged:
                ks_stat, ks_p = stats.ks_many(ref, cur)
                psi = stats.psi_many(ref, cur, bins=10, lo=0.0, hi=1.0)
                wd = stats.wasserstein_many(ref, cur)
                cur_means = cur.sums(cur.values) / np.maximum(cur.sizes, 1)
            # the trend of each bucket: its hourly means over the trailing day
            hour_t, hour_mean = trends.get(key, (np.array([], "datetime64[us]"), np.array([])))
            ends = np.array(buckets, dtype="datetime64[us]")
            since = np.searchsorted(hour_t, ends - np.timedelta64(23, "h"))
            until = np.searchsorted(hour_t, ends, "right")
            slopes, slope_ps = stats.linear_trends([hour_mean[a:b] for a, b in zip(since, until)])
            for i, bucket in enumerate(buckets):
                labels = dict(zip(KEYS, key), route=None, arm=None)
                base = {"time": bucket, "grain": "1h", "computed_at": window.computed_at, **labels}
                for (_, name), value in zip(QUANTILES, qs[i]):
                    rows.append({**base, "metric": name, "value": float(value)})
                slope, slope_p = float(slopes[i]), float(slope_ps[i])
                rows.append({**base, "metric": "confidence_trend_slope", "value": slope})
                rows.append({**base, "metric": "confidence_trend_pvalue", "value": slope_p})
                n_cur = int(cur.sizes[i])
                if ref is None or not judged or n_cur < MIN_ROWS:
                    continue
                k, p, ps, w = float(ks_stat[i]), float(ks_p[i]), float(psi[i]), float(wd[i])
                shifted = ps >= s.confidence_psi_alert or (p < s.confidence_ks_alpha
                                                           and k >= s.confidence_ks_min_stat)
                for name, value in (("confidence_ks_stat", k), ("confidence_ks_pvalue", p),
                                    ("confidence_psi", ps), ("confidence_wasserstein", w),
                                    ("confidence_shift", float(shifted))):
                    rows.append({**base, "metric": name, "value": value})
                reports.append({
                    "time": bucket, "window_end": bucket + timedelta(hours=1), "analyzer": self.name,
                    "kind": "confidence_shift", **labels, "verdict": "shift" if shifted else "stable",
                    "computed_at": window.computed_at,
                    "body": {"ks_stat": k, "ks_pvalue": p, "psi": ps, "wasserstein": w,
                             "reference_mean": float(ref.values.mean()), "current_mean": float(cur_means[i]),
                             "reference_rows": len(ref), "current_rows": n_cur,
                             "reference": [ref_period[0].isoformat(), ref_period[1].isoformat()],
                             "trend_slope_per_hour": slope, "trend_pvalue": slope_p}})
        return Result(analytics.metrics_table(rows), analytics.reports_table(reports))
