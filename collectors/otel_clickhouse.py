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

import json
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
from core.semconv import ATTEMPT
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


def _column_sql(column: str, candidates: list[tuple[int, str, Target]]) -> str:
    parts = [(rank, f"if(mapContains({A}, {_lit(key)}), {_SQL_CONVERT[target.convert](f'{A}[{_lit(key)}]')}, NULL)")
             for rank, key, target in candidates]
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


def spans_view(traces_table: str) -> str:
    """SELECT over the Collector's traces table (a quoted name) with the span columns, in order."""
    fixed, mapped = _fixed_columns(), _targets()
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

_KIND_NAMES = {"unspecified": "Unspecified", "internal": "Internal", "server": "Server", "client": "Client",
               "producer": "Producer", "consumer": "Consumer"}
_STATUS_NAMES = {"unset": "Unset", "ok": "Ok", "error": "Error"}
MAP = pa.map_(pa.string(), pa.string())


def _attribute_text(value: Any) -> str:
    """An attribute value as the Collector stores it (pcommon AsString): strings as they are,
    booleans lower-case, arrays and maps as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _current_names() -> dict[str, str]:
    """column -> the attribute name a column's value is written back under (its lowest rank)."""
    return {column: candidates[0][1] for column, candidates in _targets().items()}


def to_otel_traces(spans: pa.Table, resources: pa.Table | None) -> pa.Table:
    names = _current_names()
    res_attrs: dict[str, dict[str, Any]] = {}
    if resources is not None:
        for rid, attrs in zip(resources.column("resource_id").to_pylist(), resources.column("attributes").to_pylist()):
            res_attrs[rid] = json.loads(attrs) if attrs else {}
    rows = spans.to_pylist()
    span_maps, resource_maps, durations = [], [], []
    for row in rows:
        attrs = {k: _attribute_text(v) for k, v in (json.loads(row["attributes"]) if row["attributes"] else {}).items()}
        for column, key in names.items():
            value = row.get(column)
            if value is not None and key not in attrs:
                attrs[key] = _attribute_text(value)
        span_maps.append(list(attrs.items()))
        resource = {k: _attribute_text(v) for k, v in res_attrs.get(row["resource_id"], {}).items()}
        for key, column in (("service.name", "service_name"), ("service.version", "service_version"),
                            ("deployment.environment.name", "deployment_environment")):
            if row[column] is not None:
                resource[key] = row[column]
        resource_maps.append(list(resource.items()))
        if row["duration_ms"] is not None:
            durations.append(max(round(row["duration_ms"] * 1e6), 0))
        else:
            durations.append(max(int((row["end_time"] - row["start_time"]).total_seconds() * 1e9), 0))
    n = len(rows)
    empty_lists = pa.array([[] for _ in range(n)], pa.list_(pa.string()))
    return pa.table({
        "Timestamp": spans.column("start_time").cast(pa.timestamp("ns")),
        "TraceId": spans.column("trace_id"),
        "SpanId": spans.column("span_id"),
        "ParentSpanId": pc.fill_null(spans.column("parent_span_id"), ""),
        "TraceState": pa.array([""] * n),
        "SpanName": pc.fill_null(spans.column("name"), ""),
        "SpanKind": pa.array([_KIND_NAMES.get(k or "unspecified", "Unspecified") for k in spans.column("kind").to_pylist()]),
        "ServiceName": pc.fill_null(spans.column("service_name"), ""),
        "ResourceAttributes": pa.array(resource_maps, MAP),
        "ScopeName": pc.fill_null(spans.column("scope_name"), ""),
        "ScopeVersion": pa.array([""] * n),
        "SpanAttributes": pa.array(span_maps, MAP),
        "Duration": pa.array(durations, pa.uint64()),
        "StatusCode": pa.array([_STATUS_NAMES.get(s or "unset", "Unset") for s in spans.column("status_code").to_pylist()]),
        "StatusMessage": pc.fill_null(spans.column("status_message"), ""),
        "Events.Timestamp": pa.array([[] for _ in range(n)], pa.list_(pa.timestamp("ns"))),
        "Events.Name": empty_lists,
        "Events.Attributes": pa.array([[] for _ in range(n)], pa.list_(MAP)),
        "Links.TraceId": empty_lists,
        "Links.SpanId": empty_lists,
        "Links.TraceState": empty_lists,
        "Links.Attributes": pa.array([[] for _ in range(n)], pa.list_(MAP)),
    })


# OTLP severity numbers of the usual texts (the first of each range)
_SEVERITY = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "WARNING": 13, "ERROR": 17, "FATAL": 21, "CRITICAL": 21}


def to_otel_logs(logs: pa.Table) -> pa.Table:
    rows = logs.to_pylist()
    attrs = []
    for row in rows:
        a = {k: _attribute_text(v) for k, v in (json.loads(row["attributes"]) if row["attributes"] else {}).items()}
        if row["event_name"]:
            a.setdefault("event.name", row["event_name"])
        attrs.append(list(a.items()))
    n = len(rows)
    blank = pa.array([""] * n)
    no_map = pa.array([[] for _ in range(n)], MAP)
    return pa.table({
        "Timestamp": logs.column("time").cast(pa.timestamp("ns")),
        "TraceId": pc.fill_null(logs.column("trace_id"), ""),
        "SpanId": pc.fill_null(logs.column("span_id"), ""),
        "TraceFlags": pa.array([0] * n, pa.uint8()),
        "SeverityText": pc.fill_null(logs.column("severity"), ""),
        "SeverityNumber": pa.array([_SEVERITY.get((r["severity"] or "").upper(), 0) for r in rows], pa.uint8()),
        "ServiceName": pc.fill_null(logs.column("service_name"), ""),
        "Body": pc.fill_null(logs.column("body"), ""),
        "ResourceSchemaUrl": blank, "ResourceAttributes": no_map, "ScopeSchemaUrl": blank, "ScopeName": blank,
        "ScopeVersion": blank, "ScopeAttributes": no_map,
        "LogAttributes": pa.array(attrs, MAP),
    })


class OtelMapping:
    """The `store.clickhouse.SourceMapping` the server gives the ClickHouse store."""

    spans_view = staticmethod(spans_view)
    to_otel_traces = staticmethod(to_otel_traces)
    to_otel_logs = staticmethod(to_otel_logs)
