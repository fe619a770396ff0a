"""The analysis stage: scheduled analyzers turn spans, feedback and resource metrics into the tall
`analysis_metrics` table (and JSON `analysis_reports`) that alerts and the dashboard read.

base.py (Window, Result, Analyzer) -> registry.py (every analyzer, one place) -> runner.py
(watermarks, late data, idempotent replace) -> register.py (jobs, read queries, `aiwatch analyze`).
Hourly statistics run vectorised over grouped samples (samples.py, stats.py `*_many`); api.py serves
Evidently reports on demand. All SQL lives in store/analytics.py; metric names in metrics_catalog.py.
"""
