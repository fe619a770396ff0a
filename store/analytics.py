"""All SQL the analyzers run, plus the analysis read queries, for the embedded DuckDB store.

Analyzers call these functions and get Arrow tables back; they never see SQL. On the ClickHouse
backend each `@by_dialect` function runs its twin in store/analytics_clickhouse.py instead (the
store, or the writer's connection, names its `dialect`). Reads use `store.query` (a cursor, never blocking
ingest); the only write is `replace_outputs`, which runs inside the single writer.
"""
from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import pyarrow as pa

from store.base import Store
from store.queries import (
    END,
    FORMAT_CHECKED_SQL,
    FORMAT_FAILED_SQL,
    LIMIT,
    MODEL,
    ROUTE,
    SERVICE,
    START,
    VERSION,
    NamedQuery,
    Param,
    model_sql,
    span_filter_sql,
)
from store.schema import SPAN_RANGES
from store.schema_analysis import TRAFFIC_COLUMNS
from store.sql import json_path, quote_ident

METRICS_SCHEMA = pa.schema([
    ("time", pa.timestamp("us")), ("grain", pa.string()), ("metric", pa.string()),
    ("service_name", pa.string()), ("model", pa.string()), ("model_version", pa.string()),
    ("route", pa.string()), ("arm", pa.string()), ("value", pa.float64()), ("computed_at", pa.timestamp("us")),
])
REPORTS_SCHEMA = pa.schema([
    ("time", pa.timestamp("us")), ("window_end", pa.timestamp("us")), ("analyzer", pa.string()),
    ("kind", pa.string()), ("service_name", pa.string()), ("model", pa.string()),
    ("model_version", pa.string()), ("route", pa.string()), ("arm", pa.string()), ("verdict", pa.string()),
    ("body", pa.string()), ("computed_at", pa.timestamp("us")),
])
LABELS = ("service_name", "model", "model_version", "route", "arm")
NONE = "(none)"   # a span without the label; NULL is reserved for the rollup "all"

_TRUNC = {"1m": "minute", "1h": "hour", "1d": "day"}
_PRICED_MODEL = "coalesce(response_model, request_model)"   # price lookup: the snapshot that answered


def _model_label(alias: str = "s") -> str:
    """The model label of every analyzer row: the requested model (store.queries.model_sql)."""
    return f"coalesce({model_sql(alias)}, '{NONE}')"


_MODEL_LABEL = _model_label()


def _in_range(expr: str, column: str) -> str:
    """`expr` when it lies in the span column's range, else NULL."""
    low, high = SPAN_RANGES[column]
    return f"CASE WHEN {expr} BETWEEN {low!r} AND {high!r} THEN {expr} END"


# The spans as the analyzers read them: a number outside its plausible range (stored before ingest
# checked ranges, or by a bulk load) reads as NULL, like ingest stores it now. This is what keeps
# the scaled-integer sums below from overflowing, whatever is in the table.
RANGED_SPANS = f"(SELECT * REPLACE ({', '.join(f'{_in_range(c, c)} AS {c}' for c in SPAN_RANGES)}) FROM spans)"


F = TypeVar("F", bound=Callable[..., Any])


def by_dialect(fn: F) -> F:
    """Run `fn`'s ClickHouse twin (same name in store/analytics_clickhouse.py) when the first
    argument (a store or a write connection) speaks ClickHouse. One without a twin fails with a
    clear message instead of sending DuckDB SQL to ClickHouse."""
    @functools.wraps(fn)
    def dispatch(target: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(target, "dialect", "duckdb") == "clickhouse":
            from store import analytics_clickhouse

            twin = getattr(analytics_clickhouse, fn.__name__, None)
            if twin is None and fn.__name__ not in analytics_clickhouse.PORTABLE:
                raise NotImplementedError(f"{fn.__name__} does not run on the ClickHouse backend yet")
            return (twin or fn)(target, *args, **kwargs)
        return fn(target, *args, **kwargs)
    return dispatch  # type: ignore[return-value]


def empty_metrics() -> pa.Table:
    return METRICS_SCHEMA.empty_table()


def metrics_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    rows = list(rows)
    return pa.Table.from_pylist(rows, schema=METRICS_SCHEMA) if rows else empty_metrics()


def reports_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    rows = [{**r, "body": r["body"] if isinstance(r.get("body"), str) else json.dumps(r.get("body"), default=str)}
            for r in rows]
    return pa.Table.from_pylist(rows, schema=REPORTS_SCHEMA) if rows else REPORTS_SCHEMA.empty_table()


def _grouping_sets(time_col: str, sets: Sequence[Sequence[str]]) -> str:
    return "GROUPING SETS (" + ", ".join("(" + ", ".join((time_col, *s)) + ")" for s in sets) + ")"


# Rollups written for span metrics. Minutes keep what the alert rules and the dashboard's time
# series read (all, per service, service+route, service+model); hours add per version+arm and the
# full detail (version x route), where a bucket holds enough calls to mean something. Only label
# combinations that had calls get rows (GROUPING SETS emit no empty groups).
SPAN_ROLLUPS: dict[str, tuple[tuple[str, ...], ...]] = {
    "1m": ((), ("service_name",), ("service_name", "route"), ("service_name", "model")),
}
SPAN_ROLLUPS["1h"] = SPAN_ROLLUPS["1m"] + (("service_name", "model", "model_version", "arm"),
                                           ("service_name", "model", "model_version", "route", "arm"))


# --- the one write ----------------------------------------------------------------------------


@by_dialect
def replace_outputs(con: Any, analyzer: str, owns: Sequence[str], ranges: Sequence[tuple[str, datetime, datetime]],
                    metrics: pa.Table | None, reports: pa.Table | None, job: str | None = None,
                    state: str | None = None, traffic: pa.Table | None = None) -> int:
    """Inside the writer: delete the analyzer's rows for the ranges, insert the new ones, save state.

    Tall rows (`metrics`: those of the metrics it `owns`) and wide traffic rows (`traffic`) are each
    replaced only when given, so an analyzer writing one kind never scans the other's table."""
    inserted = 0
    if ranges:   # one statement (one scan of a table) for every range
        spans = " OR ".join(f"(grain = $g{i} AND time >= $s{i} AND time < $e{i})" for i in range(len(ranges)))
        range_params = {k: v for i, (g, lo, hi) in enumerate(ranges) for k, v in ((f"g{i}", g), (f"s{i}", lo),
                                                                                  (f"e{i}", hi))}
        if metrics is not None:
            names = [o for o in owns if not o.endswith(":")]
            prefixes = [o for o in owns if o.endswith(":")]
            owned_params = {f"n{i}": n for i, n in enumerate(names)} | {f"p{i}": p for i, p in enumerate(prefixes)}
            conditions = [f"starts_with(metric, ${k})" for k in owned_params if k[0] == "p"]
            if names:
                conditions.append("metric IN (" + ", ".join(f"${k}" for k in owned_params if k[0] == "n") + ")")
            owned = " OR ".join(conditions) or "FALSE"
            con.execute(f"DELETE FROM analysis_metric_rows WHERE ({spans}) AND ({owned})",
                        {**range_params, **owned_params})
        if traffic is not None:
            con.execute(f"DELETE FROM traffic_metrics WHERE {spans}", range_params)
        con.execute("DELETE FROM analysis_reports WHERE analyzer = $a AND time >= $start AND time < $end "
                    "AND kind IS DISTINCT FROM 'quarantine'",
                    {"a": analyzer, "start": min(r[1] for r in ranges), "end": max(r[2] for r in ranges)})
    for table_name, tbl in (("analysis_metric_rows", metrics), ("traffic_metrics", traffic),
                            ("analysis_reports", reports)):
        if tbl is not None and tbl.num_rows:
            view = f"_analysis_{table_name}"
            con.register(view, tbl)
            try:
                con.execute(f"INSERT INTO {table_name} BY NAME SELECT * FROM {view}")
            finally:
                con.unregister(view)
            inserted += tbl.num_rows
    if job is not None:
        con.execute("INSERT OR REPLACE INTO job_state (job, state, updated_at) VALUES (?, ?, now()::TIMESTAMP)",
                    [job, state])
    return inserted


@by_dialect
def quarantine_window(con: Any, analyzer: str, start: datetime, end: datetime, error: str, computed_at: datetime,
                      job: str | None = None, state: str | None = None) -> None:
    """Inside the writer: record a window the analyzer could not compute and move its watermark past.
    The record (an analysis_reports row of kind 'quarantine') is history: reruns of the window leave
    it, retention removes it."""
    con.execute("""INSERT INTO analysis_reports (time, window_end, analyzer, kind, verdict, body, computed_at)
                   VALUES ($start, $end, $analyzer, 'quarantine', 'quarantined', $body, $computed_at)""",
                {"start": start, "end": end, "analyzer": analyzer, "body": json.dumps({"error": error}),
                 "computed_at": computed_at})
    if job is not None:
        con.execute("INSERT OR REPLACE INTO job_state (job, state, updated_at) VALUES (?, ?, now()::TIMESTAMP)",
                    [job, state])


SELF_SERVICE = "aiwatch"   # the service label of aiwatch's own rows (analyzer health)


@by_dialect
def record_analyzer_failures(con: Any, minute: datetime, failures: dict[str, int], computed_at: datetime) -> None:
    """Inside the writer: `analyzer_failures` rows (service 'aiwatch', route = analyzer) for the minute:
    what the built-in rule AiwatchAnalyzerFailing reads."""
    con.executemany("""INSERT INTO analysis_metric_rows (time, grain, metric, service_name, route, value, computed_at)
                       VALUES (?, '1m', 'analyzer_failures', ?, ?, ?, ?)""",
                    [[minute, SELF_SERVICE, name, float(n), computed_at] for name, n in sorted(failures.items())])


@by_dialect
def job_state(store: Store, job: str) -> str | None:
    return store.scalar("SELECT state FROM job_state WHERE job = ?", [job])


def set_job_state(con: Any, job: str, state: str) -> None:
    """Inside the writer."""
    con.execute("INSERT OR REPLACE INTO job_state (job, state, updated_at) VALUES (?, ?, now()::TIMESTAMP)",
                [job, state])


# --- watermarks and late data -----------------------------------------------------------------

_SOURCE_TIME = {"spans": "start_time", "feedback": "time", "resource_metrics": "time"}


@by_dialect
def max_received_at(store: Store) -> datetime | None:
    return store.scalar("SELECT max(received_at) FROM spans")


@by_dialect
def late_span_start(store: Store, received_after: datetime, lo: datetime, hi: datetime) -> datetime | None:
    """Earliest start time in [lo, hi) among spans received after `received_after` (late arrivals)."""
    return store.scalar("SELECT min(start_time) FROM spans WHERE received_at > ? AND start_time >= ? AND start_time < ?",
                        [received_after, lo, hi])


@by_dialect
def first_time(store: Store, source: str, lo: datetime, hi: datetime) -> datetime | None:
    col = _SOURCE_TIME[source]
    return store.scalar(f"SELECT min({col}) FROM {source} WHERE {col} >= ? AND {col} < ?", [lo, hi])


# --- prices -----------------------------------------------------------------------------------


@by_dialect
def distinct_models(store: Store, start: datetime, end: datetime) -> list[str]:
    t = store.query(f"SELECT DISTINCT {_PRICED_MODEL} AS m FROM spans WHERE start_time >= $start AND start_time < $end "
                    f"AND is_llm AND cost_usd IS NULL AND {_PRICED_MODEL} IS NOT NULL", {"start": start, "end": end})
    return [m for m in t.column("m").to_pylist() if m]


Price = tuple[str, float, float, float, float]   # model, input, cached input, output, reasoning (USD / 1M)


def _prices_cte(prices: Sequence[Price], dialect: str = "duckdb") -> tuple[str, dict[str, Any]]:
    if dialect == "clickhouse":
        from store.analytics_clickhouse import _prices

        return _prices(prices)
    if not prices:
        return ("prices AS (SELECT NULL::VARCHAR AS pm, NULL::DOUBLE AS p_in, NULL::DOUBLE AS p_cached, "
                "NULL::DOUBLE AS p_out, NULL::DOUBLE AS p_reason WHERE false)"), {}
    params = {f"pm{i}": p[0] for i, p in enumerate(prices)}
    rows = ", ".join(f"($pm{i}, {float(p[1])!r}::DOUBLE, {float(p[2])!r}::DOUBLE, {float(p[3])!r}::DOUBLE, "
                     f"{float(p[4])!r}::DOUBLE)" for i, p in enumerate(prices))
    return f"prices(pm, p_in, p_cached, p_out, p_reason) AS (VALUES {rows})", params


# The span's own cost, else tokens x price (cached and reasoning tokens at their own rates).
_COST = """coalesce(s.cost_usd, (
    (coalesce(s.input_tokens, 0) - least(coalesce(s.cache_read_tokens, 0), coalesce(s.input_tokens, 0))) * p.p_in
  + least(coalesce(s.cache_read_tokens, 0), coalesce(s.input_tokens, 0)) * p.p_cached
  + (coalesce(s.output_tokens, 0) - least(coalesce(s.reasoning_tokens, 0), coalesce(s.output_tokens, 0))) * p.p_out
  + least(coalesce(s.reasoning_tokens, 0), coalesce(s.output_tokens, 0)) * p.p_reason) / 1e6)"""


# --- traffic: requests, latency, errors, retries, fallbacks, tokens, cost, quality -------------

TRAFFIC_METRICS = TRAFFIC_COLUMNS
# traffic_metrics rows: one per bucket and label set, a column per figure (see store/schema_analysis.py)
TRAFFIC_SCHEMA = pa.schema([("time", pa.timestamp("us")), ("grain", pa.string()),
                            *((label, pa.string()) for label in LABELS),
                            *((m, pa.float64()) for m in TRAFFIC_METRICS), ("computed_at", pa.timestamp("us"))])


_SPAN_LABELS = f"""coalesce(s.service_name, '{NONE}') AS service_name,
        {_MODEL_LABEL} AS model,
        coalesce(s.model_version, '{NONE}') AS model_version, coalesce(s.route, '{NONE}') AS route,
        coalesce(s.arm, '{NONE}') AS arm"""
_MODEL_CALLS = "s.is_llm AND s.arm IS DISTINCT FROM 'shadow'"

# Per minute and full label detail: counts and sums from which every rollup and both grains follow
# (one scan of the spans). `*_n` columns are the denominators of the averages (non-NULL inputs).
# Sums of doubles are kept as sums of scaled integers (ns, 1e-15 score units, 1e-12 USD; summed
# into HUGEINT): integer sums do not depend on the order threads combine them in, so a rerun gives
# bit-identical rows. Each scaled value fits a BIGINT because RANGED_SPANS bounds it (a month of
# ns is 2.7e15, a score 1e15, $1M 1e18); a cost from tokens x prices is held to the same range.
# The format check judges outputs (FORMAT_FAILED_SQL): a failed call has none.
_FINE_SUMS = f"""
        count(*) AS n,
        count(is_err) AS err_n, count(*) FILTER (WHERE is_err) AS errors,
        count(*) FILTER (WHERE coalesce(http_status, 0) BETWEEN 400 AND 499) AS n_4xx,
        count(*) FILTER (WHERE coalesce(http_status, 0) >= 500) AS n_5xx,
        sum((is_timeout OR is_filtered OR {FORMAT_FAILED_SQL})::INT) AS mf_sum,
        count(is_timeout OR is_filtered OR {FORMAT_FAILED_SQL}) AS mf_n,
        count(*) FILTER (WHERE is_timeout) AS timeouts, count(*) FILTER (WHERE is_filtered) AS content_filtered,
        count(*) FILTER (WHERE {FORMAT_FAILED_SQL}) AS format_failures,
        sum((duration_ms * 1e6)::BIGINT) FILTER (WHERE NOT is_err) AS dur_sum,
        count(duration_ms) FILTER (WHERE NOT is_err) AS dur_n,
        sum(retry_count) AS retries, count(*) FILTER (WHERE lower(breaker_state) = 'open') AS breaker_opens,
        count(*) FILTER (WHERE fallback_level IS NOT NULL AND fallback_level <> 'primary') AS fb_any,
        count(fallback_level) AS fb_n, count(*) FILTER (WHERE fallback_level = 'fallback') AS fb_secondary,
        count(*) FILTER (WHERE fallback_level = 'rule_based') AS fb_rule,
        count(*) FILTER (WHERE fallback_level = 'human') AS fb_human,
        sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
        sum(({_in_range("cost", "cost_usd")} * 1e12)::BIGINT) AS cost,
        sum(format_ok::INT) FILTER (WHERE {FORMAT_CHECKED_SQL}) AS fo_sum,
        count(*) FILTER (WHERE {FORMAT_CHECKED_SQL}) AS fo_n, sum((quality_score * 1e15)::BIGINT) AS q_sum,
        count(quality_score) AS q_n, sum((confidence * 1e15)::BIGINT) AS c_sum, count(confidence) AS c_n"""


def _ratio(num: str, den: str, scale: str = "") -> str:
    return f"(sum({num})::DOUBLE{scale} / nullif(sum({den}), 0))::DOUBLE"


# The figures of one bucket and label set, from sums of the fine rows (same values as aggregating
# the spans directly: counts and sums are additive, averages are sum / non-NULL count).
_ROLLUP_VALUES = f"""
        sum(n)::DOUBLE AS requests, sum(n) / $seconds AS rps, sum(errors)::DOUBLE AS errors,
        {_ratio("errors", "err_n")} AS error_rate, {_ratio("n_4xx", "n")} AS error_rate_4xx,
        {_ratio("n_5xx", "n")} AS error_rate_5xx, {_ratio("mf_sum", "mf_n")} AS model_failure_rate,
        sum(timeouts)::DOUBLE AS timeouts, sum(content_filtered)::DOUBLE AS content_filtered,
        sum(format_failures)::DOUBLE AS format_failures, {_ratio("dur_sum", "dur_n", " / 1e6")} AS latency_mean_ms,
        coalesce(sum(retries), 0)::DOUBLE AS retries, sum(breaker_opens)::DOUBLE AS breaker_opens,
        {_ratio("fb_any", "n")} AS fallback_rate, {_ratio("fb_secondary", "fb_n")} AS fallback_secondary,
        {_ratio("fb_rule", "fb_n")} AS fallback_rule_based, {_ratio("fb_human", "fb_n")} AS fallback_human,
        coalesce(sum(input_tokens), 0)::DOUBLE AS input_tokens,
        coalesce(sum(output_tokens), 0)::DOUBLE AS output_tokens,
        (sum(cost)::DOUBLE / 1e12)::DOUBLE AS cost_usd, {_ratio("cost", "n", " / 1e12")} AS cost_per_request_usd,
        {_ratio("fo_sum", "fo_n")} AS format_ok_rate, {_ratio("q_sum", "q_n", " / 1e15")} AS quality_mean,
        {_ratio("c_sum", "c_n", " / 1e15")} AS confidence_mean"""


def _rollup_labels(grain: str) -> str:
    """The label columns of a GROUPING SETS select: NULL for a label no rollup of the grain keeps."""
    kept = {label for labels in SPAN_ROLLUPS[grain] for label in labels}
    return ", ".join(label if label in kept else f"NULL::VARCHAR AS {label}" for label in LABELS)


def _label_join(a: str, b: str) -> str:
    return " AND ".join([f"{a}.time = {b}.time"] + [f"{a}.{c} IS NOT DISTINCT FROM {b}.{c}" for c in LABELS])


@by_dialect
def traffic_metrics(store: Store, minutes: tuple[datetime, datetime], hours: tuple[datetime, datetime] | None,
                    prices: Sequence[Price], computed_at: datetime) -> pa.Table:
    """traffic_metrics rows (one per bucket and label set, TRAFFIC_SCHEMA) for model-call spans
    (shadow calls excluded): 1-minute buckets in `minutes` and 1-hour buckets in `hours` (which
    contains `minutes`; None: minutes only).

    One scan sums the spans per minute and full label set; every rollup of both grains is summed
    from that (small) table. Exact percentiles are holistic, so they take one pass per grain over
    the successful calls' durations, each computing all its rollups (GROUPING SETS) and all three
    percentiles (the list form of quantile_cont) at once.
    """
    cte, params = _prices_cte(prices)
    grains = ("1m", "1h") if hours else ("1m",)
    scan = hours or minutes
    quantiles = {g: f"""
    q_{g} AS (
      SELECT time, {_rollup_labels(g)}, quantile_cont(duration_ms, [0.5, 0.95, 0.99]) AS q
      FROM (SELECT date_trunc('{_TRUNC[g]}', s.start_time) AS time, {_SPAN_LABELS}, s.duration_ms
            FROM {RANGED_SPANS} s
            WHERE s.start_time >= ${g[-1]}_start AND s.start_time < ${g[-1]}_end AND {_MODEL_CALLS}
              AND s.status_code <> 'error')
      GROUP BY {_grouping_sets("time", SPAN_ROLLUPS[g])})""" for g in grains}
    rollups = {g: f"""
    r_{g} AS (
      SELECT date_trunc('{_TRUNC[g]}', minute) AS time, {_rollup_labels(g)},
        {_ROLLUP_VALUES.replace("$seconds", "60.0" if g == "1m" else "3600.0")}
      FROM fine {"WHERE minute >= $m_start AND minute < $m_end" if g == "1m" else ""}
      GROUP BY {_grouping_sets("time", SPAN_ROLLUPS[g])})""" for g in grains}
    joined = "\n      UNION ALL BY NAME\n".join(
        f"""SELECT '{g}' AS grain, r.*, q.q FROM r_{g} r LEFT JOIN q_{g} q ON {_label_join("r", "q")}""" for g in grains)
    sql = f"""
    WITH {cte},
    s AS (
      SELECT s.start_time, {_SPAN_LABELS},
        s.duration_ms, s.status_code = 'error' AS is_err, s.http_status,
        s.error_type IS NOT NULL AND (lower(s.error_type) LIKE '%timeout%' OR lower(s.error_type) LIKE '%timed%out%')
          OR s.http_status IN (408, 504) AS is_timeout,
        lower(coalesce(s.error_type, '')) LIKE '%content%filter%'
          OR coalesce(s.finish_reasons, '') LIKE '%content_filter%' AS is_filtered,
        s.format_ok, s.retry_count, s.breaker_state, s.fallback_level, s.input_tokens, s.output_tokens,
        s.quality_score, s.confidence, {_COST} AS cost
      FROM {RANGED_SPANS} s LEFT JOIN prices p ON p.pm = coalesce(s.response_model, s.request_model)
      WHERE s.start_time >= $h_start AND s.start_time < $h_end AND {_MODEL_CALLS}
    ),
    fine AS MATERIALIZED (
      SELECT date_trunc('minute', start_time) AS minute, service_name, model, model_version, route, arm,{_FINE_SUMS}
      FROM s GROUP BY ALL
    ),
    {", ".join(rollups[g] + ", " + quantiles[g] for g in grains)},
    wide AS (
      {joined}
    )
    SELECT * EXCLUDE (q), q[1]::DOUBLE AS latency_p50_ms, q[2]::DOUBLE AS latency_p95_ms,
           q[3]::DOUBLE AS latency_p99_ms FROM wide
    """
    wide = store.query(sql, {"m_start": minutes[0], "m_end": minutes[1], "h_start": scan[0], "h_end": scan[1],
                             **params})
    n = wide.num_rows
    return pa.Table.from_arrays(
        [wide.column(f.name).cast(f.type) if f.name != "computed_at" else pa.repeat(pa.scalar(computed_at, f.type), n)
         for f in TRAFFIC_SCHEMA], schema=TRAFFIC_SCHEMA) if n else TRAFFIC_SCHEMA.empty_table()


# --- resources (OTLP metrics) -------------------------------------------------------------------

RESOURCE_METRICS = ("cpu_utilization", "gpu_utilization", "memory_utilization", "queue_depth")

_RESOURCE_NAME = """CASE
  WHEN lower(name) LIKE '%gpu%util%' THEN 'gpu_utilization'
  WHEN lower(name) LIKE '%cpu%util%' THEN 'cpu_utilization'
  WHEN lower(name) LIKE '%mem%util%' THEN 'memory_utilization'
  WHEN lower(name) LIKE '%queue%depth%' OR lower(name) LIKE '%queue%size%' OR lower(name) LIKE '%queue%length%'
    THEN 'queue_depth'
END"""


@by_dialect
def resource_metrics(store: Store, start: datetime, end: datetime, grain: str, computed_at: datetime) -> pa.Table:
    sql = f"""
    WITH r AS (SELECT date_trunc('{_TRUNC[grain]}', time) AS time, coalesce(service_name, '{NONE}') AS service_name,
                      {_RESOURCE_NAME} AS metric, value
               FROM resource_metrics WHERE time >= $start AND time < $end)
    SELECT time, '{grain}' AS grain, metric, service_name, NULL AS model, NULL AS model_version, NULL AS route,
           NULL AS arm, avg(value)::DOUBLE AS value, $computed_at::TIMESTAMP AS computed_at
    FROM r WHERE metric IS NOT NULL AND value IS NOT NULL
    GROUP BY GROUPING SETS ((time, metric), (time, metric, service_name))
    """
    return store.query(sql, {"start": start, "end": end, "computed_at": computed_at}).cast(METRICS_SCHEMA)


# --- human overrides ----------------------------------------------------------------------------

OVERRIDE_METRICS = ("reviewed", "overrides", "override_rate", "override_rate_modified", "override_rate_rejected")
_FEEDBACK_ROLLUPS = ((), ("service_name",), ("service_name", "route"), ("service_name", "model"),
                     ("service_name", "model", "model_version"), ("service_name", "model", "model_version", "route"))


@by_dialect
def override_metrics(store: Store, start: datetime, end: datetime, grain: str, computed_at: datetime) -> pa.Table:
    sql = f"""
    WITH f AS (SELECT date_trunc('{_TRUNC[grain]}', time) AS time, coalesce(service_name, '{NONE}') AS service_name,
                      coalesce(model, '{NONE}') AS model, coalesce(model_version, '{NONE}') AS model_version,
                      coalesce(route, '{NONE}') AS route, lower(action) AS action
               FROM feedback WHERE time >= $start AND time < $end AND action IS NOT NULL),
    wide AS (SELECT time, service_name, model, model_version, route,
               count(*)::DOUBLE AS reviewed,
               count(*) FILTER (WHERE action IN ('modified', 'rejected'))::DOUBLE AS overrides,
               avg((action IN ('modified', 'rejected'))::INT)::DOUBLE AS override_rate,
               avg((action = 'modified')::INT)::DOUBLE AS override_rate_modified,
               avg((action = 'rejected')::INT)::DOUBLE AS override_rate_rejected
             FROM f GROUP BY {_grouping_sets("time", _FEEDBACK_ROLLUPS)})
    SELECT time, '{grain}' AS grain, metric, service_name, model, model_version, route, NULL AS arm, value,
           $computed_at::TIMESTAMP AS computed_at
    FROM wide UNPIVOT (value FOR metric IN ({", ".join(OVERRIDE_METRICS)}))
    """
    return store.query(sql, {"start": start, "end": end, "computed_at": computed_at}).cast(METRICS_SCHEMA)


# --- samples for statistical tests ----------------------------------------------------------------

def drift_column_sql(name: str) -> str:
    """The SQL a drift column reads (ValueError for a name that is no span column nor `attr:<key>`)."""
    return _column_expr(name)


def _column_expr(name: str) -> str:
    """SQL for a drift column: a spans column, `prompt_chars`, or `attr:<key>` from the attributes JSON."""
    if name.startswith("attr:"):
        return f"json_extract_string(s.attributes, {json_path(name[5:])})"
    if name == "prompt_chars":
        return ("coalesce(TRY_CAST(json_extract_string(s.attributes, '$.\"aiwatch.input.chars\"') AS DOUBLE), "
                "TRY_CAST(json_extract_string(s.attributes, '$.\"aiwatch.prompt.chars\"') AS DOUBLE))")
    allowed = {"input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens", "duration_ms",
               "request_model", "response_model", "provider", "operation", "tenant", "finish_reasons",
               "confidence", "quality_score", "http_status"}
    if name not in allowed:
        raise ValueError(f"unknown drift column {name!r} (use a span column or attr:<key>)")
    return f"s.{name}"


@by_dialect
def sampled_spans(store: Store, start: datetime, end: datetime, keys: Sequence[str],
                  columns: dict[str, str], cap: int, where: str = "TRUE",
                  params: dict[str, Any] | None = None) -> pa.Table:
    """Spans in [start, end) with `keys` and `columns` ({alias: 'num'|'cat' expression name}).

    At most about `cap` rows per key group, chosen by a hash of the span id, so reruns pick the
    same rows (idempotent) and no random state is involved. The key `hour` (the start's hour)
    samples every hour bucket separately, so one query serves a window of buckets. The columns
    (JSON attributes among them) are computed only for the rows kept.
    """
    key_sql = {"service_name": f"coalesce(s.service_name, '{NONE}')",
               "model": _MODEL_LABEL,
               "model_version": f"coalesce(s.model_version, '{NONE}')",
               "route": f"coalesce(s.route, '{NONE}')", "arm": f"coalesce(s.arm, '{NONE}')",
               "hour": "date_trunc('hour', s.start_time)"}
    key_cols = "".join(f"{key_sql[k]} AS {k}, " for k in keys)
    col_sql = ", ".join(f"{expr} AS {quote_ident(alias)}" for alias, expr in columns.items())
    scope = f"s.start_time >= $start AND s.start_time < $end AND s.is_llm AND ({where})"
    h = "hash(s.trace_id, s.span_id) % 1000003"
    if keys:
        join = " AND ".join(f"c.{k} = {key_sql[k]}" for k in keys)
        sql = f"""
        WITH counts AS (SELECT {key_cols} count(*) AS n FROM spans s WHERE {scope} GROUP BY ALL)
        SELECT {"".join(f"c.{k}, " for k in keys)}{col_sql} FROM spans s JOIN counts c ON {join}
        WHERE {scope} AND {h} < 1000003 * least(1.0, $cap / c.n)"""
    else:
        sql = f"""
        WITH counts AS (SELECT count(*) AS n FROM spans s WHERE {scope})
        SELECT {col_sql} FROM spans s, counts c WHERE {scope} AND {h} < 1000003 * least(1.0, $cap / c.n)"""
    return store.query(sql, {"start": start, "end": end, "cap": cap, **(params or {})})


@by_dialect
def sample_groups(store: Store, start: datetime, end: datetime, keys: Sequence[str],
                  columns: dict[str, tuple[str, str]], cap: int, where: str = "TRUE") -> tuple[pa.Table, pa.Table]:
    """The sample of `sampled_spans` in two tables, for statistics over many groups at once:

    groups: one row per key group, ordered by the keys (its index is the group id) with `n` calls;
    values: `gid` and per column ({alias: (expression, 'num'|'cat')}) the value (numeric ones as
    DOUBLE, categories as VARCHAR), rows ordered by gid. Spans arriving between the two reads are
    left out (their group is unknown), so a rerun on settled data gives the same sample.
    """
    key_sql = {"service_name": f"coalesce(s.service_name, '{NONE}')",
               "model": _MODEL_LABEL,
               "model_version": f"coalesce(s.model_version, '{NONE}')",
               "route": f"coalesce(s.route, '{NONE}')", "hour": "date_trunc('hour', s.start_time)"}
    scope = f"s.start_time >= $start AND s.start_time < $end AND s.is_llm AND ({where})"
    params = {"start": start, "end": end}
    groups = store.query(f"""SELECT {", ".join(f"{key_sql[k]} AS {k}" for k in keys)}, count(*) AS n
                             FROM spans s WHERE {scope} GROUP BY ALL ORDER BY ALL""", params)
    # every attribute the columns read comes out of one parse of the JSON (list-of-paths form)
    paths: list[str] = []

    def one_parse(m: re.Match) -> str:
        if m.group(1) not in paths:
            paths.append(m.group(1))
        return f"s._attrs[{paths.index(m.group(1)) + 1}]"

    exprs = {alias: (_JSON_ATTR.sub(one_parse, expr), kind) for alias, (expr, kind) in columns.items()}
    attrs = f", json_extract_string(s.attributes, [{', '.join(paths)}]) AS _attrs" if paths else ""
    picked = ", ".join(f"TRY_CAST({expr} AS DOUBLE) AS {quote_ident(alias)}" if kind == "num"
                       else f"({expr})::VARCHAR AS {quote_ident(alias)}"
                       for alias, (expr, kind) in exprs.items())
    unnest = ", ".join(f"unnest($k{i}) AS {k}" for i, k in enumerate(keys))
    sql = f"""
    WITH g AS (SELECT {unnest}, unnest($n) AS n, unnest(range(len($n))) AS gid),
    kept AS (SELECT g.gid, s.*{attrs} FROM spans s JOIN g ON {" AND ".join(f"g.{k} = {key_sql[k]}" for k in keys)}
             WHERE {scope} AND hash(s.trace_id, s.span_id) % 1000003 < 1000003 * least(1.0, $cap / g.n))
    SELECT gid::INTEGER AS gid, {picked} FROM kept s ORDER BY gid"""
    key_params = {f"k{i}": groups.column(k).to_pylist() for i, k in enumerate(keys)}
    values = store.query(sql, {**params, **key_params, "n": groups.column("n").to_pylist(), "cap": cap})
    return groups, values


_JSON_ATTR = re.compile(r"json_extract_string\(s\.attributes, ('[^']*')\)")


CONFIDENCE_KEYS = ("service_name", "model", "model_version")
DRIFT_KEYS = ("service_name", "route")


def confidence_groups(store: Store, start: datetime, end: datetime, cap: int,
                      by_hour: bool = False) -> tuple[pa.Table, pa.Table]:
    return sample_groups(store, start, end, CONFIDENCE_KEYS + (("hour",) if by_hour else ()),
                         {"confidence": ("s.confidence", "num")}, cap,
                         "s.confidence IS NOT NULL AND s.arm IS DISTINCT FROM 'shadow'")


def drift_groups(store: Store, start: datetime, end: datetime, columns: Sequence[tuple[str, str]], cap: int,
                 by_hour: bool = False) -> tuple[pa.Table, pa.Table]:
    """`columns`: (name, 'num'|'cat') pairs, a spans column, `prompt_chars` or `attr:<key>`."""
    return sample_groups(store, start, end, DRIFT_KEYS + (("hour",) if by_hour else ()),
                         {name: (_column_expr(name), kind) for name, kind in columns}, cap,
                         "s.arm IS DISTINCT FROM 'shadow'")


def drift_sample(store: Store, start: datetime, end: datetime, columns: Sequence[str], cap: int,
                 by_hour: bool = False, route: str | None = None, service: str | None = None) -> pa.Table:
    """Sampled drift columns per route (optionally one route, one service) as rows."""
    return sampled_spans(store, start, end, ("service_name", "route") + (("hour",) if by_hour else ()),
                         {c: _column_expr(c) for c in columns}, cap,
                         "s.arm IS DISTINCT FROM 'shadow' AND ($route IS NULL OR s.route = $route) "
                         "AND ($service IS NULL OR s.service_name = $service)", {"route": route, "service": service})


@by_dialect
def route_exists(store: Store, route: str, service: str | None = None) -> bool:
    """Whether any model call ever carried this route (and service)."""
    return store.scalar("SELECT count(*) > 0 FROM (SELECT 1 FROM spans WHERE is_llm AND route = $route "
                        "AND ($service IS NULL OR service_name = $service) LIMIT 1)",
                        {"route": route, "service": service}) or False


@by_dialect
def saved_report(store: Store, report_id: str) -> dict[str, Any] | None:
    """The analysis_reports row of a saved (Evidently HTML) report by its id."""
    rows = store.query("SELECT * FROM analysis_reports WHERE analyzer = 'evidently' AND kind = 'html_report' "
                       "AND json_extract_string(body, '$.id') = $id ORDER BY computed_at DESC LIMIT 1",
                       {"id": report_id}).to_pylist()
    return rows[0] if rows else None


@by_dialect
def hourly_confidence_means(store: Store, start: datetime, end: datetime) -> pa.Table:
    return store.query(f"""
        SELECT coalesce(service_name, '{NONE}') AS service_name, coalesce({model_sql()}, '{NONE}') AS model,
               coalesce(model_version, '{NONE}') AS model_version, date_trunc('hour', start_time) AS hour,
               avg(confidence) AS mean
        FROM {RANGED_SPANS} WHERE start_time >= $start AND start_time < $end AND is_llm AND confidence IS NOT NULL
          AND arm IS DISTINCT FROM 'shadow'
        GROUP BY ALL ORDER BY hour""", {"start": start, "end": end})


@by_dialect
def canary_sample(store: Store, start: datetime, end: datetime, prices: Sequence[Price], cap: int,
                  baseline_ratio: float = 5.0) -> pa.Table:
    """Per-call values of baseline and canary spans, per hour (`hour`), in the services that had
    canary traffic in that hour; at most about `cap` calls per hour, service and arm, and of the
    baseline about `baseline_ratio` times the canary's calls (at least 1,000), by span-id hash."""
    cte, params = _prices_cte(prices)
    return store.query(f"""
        WITH {cte},
        c AS (SELECT DISTINCT date_trunc('hour', start_time) AS hour, service_name FROM spans
              WHERE start_time >= $start AND start_time < $end AND is_llm AND arm = 'canary'),
        x AS (SELECT date_trunc('hour', s.start_time) AS hour, coalesce(s.service_name, '{NONE}') AS service_name,
                     s.arm, {_MODEL_LABEL} AS model,
                     coalesce(s.model_version, '{NONE}') AS model_version,
                     s.duration_ms, (s.status_code = 'error') AS is_err, {_COST} AS cost, s.quality_score,
                     s.confidence, hash(s.trace_id, s.span_id) % 1000003 AS h
              FROM {RANGED_SPANS} s LEFT JOIN prices p ON p.pm = coalesce(s.response_model, s.request_model)
              SEMI JOIN c ON c.hour = date_trunc('hour', s.start_time) AND c.service_name = s.service_name
              WHERE s.start_time >= $start AND s.start_time < $end AND s.is_llm AND s.arm IN ('baseline', 'canary')),
        n AS (SELECT hour, service_name, arm, count(*) AS n FROM x GROUP BY ALL),
        keep AS (SELECT *, CASE WHEN arm = 'canary' THEN $cap
                                ELSE least($cap, greatest(1000, $ratio * max(n) FILTER (WHERE arm = 'canary')
                                                                  OVER (PARTITION BY hour, service_name))) END AS k
                 FROM n)
        SELECT x.* EXCLUDE (h) FROM x JOIN keep USING (hour, service_name, arm)
        WHERE x.h < 1000003 * least(1.0, keep.k / keep.n)
        ORDER BY x.hour, x.service_name
        """, {"start": start, "end": end, "cap": cap, "ratio": baseline_ratio, **params})


@by_dialect
def feedback_by_version(store: Store, start: datetime, end: datetime) -> pa.Table:
    return store.query(f"""
        SELECT date_trunc('hour', time) AS hour, coalesce(service_name, '{NONE}') AS service_name,
               coalesce(model_version, '{NONE}') AS model_version,
               count(*) AS reviewed, count(*) FILTER (WHERE lower(action) IN ('modified', 'rejected')) AS overrides
        FROM feedback WHERE time >= $start AND time < $end GROUP BY ALL""", {"start": start, "end": end})


@by_dialect
def has_shadow_calls(store: Store, start: datetime, end: datetime) -> bool:
    """Whether any shadow call started in [start, end) (a scan of one column, so windows without
    shadow traffic skip the pairing join)."""
    return store.scalar("SELECT 1 FROM spans WHERE start_time >= $start AND start_time < $end AND arm = 'shadow' "
                        "AND is_llm LIMIT 1", {"start": start, "end": end}) is not None


@by_dialect
def shadow_pairs(store: Store, start: datetime, end: datetime) -> pa.Table:
    """Shadow calls paired with their primary call (same request id, else same trace), with both outputs."""
    return store.query(f"""
        WITH sh AS (SELECT * FROM spans WHERE start_time >= $start AND start_time < $end AND is_llm AND arm = 'shadow'),
        pr AS (SELECT * FROM spans WHERE start_time >= $start - INTERVAL 10 MINUTE AND start_time < $end + INTERVAL 10 MINUTE
                 AND is_llm AND arm IS DISTINCT FROM 'shadow'
                 AND trace_id IN (SELECT trace_id FROM sh)),
        pairs AS (
          SELECT sh.start_time, coalesce(sh.service_name, '{NONE}') AS service_name,
                 {_model_label("sh")} AS model,
                 coalesce(sh.model_version, '{NONE}') AS model_version, coalesce(sh.route, '{NONE}') AS route,
                 sh.trace_id AS shadow_trace, sh.span_id AS shadow_span, pr.trace_id AS primary_trace,
                 pr.span_id AS primary_span,
                 json_extract_string(sh.attributes, '$."aiwatch.output.hash"') AS shadow_hash,
                 json_extract_string(pr.attributes, '$."aiwatch.output.hash"') AS primary_hash,
                 row_number() OVER (PARTITION BY sh.span_id ORDER BY (pr.request_id = sh.request_id) DESC, pr.start_time)
                   AS rn
          FROM sh JOIN pr ON pr.trace_id = sh.trace_id AND pr.span_id <> sh.span_id
                          AND (sh.request_id IS NULL OR pr.request_id IS NULL OR pr.request_id = sh.request_id))
        SELECT p.* EXCLUDE (rn), sc.output_text AS shadow_output, pc.output_text AS primary_output
        FROM pairs p
        LEFT JOIN span_content sc ON sc.trace_id = p.shadow_trace AND sc.span_id = p.shadow_span
        LEFT JOIN span_content pc ON pc.trace_id = p.primary_trace AND pc.span_id = p.primary_span
        WHERE rn = 1""", {"start": start, "end": end})


# --- SLOs and burn rates -----------------------------------------------------------------------

@by_dialect
def slo_minute_counts(store: Store, start: datetime, end: datetime, route: str | None,
                      threshold_ms: float | None) -> pa.Table:
    """Per minute and service: total calls and bad calls (errors, or slower than threshold_ms)."""
    bad = "status_code = 'error'" if threshold_ms is None else \
        f"(status_code = 'error' OR duration_ms > {float(threshold_ms)!r})"
    return store.query(f"""
        SELECT date_trunc('minute', start_time) AS time, coalesce(service_name, '{NONE}') AS service_name,
               count(*)::DOUBLE AS total, count(*) FILTER (WHERE {bad})::DOUBLE AS bad
        FROM spans WHERE start_time >= $start AND start_time < $end AND is_llm AND arm IS DISTINCT FROM 'shadow'
          AND ($route IS NULL OR route = $route)
        GROUP BY ALL""", {"start": start, "end": end, "route": route})


@by_dialect
def stored_metric(store: Store, metric: str | Sequence[str], grain: str, start: datetime, end: datetime) -> pa.Table:
    """Stored rows of one or more metrics (for analyzers that build on their own earlier output)."""
    metrics = {f"m{i}": m for i, m in enumerate([metric] if isinstance(metric, str) else metric)}
    # each from its own table; one equality per branch: DuckDB pushes `metric = constant` into the
    # scan, not an IN list
    return store.query(" UNION ALL ".join(
        f"""SELECT time, ${k} AS metric, service_name, model, model_version, route, arm, {m} AS value
            FROM traffic_metrics WHERE {m} IS NOT NULL AND grain = $grain AND time >= $start AND time < $end"""
        if m in TRAFFIC_METRICS else
        f"""SELECT time, metric, service_name, model, model_version, route, arm, value FROM analysis_metric_rows
            WHERE metric = ${k} AND grain = $grain AND time >= $start AND time < $end""" for k, m in metrics.items()),
        {**metrics, "grain": grain, "start": start, "end": end})


# --- named read queries (the read API) ------------------------------------------------------------

GRAIN = Param("grain", description="Bucket size: 1m, 1h, or a burn window (5m, 30m, 2h, 6h, 1d, 3d).", default="1m")
ARM = Param("arm", description="Canary arm: baseline, canary or shadow.")
_LABEL_HELP = " Omitted: the rollup over all; '*': every value (breakdown)."


def _label_filter(col: str, param: str) -> str:
    return f"(( ${param} IS NULL AND {col} IS NULL) OR ${param} = '*' AND {col} IS NOT NULL OR {col} = ${param})"


# this module's read queries (the analyzers' outputs); store.queries.store_queries() collects them
QUERIES: list[NamedQuery] = []
QUERIES.append(NamedQuery(
    "metrics", "Analyzer output (analysis_metrics) in a window: one row per bucket, metric and labels. "
    "Label parameters omitted select the rollup over all values; '*' selects every value.",
    (START, END, GRAIN, Param("metric", required=True, description="Metric name or comma-separated names."),
     Param("service", description="service.name." + _LABEL_HELP),
     Param("model", description="Model." + _LABEL_HELP),
     Param("version", description="Model version." + _LABEL_HELP),
     Param("route", description="Route." + _LABEL_HELP),
     Param("arm", description="Arm." + _LABEL_HELP), LIMIT),
    sql=f"""SELECT time, grain, metric, service_name, model, model_version, route, arm, value, computed_at
            FROM analysis_metrics
            WHERE time >= $start AND time < $end AND grain = $grain
              AND list_contains(string_split(replace($metric, ' ', ''), ','), metric)
              AND {_label_filter('service_name', 'service')} AND {_label_filter('model', 'model')}
              AND {_label_filter('model_version', 'version')} AND {_label_filter('route', 'route')}
              AND {_label_filter('arm', 'arm')}
            ORDER BY time, metric, service_name, model, model_version, route, arm LIMIT $limit""",
    clickhouse_sql=f"""SELECT time, grain, metric, service_name, model, model_version, route, arm, value, computed_at
            FROM analysis_metrics
            WHERE time >= $start AND time < $end AND grain = $grain
              AND has(splitByChar(',', replaceAll($metric, ' ', '')), metric)
              AND {_label_filter('service_name', 'service')} AND {_label_filter('model', 'model')}
              AND {_label_filter('model_version', 'version')} AND {_label_filter('route', 'route')}
              AND {_label_filter('arm', 'arm')}
            ORDER BY time, metric, service_name, model, model_version, route, arm LIMIT $limit""",
    tags=("analysis",)))

QUERIES.append(NamedQuery(
    "metric_names", "Metric names present in analysis_metrics in a window, with their grains.",
    (START, END),
    sql="""SELECT metric, grain, count(*) AS rows, max(time) AS latest FROM analysis_metrics
           WHERE time >= $start AND time < $end GROUP BY ALL ORDER BY metric, grain""",
    tags=("analysis",)))


def _reports_sql(analyzer: str) -> str:
    return f"""SELECT time, window_end, kind, service_name, model, model_version, route, arm, verdict, body, computed_at
               FROM analysis_reports WHERE analyzer = '{analyzer}' AND time >= $start AND time < $end
                 AND ($service IS NULL OR service_name = $service)"""


QUERIES.append(NamedQuery(
    "canary", "Canary verdicts with their evidence (per metric: statistic, p-value, effect, tolerance).",
    (START, END, SERVICE, VERSION, LIMIT),
    sql=_reports_sql("canary") + " AND ($version IS NULL OR model_version = $version) ORDER BY time DESC LIMIT $limit",
    tags=("analysis",)))

QUERIES.append(NamedQuery(
    "drift", "Input drift per route and window: per-column test, score, threshold, verdict, and drift share.",
    (START, END, SERVICE, ROUTE, LIMIT),
    sql=_reports_sql("drift") + " AND ($route IS NULL OR route = $route) ORDER BY time DESC LIMIT $limit",
    tags=("analysis",)))

QUERIES.append(NamedQuery(
    "confidence_shift", "Confidence shift reports: KS, PSI, Wasserstein against the reference, per version.",
    (START, END, SERVICE, VERSION, LIMIT),
    sql=_reports_sql("confidence") + " AND ($version IS NULL OR model_version = $version) ORDER BY time DESC LIMIT $limit",
    tags=("analysis",)))

QUERIES.append(NamedQuery(
    "reports", "Saved analysis reports of any analyzer (e.g. Evidently HTML report paths).",
    (START, END, SERVICE, Param("analyzer", description="Analyzer name (evidently, drift, canary, ...)."), LIMIT),
    sql="""SELECT * FROM analysis_reports WHERE time >= $start AND time < $end
             AND ($service IS NULL OR service_name = $service) AND ($analyzer IS NULL OR analyzer = $analyzer)
           ORDER BY computed_at DESC LIMIT $limit""",
    tags=("analysis",)))

QUERIES.append(NamedQuery(
    "overrides", "Human overrides by route, model and reason: reviewed, modified, rejected, override rate.",
    (START, END, SERVICE, MODEL, VERSION, ROUTE, LIMIT),
    sql="""SELECT route, model, model_version, coalesce(reason, '') AS reason,
                  count(*) AS reviewed,
                  count(*) FILTER (WHERE lower(action) = 'modified') AS modified,
                  count(*) FILTER (WHERE lower(action) = 'rejected') AS rejected,
                  avg((lower(action) IN ('modified', 'rejected'))::INT) AS override_rate
           FROM feedback WHERE time >= $start AND time < $end
             AND ($service IS NULL OR service_name = $service) AND ($model IS NULL OR model = $model)
             AND ($version IS NULL OR model_version = $version) AND ($route IS NULL OR route = $route)
           GROUP BY ALL ORDER BY reviewed DESC LIMIT $limit""",
    tags=("analysis",)))


def _top_spenders(store: Store, params: dict[str, Any]) -> pa.Table:
    from store.prices import resolve_prices

    prices = resolve_prices(distinct_models(store, params["start"], params["end"]))
    cte, price_params = _prices_cte(prices, store.dialect)
    by = {"route": "route", "user": "user_id", "route_user": "route, user_id"}[params["by"]]
    sql = f"""WITH {cte}
              SELECT {by}, count(*) AS requests, sum(coalesce(s.input_tokens, 0)) AS input_tokens,
                     sum(coalesce(s.output_tokens, 0)) AS output_tokens, sum({_COST}) AS cost_usd,
                     sum({_COST}) / count(*) AS cost_per_request_usd
              FROM spans s LEFT JOIN prices p ON p.pm = coalesce(s.response_model, s.request_model)
              WHERE s.is_llm AND {span_filter_sql('s')}
              GROUP BY ALL ORDER BY cost_usd DESC NULLS LAST LIMIT $limit"""
    return store.query(sql, {**{k: params[k] for k in ("start", "end", "service", "model", "version", "route",
                                                        "limit")}, **price_params})


QUERIES.append(NamedQuery(
    "top_spenders", "Cost by route and/or user (the span's cost, else tokens x the price table).",
    (START, END, SERVICE, MODEL, VERSION, ROUTE,
     Param("by", description="Group by route, user or route_user.", default="route",
           choices=("route", "user", "route_user")), Param("limit", "integer", "Most rows.", "50", maximum=10_000)),
    run=_top_spenders, tags=("analysis",)))

def _prices_applied(store: Store, params: dict[str, Any]) -> pa.Table:
    from store.prices import price_rows

    counts = store.query(f"""
        SELECT {_PRICED_MODEL} AS model, count(*) AS calls,
               count(*) FILTER (WHERE cost_usd IS NOT NULL) AS calls_with_own_cost
        FROM spans s WHERE is_llm AND arm IS DISTINCT FROM 'shadow' AND {_PRICED_MODEL} IS NOT NULL
          AND {span_filter_sql('s')}
        GROUP BY ALL ORDER BY calls DESC, model LIMIT 10000""",
        {k: params[k] for k in ("start", "end", "service", "model", "version", "route")}).to_pylist()
    prices = {r["model"]: r for r in price_rows([c["model"] for c in counts])}
    rows = [{**c, "calls_priced_here": c["calls"] - c["calls_with_own_cost"] if prices[c["model"]]["price_source"]
             else 0, **{k: v for k, v in prices[c["model"]].items() if k != "model"}} for c in counts]
    return pa.Table.from_pylist(rows, schema=PRICES_APPLIED_SCHEMA)


PRICES_APPLIED_SCHEMA = pa.schema([
    ("model", pa.string()), ("calls", pa.int64()), ("calls_with_own_cost", pa.int64()),
    ("calls_priced_here", pa.int64()), ("price_source", pa.string()), ("input_per_mtok", pa.float64()),
    ("cached_input_per_mtok", pa.float64()), ("output_per_mtok", pa.float64()), ("reasoning_per_mtok", pa.float64()),
])

QUERIES.append(NamedQuery(
    "prices", "The price each model's calls were costed with: per model that answered (the snapshot name, else "
    "the requested one) its calls, those that carried their own cost (the shim's), those priced here from tokens, "
    "and the price applied in USD per million tokens with its source: an override from the prices_file setting "
    "(with its version) or genai-prices (with its version and id); no source: unpriced.",
    (START, END, SERVICE, MODEL, VERSION, ROUTE), run=_prices_applied, tags=("analysis",)))

QUERIES.append(NamedQuery(
    "latency_distribution", "Histogram of model-call durations on log-spaced bins (10 per decade), exact counts.",
    (START, END, SERVICE, MODEL, VERSION, ROUTE,
     Param("status", description="ok (not error, default), error or all.", default="ok", choices=("ok", "error", "all"))),
    sql=f"""SELECT power(10, b / 10.0) AS bin_start_ms, power(10, (b + 1) / 10.0) AS bin_end_ms, count(*) AS count
            FROM (SELECT floor(log10(greatest(duration_ms, 0.001)) * 10)::INT AS b FROM spans
                  WHERE is_llm AND {span_filter_sql()}
                    AND ($status = 'all' OR ($status = 'error') = (status_code = 'error')))
            GROUP BY b ORDER BY b""",
    tags=("analysis",)))

QUERIES.append(NamedQuery(
    "confidence_distribution", "Histogram of confidence scores on [0, 1] (bins equal-width) with quantiles.",
    (START, END, SERVICE, MODEL, VERSION, ROUTE, Param("bins", "integer", "Number of bins.", "20", maximum=1000),
     Param("quantiles", "boolean", "Also the quantiles (false: NULL; a baseline histogram over days skips their "
           "sort).", "true")),
    sql=f"""WITH c AS (SELECT least(greatest(confidence, 0), 1) AS x FROM spans
                       WHERE is_llm AND confidence IS NOT NULL AND {span_filter_sql()}),
            q AS (SELECT quantile_cont(x, [0.05, 0.25, 0.5, 0.75, 0.95]) FILTER (WHERE $quantiles) AS qs,
                         count(*) AS n FROM c)
            SELECT least(floor(x * $bins), $bins - 1)::INT / $bins::DOUBLE AS bin_start,
                   (least(floor(x * $bins), $bins - 1)::INT + 1) / $bins::DOUBLE AS bin_end,
                   count(*) AS count, any_value(q.n) AS total, any_value(q.qs[1]) AS p05,
                   any_value(q.qs[2]) AS p25, any_value(q.qs[3]) AS p50, any_value(q.qs[4]) AS p75,
                   any_value(q.qs[5]) AS p95
            FROM c, q GROUP BY 1, 2 ORDER BY 1""",
    clickhouse_sql=f"""WITH c AS (SELECT least(greatest(confidence, 0), 1) AS x FROM spans
                       WHERE is_llm AND confidence IS NOT NULL AND {span_filter_sql()}),
            q AS (SELECT if($quantiles, quantilesExactInclusiveIf(0.05, 0.25, 0.5, 0.75, 0.95)(x, $quantiles), [])
                         AS qs, count(*) AS n FROM c)
            SELECT least(floor(x * $bins), toFloat64($bins) - 1) / toFloat64($bins) AS bin_start,
                   (least(floor(x * $bins), toFloat64($bins) - 1) + 1) / toFloat64($bins) AS bin_end,
                   count(*) AS count, any(q.n) AS total, any(q.qs[1]) AS p05,
                   any(q.qs[2]) AS p25, any(q.qs[3]) AS p50, any(q.qs[4]) AS p75,
                   any(q.qs[5]) AS p95
            FROM c, q GROUP BY 1, 2 ORDER BY 1""",
    tags=("analysis",)))

QUERIES.append(NamedQuery(
    "quarantined_windows", "Minutes an analyzer could not compute and skipped, with the error (newest first).",
    (Param("start", "time", "Window start.", "-7d"), END, LIMIT),
    sql="""SELECT time AS window_start, window_end, analyzer, json_extract_string(body, '$.error') AS error,
                  computed_at AS quarantined_at
           FROM analysis_reports WHERE kind = 'quarantine' AND time >= $start AND time < $end
           ORDER BY time DESC, analyzer LIMIT $limit""",
    clickhouse_sql="""SELECT time AS window_start, window_end, analyzer, JSONExtractString(body, 'error') AS error,
                  computed_at AS quarantined_at
           FROM analysis_reports WHERE kind = 'quarantine' AND time >= $start AND time < $end
           ORDER BY time DESC, analyzer LIMIT $limit""",
    tags=("analysis",)))

# --- route health: per route and model, calls, failures and slow calls against learned baselines ---

ROUTE_KEYS = ("service_name", "route", "model")
_ROUTE_LABELS = f"""coalesce(s.service_name, '{NONE}') AS service_name, coalesce(s.route, '{NONE}') AS route,
        {_MODEL_LABEL} AS model"""


@by_dialect
def route_hourly_stats(store: Store, start: datetime, end: datetime) -> pa.Table:
    """Per hour, service, route and model (model calls, shadow excluded): calls, failures, and the
    exact p99 and count of the successful calls' durations."""
    return store.query(f"""
        SELECT date_trunc('hour', s.start_time) AS hour, {_ROUTE_LABELS},
               count(*)::DOUBLE AS calls, count(*) FILTER (WHERE s.status_code = 'error')::DOUBLE AS errors,
               count(s.duration_ms) FILTER (WHERE s.status_code <> 'error')::DOUBLE AS ok_calls,
               quantile_cont(s.duration_ms, 0.99) FILTER (WHERE s.status_code <> 'error') AS p99_ms
        FROM spans s WHERE s.start_time >= $start AND s.start_time < $end AND {_MODEL_CALLS}
        GROUP BY ALL ORDER BY ALL""", {"start": start, "end": end})


@by_dialect
def route_call_values(store: Store, start: datetime, end: datetime, categories: Sequence[str] = (),
                      prices: Sequence[Price] = ()) -> pa.Table:
    """Each successful model call's start, service, route, model, confidence, output and input
    tokens, cost (its own, else tokens x `prices`; NULL when neither), and the categorical drift
    `categories` (spans columns or `attr:<key>`, as `cat0`, `cat1`, ...): the values route_shift
    ranks against the route's trailing calls, in start order."""
    cte, params = _prices_cte(prices)
    cats = "".join(f", CAST({_column_expr(name)} AS VARCHAR) AS cat{i}" for i, name in enumerate(categories))
    return store.query(f"""
        WITH {cte}
        SELECT s.start_time AS time, {_ROUTE_LABELS}, s.confidence::DOUBLE AS confidence,
               s.output_tokens::DOUBLE AS output_tokens, s.input_tokens::DOUBLE AS input_tokens,
               {_in_range(_COST, "cost_usd")}::DOUBLE AS cost{cats}
        FROM {RANGED_SPANS} s LEFT JOIN prices p ON p.pm = coalesce(s.response_model, s.request_model)
        WHERE s.start_time >= $start AND s.start_time < $end AND {_MODEL_CALLS}
          AND s.status_code IS DISTINCT FROM 'error'
        ORDER BY s.start_time""", {"start": start, "end": end, **params})


@by_dialect
def route_minute_counts(store: Store, start: datetime, end: datetime, thresholds: pa.Table) -> pa.Table:
    """Per minute, service, route and model: calls, failures, and successful calls slower than the
    threshold in force for their hour (`thresholds`: hour, service_name, route, model, threshold_ms;
    NULL slow count where the route has none yet)."""
    con_params = {"start": start, "end": end, **{f"t_{c}": thresholds.column(c).to_pylist()
                                                 for c in ("hour", "service_name", "route", "model", "threshold_ms")}}
    return store.query(f"""
        WITH t AS (SELECT unnest($t_hour)::TIMESTAMP AS hour, unnest($t_service_name) AS service_name,
                          unnest($t_route) AS route, unnest($t_model) AS model,
                          unnest($t_threshold_ms)::DOUBLE AS threshold_ms),
        c AS (SELECT s.start_time, {_ROUTE_LABELS}, s.status_code = 'error' AS is_err, s.duration_ms
              FROM spans s WHERE s.start_time >= $start AND s.start_time < $end AND {_MODEL_CALLS})
        SELECT date_trunc('minute', c.start_time) AS time, c.service_name, c.route, c.model,
               count(*)::DOUBLE AS calls, count(*) FILTER (WHERE c.is_err)::DOUBLE AS errors,
               CASE WHEN any_value(t.threshold_ms) IS NULL THEN NULL ELSE
                 count(*) FILTER (WHERE NOT c.is_err AND c.duration_ms > t.threshold_ms)::DOUBLE END AS slow
        FROM c LEFT JOIN t ON t.hour = date_trunc('hour', c.start_time) AND t.service_name = c.service_name
                          AND t.route = c.route AND t.model = c.model
        GROUP BY ALL ORDER BY ALL""", con_params)
