"""Input drift per route: each watched column of an hour against the reference, with Evidently's
default test and threshold per column (reproduced in analysis/stats.py), and the drifted share."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from analysis import stats
from analysis.base import Result, Window, hour_index, key_runs
from analysis.reference import reference_period
from analysis.settings import AnalysisSettings, DriftColumn
from store import analytics

KEYS = ("service_name", "route")


def _by_route(table: Any) -> dict[tuple, pl.DataFrame]:
    if table.num_rows == 0:
        return {}
    return dict(key_runs(pl.from_arrow(table), list(KEYS)))


def _values_aligned(df: pl.DataFrame, column: DriftColumn) -> np.ndarray:
    """The column for every row (missing values as NaN / None), aligned with the frame's rows."""
    if column.kind == "num":
        return df[column.name].cast(pl.Float64, strict=False).fill_null(float("nan")).to_numpy()
    return df[column.name].cast(pl.Utf8).to_numpy().astype(object)


def _values(df: pl.DataFrame, column: DriftColumn) -> np.ndarray:
    series = df[column.name].drop_nulls()
    if column.kind == "num":
        return series.cast(pl.Float64, strict=False).drop_nulls().to_numpy()
    return series.cast(pl.Utf8).to_numpy().astype(object)


def drift_columns(reference: pl.DataFrame, current: pl.DataFrame, columns: list[DriftColumn]) -> list[stats.ColumnDrift]:
    """Per-column drift of current against reference; columns empty on either side are skipped."""
    out = []
    for column in columns:
        result = stats.column_drift(column.name, column.kind, _values(reference, column), _values(current, column))
        if result is not None:
            out.append(result)
    return out


def _column_scores(ref_values: np.ndarray, column: DriftColumn, cur_values: np.ndarray, cur_labels: np.ndarray,
                   n_samples: int) -> list[stats.ColumnDrift | None]:
    """Evidently's default test of `column` for each current sample (labels in [0, n_samples))
    against one reference: vectorised where the test is the same for every sample (large reference:
    Wasserstein for wide numeric columns, Jensen-Shannon for categories), else sample by sample."""
    clean = (lambda v: np.isfinite(v)) if column.kind == "num" else (lambda v: pd.notna(v))
    ref = ref_values[clean(ref_values)]
    keep = clean(cur_values)
    cur_values, cur_labels = cur_values[keep], cur_labels[keep]
    sizes = np.bincount(cur_labels, minlength=n_samples)
    out: list[stats.ColumnDrift | None] = [None] * n_samples
    if len(ref) == 0:
        return out
    wide = column.kind == "num" and len(pd.unique(ref)) > 5
    if len(ref) <= 1000 or (column.kind == "num" and not wide):
        order = np.argsort(cur_labels, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        for i in range(n_samples):
            part = cur_values[order[bounds[i]:bounds[i + 1]]]
            out[i] = stats.column_drift(column.name, column.kind, ref, part) if len(part) else None
        return out
    if wide:
        reference = stats.SortedReference.of(ref)
        scores = stats.wasserstein_many(reference, stats.Samples.group(cur_values, cur_labels, n_samples)) \
            / max(reference.std, 0.001)
        test, threshold = "wasserstein", 0.1
    else:
        codes, keys = pd.factorize(np.concatenate([ref, cur_values]))
        ref_counts = np.bincount(codes[:len(ref)], minlength=len(keys)).astype(float)
        cur_counts = np.bincount(cur_labels * len(keys) + codes[len(ref):],
                                 minlength=n_samples * len(keys)).reshape(n_samples, len(keys)).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = stats.jensenshannon_many(ref_counts, cur_counts)
        test, threshold = "jensenshannon", 0.1
    for i in np.flatnonzero(sizes):
        out[i] = stats.ColumnDrift(column.name, column.kind, test, float(scores[i]), threshold,
                                   bool(scores[i] >= threshold), len(ref), int(sizes[i]))
    return out


class DriftAnalyzer:
    name = "drift"
    source = "spans"
    owns = ("drift_share", "dataset_drift", "drift_score:", "drift_detected:")

    def __init__(self, store: Any, settings: AnalysisSettings | None = None) -> None:
        self.store = store
        self.settings = settings or AnalysisSettings()

    def replaces(self, window: Window) -> list:
        return [("1h", *window.aligned("1h"))]

    def run(self, window: Window) -> Result:
        """One sample query for all hour buckets of the window; per route and column, every hour
        against the reference at once (`_column_scores`)."""
        s = self.settings
        columns = s.drift_column_specs
        names = [c.name for c in columns]
        rows, reports = [], []
        references: dict[tuple, dict[tuple, pl.DataFrame]] = {}
        sample = analytics.drift_sample(self.store, *window.aligned("1h"), names, s.sample_cap, by_hour=True)
        if sample.num_rows == 0:
            return Result(analytics.metrics_table(rows), analytics.reports_table(reports))
        for key, part in key_runs(pl.from_arrow(sample), list(KEYS)):
            heights = part.group_by("hour").len()
            buckets = sorted(heights.filter(pl.col("len") >= s.drift_min_rows)["hour"].to_list())
            by_period: dict[tuple, list[datetime]] = {}
            for bucket in buckets:
                by_period.setdefault(reference_period(s, bucket), []).append(bucket)
            for ref_period, hours in by_period.items():
                if ref_period not in references:
                    references[ref_period] = _by_route(analytics.drift_sample(self.store, *ref_period, names,
                                                                              s.sample_cap))
                ref = references[ref_period].get(key)
                if ref is None:
                    continue
                cur = part.filter(pl.col("hour").is_in(hours))
                labels = hour_index(cur["hour"], hours)
                height = np.bincount(labels, minlength=len(hours))
                per_column = [_column_scores(_values(ref, c), c, _values_aligned(cur, c), labels, len(hours))
                              for c in columns]
                for i, bucket in enumerate(hours):
                    results = [col[i] for col in per_column if col[i] is not None]
                    if not results:
                        continue
                    share, drifted = stats.dataset_drift(results, s.drift_share)
                    label_values = {"service_name": key[0], "model": None, "model_version": None, "route": key[1],
                                    "arm": None}
                    base = {"time": bucket, "grain": "1h", "computed_at": window.computed_at, **label_values}
                    rows.append({**base, "metric": "drift_share", "value": share})
                    rows.append({**base, "metric": "dataset_drift", "value": float(drifted)})
                    for r in results:
                        rows.append({**base, "metric": f"drift_score:{r.column}", "value": r.score})
                        rows.append({**base, "metric": f"drift_detected:{r.column}", "value": float(r.drifted)})
                    reports.append({
                        "time": bucket, "window_end": bucket + timedelta(hours=1), "analyzer": self.name,
                        "kind": "drift_columns", **label_values, "verdict": "drift" if drifted else "no_drift",
                        "computed_at": window.computed_at,
                        "body": {"drift_share": share, "dataset_drift": drifted,
                                 "columns": [r.as_dict() for r in results],
                                 "reference": [ref_period[0].isoformat(), ref_period[1].isoformat()],
                                 "reference_rows": ref.height, "current_rows": int(height[i])}})
        return Result(analytics.metrics_table(rows), analytics.reports_table(reports))
