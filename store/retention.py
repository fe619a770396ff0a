"""Retention: delete rows older than the configured number of days, on the writer thread.

Raw data and the analyzers' minute-resolution rows (1m buckets, burn rates evaluated per minute)
go after `retention_days`; hourly and daily rows and the analyzers' reports, which the weekly
review and long trends read and which are 60x fewer, are kept for `analysis_retention_days`.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import duckdb

# table -> its time column
RETAINED = {"spans": "start_time", "span_content": "start_time", "audit_events": "time",
            "feedback": "time", "logs": "time", "resource_metrics": "time"}


ANALYSIS_TABLES = ("traffic_metrics", "analysis_metric_rows")
COARSE_GRAINS = ("1h", "1d")


def delete_older_than(con: duckdb.DuckDBPyConnection, cutoff: datetime | None,
                      analysis_cutoff: datetime | None = None) -> dict[str, int]:
    """Runs inside the writer's transaction; returns rows deleted per table. A None cutoff keeps
    what it governs."""
    deleted: dict[str, int] = {}

    def delete(table: str, where: str, params: list) -> None:
        row = con.execute(f"DELETE FROM {table} WHERE {where}", params).fetchone()
        deleted[table] = deleted.get(table, 0) + (int(row[0]) if row else 0)

    coarse = ", ".join(f"'{g}'" for g in COARSE_GRAINS)
    if cutoff is not None:
        for table, column in RETAINED.items():
            delete(table, f"{column} < ?", [cutoff])
        # A resource goes with the last span that points to it.
        delete("resources", "NOT EXISTS (SELECT 1 FROM spans s WHERE s.resource_id = resources.resource_id)", [])
        for table in ANALYSIS_TABLES:
            delete(table, f"time < ? AND grain NOT IN ({coarse})", [cutoff])
    if analysis_cutoff is not None:
        for table in ANALYSIS_TABLES:
            delete(table, "time < ?", [analysis_cutoff])
        delete("analysis_reports", "time < ?", [analysis_cutoff])
    return deleted


def retention_cutoff(now: datetime, days: int) -> datetime | None:
    """The cutoff for a retention of `days` (0: keep everything, None)."""
    return now - timedelta(days=days) if days else None
