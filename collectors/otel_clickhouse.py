"""The OpenTelemetry Collector's ClickHouse rows <-> aiwatch's span columns, both ways, from the one
attribute map (collectors/attributes.py) that OTLP ingest uses.

Reading: `spans_view` is a ClickHouse SELECT over `otel_traces` (Map attributes, Duration in ns,
StatusCode strings) with the DuckDB store's span columns: each typed column is the most current
attribute name present (the map's ranks), converted as ingest converts it, and out-of-range
numbers read as NULL (store/schema.py's SPAN_RANGES). Writing: `to_otel_traces` turns the rows
aiwatch's own OTLP endpoint produced back into the Collector's row shape, each column under its
current attribute name, so the Collector's and aiwatch's data are one table.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from collectors.attributes import (
    LLM_MARKERS,
    OPENINFERENCE_KIND,
    OPENINFERENCE_LLM_KINDS,
    OPENINFERENCE_OPERATIONS,
    SPAN_ATTRIBUTE_MAP,
    Target,
    model_from_invocation_parameters,
    to_bool,
    to_float,
    to_int,
    to_int32,
    to_str,
)
from collectors.events import _AUDIT_KEYS, _FEEDBACK_KEYS
from core import semconv as sc
from core.semconv import ATTEMPT
from store.clickhouse import MappedRows
from store.schema import SPAN_COLUMNS, SPAN_RANGES
from store.sql import quote_literal

A = "SpanAttributes"
R = "ResourceAttributes"


def _lit(text: str) -> str:
    # ClickHouse string literals take backslash escapes: keys come from the map, but escape anyway
    return quote_literal(text.replace("\\", "\\\\"))


# Ingest's converters, as ClickHouse expressions over the attribute's string (the Collector stores
# every attribute value as a string; arrays as JSON).
_SQL_CONVERT: dict[Callable[[Any], Any], Callable[[str], str]] = {
    to_str: lambda v: f"if(startsWith({v}, '['), arrayStringConcat(JSONExtract({v}, 'Array(String)'), ','), {v})",
    to_int: lambda v: f"toInt64OrNull({v})",
    to_int32: lambda v: f"toInt32OrNull({v})",
    to_float: lambda v: f"if(isFinite(toFloat64OrNull({v})), toFloat64OrNull({v}), NULL)",
    to_bool: lambda v: f"multiIf(lower({v}) IN ('true', '1'), true, lower({v}) IN ('false', '0'), false, NULL)",
    model_from_invocation_parameters: lambda v: f"nullIf(JSONExtractString({v}, 'model'), '')",
}


def _targets() -> dict[str, list[tuple[int, str, Target]]]:
    """column -> [(rank, attribute, target)] most current first."""
    by_column: dict[str, list[tuple[int, str, Target]]] = {}
    for key, targets in SPAN_ATTRIBUTE_MAP.items():
        for t in targets:
            by_column.setdefault(t.column, []).append((t.rank, key, t))
    return {c: sorted(v, key=lambda x: x[0]) for c, v in by_column.items()}


def _lookup(key: str, target: Target) -> str:
    """One attribute's value, converted. A missing key reads as '', which every converter but
    to_str already makes NULL: only strings pay for a second scan of the map (mapContains)."""
    value = _SQL_CONVERT[target.convert](f"{A}[{_lit(key)}]")
    return f"if(mapContains({A}, {_lit(key)}), {value}, NULL)" if target.convert is to_str else value


def _mapped_sql(column: str, candidates: list[tuple[int, str, Target]]) -> str:
    parts = [(rank, _lookup(key, target)) for rank, key, target in candidates]
    if column == "operation":   # OpenInference's span kind names the operation at rank 3, as at ingest
        parts = sorted(parts + [(3, _openinference_operation())], key=lambda p: p[0])
    exprs = [e for _, e in parts]
    expr = exprs[0] if len(exprs) == 1 else f"coalesce({', '.join(exprs)})"
    if column in SPAN_RANGES:
        low, high = SPAN_RANGES[column]
        expr = f"if(({expr}) BETWEEN {low!r} AND {high!r}, {expr}, NULL)"
    return expr


def _openinference_operation() -> str:
    kinds = list(OPENINFERENCE_OPERATIONS)
    return (f"transform(upper({A}[{_lit(OPENINFERENCE_KIND)}]), [{', '.join(map(_lit, kinds))}], "
            f"[{', '.join(_lit(OPENINFERENCE_OPERATIONS[k]) for k in kinds)}], NULL)")


def _is_llm() -> str:
    markers = ", ".join(_lit(k) for k in sorted(LLM_MARKERS))
    llm_kinds = ", ".join(_lit(k) for k in sorted(OPENINFERENCE_LLM_KINDS))
    return (f"toBool((hasAny(mapKeys({A}), [{markers}]) OR upper({A}[{_lit(OPENINFERENCE_KIND)}]) IN ({llm_kinds})) "
            f"AND NOT mapContains({A}, {_lit(ATTEMPT)}))")


def _status() -> str:
    return ("multiIf(StatusCode IN ('Error', 'STATUS_CODE_ERROR'), 'error', "
            "StatusCode IN ('Ok', 'STATUS_CODE_OK'), 'ok', 'unset')")


def _exception_type() -> str:
    return ("nullIf(if(has(Events.Name, 'exception'), "
            "Events.Attributes[indexOf(Events.Name, 'exception')]['exception.type'], ''), '')")


def _fixed_columns() -> dict[str, str]:
    duration = "Duration / 1e6"
    low, high = SPAN_RANGES["duration_ms"]
    return {
        "trace_id": "TraceId",
        "span_id": "SpanId",
        "parent_span_id": "nullIf(ParentSpanId, '')",
        "name": "SpanName",
        "kind": "lower(replaceRegexpOne(SpanKind, '^SPAN_KIND_', ''))",
        "start_time": "toDateTime64(Timestamp, 6)",
        "end_time": "fromUnixTimestamp64Micro(toInt64(intDiv(toUnixTimestamp64Nano(Timestamp) + Duration, 1000)))",
        "duration_ms": f"if({duration} BETWEEN {low!r} AND {high!r}, {duration}, NULL)",
        "status_code": _status(),
        "status_message": "nullIf(StatusMessage, '')",
        "service_name": "nullIf(ServiceName, '')",
        "service_version": f"nullIf({R}['service.version'], '')",
        "deployment_environment": f"coalesce(nullIf({R}['deployment.environment.name'], ''), "
                                  f"nullIf({R}['deployment.environment'], ''))",
        "scope_name": f"coalesce(nullIf(ScopeName, ''), nullIf({A}['otel.scope.name'], ''))",
        "is_llm": _is_llm(),
        # the Collector records no receive time: a span counts as received when it ended
        "received_at": "fromUnixTimestamp64Micro(toInt64(intDiv(toUnixTimestamp64Nano(Timestamp) + Duration, 1000)))",
        "resource_id": "CAST(NULL AS Nullable(String))",
    }


# The `clickhouse_materialize` setting: each mapped column's reading stored as a MATERIALIZED
# column of the traces table, computed once per row at insert (and for older parts on read until
# a merge or `ALTER TABLE ... MATERIALIZE COLUMN` writes it), so reads skip the Map lookups.
MATERIALIZED_PREFIX = "aiwatch_"
_CH_TYPES = {pa.string(): "String", pa.float64(): "Float64", pa.int64(): "Int64", pa.int32(): "Int32",
             pa.bool_(): "Bool", pa.timestamp("us"): "DateTime64(6)"}


def materialize_statements(traces_table: str, on: str) -> list[str]:
    """The idempotent ALTER adding a MATERIALIZED column per mapped span column. The Collector's
    exporter inserts by column name, so columns it does not know stay out of its way."""
    mapped, types = _targets(), dict(SPAN_COLUMNS)
    adds = ", ".join(f"ADD COLUMN IF NOT EXISTS {MATERIALIZED_PREFIX}{c} Nullable({_CH_TYPES[types[c]]}) "
                     f"MATERIALIZED {_mapped_sql(c, mapped[c])}" for c, _ in SPAN_COLUMNS if c in mapped)
    # is_llm too: every model-call query filters on it, and its key test reads the whole map
    adds += f", ADD COLUMN IF NOT EXISTS {MATERIALIZED_PREFIX}is_llm Bool MATERIALIZED {_is_llm()}"
    return [f"ALTER TABLE {traces_table}{on} {adds}"]


def spans_view(traces_table: str, materialized: bool = False) -> str:
    """SELECT over the Collector's traces table (a quoted name) with the span columns, in order;
    `materialized`: the mapped columns from materialize_statements' columns."""
    fixed, mapped = _fixed_columns(), _targets()
    if materialized:
        fixed["is_llm"] = f"{MATERIALIZED_PREFIX}is_llm"

    def _column_sql(column: str, candidates: list[tuple[int, str, Target]]) -> str:
        return f"{MATERIALIZED_PREFIX}{column}" if materialized else _mapped_sql(column, candidates)
    mapped_keys = ", ".join(_lit(k) for k in sorted(SPAN_ATTRIBUTE_MAP) if not any(t.keep for t in SPAN_ATTRIBUTE_MAP[k]))
    exprs = []
    for name, _ in SPAN_COLUMNS:
        if name in fixed:
            expr = fixed[name]
        elif name == "error_type":
            expr = f"coalesce({_column_sql(name, mapped[name])}, if({_status()} = 'error', " \
                   f"coalesce({_exception_type()}, '_OTHER'), NULL))"
        elif name in mapped:
            expr = _column_sql(name, mapped[name])
        elif name == "attributes":
            rest = f"mapFilter((k, v) -> NOT has([{mapped_keys}], k), {A})"
            expr = f"if(empty({rest}), NULL, toJSONString({rest}))"
        else:
            raise ValueError(f"span column {name} has no reading from the Collector's schema")
        exprs.append(f"{expr} AS {name}")
    return f"SELECT {', '.join(exprs)} FROM {traces_table}"


# --- aiwatch's own ingest, written as the Collector writes ------------------------------------
#
# The conversion runs inside ClickHouse as the SELECT of an INSERT over the Arrow rows the
# workers made (chdb's Python() table function; a server's input() with FORMAT Arrow): attribute
# JSON to Map, names, durations, all vectorised in the engine. Converting row by row in Python on
# the writer thread was the ingest path's bottleneck.

_KIND_NAMES = {"unspecified": "Unspecified", "internal": "Internal", "server": "Server", "client": "Client",
               "producer": "Producer", "consumer": "Consumer"}
_STATUS_NAMES = {"unset": "Unset", "ok": "Ok", "error": "Error"}


def _current_names() -> dict[str, str]:
    """column -> the attribute name a column's value is written back under (its lowest rank)."""
    return {column: candidates[0][1] for column, candidates in _targets().items()}


def _json_map(column: str) -> str:
    """A JSON object (a nullable string column) as Map(String, String), each value as the Collector
    stores it (pcommon AsString): strings unquoted, numbers, booleans, arrays and maps as JSON text."""
    kv = f"JSONExtractKeysAndValuesRaw(ifNull({column}, ''))"
    return (f"mapFromArrays(arrayMap(x -> x.1, {kv}), "
            f"arrayMap(x -> if(startsWith(x.2, '\"'), JSONExtractString(x.2), x.2), {kv}))")


def _text(column: str, typ: pa.DataType) -> str:
    """A typed column's value as attribute text (NULL stays NULL)."""
    if pa.types.is_boolean(typ):
        return f"if({column} IS NULL, NULL, if({column}, 'true', 'false'))"
    if pa.types.is_string(typ):
        return column
    return f"toString({column})"


def _columns_map(pairs: list[tuple[str, str]]) -> str:
    """Map(String, String) of (key, nullable text expression) pairs, NULL values left out."""
    if not pairs:
        return "map()"
    entries = ", ".join(f"{_lit(k)}, {v}" for k, v in pairs)
    return f"CAST(mapFilter((k, v) -> v IS NOT NULL, map({entries})), 'Map(String, String)')"


def _transform(column: str, names: dict[str, str], default: str) -> str:
    keys = ", ".join(_lit(k) for k in names)
    return (f"transform(ifNull({column}, {_lit(default.lower())}), [{keys}], "
            f"[{', '.join(_lit(v) for v in names.values())}], {_lit(default)})")


def _traces_select() -> tuple[tuple[str, ...], str]:
    types = dict(SPAN_COLUMNS)
    span_columns = [(key, _text(column, types[column])) for column, key in _current_names().items()]
    resource_columns = [(key, _text(column, types[column])) for key, column in (
        ("service.name", "service_name"), ("service.version", "service_version"),
        ("deployment.environment.name", "deployment_environment"))]
    # nanoseconds; rounding half to even as Python's round() did
    duration = ("toUInt64(if(duration_ms IS NOT NULL, greatest(roundBankers(duration_ms * 1e6), 0), "
                "greatest(dateDiff('ns', start_time, end_time), 0)))")
    exprs = {
        "Timestamp": "toDateTime64(start_time, 9)",
        "TraceId": "ifNull(trace_id, '')",
        "SpanId": "ifNull(span_id, '')",
        "ParentSpanId": "ifNull(parent_span_id, '')",
        "SpanName": "ifNull(name, '')",
        "SpanKind": _transform("kind", _KIND_NAMES, "Unspecified"),
        "ServiceName": "ifNull(service_name, '')",
        # the resource's attributes, then the span's resource columns over them
        "ResourceAttributes": f"mapUpdate({_json_map('resource_attributes')}, {_columns_map(resource_columns)})",
        "ScopeName": "ifNull(scope_name, '')",
        # the span's columns under their current names, then its other attributes over them
        "SpanAttributes": f"mapUpdate({_columns_map(span_columns)}, {_json_map('attributes')})",
        "Duration": duration,
        "StatusCode": _transform("status_code", _STATUS_NAMES, "Unset"),
        "StatusMessage": "ifNull(status_message, '')",
    }
    return tuple(exprs), ", ".join(f"{e} AS {c}" for c, e in exprs.items())


_TRACES_SELECT = _traces_select()


def to_otel_traces(spans: pa.Table, resources: pa.Table | None) -> MappedRows:
    """aiwatch span rows, each with its resource's attribute JSON beside it (`resource_attributes`),
    and the SELECT that makes rows of the Collector's traces table of them."""
    if resources is not None and resources.num_rows:
        at = pc.index_in(spans.column("resource_id"), resources.column("resource_id"))
        attrs = resources.column("attributes").take(at)
    else:
        attrs = pa.nulls(spans.num_rows, pa.string())
    data = spans.append_column("resource_attributes", attrs)
    return MappedRows(data, *_TRACES_SELECT)


# OTLP severity numbers of the usual texts (the first of each range)
_SEVERITY = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "WARNING": 13, "ERROR": 17, "FATAL": 21, "CRITICAL": 21}


def _logs_select() -> tuple[tuple[str, ...], str]:
    event_name = _columns_map([("event.name", "nullIf(event_name, '')")])
    exprs = {
        "Timestamp": "toDateTime64(time, 9)",
        "TraceId": "ifNull(trace_id, '')",
        "SpanId": "ifNull(span_id, '')",
        "SeverityText": "ifNull(severity, '')",
        "SeverityNumber": f"toUInt8(transform(upper(ifNull(severity, '')), [{', '.join(map(_lit, _SEVERITY))}], "
                          f"[{', '.join(map(str, _SEVERITY.values()))}], 0))",
        "ServiceName": "ifNull(service_name, '')",
        "Body": "ifNull(body, '')",
        # the record's attributes, with its event name (the record's own event.name wins)
        "LogAttributes": f"mapUpdate({event_name}, "
                         f"{_json_map('attributes')})",
    }
    return tuple(exprs), ", ".join(f"{e} AS {c}" for c, e in exprs.items())


_LOGS_SELECT = _logs_select()


def to_otel_logs(logs: pa.Table) -> MappedRows:
    """aiwatch log rows and the SELECT that makes rows of the Collector's logs table of them."""
    return MappedRows(logs, *_LOGS_SELECT)


# --- audit records and human review verdicts the Collector stored as log events -----------------


def _event_select(logs_table: str, event: str, columns: str, known: set[str], where: str) -> str:
    """SELECT `columns` over the `event` records of the Collector's logs table, their fields in a
    map `a` read as aiwatch's ingest reads them (collectors/logs.py): a JSON body's fields under
    the attributes, and `attributes` the JSON of the fields the row has no column for."""
    keys = ", ".join(_lit(k) for k in sorted(known))
    return f"""SELECT {columns}, 'collector' AS source,
        if(empty(mapFilter((k, v) -> NOT has([{keys}], k), a)), NULL,
           toJSONString(mapFilter((k, v) -> NOT has([{keys}], k), a))) AS attributes
      FROM (SELECT Timestamp, ServiceName, TraceId, SpanId,
                   mapUpdate({_json_map("if(startsWith(Body, '{'), Body, '')")},
                             CAST(LogAttributes, 'Map(String, String)')) AS a
            FROM {logs_table} WHERE LogAttributes[{_lit(sc.EVENT_NAME)}] = {_lit(event)})
      WHERE {where}"""


def _fields(fields: dict[str, str]) -> str:
    return ", ".join(f"if(mapContains(a, {_lit(key)}), a[{_lit(key)}], NULL) AS {column}"
                     for column, key in fields.items())


_FEEDBACK_FIELDS = {"reviewer": sc.FEEDBACK_REVIEWER, "reason": sc.FEEDBACK_REASON, "route": sc.ROUTE,
                    "model": sc.GEN_AI_REQUEST_MODEL, "model_version": sc.MODEL_VERSION}


def feedback_view(logs_table: str) -> str:
    """SELECT over the Collector's logs table (a quoted name) with the feedback table's columns:
    its `aiwatch.feedback` events read as aiwatch's own ingest reads them (collectors/events.py
    feedback_row), and an event ingest would reject (no request id, an action outside
    FEEDBACK_ACTIONS) left out. The texts are as the Collector stored them: aiwatch's redaction
    applies to what it ingests itself."""
    actions = ", ".join(_lit(a) for a in sc.FEEDBACK_ACTIONS)
    columns = f"""toDateTime64(Timestamp, 6) AS time, nullIf(ServiceName, '') AS service_name,
        a[{_lit(sc.REQUEST_ID)}] AS request_id, nullIf(TraceId, '') AS trace_id,
        lower(trimBoth(a[{_lit(sc.FEEDBACK_ACTION)}])) AS action, {_fields(_FEEDBACK_FIELDS)}"""
    return _event_select(logs_table, sc.EVENT_FEEDBACK, columns, _FEEDBACK_KEYS,
                         f"action IN ({actions}) AND request_id != ''")


_AUDIT_FIELDS = {"user_id": sc.USER_ID, "model": sc.GEN_AI_REQUEST_MODEL,
                 "model_version": sc.MODEL_VERSION, "route": sc.ROUTE}
_AUDIT_TEXTS = {"decision_path": sc.DECISION_PATH, "input_text": sc.AUDIT_INPUT, "output_text": sc.AUDIT_OUTPUT}


def audit_view(logs_table: str) -> str:
    """SELECT over the Collector's logs table with the audit_events table's columns: its
    `aiwatch.audit` events read as aiwatch's ingest reads them (collectors/events.py audit_row);
    an event ingest would reject (a latency that is not a number) is left out. The texts are as
    the Collector stored them: aiwatch's redaction applies to what it ingests itself."""
    latency = f"a[{_lit(sc.LATENCY_MS)}]"
    columns = f"""toDateTime64(Timestamp, 6) AS time, nullIf(ServiceName, '') AS service_name,
        {_fields({"request_id": sc.REQUEST_ID})}, nullIf(TraceId, '') AS trace_id, nullIf(SpanId, '') AS span_id,
        {_fields(_AUDIT_FIELDS)},
        if(mapContains(a, {_lit(sc.LATENCY_MS)}), toFloat64OrNull(trimBoth({latency})), NULL) AS latency_ms,
        {_fields(_AUDIT_TEXTS)}"""
    return _event_select(logs_table, sc.EVENT_AUDIT, columns, _AUDIT_KEYS,
                         f"NOT mapContains(a, {_lit(sc.LATENCY_MS)}) OR toFloat64OrNull(trimBoth({latency})) IS NOT NULL")


class OtelMapping:
    """The `store.clickhouse.SourceMapping` the server gives the ClickHouse store."""

    spans_view = staticmethod(spans_view)
    materialize_statements = staticmethod(materialize_statements)
    to_otel_traces = staticmethod(to_otel_traces)
    to_otel_logs = staticmethod(to_otel_logs)
    feedback_view = staticmethod(feedback_view)
    audit_view = staticmethod(audit_view)
