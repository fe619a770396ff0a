"""Confidence: hourly quantiles and the shift of each hour against the reference (KS statistic and
p-value, PSI, Wasserstein distance), plus the trend of hourly means over the trailing day."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from analysis import stats
from analysis.base import Result, Window
from analysis.reference import reference_period
from analysis.settings import AnalysisSettings
from store import analytics

KEYS = ("service_name", "model", "model_version")
MIN_ROWS = 30


def _groups(table: Any) -> dict[tuple, np.ndarray]:
    if table.num_rows == 0:
        return {}
    df = pl.from_arrow(table)
    return {key: part["confidence"].to_numpy() for key, part in df.partition_by(list(KEYS), as_dict=True).items()}


class ConfidenceAnalyzer:
    name = "confidence"
    source = "spans"
    owns = ("confidence_ks_stat", "confidence_ks_pvalue", "confidence_psi", "confidence_wasserstein",
            "confidence_shift", "confidence_p10", "confidence_p50", "confidence_p90",
            "confidence_trend_slope", "confidence_trend_pvalue")

    def __init__(self, store: Any, settings: AnalysisSettings | None = None) -> None:
        self.store = store
        self.settings = settings or AnalysisSettings()

    def replaces(self, window: Window) -> list:
        return [("1h", *window.aligned("1h"))]

    def run(self, window: Window) -> Result:
        s = self.settings
        rows, reports = [], []
        references: dict[tuple, dict[tuple, np.ndarray]] = {}
        first, last = window.aligned("1h")
        means = pl.from_arrow(analytics.hourly_confidence_means(self.store, first - timedelta(hours=23), last))
        for bucket in window.buckets("1h"):
            ref_period = reference_period(s, bucket)
            if ref_period not in references:
                references[ref_period] = _groups(analytics.confidence_sample(self.store, *ref_period, s.sample_cap))
            current = _groups(analytics.confidence_sample(self.store, bucket, bucket + timedelta(hours=1), s.sample_cap))
            for key, cur in current.items():
                labels = dict(zip(KEYS, key), route=None, arm=None)
                base = {"time": bucket, "grain": "1h", "computed_at": window.computed_at, **labels}
                for q, name in ((0.1, "confidence_p10"), (0.5, "confidence_p50"), (0.9, "confidence_p90")):
                    rows.append({**base, "metric": name, "value": float(np.quantile(cur, q))})
                trend = means.filter((pl.col("service_name") == key[0]) & (pl.col("model") == key[1])
                                     & (pl.col("model_version") == key[2]) & (pl.col("hour") <= bucket)
                                     & (pl.col("hour") > bucket - timedelta(hours=24)))
                slope, slope_p = stats.linear_trend(trend["mean"].to_numpy())
                rows.append({**base, "metric": "confidence_trend_slope", "value": slope})
                rows.append({**base, "metric": "confidence_trend_pvalue", "value": slope_p})
                ref = references[ref_period].get(key)
                if ref is None or len(ref) < MIN_ROWS or len(cur) < MIN_ROWS:
                    continue
                ks_stat, ks_p = stats.ks(ref, cur)
                psi = stats.psi(ref, cur, bins=10, lo=0.0, hi=1.0)
                wd = stats.wasserstein(ref, cur)
                shifted = psi >= s.confidence_psi_alert or (ks_p < s.confidence_ks_alpha
                                                            and ks_stat >= s.confidence_ks_min_stat)
                for name, value in (("confidence_ks_stat", ks_stat), ("confidence_ks_pvalue", ks_p),
                                    ("confidence_psi", psi), ("confidence_wasserstein", wd),
                                    ("confidence_shift", float(shifted))):
                    rows.append({**base, "metric": name, "value": value})
                reports.append({
                    "time": bucket, "window_end": bucket + timedelta(hours=1), "analyzer": self.name,
                    "kind": "confidence_shift", **labels, "verdict": "shift" if shifted else "stable",
                    "computed_at": window.computed_at,
                    "body": {"ks_stat": ks_stat, "ks_pvalue": ks_p, "psi": psi, "wasserstein": wd,
                             "reference_mean": float(ref.mean()), "current_mean": float(cur.mean()),
                             "reference_rows": len(ref), "current_rows": len(cur),
                             "reference": [ref_period[0].isoformat(), ref_period[1].isoformat()],
                             "trend_slope_per_hour": slope, "trend_pvalue": slope_p}})
        return Result(analytics.metrics_table(rows), analytics.reports_table(reports))
