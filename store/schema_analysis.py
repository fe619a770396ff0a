"""Migrations for the analyzers' output tables (versions 100-199), owned by analysis/.

`analysis_metrics` is the seam with alerts and the dashboard: one tall row per (bucket, grain,
metric, labels). A NULL label means "all" (the rollup over that dimension); a span that lacks a
label is counted under the literal '(none)'. Metric names and units: analysis/metrics_catalog.py.
`analysis_reports` holds richer JSON outputs (canary evidence, per-column drift, report paths).
"""
from __future__ import annotations

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (100, "analysis output tables", [
        """CREATE TABLE analysis_metrics (
             time TIMESTAMP,              -- bucket start (UTC); for burn rates the evaluated minute
             grain VARCHAR,               -- '1m' | '1h' | burn window ('5m','30m','1h','6h','1d','3d')
             metric VARCHAR,
             service_name VARCHAR,
             model VARCHAR,
             model_version VARCHAR,
             route VARCHAR,
             arm VARCHAR,
             value DOUBLE,
             computed_at TIMESTAMP)""",
        """CREATE TABLE analysis_reports (
             time TIMESTAMP,              -- window start (UTC)
             window_end TIMESTAMP,
             analyzer VARCHAR,            -- canary | drift | confidence | evidently | ...
             kind VARCHAR,                -- what body holds (canary_evidence, drift_columns, html_report, ...)
             service_name VARCHAR,
             model VARCHAR,
             model_version VARCHAR,
             route VARCHAR,
             arm VARCHAR,
             verdict VARCHAR,             -- pass | fail | inconclusive | drift | no_drift | NULL
             body VARCHAR,                -- JSON object
             computed_at TIMESTAMP)""",
    ]),
]
