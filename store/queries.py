"""Named, parameterised read queries: the only reads clients can ask the server for.

Clients name a query and pass typed parameters; they never send SQL. The registry also yields the
OpenAPI description of the read API. Later stages (analyzers, alerts) register their own queries
here with `register`.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from core import durations
from store.base import Store
from store.sql import quote_literal


class BadParameter(ValueError):
    """A query parameter is missing or malformed; the message names it."""


def parse_time(text: str, now: datetime | None = None) -> datetime:
    """core.durations.parse_time, failing as a BadParameter (the read API's 400)."""
    try:
        return durations.parse_time(text, now)
    except durations.BadTime as exc:
        raise BadParameter(str(exc)) from None


@dataclass(frozen=True)
class Param:
    name: str
    type: str = "string"             # string | time | integer | boolean
    description: str = ""
    default: Any = None
    required: bool = False
    maximum: int | None = None
    choices: tuple[str, ...] | None = None

    def coerce(self, raw: str | None) -> Any:
        if raw is None or raw == "":
            if self.required:
                raise BadParameter(f"parameter {self.name!r} is required")
            raw = self.default
            if raw is None or not isinstance(raw, str):
                return raw
        if self.type == "time":
            return parse_time(raw)
        if self.type == "integer":
            try:
                value = int(raw)
            except ValueError:
                raise BadParameter(f"parameter {self.name!r}: {raw!r} is not an integer") from None
            if value < 0 or (self.maximum is not None and value > self.maximum):
                raise BadParameter(f"parameter {self.name!r} must be between 0 and {self.maximum}")
            return value
        if self.type == "boolean":
            if raw.lower() not in ("true", "false", "1", "0"):
                raise BadParameter(f"parameter {self.name!r}: {raw!r} is not true or false")
            return raw.lower() in ("true", "1")
        if self.choices and raw not in self.choices:
            raise BadParameter(f"parameter {self.name!r} must be one of {', '.join(self.choices)}")
        if len(raw) > 1024:
            raise BadParameter(f"parameter {self.name!r} is too long")
        return raw


# Filters every time-series query accepts: time range plus the dimensions SREs slice by.
START = Param("start", "time", "Window start (ISO 8601, unix seconds or relative like -1h).", "-1h")
END = Param("end", "time", "Window end.", "now")
SERVICE = Param("service", description="service.name")
MODEL = Param("model", description="Model the service asked for (request model, else response model).")
VERSION = Param("version", description="Model version (aiwatch.model.version).")
ROUTE = Param("route", description="Route (aiwatch.route).")
FILTERS = (START, END, SERVICE, MODEL, VERSION, ROUTE)
LIMIT = Param("limit", "integer", "Most rows returned.", "1000", maximum=100_000)


def model_sql(alias: str = "") -> str:
    """The model a call is attributed to: the one the service asked for, else the one that answered.

    Providers answer with a snapshot name (gpt-4o-mini -> gpt-4o-mini-2024-07-18) and a failed call
    carries only the requested name, so keying on the response would split one model in two, the
    requested-name half holding only failures. The snapshot stays its own column (response_model)."""
    p = f"{alias}." if alias else ""
    return f"coalesce({p}request_model, {p}response_model)"


def span_filter_sql(alias: str = "") -> str:
    """WHERE clause over spans for the standard filters (named parameters)."""
    p = f"{alias}." if alias else ""
    return (f"{p}start_time >= $start AND {p}start_time < $end"
            f" AND ($service IS NULL OR {p}service_name = $service)"
            f" AND ($model IS NULL OR {model_sql(alias)} = $model)"
            f" AND ($version IS NULL OR {p}model_version = $version)"
            f" AND ($route IS NULL OR {p}route = $route)")


Runner = Callable[[Any, dict[str, Any]], pa.Table]


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    params: tuple[Param, ...]
    sql: str | None = None                 # run with the coerced params as named parameters
    clickhouse_sql: str | None = None      # the ClickHouse backend's statement where `sql` uses DuckDB's own functions
    run: Runner | None = None              # or a function(store, params) for multi-step reads
    tags: tuple[str, ...] = field(default=("telemetry",))

    def coerce(self, raw: dict[str, str]) -> dict[str, Any]:
        known = {p.name for p in self.params}
        unknown = set(raw) - known - {"format"}
        if unknown:
            raise BadParameter(f"unknown parameter(s) {', '.join(sorted(unknown))} for query {self.name!r}")
        return {p.name: p.coerce(raw.get(p.name)) for p in self.params}

    def execute(self, store: Store, raw: dict[str, str]) -> pa.Table:
        params = self.coerce(raw)
        if self.run is not None:
            return self.run(store, params)
        sql = self.sql_for(store)
        return store.query(sql, self._used(sql, params))

    def execute_capped(self, store: Store, raw: dict[str, str], max_bytes: int) -> tuple[pa.Table, bool]:
        """(rows, truncated): SQL queries stop reading once `max_bytes` of rows are held."""
        params = self.coerce(raw)
        if self.run is not None:  # multi-step reads return small, aggregated tables
            return self.run(store, params), False
        sql = self.sql_for(store)
        return store.query_capped(sql, self._used(sql, params), max_bytes)

    def sql_for(self, store: Store) -> str:
        """The statement for the store's engine (`$name` parameters on both)."""
        if getattr(store, "dialect", "duckdb") == "clickhouse" and self.clickhouse_sql is not None:
            return self.clickhouse_sql
        assert self.sql is not None
        return self.sql

    def _used(self, sql: str, params: dict[str, Any]) -> dict[str, Any]:
        return {p.name: v for p, v in zip(self.params, params.values()) if f"${p.name}" in sql}


class QueryRegistry:
    """The queries a server answers, by name: built from the stages' `QUERIES` lists on purpose
    (store_queries() and the server), never filled by whichever modules happen to be imported."""

    def __init__(self, *groups: Iterable[NamedQuery]) -> None:
        self._queries: dict[str, NamedQuery] = {}
        for group in groups:
            self.extend(group)

    def extend(self, queries: Iterable[NamedQuery]) -> None:
        for query in queries:
            if query.name in self._queries:
                raise ValueError(f"query {query.name!r} is registered twice")
            self._queries[query.name] = query

    def get(self, name: str) -> NamedQuery | None:
        return self._queries.get(name)

    def __getitem__(self, name: str) -> NamedQuery:
        return self._queries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._queries

    def __iter__(self) -> Iterator[str]:
        return iter(self._queries)

    def __len__(self) -> int:
        return len(self._queries)

    def values(self) -> list[NamedQuery]:
        return list(self._queries.values())

    def items(self) -> list[tuple[str, NamedQuery]]:
        return list(self._queries.items())

    def openapi(self, version: str) -> dict[str, Any]:
        return openapi(self, version)


def store_queries() -> QueryRegistry:
    """The store's own queries: telemetry (this module), analysis outputs and incidents. Stages add
    theirs to the server's registry from their `QUERIES` (aiwatch.stages.stage_queries)."""
    from store import analytics, incidents

    return QueryRegistry(QUERIES, analytics.QUERIES, incidents.QUERIES)


QUERIES: list[NamedQuery] = []   # this module's queries, in the order they are defined below


_SPAN_FIELDS = """trace_id, span_id, parent_span_id, name, kind, start_time, end_time, duration_ms,
    status_code, status_message, service_name, service_version, deployment_environment, is_llm, operation,
    provider, request_model, response_model, input_tokens, output_tokens, cache_read_tokens, reasoning_tokens,
    finish_reasons, response_id, error_type, http_status, request_id, model_version, route, arm, confidence,
    quality_score, format_ok, fallback_level, retry_count, breaker_state, cost_usd, injection_score, user_id,
    tenant"""
# Resource attributes are stored once (`resources`); the read API shows them under the span's
# attributes as "resource", as when each span carried a copy (older rows still do).
SPAN_ATTRIBUTES_SQL = """CASE WHEN r.attributes IS NULL THEN s.attributes
    ELSE json_merge_patch(coalesce(s.attributes, '{}'), json_object('resource', json(r.attributes)))::VARCHAR
    END AS attributes"""


def spans_with_resources(selected_spans: str, order: str, dialect: str = "duckdb") -> str:
    """The span list columns for the spans `selected_spans` picks (a SELECT over spans), in `order`.
    On ClickHouse resource attributes stay in the Collector's own column (not merged in here)."""
    fields = ", ".join(f"s.{c.strip()}" for c in _SPAN_FIELDS.split(","))
    if dialect == "clickhouse":
        return f"SELECT {fields}, s.attributes AS attributes FROM ({selected_spans}) s ORDER BY {order}"
    return (f"SELECT {fields}, {SPAN_ATTRIBUTES_SQL} FROM ({selected_spans}) s"
            f" LEFT JOIN resources r ON r.resource_id = s.resource_id ORDER BY {order}")


def _both(selected_spans: str, order: str) -> dict[str, Any]:
    return {"sql": spans_with_resources(selected_spans, order),
            "clickhouse_sql": spans_with_resources(selected_spans, order, "clickhouse")}


QUERIES.append(NamedQuery(
    "spans", "Spans in a window, newest first.", FILTERS + (
        Param("llm_only", "boolean", "Only model-call spans.", "false"),
        Param("status", description="unset, ok or error.", choices=("unset", "ok", "error")), LIMIT),
    **_both(f"""SELECT * FROM spans WHERE {span_filter_sql()}
            AND (NOT $llm_only OR is_llm) AND ($status IS NULL OR status_code = $status)
            ORDER BY start_time DESC LIMIT $limit""", "s.start_time DESC")))

QUERIES.append(NamedQuery(
    "trace", "Every span of one trace, in start order (the waterfall).",
    (Param("trace_id", required=True, description="32 hex characters."),),
    **_both("SELECT * FROM spans WHERE trace_id = lower($trace_id)", "s.start_time, s.span_id")))

QUERIES.append(NamedQuery(
    "request", "The spans of one request id (aiwatch.request.id) with their trace.",
    (Param("request_id", required=True),),
    **_both("""SELECT * FROM spans WHERE trace_id IN
            (SELECT trace_id FROM spans WHERE request_id = $request_id)""", "s.start_time, s.span_id")))

QUERIES.append(NamedQuery(
    "span_content", "Stored (redacted, size-capped) message content of a trace's spans.",
    (Param("trace_id", required=True),),
    sql="SELECT * FROM span_content WHERE trace_id = lower($trace_id) ORDER BY start_time"))

QUERIES.append(NamedQuery(
    "audit_events", "Audit records (redacted) in a window, or for one request id.",
    (START, END, SERVICE, ROUTE, Param("request_id"), LIMIT),
    sql="""SELECT * FROM audit_events WHERE ($request_id IS NOT NULL AND request_id = $request_id)
           OR ($request_id IS NULL AND time >= $start AND time < $end
               AND ($service IS NULL OR service_name = $service) AND ($route IS NULL OR route = $route))
           ORDER BY time DESC LIMIT $limit"""))

QUERIES.append(NamedQuery(
    "feedback", "Human review events (accepted / modified / rejected) in a window.",
    (START, END, SERVICE, MODEL, VERSION, ROUTE, LIMIT),
    sql="""SELECT * FROM feedback WHERE time >= $start AND time < $end
           AND ($service IS NULL OR service_name = $service) AND ($model IS NULL OR model = $model)
           AND ($version IS NULL OR model_version = $version) AND ($route IS NULL OR route = $route)
           ORDER BY time DESC LIMIT $limit"""))

QUERIES.append(NamedQuery(
    "resource_metrics", "Resource metric points (CPU, GPU, memory, queue depth) in a window.",
    (START, END, SERVICE, Param("name", description="Metric name."), LIMIT),
    sql="""SELECT * FROM resource_metrics WHERE time >= $start AND time < $end
           AND ($service IS NULL OR service_name = $service) AND ($name IS NULL OR name = $name)
           ORDER BY time LIMIT $limit"""))

QUERIES.append(NamedQuery(
    "logs", "Other log records in a window.", (START, END, SERVICE, LIMIT),
    sql="""SELECT * FROM logs WHERE time >= $start AND time < $end
           AND ($service IS NULL OR service_name = $service) ORDER BY time DESC LIMIT $limit"""))

QUERIES.append(NamedQuery(
    "dimensions", "Distinct services, models (requested), versions, routes and response models (the "
    "provider's snapshot names) seen in a window (for filters).",
    (START, END),
    sql=f"""SELECT DISTINCT service_name, {model_sql()} AS model, model_version, route, response_model
           FROM spans WHERE start_time >= $start AND start_time < $end AND is_llm
           ORDER BY ALL LIMIT 10000"""))

QUERIES.append(NamedQuery(
    "summary", "Per service and model (requested) over a window, with the response snapshots seen: requests, errors, exact latency percentiles, tokens, cost.",
    FILTERS,
    # One sort per group for all three percentiles (the list form of quantile_cont).
    sql=f"""SELECT service_name, model, model_version, requests, errors, error_rate,
              q[1] AS p50_ms, q[2] AS p95_ms, q[3] AS p99_ms, input_tokens, output_tokens, cost_usd, response_models
            FROM (SELECT service_name, {model_sql()} AS model, model_version,
                    string_agg(DISTINCT response_model, ', ' ORDER BY response_model) AS response_models,
                    count(*) AS requests, count(*) FILTER (WHERE status_code = 'error') AS errors,
                    avg((status_code = 'error')::INT) AS error_rate,
                    quantile_cont(duration_ms, [0.5, 0.95, 0.99]) FILTER (WHERE status_code <> 'error') AS q,
                    sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
                    sum(cost_usd) AS cost_usd
                  FROM spans WHERE is_llm AND (arm IS NULL OR arm <> 'shadow') AND {span_filter_sql()}
                  GROUP BY ALL)
            ORDER BY requests DESC""",
    clickhouse_sql=f"""SELECT service_name, model, model_version, requests, errors, error_rate,
              q[1] AS p50_ms, q[2] AS p95_ms, q[3] AS p99_ms, input_tokens, output_tokens, cost_usd, response_models
            FROM (SELECT service_name, {model_sql()} AS model, model_version,
                    nullIf(arrayStringConcat(arraySort(groupUniqArray(response_model)), ', '), '') AS response_models,
                    count(*) AS requests, count(*) FILTER (WHERE status_code = 'error') AS errors,
                    avg((status_code = 'error')::INT) AS error_rate,
                    quantilesExactInclusiveIf(0.5, 0.95, 0.99)(duration_ms, status_code <> 'error') AS q,
                    sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
                    sum(cost_usd) AS cost_usd
                  FROM spans WHERE is_llm AND (arm IS NULL OR arm <> 'shadow') AND {span_filter_sql()}
                  GROUP BY service_name, model, model_version)
            ORDER BY requests DESC"""))

# Groupings `calls` offers (allow-list: a parameter picks one, it never becomes SQL text).
CALL_GROUPS: dict[str, tuple[str, ...]] = {
    "none": (), "service": ("service_name",), "model": ("model",), "route": ("route",),
    "version": ("model_version",), "model_version": ("model", "model_version"), "service_model": ("service_name", "model"),
    "service_route": ("service_name", "route"), "service_model_version": ("service_name", "model", "model_version"),
}
_CALL_GROUP_SQL = {"service_name": "s.service_name", "model": model_sql("s"),
                   "model_version": "s.model_version", "route": "s.route"}
PERCENTILE_DEFINITION = ("exact percentiles of the successful (non-error) model calls: DuckDB quantile_cont, "
                         "linear interpolation between closest ranks (numpy.percentile's default 'linear')")


def _calls(store: Store, params: dict[str, Any]) -> pa.Table:
    """Figures over the filtered model calls (shadow calls excluded), from the raw spans.

    Rates are sums over sums and percentiles exact (never a mean of group figures). Cost is the
    span's own cost, else tokens x the price table; calls neither carries are counted as unpriced.
    """
    from store.analytics import _COST, _prices_cte, distinct_models
    from store.prices import resolve_prices

    cols = CALL_GROUPS[params["by"]]
    ch = store.dialect == "clickhouse"
    cte, price_params = _prices_cte(resolve_prices(distinct_models(store, params["start"], params["end"])),
                                    store.dialect)
    select = "".join(f"{_CALL_GROUP_SQL[c]} AS {c}, " for c in cols)
    group = f"GROUP BY {', '.join(_CALL_GROUP_SQL[c] for c in cols)}" if cols else ""
    unpriced = "coalesce(s.response_model, s.request_model, '(no model)')"
    # the same figures; ClickHouse spells the percentile list and the filtered string list its way
    q = ("quantilesExactInclusiveIf(0.5, 0.95, 0.99)(s.duration_ms, s.status_code <> 'error')" if ch else
         "quantile_cont(s.duration_ms, [0.5, 0.95, 0.99]) FILTER (WHERE s.status_code <> 'error')")
    # DuckDB: a DISTINCT aggregate takes the whole query off its parallel plan (twice the time at 1M+
    # calls), so the unpriced model names come from a second read, only when some call is unpriced.
    models = (f"nullIf(arrayStringConcat(groupUniqArrayIf({unpriced}, ({_COST}) IS NULL), ', '), '')" if ch else
              "NULL::VARCHAR")
    sql = f"""WITH {cte}
      SELECT {select}count(*) AS requests, count(*) FILTER (WHERE s.status_code = 'error') AS errors,
        (count(*) FILTER (WHERE s.status_code = 'error'))::DOUBLE / count(*) AS error_rate,
        count(*) FILTER (WHERE s.status_code <> 'error') AS ok_calls,
        {q} AS q,
        coalesce(sum(s.input_tokens), 0) AS input_tokens, coalesce(sum(s.output_tokens), 0) AS output_tokens,
        sum({_COST}) AS cost_usd, count(*) FILTER (WHERE {_COST} IS NULL) AS unpriced_calls,
        {models} AS unpriced_models, count(*) FILTER (WHERE s.retry_count > 0) AS retried_calls,
        {CALL_SERIES["fallback_rate"]} AS fallback_rate, {CALL_SERIES["format_ok_rate"]} AS format_ok_rate,
        {CALL_SERIES["quality_mean"]} AS quality_mean, {CALL_SERIES["confidence_mean"]} AS confidence_mean
      FROM spans s LEFT JOIN prices p ON p.pm = coalesce(s.response_model, s.request_model)
      WHERE s.is_llm AND s.arm IS DISTINCT FROM 'shadow' AND {span_filter_sql('s')}
      {group} HAVING count(*) > 0"""
    bound = {**{k: params[k] for k in ("start", "end", "service", "model", "version", "route")}, **price_params}
    t = store.query(f"""SELECT * {"EXCEPT" if ch else "EXCLUDE"} (q), q[1] AS p50_ms, q[2] AS p95_ms, q[3] AS p99_ms
                        FROM ({sql}) ORDER BY requests DESC LIMIT 10000""", bound)
    if ch or not any(t.column("unpriced_calls").to_pylist()):
        return t
    names = store.query(f"""WITH {cte}
      SELECT {"".join(f"{c}, " for c in cols)}string_agg(m, ', ' ORDER BY m) AS unpriced_models
      FROM (SELECT DISTINCT {select}{unpriced} AS m
            FROM spans s LEFT JOIN prices p ON p.pm = coalesce(s.response_model, s.request_model)
            WHERE s.is_llm AND s.arm IS DISTINCT FROM 'shadow' AND {span_filter_sql('s')} AND {_COST} IS NULL)
      {"GROUP BY ALL" if cols else ""}""", bound).to_pylist()
    found = {tuple(r[c] for c in cols): r["unpriced_models"] for r in names}
    keys = zip(*(t.column(c).to_pylist() for c in cols)) if cols else [()] * t.num_rows
    return t.set_column(t.schema.get_field_index("unpriced_models"), "unpriced_models",
                        pa.array([found.get(tuple(k)) for k in keys], pa.string()))


QUERIES.append(NamedQuery(
    "calls", "Model calls in a window, in total or grouped (`by`): requests, errors, error rate (errors / calls), "
    f"p50/p95/p99 ({PERCENTILE_DEFINITION}), tokens, cost and unpriced calls, calls retried, share served by a "
    "fallback, format compliance (checked outputs of successful calls that passed), mean quality score and "
    "mean confidence.",
    FILTERS + (Param("by", description="Grouping: " + ", ".join(CALL_GROUPS) + ".", default="none",
                     choices=tuple(CALL_GROUPS)),),
    run=_calls))

# A format failure among the rollups' calls (is_err, format_ok): the check judges an output, and a
# failed call has none, so a client that marks its failures format_ok = false (the sample
# generator does) counts them as failures, not as format failures.
FORMAT_CHECKED_SQL = "(format_ok IS NOT NULL AND NOT coalesce(is_err, false))"   # the rate's denominator
FORMAT_FAILED_SQL = "(format_ok = false AND NOT coalesce(is_err, false))"

# Failure classes of failed model calls, first match wins (the shim's error.type / aiwatch.error.class,
# HTTP status, finish reasons, format checks); the classes sum to all failed calls. A failed call's
# format_ok = false names its class only when nothing else does: a client may mark every failure
# so (a 500 has no output to validate), and that 500 is an HTTP 5xx.
FAILURE_CLASS_SQL = """CASE
  WHEN lower(coalesce(s.error_type, '')) IN ('circuit_open', 'circuitopenerror') OR ec = 'circuit_open'
       OR lower(coalesce(s.status_message, '')) LIKE 'circuit open%' THEN 'circuit open'
  WHEN s.http_status IN (401, 403) OR ec = 'auth' OR lower(coalesce(s.error_type, '')) SIMILAR TO
       '.*(auth|permission|unauthori[sz]ed|forbidden).*' THEN 'auth'
  WHEN s.http_status IN (408, 504) OR ec = 'timeout' OR lower(coalesce(s.error_type, '')) SIMILAR TO
       '.*(timeout|timed.?out).*' THEN 'timeout'
  WHEN ec = 'content_filter' OR lower(coalesce(s.error_type, '')) SIMILAR TO '.*(content.?filter|injection).*'
       OR coalesce(s.finish_reasons, '') LIKE '%content_filter%' THEN 'content filter'
  WHEN lower(coalesce(s.error_type, '')) IN ('invalid_output', 'format') THEN 'format'
  WHEN s.http_status = 429 OR ec = 'rate_limit' THEN 'rate limited (429)'
  WHEN s.http_status BETWEEN 400 AND 499 THEN 'HTTP 4xx'
  WHEN s.http_status >= 500 OR ec = 'server' THEN 'HTTP 5xx'
  WHEN ec = 'connection' THEN 'connection'
  WHEN s.format_ok = false THEN 'format'
  ELSE 'other' END"""
FAILURE_CLASSES = ("HTTP 4xx", "HTTP 5xx", "rate limited (429)", "timeout", "auth", "circuit open", "content filter",
                   "format", "connection", "other")
_BUCKETS = {"1m": "minute", "1h": "hour", "1d": "day"}


def _failures(store: Store, params: dict[str, Any]) -> pa.Table:
    """Per bucket: model calls, failed calls, and failed calls per class with the newest failing trace
    of the class (the chart's exemplar). Classes of a bucket sum to its failed calls."""
    unit = _BUCKETS[params["grain"]]
    where = f"s.is_llm AND s.arm IS DISTINCT FROM 'shadow' AND {span_filter_sql('s')}"
    ch = store.dialect == "clickhouse"
    bucket = f"toDateTime64(date_trunc('{unit}', s.start_time), 6)" if ch else f"date_trunc('{unit}', s.start_time)"
    error_class = ("nullIf(JSONExtractString(s.attributes, 'aiwatch.error.class'), '')" if ch else
                   """json_extract_string(s.attributes, '$."aiwatch.error.class"')""")
    # ClickHouse: SIMILAR TO's whole-string patterns as anchored regular expressions
    classify = re.sub(r"lower\(coalesce\(s\.error_type, ''\)\) SIMILAR TO\s+'([^']*)'",
                      r"match(lower(coalesce(s.error_type, '')), '^\1$')", FAILURE_CLASS_SQL) if ch else FAILURE_CLASS_SQL
    sql = f"""
      WITH calls AS (SELECT {bucket} AS time, count(*) AS requests,
                            count(*) FILTER (WHERE s.status_code = 'error') AS errors
                     FROM spans s WHERE {where} GROUP BY 1),
      failed AS (SELECT {bucket} AS time, {error_class} AS ec, s.*
                 FROM spans s WHERE {where} AND s.status_code = 'error'),
      classes AS (SELECT time, {classify} AS failure_class, count(*) AS count,
                         {"argMax" if ch else "arg_max"}(s.trace_id, s.start_time) AS exemplar_trace_id
                  FROM failed s GROUP BY ALL)
      SELECT c.time, c.requests, c.errors, k.failure_class, coalesce(k.count, 0) AS count,
             coalesce(k.count, 0)::DOUBLE / c.requests AS rate, k.exemplar_trace_id
      FROM calls c LEFT JOIN classes k USING (time) ORDER BY c.time, k.failure_class LIMIT 200000"""
    return store.query(sql, {k: params[k] for k in ("start", "end", "service", "model", "version", "route")})


QUERIES.append(NamedQuery(
    "failures", "Failed model calls per time bucket and failure class (" + ", ".join(FAILURE_CLASSES) + "), "
    "with the calls of the bucket and a failing exemplar trace per class; classes sum to all failures.",
    FILTERS + (Param("grain", description="Bucket: 1m, 1h or 1d.", default="1m", choices=tuple(_BUCKETS)),),
    run=_failures))

_SERIES_SPLITS = {"service_name": "s.service_name", "model": model_sql("s"),
                  "model_version": "s.model_version", "route": "s.route", "arm": "s.arm"}
# figure -> SQL over one bucket's model calls (the same definitions as the traffic analyzer's)
CALL_SERIES = {
    "requests": "count(*)::DOUBLE", "errors": "(count(*) FILTER (WHERE s.status_code = 'error'))::DOUBLE",
    "error_rate": "avg((s.status_code = 'error')::INT)::DOUBLE",
    "latency_p50_ms": "quantile_cont(s.duration_ms, 0.5) FILTER (WHERE s.status_code <> 'error')",
    "latency_p95_ms": "quantile_cont(s.duration_ms, 0.95) FILTER (WHERE s.status_code <> 'error')",
    "latency_p99_ms": "quantile_cont(s.duration_ms, 0.99) FILTER (WHERE s.status_code <> 'error')",
    "input_tokens": "coalesce(sum(s.input_tokens), 0)::DOUBLE",
    "output_tokens": "coalesce(sum(s.output_tokens), 0)::DOUBLE", "retries": "coalesce(sum(s.retry_count), 0)::DOUBLE",
    "fallback_rate": "avg((s.fallback_level IS NOT NULL AND s.fallback_level <> 'primary')::INT)::DOUBLE",
    # no cast of what may be NULL (ClickHouse will not make a NULL an INT or a DOUBLE): averages of
    # doubles are doubles on both backends, NULL where no call carries the figure
    "format_ok_rate": "avg(CASE WHEN s.status_code = 'error' OR s.format_ok IS NULL THEN NULL "
                      "WHEN s.format_ok THEN 1.0 ELSE 0.0 END)", "quality_mean": "avg(s.quality_score)",
    "confidence_mean": "avg(s.confidence)",
}


def _call_series(store: Store, params: dict[str, Any]) -> pa.Table:
    """The `metrics` shape (time, metric, value, labels) computed from the raw calls for any filter
    combination, e.g. a model alone, which the analyzers keep no rollup for."""
    wanted = [m for m in dict.fromkeys(params["metric"].replace(" ", "").split(",")) if m in CALL_SERIES]
    if not wanted:
        raise BadParameter("parameter 'metric' names no figure of call_series: " + ", ".join(CALL_SERIES))
    unit, split = _BUCKETS[params["grain"]], params["by"]
    ch = store.dialect == "clickhouse"
    label = f"{_SERIES_SPLITS[split]}" if split else ("CAST(NULL AS Nullable(String))" if ch else "NULL::VARCHAR")
    series = {m: re.sub(r"quantile_cont\(s\.duration_ms, ([0-9.]+)\) FILTER \(WHERE ([^)]*)\)",
                        r"quantileExactInclusiveIf(\1)(s.duration_ms, \2)", CALL_SERIES[m]) if ch else CALL_SERIES[m]
              for m in wanted}
    figures = ", ".join(f"{series[m]} AS {m}" for m in wanted)
    bucket = f"toDateTime64(date_trunc('{unit}', s.start_time), 6)" if ch else f"date_trunc('{unit}', s.start_time)"
    # ClickHouse has no UNPIVOT: the same rows from ARRAY JOIN over (name, value) pairs
    unpivot = (f"(SELECT time, split, m.1 AS metric, m.2 AS value FROM b ARRAY JOIN "
               f"[{', '.join(f'({quote_literal(m)}, toNullable(toFloat64({m})))' for m in wanted)}] AS m)" if ch
               else f"(UNPIVOT b ON {', '.join(wanted)} INTO NAME metric VALUE value)")
    sql = f"""
      WITH b AS (SELECT {bucket} AS time, {label} AS split, {figures}
                 FROM spans s WHERE s.is_llm AND s.arm IS DISTINCT FROM 'shadow' AND {span_filter_sql('s')}
                 GROUP BY ALL)
      SELECT time, $grain AS grain, metric, value, split FROM {unpivot}
      ORDER BY time, metric LIMIT 200000"""
    t = store.query(sql, {**{k: params[k] for k in ("start", "end", "service", "model", "version", "route")},
                          "grain": params["grain"]})
    labels = {c: (t.column("split") if c == split else pa.nulls(t.num_rows, pa.string())) for c in _SERIES_SPLITS}
    return pa.table({"time": t.column("time"), "grain": t.column("grain"), "metric": t.column("metric"),
                     **{c: labels[c] for c in _SERIES_SPLITS}, "value": t.column("value")})


QUERIES.append(NamedQuery(
    "call_series", "Traffic figures per time bucket computed from the raw model calls (" + ", ".join(CALL_SERIES)
    + "), in the `metrics` shape; any filter combination, optionally split by one label (`by`).",
    FILTERS + (Param("metric", required=True, description="Comma-separated figure names."),
               Param("grain", description="Bucket: 1m, 1h or 1d.", default="1m", choices=tuple(_BUCKETS)),
               Param("by", description="Split by: " + ", ".join(_SERIES_SPLITS) + ".",
                     choices=tuple(_SERIES_SPLITS))),
    run=_call_series))

def _data_range(store: Store, params: dict[str, Any]) -> pa.Table:
    t = store.query("SELECT min(start_time) AS first_span, max(start_time) AS last_span FROM spans WHERE is_llm")
    path = getattr(store, "path", None)   # the embedded store's file; a ClickHouse store has none
    folder = str(path.parent) if path is not None else None
    return t.append_column("data_dir", pa.array([folder], pa.string()))


QUERIES.append(NamedQuery(
    "data_range", "First and last model call in the store, and the server's data folder (where reports go).",
    (), run=_data_range, tags=("admin",)))

QUERIES.append(NamedQuery(
    "table_counts", "Row counts of the store's tables.", (), tags=("admin",),
    sql="""SELECT 'spans' AS "table", count(*) AS "rows" FROM spans UNION ALL
           SELECT 'resources', count(*) FROM resources UNION ALL
           SELECT 'span_content', count(*) FROM span_content UNION ALL
           SELECT 'audit_events', count(*) FROM audit_events UNION ALL
           SELECT 'feedback', count(*) FROM feedback UNION ALL
           SELECT 'logs', count(*) FROM logs UNION ALL
           SELECT 'resource_metrics', count(*) FROM resource_metrics"""))


def openapi(queries: QueryRegistry, version: str) -> dict[str, Any]:
    """OpenAPI 3.1 description of the read API, generated from the registry."""
    type_map: dict[str, dict[str, Any]] = {"string": {"type": "string"}, "time": {"type": "string", "description": "time"},
                "integer": {"type": "integer", "minimum": 0}, "boolean": {"type": "boolean"}}
    paths: dict[str, Any] = {}
    for q in sorted(queries.values(), key=lambda q: q.name):
        params = [{"name": p.name, "in": "query", "required": p.required, "description": p.description,
                   "schema": {**type_map[p.type], **({"default": p.default} if p.default is not None else {}),
                              **({"enum": list(p.choices)} if p.choices else {})}} for p in q.params]
        params.append({"name": "format", "in": "query", "required": False,
                       "schema": {"type": "string", "enum": ["json", "arrow"], "default": "json"}})
        paths[f"/v1/query/{q.name}"] = {"get": {
            "operationId": q.name, "summary": q.description, "tags": list(q.tags), "parameters": params,
            "responses": {
                "200": {"description": "Rows as JSON (`data`) or an Arrow IPC stream.",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Rows"}},
                                    "application/vnd.apache.arrow.stream": {}}},
                "400": {"description": "Bad parameter.", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"}}}}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "aiwatch read API", "version": version},
        "paths": paths,
        "components": {"schemas": {
            "Rows": {"type": "object", "properties": {
                "request_id": {"type": "string"}, "query": {"type": "string"},
                "columns": {"type": "array", "items": {"type": "string"}},
                "data": {"type": "array", "items": {"type": "object"}},
                "rows": {"type": "integer", "description": "Rows in data."},
                "truncated": {"type": "boolean", "description": "True when rows were left out to keep the "
                              "answer under max_response_bytes (also the X-Truncated header)."}}},
            "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                "code": {"type": "string"}, "message": {"type": "string"}, "request_id": {"type": "string"}}}}},
        }},
    }
