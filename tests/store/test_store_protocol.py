"""The DuckDB store satisfies the typed `Store` seam: what analyzers, alerts and the read API are
annotated with. A backend that drifts from the Protocol fails here, not at the first call."""
from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa

from store.alerting import MemoryDB
from store.base import Reader
from store.base import Store as StoreProtocol
from store.db import Store
from store.schema import arrow_schema
from store.sql import connect


def test_duckdb_store_is_a_store(tmp_path):
    store = Store(tmp_path / "a.duckdb")
    try:
        assert isinstance(store, StoreProtocol) and store.dialect == "duckdb"
        assert store.migrate() == store.scalar("SELECT max(version) FROM schema_version")
        now = datetime(2026, 1, 10)
        rows = pa.Table.from_pylist([{"time": now - timedelta(days=d), "service_name": "s", "name": "m", "kind": "gauge",
                                      "value": float(d)} for d in (1, 5)], schema=arrow_schema("resource_metrics"))
        store.append({"resource_metrics": rows})
        assert store.scalar("SELECT count(*) FROM resource_metrics") == 2
        deleted = store.delete_older_than(now - timedelta(days=3))
        assert deleted["resource_metrics"] == 1
        assert store.query("SELECT value FROM resource_metrics").column(0).to_pylist() == [1.0]
    finally:
        store.close()


def test_the_alert_backtests_memory_copy_is_a_reader():
    db = MemoryDB(connect(":memory:"))
    assert isinstance(db, Reader)
    assert db.scalar("SELECT 41 + 1") == 42 and db.scalar("SELECT 1 WHERE false") is None
