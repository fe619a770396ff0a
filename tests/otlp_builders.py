"""Builders of OTLP protobuf requests for tests: spans with chosen attributes, logs, metrics."""
from __future__ import annotations

import os
import time
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status


def anyvalue(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, (list, tuple)):
        return AnyValue(array_value=ArrayValue(values=[anyvalue(v) for v in value]))
    return AnyValue(string_value=str(value))


def kvs(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=anyvalue(v)) for k, v in attrs.items()]


def span_request(spans: list[dict[str, Any]], service: str = "test-svc",
                 resource: dict[str, Any] | None = None) -> ExportTraceServiceRequest:
    """Each dict: name, attributes, and optionally trace_id, span_id, parent_span_id (bytes),
    start_ns, duration_ms, error (bool), events [(name, attrs)]."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(kvs({"service.name": service, **(resource or {})}))
    ss = rs.scope_spans.add()
    ss.scope.name = "tests"
    now = time.time_ns()
    for spec in spans:
        start = spec.get("start_ns", now)
        span = ss.spans.add(
            trace_id=spec.get("trace_id", os.urandom(16)), span_id=spec.get("span_id", os.urandom(8)),
            parent_span_id=spec.get("parent_span_id", b""), name=spec.get("name", "chat gpt-4o"),
            kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start,
            end_time_unix_nano=start + int(spec.get("duration_ms", 100) * 1e6),
            status=Status(code=Status.STATUS_CODE_ERROR if spec.get("error") else Status.STATUS_CODE_OK))
        span.attributes.extend(kvs(spec.get("attributes", {})))
        for name, attrs in spec.get("events", []):
            span.events.add(name=name, time_unix_nano=start, attributes=kvs(attrs))
    return req


def log_request(records: list[dict[str, Any]], service: str = "test-svc") -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.extend(kvs({"service.name": service}))
    sl = rl.scope_logs.add()
    for attrs in records:
        rec = sl.log_records.add(time_unix_nano=time.time_ns())
        rec.attributes.extend(kvs(attrs))
    return req


def gauge_request(name: str, values: list[float], service: str = "test-svc") -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.extend(kvs({"service.name": service}))
    metric = rm.scope_metrics.add().metrics.add(name=name, unit="1")
    now = time.time_ns()
    for i, v in enumerate(values):
        metric.gauge.data_points.add(time_unix_nano=now - (len(values) - i) * 10**9, as_double=v)
    return req
