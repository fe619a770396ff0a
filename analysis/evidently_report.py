"""Evidently on demand: the full DataDriftPreset report (HTML, saved and linkable) for a route and
window, and Evidently's per-column verdicts (the oracle the fast path is tested against).

Evidently takes seconds to import and wants pandas, so it is imported here only, lazily.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.reference import reference_period
from analysis.settings import AnalysisSettings, DriftColumn
from core.clock import utcnow
from store import analytics
from store.base import Store


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


# Evidently embeds the report's data as `var name = {json};` lines inside an inline <script>.
_DATA_LINE = re.compile(r"^(\s*var [A-Za-z_$][A-Za-z0-9_$]* = )(\{.*\})(;?\s*)$")


def inert_script_data(html: str) -> tuple[str, int]:
    """Column names and category values (span attributes: hostile input) reach the report as JSON
    inside <script>; a value holding `</script><script>...` would end the block and run. JSON's
    escapes for < > & keep every string identical to the reader's JavaScript and inert to HTML.
    Returns the page and how many data lines were escaped."""
    out, escaped = [], 0
    for line in html.split("\n"):
        m = _DATA_LINE.match(line)
        if m:
            data = m.group(2).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            line = m.group(1) + data + m.group(3)
            escaped += 1
        out.append(line)
    return "\n".join(out), escaped


def save_inert_html(snapshot: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    snapshot.save_html(str(tmp))
    html, escaped = inert_script_data(tmp.read_text(encoding="utf-8"))
    tmp.unlink()
    if not escaped:   # fail closed: Evidently changed how it embeds data, so nothing was made inert
        raise RuntimeError("the Evidently report's data block was not found; report not saved")
    path.write_text(html, encoding="utf-8")


class EmptyWindow(ValueError):
    """The route has no calls in the window or in its reference period."""


@dataclass(frozen=True)
class SavedReport:
    id: str
    path: Path
    route: str
    start: datetime
    end: datetime
    reference: tuple[datetime, datetime]
    reference_rows: int
    current_rows: int
    columns: list[str]


def create_drift_report(store: Store, settings: AnalysisSettings, route: str, start: datetime, end: datetime,
                        data_dir: str | Path, service: str | None = None,
                        reference: tuple[datetime, datetime] | None = None,
                        columns: list[DriftColumn] | None = None) -> SavedReport:
    """Write Evidently's HTML drift report for `route` over [start, end) against `reference` (default:
    the analyzers' reference period for `start`) and record it in analysis_reports (analyzer
    'evidently', kind 'html_report', body: id, path, reference, rows, columns).

    Raises EmptyWindow when either side has no calls, ValueError for an unknown column.
    """
    columns = columns or settings.drift_column_specs
    names = [c.name for c in columns]
    ref_start, ref_end = reference or reference_period(settings, start)
    ref = analytics.drift_sample(store, ref_start, ref_end, names, settings.sample_cap, route=route,
                                 service=service).to_pandas()
    cur = analytics.drift_sample(store, start, end, names, settings.sample_cap, route=route,
                                 service=service).to_pandas()
    if cur.empty:
        raise EmptyWindow(f"route {route!r} has no model calls between {start.isoformat()} and {end.isoformat()}")
    if ref.empty:
        raise EmptyWindow(f"route {route!r} has no model calls in the reference period "
                          f"{ref_start.isoformat()} to {ref_end.isoformat()}")
    usable = [c for c in columns if ref[c.name].notna().any() and cur[c.name].notna().any()]
    if not usable:
        raise EmptyWindow(f"none of the columns {', '.join(names)} has values on both sides")
    snapshot = _report(_frame(ref, usable), _frame(cur, usable), usable, settings.drift_share)
    out_dir = Path(data_dir) / "reports"
    out_dir.mkdir(parents=True, exist_ok=True)
    report_id = uuid.uuid4().hex[:16]
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in route)[:60]
    path = (out_dir / f"drift-{safe}-{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}-{report_id}.html").resolve()
    save_inert_html(snapshot, path)
    row = analytics.reports_table([{
        "time": start, "window_end": end, "analyzer": "evidently", "kind": "html_report",
        "service_name": service, "model": None, "model_version": None, "route": route, "arm": None,
        "verdict": None, "computed_at": utcnow(),
        "body": {"id": report_id, "path": str(path), "url": f"/v1/reports/{report_id}",
                 "reference": [ref_start.isoformat(), ref_end.isoformat()],
                 "reference_rows": len(ref), "current_rows": len(cur), "columns": [c.name for c in usable]}}])
    store.writer.write(tables={"analysis_reports": row})
    return SavedReport(report_id, path, route, start, end, (ref_start, ref_end), len(ref), len(cur),
                       [c.name for c in usable])


def save_drift_report(store: Store, settings: AnalysisSettings, route: str, start: datetime, end: datetime,
                      data_dir: str | Path, service: str | None = None) -> Path:
    """`create_drift_report` for the CLI: the saved file's path."""
    return create_drift_report(store, settings, route, start, end, data_dir, service).path
