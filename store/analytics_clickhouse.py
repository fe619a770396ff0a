"""The analyzers' SQL in ClickHouse's dialect: what store/analytics.py runs on DuckDB, run where the
data is. Same inputs, same Arrow outputs (TRAFFIC_SCHEMA, METRICS_SCHEMA), same arithmetic:
exact percentiles (quantilesExactInclusive is numpy's and DuckDB's linear interpolation), sums of
doubles as sums of scaled integers (order-free, so reruns are bit-identical), rates as sums over
sums, NULL for a label a rollup leaves out.

store/analytics.py dispatches here by the store's (or write connection's) `dialect`; a function
without a ClickHouse version fails loudly there rather than running DuckDB SQL on ClickHouse.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from store.base import Store
from store.clickhouse import ClickHouseConnection
from store.queries import FORMAT_CHECKED_SQL, FORMAT_FAILED_SQL, model_sql
from store.schema import SPAN_RANGES

# store/analytics.py functions whose DuckDB statement runs on ClickHouse as it is (its `$name`
# parameters bound as typed `{name:Type}` by the store); tests/analysis/test_backends.py runs each.
PORTABLE = frozenset({"slo_minute_counts", "stored_metric", "has_shadow_calls",
                      "hourly_confidence_means", "route_exists", "saved_report", "feedback_by_version"})

NONE = "(none)"
LABELS = ("service_name", "model", "model_version", "route", "arm")
_TRUNC_FN = {"1m": "toStartOfMinute", "1h": "toStartOfHour", "1d": "toStartOfDay"}


def _trunc(grain: str, column: str) -> str:
    """The bucket start, kept a DateTime64(6) (toStartOf* answers a second-resolution DateTime)."""
    return f"toDateTime64({_TRUNC_FN[grain]}({column}), 6)"

_SECONDS = {"1m": 60.0, "1h": 3600.0, "1d": 86400.0}
TS = "DateTime64(6)"


def _t(store: Any, name: str) -> str:
    return store.table(name)


# --- writes (inside the ClickHouse writer) ------------------------------------------------------


def replace_outputs(con: ClickHouseConnection, analyzer: str, owns: Sequence[str],
                    ranges: Sequence[tuple[str, datetime, datetime]], metrics: pa.Table | None,
                    reports: pa.Table | None, job: str | None = None, state: str | None = None,
                    traffic: pa.Table | None = None) -> int:
    """Delete the analyzer's rows for the ranges, insert the new ones, save state. The tables are
    ReplacingMergeTree on bucket and labels, so even a second instance's concurrent rerun of the
    same window leaves one row per key, and FINAL reads see it."""
    inserted = 0
    if ranges:
        params: dict[str, Any] = {}
        spans = []
        for i, (grain, lo, hi) in enumerate(ranges):
            spans.append(f"(grain = {{g{i}:String}} AND time >= {{s{i}:{TS}}} AND time < {{e{i}:{TS}}})")
            params |= {f"g{i}": grain, f"s{i}": lo, f"e{i}": hi}
        where = " OR ".join(spans)
        if metrics is not None:
            names = [o for o in owns if not o.endswith(":")]
            prefixes = [o for o in owns if o.endswith(":")]
            owned = [f"startsWith(metric, {{p{i}:String}})" for i in range(len(prefixes))]
            if names:
                owned.append("metric IN {names:Array(String)}")
            params |= {f"p{i}": p for i, p in enumerate(prefixes)} | {"names": names}
            _delete(con, "analysis_metric_rows", f"({where}) AND ({' OR '.join(owned) or 'false'})", params)
        if traffic is not None:
            _delete(con, "traffic_metrics", where, params)
        _delete(con, "analysis_reports", f"analyzer = {{a:String}} AND time >= {{lo:{TS}}} AND time < {{hi:{TS}}} "
                "AND (kind IS NULL OR kind != 'quarantine')",
                {"a": analyzer, "lo": min(r[1] for r in ranges), "hi": max(r[2] for r in ranges)})
    for name, table in (("analysis_metric_rows", metrics), ("traffic_metrics", traffic), ("analysis_reports", reports)):
        if table is not None and table.num_rows:
            con.insert(name, table)
            inserted += table.num_rows
    if job is not None:
        save_job_state(con, job, state)
    return inserted


def _delete(con: ClickHouseConnection, table: str, where: str, params: dict[str, Any]) -> None:
    name = con.store.table(table)
    if con.store.scalar(f"SELECT count() FROM {name} WHERE {where}", params):
        con.execute(f"DELETE FROM {name} WHERE {where}", params)


def save_job_state(con: ClickHouseConnection, job: str, state: str | None) -> None:
    con.execute(f"INSERT INTO {con.store.table('job_state')} (job, state, updated_at) "
                "VALUES ({job:String}, {state:Nullable(String)}, now64(6))", {"job": job, "state": state})


def quarantine_window(con: ClickHouseConnection, analyzer: str, start: datetime, end: datetime, error: str,
                      computed_at: datetime, job: str | None = None, state: str | None = None) -> None:
    con.execute(f"""INSERT INTO {con.store.table('analysis_reports')} (time, window_end, analyzer, kind, verdict, body,
                    computed_at) VALUES ({{start:{TS}}}, {{end:{TS}}}, {{analyzer:String}}, 'quarantine', 'quarantined',
                    {{body:String}}, {{computed_at:{TS}}})""",
                {"start": start, "end": end, "analyzer": analyzer, "body": json.dumps({"error": error}),
                 "computed_at": computed_at})
    if job is not None:
        save_job_state(con, job, state)


def record_analyzer_failures(con: ClickHouseConnection, minute: datetime, failures: dict[str, int],
                             computed_at: datetime) -> None:
    from store.analytics import SELF_SERVICE, metrics_table

    con.insert("analysis_metric_rows", metrics_table(
        {"time": minute, "grain": "1m", "metric": "analyzer_failures", "service_name": SELF_SERVICE, "route": name,
         "value": float(n), "computed_at": computed_at} for name, n in sorted(failures.items())))


# --- reads --------------------------------------------------------------------------------------


def job_state(store: Store, job: str) -> str | None:
    return store.scalar(f"SELECT argMax(state, updated_at) FROM {_t(store, 'job_state')} WHERE job = {{job:String}}",
                        {"job": job})


def max_received_at(store: Store) -> datetime | None:
    return store.scalar(f"SELECT max(received_at) FROM {_t(store, 'spans')}")


def late_span_start(store: Store, received_after: datetime, lo: datetime, hi: datetime) -> datetime | None:
    return store.scalar(f"SELECT min(start_time) FROM {_t(store, 'spans')} WHERE received_at > {{after:{TS}}} "
                        f"AND start_time >= {{lo:{TS}}} AND start_time < {{hi:{TS}}}",
                        {"after": received_after, "lo": lo, "hi": hi})


_SOURCE_TIME = {"spans": "start_time", "feedback": "time", "resource_metrics": "time"}


def first_time(store: Store, source: str, lo: datetime, hi: datetime) -> datetime | None:
    col = _SOURCE_TIME[source]
    return store.scalar(f"SELECT min({col}) FROM {_t(store, source)} WHERE {col} >= {{lo:{TS}}} AND {col} < {{hi:{TS}}}",
                        {"lo": lo, "hi": hi})


_PRICED_MODEL = "coalesce(response_model, request_model)"


def distinct_models(store: Store, start: datetime, end: datetime) -> list[str]:
    t = store.query(f"SELECT DISTINCT {_PRICED_MODEL} AS m FROM {_t(store, 'spans')} WHERE start_time >= {{lo:{TS}}} "
                    f"AND start_time < {{hi:{TS}}} AND is_llm AND cost_usd IS NULL AND {_PRICED_MODEL} IS NOT NULL",
                    {"lo": start, "hi": end})
    return [m for m in t.column("m").to_pylist() if m]


def _prices(prices: Sequence[tuple[str, float, float, float, float]]) -> tuple[str, dict[str, Any]]:
    """The price table as arrays bound as parameters (no model name is spelled in SQL)."""
    cols = ("pm", "p_in", "p_cached", "p_out", "p_reason")
    params = {c: [p[i] if i == 0 else float(p[i]) for p in prices] for i, c in enumerate(cols)}
    sql = ("prices AS (SELECT pm, p_in, p_cached, p_out, p_reason FROM (SELECT arrayJoin(arrayZip("
           "{pm:Array(String)}, {p_in:Array(Float64)}, {p_cached:Array(Float64)}, {p_out:Array(Float64)}, "
           "{p_reason:Array(Float64)})) AS t, t.1 AS pm, t.2 AS p_in, t.3 AS p_cached, t.4 AS p_out, t.5 AS p_reason))")
    return sql, params


def _in_range(expr: str, column: str) -> str:
    low, high = SPAN_RANGES[column]
    return f"if(({expr}) BETWEEN {low!r} AND {high!r}, {expr}, NULL)"


# The span's own cost, else tokens x price (cached and reasoning tokens at their own rates).
_COST = """coalesce(s.cost_usd, (
    (coalesce(s.input_tokens, 0) - least(coalesce(s.cache_read_tokens, 0), coalesce(s.input_tokens, 0))) * p.p_in
  + least(coalesce(s.cache_read_tokens, 0), coalesce(s.input_tokens, 0)) * p.p_cached
  + (coalesce(s.output_tokens, 0) - least(coalesce(s.reasoning_tokens, 0), coalesce(s.output_tokens, 0))) * p.p_out
  + least(coalesce(s.reasoning_tokens, 0), coalesce(s.output_tokens, 0)) * p.p_reason) / 1e6)"""


def _scaled(expr: str, scale: str) -> str:
    """A double as a scaled integer (rounded), so its sum does not depend on summation order.
    Int128, as DuckDB's HUGEINT sums: 10k scores at 1e15 units already pass Int64's range."""
    return f"toInt128(round(({expr}) * {scale}))"


def _ratio(num: str, den: str, scale: str = "") -> str:
    return f"toFloat64(toFloat64({num}){scale} / nullIf({den}, 0))"


def _rollup_labels(sets: Sequence[Sequence[str]]) -> str:
    kept = {label for labels in sets for label in labels}
    return ", ".join(label if label in kept else f"CAST(NULL AS Nullable(String)) AS {label}" for label in LABELS)


def traffic_metrics(store: Store, minutes: tuple[datetime, datetime], hours: tuple[datetime, datetime] | None,
                    prices: Sequence[tuple[str, float, float, float, float]], computed_at: datetime) -> pa.Table:
    """store.analytics.traffic_metrics on ClickHouse: one GROUPING SETS pass over the model calls
    for both grains (the minute sets keyed by the minute, the hour sets by the hour), every figure
    and all three exact percentiles at once. One scan, because reading the spans view (the
    Collector's attribute maps) is most of the cost."""
    from store.analytics import SPAN_ROLLUPS, TRAFFIC_SCHEMA

    cte, params = _prices(prices)
    spans = _t(store, "spans")
    model = f"coalesce({model_sql('s')}, '{NONE}')"
    lo, hi = hours or minutes   # `hours` contains `minutes`
    sets = [("tm", *labels) for labels in SPAN_ROLLUPS["1m"]]
    if hours:
        sets += [("th", *labels) for labels in SPAN_ROLLUPS["1h"]]
    grouping = ", ".join("(" + ", ".join(s) + ")" for s in sets)
    # a minute bucket only inside `minutes`: rows outside it make NULL-keyed minute groups, dropped
    if hours:   # a set without `th` is a minute set (th is NULL there); rows outside `minutes`: no tm
        hour, grain, time, seconds = (_trunc("1h", "s.start_time"), "if(th IS NULL, '1m', '1h')", "coalesce(tm, th)",
                                      f"if(th IS NULL, {_SECONDS['1m']}, {_SECONDS['1h']})")
        keep = "tm IS NOT NULL OR th IS NOT NULL"
    else:
        hour, grain, time, seconds, keep = "NULL", "'1m'", "tm", str(_SECONDS["1m"]), "tm IS NOT NULL"
    sql = f"""
        WITH {cte},
        s AS (
          SELECT if(s.start_time >= {{m_lo:{TS}}} AND s.start_time < {{m_hi:{TS}}}, {_trunc("1m", "s.start_time")},
                    NULL) AS tm, {hour} AS th,
            coalesce(s.service_name, '{NONE}') AS service_name,
            {model} AS model, coalesce(s.model_version, '{NONE}') AS model_version,
            coalesce(s.route, '{NONE}') AS route, coalesce(s.arm, '{NONE}') AS arm,
            {_in_range("s.duration_ms", "duration_ms")} AS duration_ms, s.status_code = 'error' AS is_err,
            s.http_status AS http_status,
            s.error_type IS NOT NULL AND (lower(s.error_type) LIKE '%timeout%' OR lower(s.error_type) LIKE '%timed%out%')
              OR s.http_status IN (408, 504) AS is_timeout,
            lower(coalesce(s.error_type, '')) LIKE '%content%filter%'
              OR coalesce(s.finish_reasons, '') LIKE '%content_filter%' AS is_filtered,
            s.format_ok AS format_ok, {_in_range("s.retry_count", "retry_count")} AS retry_count,
            s.breaker_state AS breaker_state, s.fallback_level AS fallback_level,
            {_in_range("s.input_tokens", "input_tokens")} AS input_tokens,
            {_in_range("s.output_tokens", "output_tokens")} AS output_tokens,
            {_in_range("s.quality_score", "quality_score")} AS quality_score,
            {_in_range("s.confidence", "confidence")} AS confidence,
            {_in_range(_COST, "cost_usd")} AS cost
          FROM {spans} s LEFT JOIN prices p ON p.pm = coalesce(s.response_model, s.request_model)
          WHERE s.start_time >= {{lo:{TS}}} AND s.start_time < {{hi:{TS}}} AND s.is_llm
            AND (s.arm IS NULL OR s.arm != 'shadow')
        )
        SELECT {grain} AS grain, {time} AS time, {_rollup_labels([s[1:] for s in sets])},
          toFloat64(count()) AS requests, count() / {seconds} AS rps,
          toFloat64(countIf(is_err)) AS errors, {_ratio("countIf(is_err)", "count(is_err)")} AS error_rate,
          {_ratio("countIf(coalesce(http_status, 0) BETWEEN 400 AND 499)", "count()")} AS error_rate_4xx,
          {_ratio("countIf(coalesce(http_status, 0) >= 500)", "count()")} AS error_rate_5xx,
          {_ratio(f"sum(toInt64(is_timeout OR is_filtered OR {FORMAT_FAILED_SQL}))",
                  f"count(is_timeout OR is_filtered OR {FORMAT_FAILED_SQL})")} AS model_failure_rate,
          toFloat64(countIf(is_timeout)) AS timeouts, toFloat64(countIf(is_filtered)) AS content_filtered,
          toFloat64(countIf({FORMAT_FAILED_SQL})) AS format_failures,
          quantilesExactInclusiveIf(0.5, 0.95, 0.99)(duration_ms, NOT is_err) AS q,
          {_ratio(f"sumIf({_scaled('duration_ms', '1e6')}, NOT is_err)", "countIf(duration_ms IS NOT NULL AND NOT is_err)",
                  " / 1e6")} AS latency_mean_ms,
          toFloat64(coalesce(sum(retry_count), 0)) AS retries,
          toFloat64(countIf(lower(breaker_state) = 'open')) AS breaker_opens,
          {_ratio("countIf(fallback_level IS NOT NULL AND fallback_level != 'primary')", "count()")} AS fallback_rate,
          {_ratio("countIf(fallback_level = 'fallback')", "count(fallback_level)")} AS fallback_secondary,
          {_ratio("countIf(fallback_level = 'rule_based')", "count(fallback_level)")} AS fallback_rule_based,
          {_ratio("countIf(fallback_level = 'human')", "count(fallback_level)")} AS fallback_human,
          toFloat64(coalesce(sum(input_tokens), 0)) AS input_tokens,
          toFloat64(coalesce(sum(output_tokens), 0)) AS output_tokens,
          toFloat64(toFloat64(sum({_scaled("cost", "1e12")})) / 1e12) AS cost_usd,
          {_ratio(f"sum({_scaled('cost', '1e12')})", "count()", " / 1e12")} AS cost_per_request_usd,
          {_ratio(f"sumIf(toInt64(format_ok), {FORMAT_CHECKED_SQL})", f"countIf({FORMAT_CHECKED_SQL})")} AS format_ok_rate,
          {_ratio(f"sum({_scaled('quality_score', '1e15')})", "count(quality_score)", " / 1e15")} AS quality_mean,
          {_ratio(f"sum({_scaled('confidence', '1e15')})", "count(confidence)", " / 1e15")} AS confidence_mean
        FROM s GROUP BY GROUPING SETS ({grouping}) HAVING {keep}"""
    table = store.query(sql, {**params, "lo": lo, "hi": hi, "m_lo": minutes[0], "m_hi": minutes[1]})
    n = table.num_rows
    if not n:
        return TRAFFIC_SCHEMA.empty_table()
    q = table.column("q").to_pylist()
    for i, name in enumerate(("latency_p50_ms", "latency_p95_ms", "latency_p99_ms")):
        table = table.append_column(name, pa.array([v[i] if v else None for v in q], pa.float64()))
    columns = [f for f in TRAFFIC_SCHEMA if f.name != "computed_at"]
    wide = table.select([f.name for f in columns]).cast(pa.schema(columns))
    return wide.append_column(TRAFFIC_SCHEMA.field("computed_at"),
                              pa.repeat(pa.scalar(computed_at, pa.timestamp("us")), n).cast(pa.timestamp("us")))


def override_metrics(store: Store, start: datetime, end: datetime, grain: str, computed_at: datetime) -> pa.Table:
    """Human override rates ((modified + rejected) / reviewed) per bucket and rollup, tall rows."""
    from store.analytics import _FEEDBACK_ROLLUPS, METRICS_SCHEMA, OVERRIDE_METRICS

    grouping = ", ".join("(" + ", ".join(("time", *s)) + ")" for s in _FEEDBACK_ROLLUPS)
    sql = f"""
    WITH f AS (SELECT {_trunc(grain, 'time')} AS time, coalesce(service_name, '{NONE}') AS service_name,
                      coalesce(model, '{NONE}') AS model, coalesce(model_version, '{NONE}') AS model_version,
                      coalesce(route, '{NONE}') AS route, lower(action) AS action
               FROM {_t(store, 'feedback')}
               WHERE time >= {{lo:{TS}}} AND time < {{hi:{TS}}} AND action IS NOT NULL),
    wide AS (SELECT time, service_name, model, model_version, route,
               toFloat64(count()) AS reviewed,
               toFloat64(countIf(action IN ('modified', 'rejected'))) AS overrides,
               avg(toInt64(action IN ('modified', 'rejected'))) AS override_rate,
               avg(toInt64(action = 'modified')) AS override_rate_modified,
               avg(toInt64(action = 'rejected')) AS override_rate_rejected
             FROM f GROUP BY GROUPING SETS ({grouping}))
    SELECT time, '{grain}' AS grain, m.1 AS metric, service_name, model, model_version, route,
           CAST(NULL AS Nullable(String)) AS arm, m.2 AS value, {{computed_at:{TS}}} AS computed_at
    FROM wide ARRAY JOIN [{", ".join(f"('{m}', toNullable({m}))" for m in OVERRIDE_METRICS)}] AS m"""
    table = store.query(sql, {"lo": start, "hi": end, "computed_at": computed_at})
    return table.select(METRICS_SCHEMA.names).cast(METRICS_SCHEMA)


def resource_metrics(store: Store, start: datetime, end: datetime, grain: str, computed_at: datetime) -> pa.Table:
    """CPU, GPU, memory utilisation and queue depth: the mean of the points per bucket."""
    from store.analytics import _RESOURCE_NAME, METRICS_SCHEMA

    sql = f"""
    WITH r AS (SELECT {_trunc(grain, 'time')} AS time, coalesce(service_name, '{NONE}') AS service_name,
                      {_RESOURCE_NAME} AS metric, value AS v
               FROM {_t(store, 'resource_metrics')} WHERE time >= {{lo:{TS}}} AND time < {{hi:{TS}}})
    SELECT time, '{grain}' AS grain, metric, service_name, CAST(NULL AS Nullable(String)) AS model,
           CAST(NULL AS Nullable(String)) AS model_version, CAST(NULL AS Nullable(String)) AS route,
           CAST(NULL AS Nullable(String)) AS arm, avg(v) AS value, {{computed_at:{TS}}} AS computed_at
    FROM r WHERE metric IS NOT NULL AND v IS NOT NULL
    GROUP BY GROUPING SETS ((time, metric), (time, metric, service_name))"""
    return store.query(sql, {"lo": start, "hi": end, "computed_at": computed_at}).select(
        METRICS_SCHEMA.names).cast(METRICS_SCHEMA)


_ROUTE_LABELS = (f"coalesce(s.service_name, '{NONE}') AS service_name, coalesce(s.route, '{NONE}') AS route, "
                 f"coalesce({model_sql('s')}, '{NONE}') AS model")
_MODEL_CALLS = "s.is_llm AND (s.arm IS NULL OR s.arm != 'shadow')"


def route_hourly_stats(store: Store, start: datetime, end: datetime) -> pa.Table:
    return store.query(f"""
        SELECT {_trunc('1h', 's.start_time')} AS hour, {_ROUTE_LABELS},
               toFloat64(count()) AS calls, toFloat64(countIf(s.status_code = 'error')) AS errors,
               toFloat64(countIf(s.duration_ms IS NOT NULL AND s.status_code != 'error')) AS ok_calls,
               quantileExactInclusiveIf(0.99)(s.duration_ms, s.status_code != 'error') AS p99_ms
        FROM {_t(store, 'spans')} s
        WHERE s.start_time >= {{lo:{TS}}} AND s.start_time < {{hi:{TS}}} AND {_MODEL_CALLS}
        GROUP BY hour, service_name, route, model ORDER BY hour, service_name, route, model""",
                       {"lo": start, "hi": end})


def route_call_values(store: Store, start: datetime, end: datetime, categories: Sequence[str] = (),
                      prices: Sequence[tuple[str, float, float, float, float]] = ()) -> pa.Table:
    from store.analytics import _column_expr

    cte, params = _prices(prices)
    cats = "".join(f", CAST({_portable_expr(_column_expr(name))} AS Nullable(String)) AS cat{i}"
                   for i, name in enumerate(categories))
    return store.query(f"""
        WITH {cte}
        SELECT s.start_time AS time, {_ROUTE_LABELS}, CAST({_in_range("s.confidence", "confidence")} AS Nullable(Float64)) AS confidence,
               CAST({_in_range("s.output_tokens", "output_tokens")} AS Nullable(Float64)) AS output_tokens,
               CAST({_in_range("s.input_tokens", "input_tokens")} AS Nullable(Float64)) AS input_tokens,
               CAST({_in_range(_COST, "cost_usd")} AS Nullable(Float64)) AS cost{cats}
        FROM {_t(store, 'spans')} s LEFT JOIN prices p ON p.pm = coalesce(s.response_model, s.request_model)
        WHERE s.start_time >= {{lo:{TS}}} AND s.start_time < {{hi:{TS}}} AND {_MODEL_CALLS}
          AND (s.status_code IS NULL OR s.status_code != 'error')
        ORDER BY s.start_time""", {"lo": start, "hi": end, **params})


def route_minute_counts(store: Store, start: datetime, end: datetime, thresholds: pa.Table) -> pa.Table:
    params: dict[str, Any] = {"lo": start, "hi": end}
    params |= {f"t_{c}": thresholds.column(c).to_pylist() for c in ("hour", "service_name", "route", "model")}
    params["t_threshold_ms"] = [None if v is None else float(v) for v in thresholds.column("threshold_ms").to_pylist()]
    return store.query(f"""
        WITH t AS (SELECT z.1 AS hour, z.2 AS service_name, z.3 AS route, z.4 AS model, z.5 AS threshold_ms
                   FROM (SELECT arrayJoin(arrayZip({{t_hour:Array({TS})}}, {{t_service_name:Array(String)}},
                         {{t_route:Array(String)}}, {{t_model:Array(String)}},
                         {{t_threshold_ms:Array(Nullable(Float64))}})) AS z)),
        c AS (SELECT s.start_time AS start_time, {_ROUTE_LABELS}, s.status_code = 'error' AS is_err,
                     s.duration_ms AS duration_ms, {_trunc('1h', 's.start_time')} AS hour
              FROM {_t(store, 'spans')} s
              WHERE s.start_time >= {{lo:{TS}}} AND s.start_time < {{hi:{TS}}} AND {_MODEL_CALLS})
        SELECT {_trunc('1m', 'c.start_time')} AS time, c.service_name AS service_name, c.route AS route,
               c.model AS model, toFloat64(count()) AS calls, toFloat64(countIf(c.is_err)) AS errors,
               if(any(t.threshold_ms) IS NULL, NULL,
                  toFloat64(countIf(NOT c.is_err AND c.duration_ms > t.threshold_ms))) AS slow
        FROM c LEFT JOIN t ON t.hour = c.hour AND t.service_name = c.service_name AND t.route = c.route
                          AND t.model = c.model
        GROUP BY time, service_name, route, model ORDER BY time, service_name, route, model""", params)


def _portable_expr(expr: str) -> str:
    """A drift/confidence column expression (store.analytics._column_expr) in ClickHouse's words:
    attributes are JSON objects of strings there (the Collector's Map)."""
    import re

    expr = re.sub(r"""json_extract_string\(s\.attributes, '\$\."([^"']*)"'\)""",
                  r"nullIf(JSONExtractString(coalesce(s.attributes, '{}'), '\1'), '')", expr)
    return expr.replace("TRY_CAST(", "toFloat64OrNull(").replace(" AS DOUBLE)", ")")


def sample_groups(store: Store, start: datetime, end: datetime, keys: Sequence[str],
                  columns: dict[str, tuple[str, str]], cap: int, where: str = "TRUE") -> tuple[pa.Table, pa.Table]:
    """store.analytics.sample_groups on ClickHouse: the same groups and, up to `cap` calls a group,
    the same rows (a group of at most `cap` calls is taken whole; a larger one is thinned by a hash
    of its ids, ClickHouse's own, so the rows kept differ from DuckDB's but are as many and as
    repeatable)."""
    from store.sql import quote_ident

    key_sql = {"service_name": f"coalesce(s.service_name, '{NONE}')", "model": f"coalesce({model_sql('s')}, '{NONE}')",
               "model_version": f"coalesce(s.model_version, '{NONE}')", "route": f"coalesce(s.route, '{NONE}')",
               "hour": _trunc("1h", "s.start_time")}
    spans = _t(store, "spans")
    scope = f"s.start_time >= {{lo:{TS}}} AND s.start_time < {{hi:{TS}}} AND s.is_llm AND ({where})"
    params: dict[str, Any] = {"lo": start, "hi": end}
    names = ", ".join(f"{key_sql[k]} AS {k}" for k in keys)
    groups = store.query(f"SELECT {names}, count() AS n FROM {spans} s WHERE {scope} "
                         f"GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}", params)
    picked = ", ".join(f"toFloat64OrNull(toString({_portable_expr(expr)})) AS {quote_ident(alias)}" if kind == "num"
                       else f"CAST({_portable_expr(expr)} AS Nullable(String)) AS {quote_ident(alias)}"
                       for alias, (expr, kind) in columns.items())
    key_types = {k: (f"Array({TS})" if k == "hour" else "Array(String)") for k in keys}
    arrays = ", ".join(f"{{k{i}:{key_types[k]}}}" for i, k in enumerate(keys))
    fields = ", ".join(f"z.{i + 1} AS {k}" for i, k in enumerate(keys))
    m = len(keys)
    sql = f"""
    WITH g AS (SELECT {fields}, z.{m + 1} AS n, z.{m + 2} AS gid
               FROM (SELECT arrayJoin(arrayZip({arrays}, {{n:Array(UInt64)}}, range(length({{n:Array(UInt64)}})))) AS z))
    SELECT toInt32(g.gid) AS gid, {picked}
    FROM {spans} s JOIN g ON {" AND ".join(f"g.{k} = {key_sql[k]}" for k in keys)}
    WHERE {scope} AND cityHash64(s.trace_id, s.span_id) % 1000003 < 1000003 * least(1.0, {{cap:Float64}} / g.n)
    ORDER BY gid"""
    params |= {f"k{i}": groups.column(k).to_pylist() for i, k in enumerate(keys)}
    params |= {"n": groups.column("n").to_pylist(), "cap": float(cap)}
    return groups, store.query(sql, params)


_PAIR_COLUMNS = ("start_time", "service_name", "model", "model_version", "route", "shadow_trace", "shadow_span",
                 "primary_trace", "primary_span", "shadow_hash", "primary_hash")


def shadow_pairs(store: Store, start: datetime, end: datetime) -> pa.Table:
    """Shadow calls paired with their primary call (same request id, else same trace), with both outputs."""
    def output_hash(alias: str) -> str:
        return f"nullIf(JSONExtractString(coalesce({alias}.attributes, '{{}}'), 'aiwatch.output.hash'), '')"

    spans, content = _t(store, "spans"), _t(store, "span_content")
    return store.query(f"""
        WITH sh AS (SELECT * FROM {spans} WHERE start_time >= {{lo:{TS}}} AND start_time < {{hi:{TS}}} AND is_llm
                      AND arm = 'shadow'),
        pr AS (SELECT * FROM {spans} WHERE start_time >= {{lo:{TS}}} - INTERVAL 10 MINUTE
                 AND start_time < {{hi:{TS}}} + INTERVAL 10 MINUTE AND is_llm AND (arm IS NULL OR arm != 'shadow')
                 AND trace_id IN (SELECT trace_id FROM sh)),
        pairs AS (
          SELECT sh.start_time AS start_time, coalesce(sh.service_name, '{NONE}') AS service_name,
                 coalesce({model_sql("sh")}, '{NONE}') AS model,
                 coalesce(sh.model_version, '{NONE}') AS model_version, coalesce(sh.route, '{NONE}') AS route,
                 sh.trace_id AS shadow_trace, sh.span_id AS shadow_span, pr.trace_id AS primary_trace,
                 pr.span_id AS primary_span, {output_hash("sh")} AS shadow_hash, {output_hash("pr")} AS primary_hash,
                 row_number() OVER (PARTITION BY sh.span_id ORDER BY (pr.request_id = sh.request_id) DESC,
                                    pr.start_time) AS rn
          FROM sh JOIN pr ON pr.trace_id = sh.trace_id
          WHERE pr.span_id != sh.span_id
            AND (sh.request_id IS NULL OR pr.request_id IS NULL OR pr.request_id = sh.request_id))
        SELECT {", ".join(f"p.{c} AS {c}" for c in _PAIR_COLUMNS)},
               sc.output_text AS shadow_output, pc.output_text AS primary_output
        FROM pairs p
        LEFT JOIN {content} sc ON sc.trace_id = p.shadow_trace AND sc.span_id = p.shadow_span
        LEFT JOIN {content} pc ON pc.trace_id = p.primary_trace AND pc.span_id = p.primary_span
        WHERE rn = 1""", {"lo": start, "hi": end})


_CANARY_COLUMNS = ("hour", "service_name", "arm", "model", "model_version", "duration_ms", "is_err", "cost",
                   "quality_score", "confidence")


def canary_sample(store: Store, start: datetime, end: datetime, prices: Sequence[tuple[str, float, float, float, float]],
                  cap: int, baseline_ratio: float = 5.0) -> pa.Table:
    """store.analytics.canary_sample on ClickHouse: per hour and service with canary traffic, the
    baseline and canary calls' values, thinned by a hash of the ids to at most about `cap` per arm
    (the baseline to `baseline_ratio` times the canary's, at least 1,000); groups under their
    limit are taken whole, as on DuckDB."""
    cte, params = _prices(prices)
    spans = _t(store, "spans")
    hour = _trunc("1h", "s.start_time")
    return store.query(f"""
        WITH {cte},
        c AS (SELECT DISTINCT {hour} AS hour, s.service_name AS service_name FROM {spans} s
              WHERE s.start_time >= {{lo:{TS}}} AND s.start_time < {{hi:{TS}}} AND s.is_llm AND s.arm = 'canary'),
        x AS (SELECT {hour} AS hour, coalesce(s.service_name, '{NONE}') AS service_name, s.arm AS arm,
                     coalesce({model_sql("s")}, '{NONE}') AS model, coalesce(s.model_version, '{NONE}') AS model_version,
                     s.duration_ms AS duration_ms, toBool(s.status_code = 'error') AS is_err, {_COST} AS cost,
                     s.quality_score AS quality_score, s.confidence AS confidence,
                     cityHash64(s.trace_id, s.span_id) % 1000003 AS h
              FROM {spans} s LEFT JOIN prices p ON p.pm = coalesce(s.response_model, s.request_model)
              WHERE s.start_time >= {{lo:{TS}}} AND s.start_time < {{hi:{TS}}} AND s.is_llm
                AND s.arm IN ('baseline', 'canary') AND ({hour}, s.service_name) IN (SELECT hour, service_name FROM c)),
        n AS (SELECT hour, service_name, arm, count() AS n FROM x GROUP BY hour, service_name, arm),
        keep AS (SELECT hour, service_name, arm, n,
                        if(arm = 'canary', {{cap:Float64}},
                           least({{cap:Float64}}, greatest(1000, {{ratio:Float64}}
                                 * maxIf(n, arm = 'canary') OVER (PARTITION BY hour, service_name)))) AS k
                 FROM n)
        SELECT {", ".join(f"x.{c} AS {c}" for c in _CANARY_COLUMNS)}
        FROM x JOIN keep ON keep.hour = x.hour AND keep.service_name = x.service_name AND keep.arm = x.arm
        WHERE x.h < 1000003 * least(1.0, keep.k / keep.n)
        ORDER BY hour, service_name""", {"lo": start, "hi": end, "cap": float(cap), "ratio": float(baseline_ratio),
                                         **params})
