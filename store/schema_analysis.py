"""Migrations for the analyzers' output tables (versions 100-199), owned by analysis/.

`analysis_metrics` is the seam with alerts and the dashboard: one tall row per (bucket, grain,
metric, labels). A NULL label means "all" (the rollup over that dimension); a span that lacks a
label is counted under the literal '(none)'. Metric names and units: analysis/metrics_catalog.py.
`analysis_reports` holds richer JSON outputs (canary evidence, per-column drift, report paths).

Since 101 `analysis_metrics` is a view. The traffic analyzer's 27 figures per bucket and label set
are stored wide, one row each, in `traffic_metrics` (27x fewer rows to write, delete and keep than
one row per figure: at 10M spans a week, 0.4M rows instead of 10.6M); every other analyzer's rows
live in `analysis_metric_rows`. The view unpivots the first and appends the second, so readers see
one tall table (NULL figures are left out, as before).
"""
from __future__ import annotations

LABELS = "service_name, model, model_version, route, arm"

# The traffic figures of migration 101, frozen: a later figure is a new migration that adds its
# column and recreates the view.
TRAFFIC_COLUMNS_101 = (
    "requests", "rps", "errors", "error_rate", "error_rate_4xx", "error_rate_5xx", "model_failure_rate",
    "timeouts", "content_filtered", "format_failures", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
    "latency_mean_ms", "retries", "breaker_opens", "fallback_rate", "fallback_secondary", "fallback_rule_based",
    "fallback_human", "input_tokens", "output_tokens", "cost_usd", "cost_per_request_usd", "format_ok_rate",
    "quality_mean", "confidence_mean",
)
TRAFFIC_COLUMNS = TRAFFIC_COLUMNS_101


def _metrics_view(traffic_columns: tuple[str, ...]) -> str:
    # one branch per figure, each with its name as a constant: a reader's `metric = ...` filter
    # leaves the other branches nothing to do, and time filters reach every scan
    figures = "".join(f"""
        UNION ALL SELECT time, grain, '{c}', {LABELS}, {c}, computed_at FROM traffic_metrics WHERE {c} IS NOT NULL"""
                      for c in traffic_columns)
    return f"""CREATE OR REPLACE VIEW analysis_metrics AS
        SELECT time, grain, metric, {LABELS}, value, computed_at FROM analysis_metric_rows{figures}"""


_TRAFFIC_IN = ", ".join(f"'{c}'" for c in TRAFFIC_COLUMNS_101)

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
    (101, "traffic figures stored wide; analysis_metrics becomes a view", [
        "ALTER TABLE analysis_metrics RENAME TO analysis_metric_rows",
        f"""CREATE TABLE traffic_metrics (
             time TIMESTAMP, grain VARCHAR, service_name VARCHAR, model VARCHAR, model_version VARCHAR,
             route VARCHAR, arm VARCHAR,
             {", ".join(f"{c} DOUBLE" for c in TRAFFIC_COLUMNS_101)},
             computed_at TIMESTAMP)""",
        f"""INSERT INTO traffic_metrics BY NAME
            PIVOT (SELECT * FROM analysis_metric_rows WHERE metric IN ({_TRAFFIC_IN}))
            ON metric IN ({_TRAFFIC_IN}) USING first(value)
            GROUP BY time, grain, {LABELS}, computed_at""",
        f"DELETE FROM analysis_metric_rows WHERE metric IN ({_TRAFFIC_IN})",
        _metrics_view(TRAFFIC_COLUMNS_101),
    ]),
]
