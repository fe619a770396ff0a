"""Evidently on demand: the full DataDriftPreset report (HTML, saved and linkable) for a route and
window, and Evidently's per-column verdicts (the oracle the fast path is tested against).

Evidently takes seconds to import and wants pandas, so it is imported here only, lazily.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.base import utcnow
from analysis.reference import reference_period
from analysis.settings import AnalysisSettings, DriftColumn
from store import analytics


@dataclass(frozen=True)
class EvidentlyColumn:
    column: str
    method: str
    score: float
    threshold: float
    drifted: bool


def _report(reference: pd.DataFrame, current: pd.DataFrame, columns: list[DriftColumn], drift_share: float):
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=[c.name for c in columns if c.kind == "num"],
                                categorical_columns=[c.name for c in columns if c.kind == "cat"])
    report = Report([DataDriftPreset(columns=[c.name for c in columns], drift_share=drift_share)])
    return report.run(Dataset.from_pandas(current, data_definition=definition),
                      Dataset.from_pandas(reference, data_definition=definition))


def evidently_drift(reference: pd.DataFrame, current: pd.DataFrame, columns: list[DriftColumn],
                    drift_share: float = 0.5) -> tuple[dict[str, EvidentlyColumn], float]:
    """Evidently's per-column method, score and verdict, and its drifted share."""
    snapshot = _report(reference, current, columns, drift_share)
    out, share = {}, 0.0
    for m in snapshot.dict()["metrics"]:
        cfg = m["config"]
        if cfg["type"].endswith("ValueDrift"):
            method, threshold, value = cfg["method"], float(cfg["threshold"]), float(m["value"])
            if "K-S" in method:
                drifted = value <= threshold
            elif "p_value" in method:
                drifted = value < threshold
            else:
                drifted = value >= threshold
            out[cfg["column"]] = EvidentlyColumn(cfg["column"], method, value, threshold, drifted)
        elif cfg["type"].endswith("DriftedColumnsCount"):
            share = float(m["value"]["share"])
    return out, share


def _frame(df: pd.DataFrame, columns: list[DriftColumn]) -> pd.DataFrame:
    df = df[[c.name for c in columns]].reset_index(drop=True)
    for c in columns:
        df[c.name] = pd.to_numeric(df[c.name], errors="coerce") if c.kind == "num" else df[c.name].astype("object")
    return df


def save_drift_report(store: Any, settings: AnalysisSettings, route: str, start: datetime, end: datetime,
                      data_dir: str | Path, service: str | None = None) -> Path:
    """Write Evidently's HTML drift report for `route` over [start, end) against its reference and
    record the path in analysis_reports (analyzer 'evidently', kind 'html_report')."""
    columns = settings.drift_column_specs
    names = [c.name for c in columns]
    ref_start, ref_end = reference_period(settings, start)
    ref = analytics.drift_sample(store, ref_start, ref_end, names, settings.sample_cap).to_pandas()
    cur = analytics.drift_sample(store, start, end, names, settings.sample_cap).to_pandas()
    pick = lambda df: df[(df.route == route) & ((df.service_name == service) if service else True)]  # noqa: E731
    ref, cur = pick(ref), pick(cur)
    if ref.empty or cur.empty:
        raise ValueError(f"route {route!r} has no spans in the window or in its reference period")
    usable = [c for c in columns if ref[c.name].notna().any() and cur[c.name].notna().any()]
    snapshot = _report(_frame(ref, usable), _frame(cur, usable), usable, settings.drift_share)
    out_dir = Path(data_dir) / "reports"
    out_dir.mkdir(parents=True, exist_ok=True)
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in route)
    path = (out_dir / f"drift-{safe}-{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}.html").resolve()
    snapshot.save_html(str(path))
    now = utcnow()
    row = analytics.reports_table([{
        "time": start, "window_end": end, "analyzer": "evidently", "kind": "html_report",
        "service_name": service, "model": None, "model_version": None, "route": route, "arm": None,
        "verdict": None, "computed_at": now,
        "body": {"path": str(path), "reference": [ref_start.isoformat(), ref_end.isoformat()],
                 "reference_rows": len(ref), "current_rows": len(cur), "columns": [c.name for c in usable]}}])
    store.writer.write(tables={"analysis_reports": row})
    return path
