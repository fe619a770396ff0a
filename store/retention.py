"""Retention: delete rows older than the configured number of days, on the writer thread."""
from __future__ import annotations

from datetime import datetime, timedelta

import duckdb

# table -> its time column
RETAINED = {"spans": "start_time", "span_content": "start_time", "audit_events": "time",
            "feedback": "time", "logs": "time", "resource_metrics": "time"}


def delete_older_than(con: duckdb.DuckDBPyConnection, cutoff: datetime) -> dict[str, int]:
    """Runs inside the writer's transaction; returns rows deleted per table."""
    deleted = {}
    for table, column in RETAINED.items():
        row = con.execute(f"DELETE FROM {table} WHERE {column} < ?", [cutoff]).fetchone()
        deleted[table] = int(row[0]) if row else 0
    return deleted


def retention_cutoff(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)
