"""The ClickHouse backend's tables: the OpenTelemetry Collector's `otel_traces` / `otel_logs` as its
ClickHouse exporter creates them, and aiwatch's own tables beside them.

Every statement is idempotent (`IF NOT EXISTS`, `CREATE OR REPLACE VIEW`), so two instances starting
at once, or a rerun after a failure, are safe; with `clickhouse_cluster` set each runs `ON CLUSTER`
on replicated engines. Data is partitioned by day and expires by TTL (whole parts are dropped:
`ttl_only_drop_parts`). Analyzer outputs are ReplacingMergeTree keyed by bucket and labels, read
with FINAL: a rerun of a window replaces its rows instead of adding to them.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from store import clickhouse_alerts
from store.schema import TABLES
from store.schema_analysis import TRAFFIC_COLUMNS

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from store.clickhouse import ClickHouseConnection, ClickHouseStore

SCHEMA_VERSION = 3   # 3: audit_events likewise (audit_rows). 2: aiwatch's feedback rows in feedback_rows, `feedback` a view adding the Collector's
LABELS = ("service_name", "model", "model_version", "route", "arm")
COARSE_GRAINS = ("1h", "1d")   # analyzer rows kept for analysis_retention_days (store/retention.py)

# The Collector exporter's columns (exporter/clickhouseexporter, traces and logs table templates):
# Map attributes, Duration in ns, StatusCode 'Unset' | 'Ok' | 'Error', SpanKind 'Server' | ...,
# Events and Links nested. A table the Collector already created is left as it is.
OTEL_TRACES_COLUMNS = """
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(T64, ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (Timestamp DateTime64(9), Name LowCardinality(String),
                   Attributes Map(LowCardinality(String), String)) CODEC(ZSTD(1)),
    Links Nested (TraceId String, SpanId String, TraceState String,
                  Attributes Map(LowCardinality(String), String)) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1"""

OTEL_LOGS_COLUMNS = """
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TimestampTime DateTime DEFAULT toDateTime(Timestamp),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    TraceFlags UInt8,
    SeverityText LowCardinality(String) CODEC(ZSTD(1)),
    SeverityNumber UInt8,
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    Body String CODEC(ZSTD(1)),
    ResourceSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeSchemaUrl LowCardinality(String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion LowCardinality(String) CODEC(ZSTD(1)),
    ScopeAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    LogAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1"""

_CH_TYPES = {pa.string(): "String", pa.timestamp("us"): "DateTime64(6)", pa.float64(): "Float64",
             pa.int64(): "Int64", pa.int32(): "Int32", pa.bool_(): "Bool"}
# aiwatch's own telemetry tables (not the Collector's): the same columns as the DuckDB store's
RAW_TABLES = {"span_content": "start_time", "audit_events": "time", "feedback": "time", "resource_metrics": "time"}
# aiwatch tables whose rows sit in a table of another name, read through a view of the aiwatch
# name that adds what the Collector stored: review verdicts sent to the Collector as log events
# and audit records sent as log events
OWN_ROWS = {"feedback": "feedback_rows", "audit_events": "audit_rows"}


def _columns(table: str, time_column: str) -> str:
    return ",\n    ".join(f"{name} {_CH_TYPES[typ] if name == time_column else f'Nullable({_CH_TYPES[typ]})'}"
                          for name, typ in TABLES[table])


def _engine(store: ClickHouseStore, engine: str, args: str = "") -> str:
    if store.cluster:
        # the replica path from the server's default_replica_path / default_replica_name settings
        return f"Replicated{engine}({args})" if args else f"Replicated{engine}"
    return f"{engine}({args})" if args else engine


def _ttl(column: str, days: int, where: str = "") -> str:
    return f"toDateTime({column}) + toIntervalDay({int(days)}){' DELETE WHERE ' + where if where else ''}" if days else ""


def statements(store: ClickHouseStore) -> list[str]:
    """The DDL, in order, for this store's database, tables, cluster and retention."""
    on = f" ON CLUSTER {store.cluster}" if store.cluster else ""
    raw_days, analysis_days = store.retention_days, store.analysis_retention_days
    coarse = ", ".join(f"'{g}'" for g in COARSE_GRAINS)

    def ttl(*parts: str) -> str:
        kept = [p for p in parts if p]
        return f"TTL {', '.join(kept)}" if kept else ""

    def db(name: str) -> str:
        return store.table(name)

    out = [f"CREATE DATABASE IF NOT EXISTS {store.database}{on}",
           f"""CREATE TABLE IF NOT EXISTS {store.traces_table}{on} ({OTEL_TRACES_COLUMNS}
           ) ENGINE = {_engine(store, "MergeTree")} PARTITION BY toDate(Timestamp)
           ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp) {ttl(_ttl("Timestamp", raw_days))}
           SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1""",
           f"""CREATE TABLE IF NOT EXISTS {store.logs_table}{on} ({OTEL_LOGS_COLUMNS}
           ) ENGINE = {_engine(store, "MergeTree")} PARTITION BY toDate(TimestampTime)
           ORDER BY (ServiceName, TimestampTime, Timestamp) {ttl(_ttl("TimestampTime", raw_days))}
           SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"""]
    for table, time_column in RAW_TABLES.items():
        out.append(f"""CREATE TABLE IF NOT EXISTS {db(OWN_ROWS.get(table, table))}{on} ({_columns(table, time_column)}
           ) ENGINE = {_engine(store, "MergeTree")} PARTITION BY toDate({time_column}) ORDER BY {time_column}
           {ttl(_ttl(time_column, raw_days))} SETTINGS ttl_only_drop_parts = 1""")
    labels = ", ".join(f"{label} Nullable(String)" for label in LABELS)
    out += [
        f"""CREATE TABLE IF NOT EXISTS {db("job_state")}{on} (job String, state Nullable(String),
           updated_at DateTime64(6)) ENGINE = {_engine(store, "ReplacingMergeTree", "updated_at")} ORDER BY job""",
        f"""CREATE TABLE IF NOT EXISTS {db("traffic_metrics")}{on} (time DateTime64(6), grain String, {labels},
           {", ".join(f"{c} Nullable(Float64)" for c in TRAFFIC_COLUMNS)}, computed_at DateTime64(6)
           ) ENGINE = {_engine(store, "ReplacingMergeTree", "computed_at")} PARTITION BY toDate(time)
           ORDER BY (grain, time, {", ".join(LABELS)})
           {ttl(_ttl("time", raw_days, f"grain NOT IN ({coarse})"), _ttl("time", analysis_days))}
           SETTINGS allow_nullable_key = 1""",
        f"""CREATE TABLE IF NOT EXISTS {db("analysis_metric_rows")}{on} (time DateTime64(6), grain String,
           metric String, {labels}, value Nullable(Float64), computed_at DateTime64(6)
           ) ENGINE = {_engine(store, "ReplacingMergeTree", "computed_at")} PARTITION BY toDate(time)
           ORDER BY (metric, grain, time, {", ".join(LABELS)})
           {ttl(_ttl("time", raw_days, f"grain NOT IN ({coarse})"), _ttl("time", analysis_days))}
           SETTINGS allow_nullable_key = 1""",
        f"""CREATE TABLE IF NOT EXISTS {db("analysis_reports")}{on} (time DateTime64(6),
           window_end Nullable(DateTime64(6)), analyzer String, kind Nullable(String), {labels},
           verdict Nullable(String), body Nullable(String), computed_at DateTime64(6)
           ) ENGINE = {_engine(store, "ReplacingMergeTree", "computed_at")} PARTITION BY toDate(time)
           ORDER BY (analyzer, time, kind, {", ".join(LABELS)}) {ttl(_ttl("time", analysis_days))}
           SETTINGS allow_nullable_key = 1""",
        f"""CREATE TABLE IF NOT EXISTS {db("aiwatch_schema")}{on} (version UInt32, description String,
           applied_at DateTime64(6)) ENGINE = {_engine(store, "ReplacingMergeTree", "applied_at")} ORDER BY version""",
        # aiwatch's readers see the Collector's rows through views with the DuckDB store's columns
        *(store.mapping.materialize_statements(store.traces_table, on) if store.materialize else []),
        f"CREATE OR REPLACE VIEW {db('spans')}{on} AS {store.mapping.spans_view(store.traces_table, store.materialize)}",
        # resource attributes stay in the Collector's ResourceAttributes column: no separate rows
        f"""CREATE OR REPLACE VIEW {db('resources')}{on} AS SELECT CAST(NULL AS Nullable(String)) AS resource_id,
           CAST(NULL AS Nullable(String)) AS attributes, now64(6) AS first_seen WHERE 0""",
        *(f"""CREATE OR REPLACE VIEW {db(table)}{on} AS SELECT {", ".join(c for c, _ in TABLES[table])}
           FROM {db(rows)} UNION ALL {event_view(store.logs_table)}"""
          for (table, rows), event_view in zip(OWN_ROWS.items(), (store.mapping.feedback_view,
                                                                  store.mapping.audit_view), strict=True)),
        f"""CREATE OR REPLACE VIEW {db('logs')}{on} AS SELECT toDateTime64(Timestamp, 6) AS time,
           nullIf(ServiceName, '') AS service_name, nullIf(SeverityText, '') AS severity, nullIf(Body, '') AS body,
           nullIf(TraceId, '') AS trace_id, nullIf(SpanId, '') AS span_id,
           nullIf(LogAttributes['event.name'], '') AS event_name,
           if(empty(LogAttributes), NULL, toJSONString(LogAttributes)) AS attributes FROM {store.logs_table}""",
        f"""CREATE OR REPLACE VIEW {db('analysis_metrics')}{on} AS
           SELECT time, grain, metric, {", ".join(LABELS)}, value, computed_at FROM {db("analysis_metric_rows")} FINAL
           """ + "".join(f"""
           UNION ALL SELECT time, grain, '{c}' AS metric, {", ".join(LABELS)}, {c} AS value, computed_at
           FROM {db("traffic_metrics")} FINAL WHERE {c} IS NOT NULL""" for c in TRAFFIC_COLUMNS),
    ]
    # the alerts stage's state, outbox, notification log and silences (store/clickhouse_alerts.py)
    return out + clickhouse_alerts.statements(store, on, lambda engine, args="": _engine(store, engine, args))


def migrate(store: ClickHouseStore) -> int:
    """Create what is missing; refuse a database a newer aiwatch has migrated."""
    version_table = store.table("aiwatch_schema")
    exists = store.scalar("SELECT count() FROM system.tables WHERE database = {db:String} AND name = 'aiwatch_schema'",
                          {"db": store.target.database})
    if exists:
        newest = store.scalar(f"SELECT max(version) FROM {version_table}")
        if newest is not None and newest > SCHEMA_VERSION:
            raise RuntimeError(f"database schema {newest} is newer than this aiwatch ({SCHEMA_VERSION})")
    on = f" ON CLUSTER {store.cluster}" if store.cluster else ""
    for table, rows in OWN_ROWS.items():   # schema 1 kept these rows in a table of the aiwatch name
        engine = store.scalar("SELECT engine FROM system.tables WHERE database = {db:String} AND name = {t:String}",
                              {"db": store.target.database, "t": table})
        if engine is not None and engine != "View" and not store.scalar(
                "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
                {"db": store.target.database, "t": rows}):
            store.transport.command(f"RENAME TABLE {store.table(table)} TO {store.table(rows)}{on}")
    for stmt in statements(store):
        store.transport.command(stmt)
    if store.keeper_map:
        try:
            store.ensure_keeper(store.transport)
        except Exception as exc:  # noqa: BLE001 - Keeper away: ingest and reads go on; the lease retries it
            log.warning("Keeper is not reachable (%s): this instance ingests and serves reads, and joins the lease "
                        "once Keeper answers", str(exc).splitlines()[0][:300])
    clickhouse_alerts.upgrade_ttl(store, on)
    if not store.scalar(f"SELECT count() FROM {version_table} WHERE version = {{v:UInt32}}", {"v": SCHEMA_VERSION}):
        store.transport.command(f"INSERT INTO {version_table} (version, description, applied_at) "
                                "VALUES ({v:UInt32}, {d:String}, now64(6))",
                                {"v": SCHEMA_VERSION, "d": "feedback, audit_events: aiwatch's rows and the Collector's events"})
    return SCHEMA_VERSION


def delete_older_than(con: ClickHouseConnection, cutoff: datetime | None,
                      analysis_cutoff: datetime | None = None) -> dict[str, int]:
    """What a TTL has not dropped yet (a retention shortened since the tables were made), from
    aiwatch's tables; the Collector's tables keep the TTL they were created with."""
    store = con.store
    deleted: dict[str, int] = {}
    coarse = ", ".join(f"'{g}'" for g in COARSE_GRAINS)

    def delete(table: str, where: str, params: dict[str, Any]) -> None:
        name = store.table(OWN_ROWS.get(table, table))
        n = int(store.scalar(f"SELECT count() FROM {name} WHERE {where}", params) or 0)
        if n:
            con.execute(f"DELETE FROM {name} WHERE {where}", params)
        deleted[table] = deleted.get(table, 0) + n

    at = "{cutoff:DateTime64(6)}"
    if cutoff is not None:
        for table, column in RAW_TABLES.items():
            delete(table, f"{column} < {at}", {"cutoff": cutoff})
        for table in ("traffic_metrics", "analysis_metric_rows"):
            delete(table, f"time < {at} AND grain NOT IN ({coarse})", {"cutoff": cutoff})
    if analysis_cutoff is not None:
        for table in ("traffic_metrics", "analysis_metric_rows", "analysis_reports",
                      *clickhouse_alerts.APPENDED):   # what fired and what was sent: as long as the reports
            delete(table, f"time < {at}", {"cutoff": analysis_cutoff})
    return deleted
