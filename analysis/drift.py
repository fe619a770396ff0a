"""Input drift per route: each watched column of an hour against the reference, with Evidently's
default test and threshold per column (reproduced in analysis/stats.py), and the drifted share."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from analysis import stats
from analysis.base import Result, Window
from analysis.reference import reference_period
from analysis.settings import AnalysisSettings, DriftColumn
from store import analytics

KEYS = ("service_name", "route")


def _by_route(table: Any) -> dict[tuple, pl.DataFrame]:
    if table.num_rows == 0:
        return {}
    return pl.from_arrow(table).partition_by(list(KEYS), as_dict=True)


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
        s = self.settings
        columns = s.drift_column_specs
        names = [c.name for c in columns]
        rows, reports = [], []
        references: dict[tuple, dict] = {}
        for bucket in window.buckets("1h"):
            ref_period = reference_period(s, bucket)
            if ref_period not in references:
                references[ref_period] = _by_route(analytics.drift_sample(self.store, *ref_period, names, s.sample_cap))
            current = _by_route(analytics.drift_sample(self.store, bucket, bucket + timedelta(hours=1), names,
                                                       s.sample_cap))
            for key, cur in current.items():
                ref = references[ref_period].get(key)
                if ref is None or cur.height < s.drift_min_rows:
                    continue
                results = drift_columns(ref, cur, columns)
                if not results:
                    continue
                share, drifted = stats.dataset_drift(results, s.drift_share)
                labels = {"service_name": key[0], "model": None, "model_version": None, "route": key[1], "arm": None}
                base = {"time": bucket, "grain": "1h", "computed_at": window.computed_at, **labels}
                rows.append({**base, "metric": "drift_share", "value": share})
                rows.append({**base, "metric": "dataset_drift", "value": float(drifted)})
                for r in results:
                    rows.append({**base, "metric": f"drift_score:{r.column}", "value": r.score})
                    rows.append({**base, "metric": f"drift_detected:{r.column}", "value": float(r.drifted)})
                reports.append({
                    "time": bucket, "window_end": bucket + timedelta(hours=1), "analyzer": self.name,
                    "kind": "drift_columns", **labels, "verdict": "drift" if drifted else "no_drift",
                    "computed_at": window.computed_at,
                    "body": {"drift_share": share, "dataset_drift": drifted, "columns": [r.as_dict() for r in results],
                             "reference": [ref_period[0].isoformat(), ref_period[1].isoformat()],
                             "reference_rows": ref.height, "current_rows": cur.height}})
        return Result(analytics.metrics_table(rows), analytics.reports_table(reports))
