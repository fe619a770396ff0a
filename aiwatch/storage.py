"""Opens the backend the `store` setting names. The one place that knows both backends exist:
everything else holds a `store.base.Store`."""
from __future__ import annotations

from typing import Any

from aiwatch.config import Settings
from store.base import Store


def open_store(settings: Settings) -> Store:
    """The DuckDB file in data_dir (`store = "duckdb"`), or ClickHouse (server or chdb) reading the
    Collector's tables through the collectors' attribute map; either writer takes its queue cap and
    batch size from the settings."""
    from store.clickhouse import parse_store

    target = parse_store(settings.store)
    if target.kind == "duckdb":
        from store.db import Store as DuckDBStore

        return DuckDBStore(settings.db_path, writer_max_rows=settings.writer_max_rows,
                           writer_max_delay_ms=settings.writer_max_delay_ms, queue_max_rows=settings.queue_max_rows)
    from collectors.otel_clickhouse import OtelMapping
    from store.clickhouse import ClickHouseStore

    return ClickHouseStore(target, OtelMapping(), traces_table=settings.traces_table, logs_table=settings.logs_table,
                           cluster=settings.clickhouse_cluster, retention_days=settings.retention_days,
                           analysis_retention_days=settings.analysis_retention_days,
                           queue_max_rows=settings.queue_max_rows, writer_max_rows=settings.writer_max_rows,
                           keeper_map=settings.lease, keeper=settings.keeper,
                           materialize=settings.clickhouse_materialize)


def open_lease(settings: Settings, store: Store, instance_id: str) -> Any:
    """The scheduler lease (`lease = true`): a KeeperMap row in Keeper, on the ClickHouse store."""
    from store.clickhouse import ClickHouseStore
    from store.clickhouse_lease import KeeperLease

    if not isinstance(store, ClickHouseStore):
        raise ValueError("lease: needs the ClickHouse backend")
    lease = KeeperLease(store, instance_id, settings.lease_ttl_s)
    store.fence = lease.held    # notification-log writes stop when this instance's time is up
    return lease
