"""The analysis stage: scheduled analyzers turn spans, feedback and resource metrics into the tall
`analysis_metrics` table (and JSON `analysis_reports`) that alerts and the dashboard read.

base.py (Window, Result, Analyzer) -> registry.py (every analyzer, one place) -> runner.py
(watermarks, late data, idempotent replace) -> register.py (jobs, read queries, `aiwatch analyze`).
All SQL lives in store/analytics.py; metric names and units in metrics_catalog.py.
"""
