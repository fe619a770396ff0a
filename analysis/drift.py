"""Input drift per route: each watched column of an hour against the reference, with Evidently's
default test and threshold per column (reproduced in analysis/stats.py) gated by a two-sample
test's p-value (an hour's sampling noise is no drift), and the drifted share."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np

from analysis import stats
from analysis.base import Result, Window, runs
from analysis.reference import reference_period
from analysis.samples import Column, GroupedSample, ReferenceCache
from analysis.settings import AnalysisSettings, DriftColumn
from core.clock import utcnow
from store import analytics
from store.base import Store

KEYS = ("service_name", "route")


def _sample(store: Store, start: datetime, end: datetime, columns: list[DriftColumn], cap: int,
            by_hour: bool) -> GroupedSample:
    groups, values = analytics.drift_groups(store, start, end, [(c.name, c.kind) for c in columns], cap, by_hour)
    return GroupedSample.from_tables(groups, values, KEYS + (("hour",) if by_hour else ()),
                                     {c.name: c.kind for c in columns})


def _column_scores(ref: Column, column: DriftColumn, cur: Column, alpha: float) -> list[stats.ColumnDrift | None]:
    """Evidently's default test of `column` and its chance test for each current group against one
    reference group: vectorised where the tests are the same for every group (large reference:
    Wasserstein and KS for wide numeric columns, Jensen-Shannon and chi-square for categories), else
    group by group (analysis.stats.column_drift)."""
    n_samples = len(cur.sizes)
    out: list[stats.ColumnDrift | None] = [None] * n_samples
    n_ref = len(ref.values)
    if n_ref == 0:
        return out
    wide = column.kind == "num" and len(np.unique(ref.values)) > 5
    if n_ref <= 1000 or (column.kind == "num" and not wide):
        ref_values = ref.categories[ref.values] if column.kind == "cat" else ref.values
        for i in np.flatnonzero(cur.sizes):
            out[i] = stats.column_drift(column.name, column.kind, ref_values, cur.group(int(i)), alpha)
        return out
    if wide:
        reference = stats.SortedReference.of(ref.values)
        samples = stats.Samples(cur.values, cur.starts, cur.sizes)
        scores = stats.wasserstein_many(reference, samples) / max(reference.std, 0.001)
        p_values = stats.ks_many(reference, samples)[1]
        test = "wasserstein"
    else:
        names = {name: i for i, name in enumerate(dict.fromkeys([*ref.categories, *cur.categories]))}
        ref_codes = np.array([names[c] for c in ref.categories], dtype=np.int64)[ref.values]
        cur_codes = np.array([names[c] for c in cur.categories], dtype=np.int64)[cur.values]
        k = len(names)
        ref_counts = np.bincount(ref_codes, minlength=k).astype(float)
        labels = np.repeat(np.arange(n_samples), cur.sizes)
        cur_counts = np.bincount(labels * k + cur_codes, minlength=n_samples * k).reshape(n_samples, k).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = stats.jensenshannon_many(ref_counts, cur_counts)
        p_values = stats.homogeneity_many(ref_counts, cur_counts)
        test = "jensenshannon"
    for i in np.flatnonzero(cur.sizes):
        evidently, p = bool(scores[i] >= 0.1), float(p_values[i])
        out[i] = stats.ColumnDrift(column.name, column.kind, test, float(scores[i]), 0.1, evidently, p,
                                   evidently and p < alpha, n_ref, int(cur.sizes[i]))
    return out


class DriftAnalyzer:
    name = "drift"
    source = "spans"
    owns = ("drift_share", "dataset_drift", "drift_score:", "drift_detected:", "drift_pvalue:")

    def __init__(self, store: Store, settings: AnalysisSettings | None = None) -> None:
        self.store = store
        self.settings = settings or AnalysisSettings()
        self.cache = ReferenceCache()

    def replaces(self, window: Window) -> list:
        return [("1h", *window.aligned("1h"))]

    def run(self, window: Window) -> Result:
        """One sample query for all hour buckets of the window; per route and column, every hour
        against the reference at once (`_column_scores`)."""
        s = self.settings
        columns = s.drift_column_specs
        rows: list[dict[str, Any]] = []
        reports: list[dict[str, Any]] = []
        sample = _sample(self.store, *window.aligned("1h"), columns, s.sample_cap, by_hour=True)
        references: dict[tuple, GroupedSample] = {}
        # groups: one per (route, hour), ordered by both; runs of a route that share a reference
        live = [i for i, rows in enumerate(sample.rows) if rows >= s.drift_min_rows]
        periods = [(sample.keys[i][:-1], reference_period(s, sample.keys[i][-1])) for i in range(len(sample.keys))]
        for lo, hi in runs(periods):
            key, ref_period = periods[lo]
            if not any(lo <= i < hi for i in live):
                continue
            if ref_period not in references:
                references[ref_period] = self.cache.get(
                    ref_period, (tuple(columns), s.sample_cap), utcnow(),
                    lambda: _sample(self.store, *ref_period, columns, s.sample_cap, by_hour=False))  # noqa: B023 - called at once
            reference = references[ref_period]
            if key not in reference.keys:
                continue
            r = reference.keys.index(key)
            ref_rows = int(reference.rows[r])
            hours = [k[-1] for k in sample.keys[lo:hi]]
            per_column = [_column_scores(reference.columns[c.name].slice(r, r + 1), c,
                                         sample.columns[c.name].slice(lo, hi), s.drift_alpha) for c in columns]
            for i, bucket in enumerate(hours):
                if sample.rows[lo + i] < s.drift_min_rows:
                    continue
                results = [found for col in per_column if (found := col[i]) is not None]
                if not results:
                    continue
                share, drifted = stats.dataset_drift(results, s.drift_share)
                label_values = {"service_name": key[0], "model": None, "model_version": None, "route": key[1],
                                "arm": None}
                base = {"time": bucket, "grain": "1h", "computed_at": window.computed_at, **label_values}
                rows.append({**base, "metric": "drift_share", "value": share})
                rows.append({**base, "metric": "dataset_drift", "value": float(drifted)})
                for found in results:
                    rows.append({**base, "metric": f"drift_score:{found.column}", "value": found.score})
                    rows.append({**base, "metric": f"drift_detected:{found.column}", "value": float(found.drifted)})
                    rows.append({**base, "metric": f"drift_pvalue:{found.column}", "value": found.p_value})
                reports.append({
                    "time": bucket, "window_end": bucket + timedelta(hours=1), "analyzer": self.name,
                    "kind": "drift_columns", **label_values, "verdict": "drift" if drifted else "no_drift",
                    "computed_at": window.computed_at,
                    "body": {"drift_share": share, "dataset_drift": drifted, "alpha": s.drift_alpha,
                             "columns": [found.as_dict() for found in results],
                             "reference": [ref_period[0].isoformat(), ref_period[1].isoformat()],
                             "reference_rows": ref_rows, "current_rows": int(sample.rows[lo + i])}})
        return Result(analytics.metrics_table(rows), analytics.reports_table(reports))
