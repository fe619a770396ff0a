"""A small, deterministic telemetry set sent to a real server over OTLP/HTTP protobuf."""
from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

SERVICE = "checkout-assistant"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
REQUEST_ID = "req-dash-0001"
SHIM_REQUEST_ID = "5c1e2b7f9a0d4e3c8b6a1f2e3d4c5b6a"   # the shim's ids are 32 hex characters, like trace ids
SECRET_EMAIL = "alice.smith@example.com"
ROUTES = ("/summarize", "/classify")
MODELS = (("gpt-4o-mini", "v1"), ("gpt-4o-mini", "v2-canary"))
N_SPANS = 240
PROTOBUF = {"content-type": "application/x-protobuf"}


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        v = AnyValue(bool_value=value)
    elif isinstance(value, int):
        v = AnyValue(int_value=value)
    elif isinstance(value, float):
        v = AnyValue(double_value=value)
    else:
        v = AnyValue(string_value=str(value))
    return KeyValue(key=key, value=v)


def _resource(target: Any) -> None:
    target.resource.attributes.extend([_kv("service.name", SERVICE), _kv("service.version", "1.4.2")])


FIRST_CALL_AGO_NS = 50 * 60 * 10**9   # the generated calls start this long before `now`, 12 s apart
HOUR_NS = 3600 * 10**9


def traces(now_ns: int) -> ExportTraceServiceRequest:
    rng = random.Random(7)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    _resource(rs)
    ss = rs.scope_spans.add()
    ss.scope.name = "aiwatch.shim"
    for i in range(N_SPANS):
        model, version = MODELS[i % 2]
        route = ROUTES[(i // 2) % 2]
        start = now_ns - FIRST_CALL_AGO_NS + i * 12 * 10**9
        duration_ms = rng.lognormvariate(6.0, 0.4) * (1.6 if version == "v2-canary" else 1.0)
        failed = i % 10 in (3, 6)
        span = ss.spans.add(trace_id=rng.randbytes(16), span_id=rng.randbytes(8), name=f"chat {model}",
                            kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start,
                            end_time_unix_nano=start + int(duration_ms * 1e6))
        span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR if failed else Status.STATUS_CODE_OK))
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": model,
                 "gen_ai.response.model": model, "gen_ai.usage.input_tokens": 200 + i,
                 "gen_ai.usage.output_tokens": 50 + i % 40, "aiwatch.model.version": version,
                 "aiwatch.route": route, "aiwatch.arm": "canary" if version == "v2-canary" else "baseline",
                 "aiwatch.confidence": round(rng.betavariate(8, 2), 4), "aiwatch.quality.score": round(rng.random(), 3),
                 "aiwatch.format_ok": i % 7 != 0, "aiwatch.fallback.level": "fallback" if i % 11 == 0 else "primary",
                 "aiwatch.retry.count": 1 if i % 9 == 0 else 0, "aiwatch.cost.usd": 0.0125,
                 "aiwatch.request.id": SHIM_REQUEST_ID if i == 3 else f"req-{i:04d}",
                 "aiwatch.user.id": f"user-{i % 5}"}
        if failed:
            attrs.update({"error.type": "RateLimitError" if i % 20 == 3 else "InternalServerError",
                          "http.response.status_code": 429 if i % 20 == 3 else 500})
        span.attributes.extend(_kv(k, v) for k, v in attrs.items())
    # One request with a three-level trace and message content that must arrive redacted.
    tid = bytes.fromhex(TRACE_ID)
    root_start = now_ns - int(5 * 60 * 1e9)
    root = ss.spans.add(trace_id=tid, span_id=bytes.fromhex("00f067aa0ba902b7"), name="POST /summarize",
                        kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=root_start,
                        end_time_unix_nano=root_start + int(900e6))
    root.attributes.extend([_kv("aiwatch.request.id", REQUEST_ID), _kv("aiwatch.route", "/summarize")])
    llm = ss.spans.add(trace_id=tid, span_id=bytes.fromhex("11f067aa0ba902b8"), parent_span_id=root.span_id,
                       name="chat gpt-4o-mini", kind=Span.SPAN_KIND_CLIENT,
                       start_time_unix_nano=root_start + int(50e6), end_time_unix_nano=root_start + int(800e6))
    llm.attributes.extend([_kv(k, v) for k, v in {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 321, "gen_ai.usage.output_tokens": 45, "aiwatch.model.version": "v1",
        "aiwatch.route": "/summarize", "aiwatch.request.id": REQUEST_ID, "aiwatch.cost.usd": 0.02,
        "gen_ai.input.messages": f'[{{"role":"user","content":"Summarise the order for {SECRET_EMAIL}"}}]',
        "gen_ai.output.messages": '[{"role":"assistant","content":"Order 42 ships Friday."}]'}.items()])
    tool = ss.spans.add(trace_id=tid, span_id=bytes.fromhex("22f067aa0ba902b9"), parent_span_id=llm.span_id,
                        name="tool lookup_order", kind=Span.SPAN_KIND_INTERNAL,
                        start_time_unix_nano=root_start + int(300e6), end_time_unix_nano=root_start + int(420e6))
    tool.attributes.append(_kv("aiwatch.request.id", REQUEST_ID))
    return req


def logs(now_ns: int) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    _resource(rl)
    sl = rl.scope_logs.add()
    audit = sl.log_records.add(time_unix_nano=now_ns - int(5 * 60 * 1e9), trace_id=bytes.fromhex(TRACE_ID))
    audit.attributes.extend([_kv(k, v) for k, v in {
        "event.name": "aiwatch.audit", "aiwatch.request.id": REQUEST_ID, "aiwatch.user.id": "user-1",
        "gen_ai.request.model": "gpt-4o-mini", "aiwatch.model.version": "v1", "aiwatch.route": "/summarize",
        "aiwatch.latency_ms": 900.0, "aiwatch.decision_path": "route:primary>primary:ok",
        "aiwatch.input": f"Summarise the order for {SECRET_EMAIL}", "aiwatch.output": "Order 42 ships Friday."}.items()])
    actions = ["accepted", "modified", "rejected", "accepted", "modified", "accepted"]
    reasons = {"modified": "wrong tone", "rejected": "hallucinated order number"}
    for i in range(30):
        action = actions[i % len(actions)]
        rec = sl.log_records.add(time_unix_nano=now_ns - int((40 - i) * 60 * 1e9))
        attrs = {"event.name": "aiwatch.feedback", "aiwatch.request.id": f"req-{i:04d}",
                 "aiwatch.feedback.action": action, "aiwatch.feedback.reviewer": "rev-1",
                 "aiwatch.route": ROUTES[i % 2], "gen_ai.request.model": "gpt-4o-mini",
                 "aiwatch.model.version": "v1"}
        if action in reasons:
            attrs["aiwatch.feedback.reason"] = reasons[action]
        rec.attributes.extend(_kv(k, v) for k, v in attrs.items())
    return req


def metrics(now_ns: int) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    _resource(rm)
    sm = rm.scope_metrics.add()
    for name, unit, base in (("system.cpu.utilization", "1", 0.42), ("gpu.utilization", "1", 0.66),
                             ("system.memory.utilization", "1", 0.58), ("queue.depth", "{request}", 7.0)):
        m = sm.metrics.add(name=name, unit=unit)
        for k in range(20):
            p = m.gauge.data_points.add(time_unix_nano=now_ns - int((40 - 2 * k) * 60 * 1e9))
            p.as_double = base + 0.01 * (k % 5)
    return req


def send_all(url: str) -> int:
    """Send the telemetry, timed back from now; returns that `now` (ns)."""
    now_ns = time.time_ns()
    for path, msg in (("/v1/traces", traces(now_ns)), ("/v1/logs", logs(now_ns)), ("/v1/metrics", metrics(now_ns))):
        r = httpx.post(f"{url}{path}", content=msg.SerializeToString(), headers=PROTOBUF, timeout=30)
        r.raise_for_status()
    return now_ns


def model_calls(now_ns: int | None = None) -> list[dict[str, Any]]:
    """The model calls `traces` sends, read back from the protobuf (the tests' independent oracle);
    their start times are those of the telemetry sent at `now_ns` (`send_all`'s answer)."""
    calls = []
    for span in traces(time.time_ns() if now_ns is None else now_ns).resource_spans[0].scope_spans[0].spans:
        attrs = {kv.key: kv.value for kv in span.attributes}
        if "gen_ai.operation.name" not in attrs:
            continue
        calls.append({"trace_id": span.trace_id.hex(), "request_id": attrs["aiwatch.request.id"].string_value,
                      "week": datetime.fromtimestamp(span.start_time_unix_nano / 1e9, UTC).strftime("%G-W%V"),
                      "duration_ms": (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6,
                      "failed": span.status.code == Status.STATUS_CODE_ERROR,
                      "route": attrs["aiwatch.route"].string_value,
                      "model": attrs["gen_ai.request.model"].string_value,
                      "http_status": attrs["http.response.status_code"].int_value
                      if "http.response.status_code" in attrs else None,
                      "format_ok": attrs["aiwatch.format_ok"].bool_value if "aiwatch.format_ok" in attrs else None,
                      "quality_score": attrs["aiwatch.quality.score"].double_value
                      if "aiwatch.quality.score" in attrs else None,
                      "confidence": attrs["aiwatch.confidence"].double_value if "aiwatch.confidence" in attrs else None})
    return calls


# An incident in the data window: two overlapping alerts of SERVICE (one still firing) and one notification.
# shipped rules (their units format the values on the pages): an error burst at 20% of calls against
# a tolerated 5%, and a budget burning at 4.5x where the rule pages at 3x
INCIDENT_ALERTS = (("fp-err", "RouteErrorBurst", "P1", 40, 20, 0.2, 0.05),
                   ("fp-burn", "ErrorBudgetSlowBurn", "P2", 30, None, 4.5, 3.0))


def write_incident(db_path: Any) -> datetime:
    """Alert history straight into the store (the server must be stopped); returns the first firing."""
    import json
    from datetime import datetime, timedelta

    import pyarrow as pa

    from store.db import Store

    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    rows = []
    for fp, rule, sev, fired_ago, resolved_ago, value, threshold in INCIDENT_ALERTS:
        labels = json.dumps({"alertname": rule, "service": SERVICE, "route": "/summarize"})
        base = {"fingerprint": fp, "rule": rule, "severity": sev, "labels": labels, "value": value,
                "threshold": threshold}
        rows.append({**base, "time": now - timedelta(minutes=fired_ago), "from_state": "pending", "to_state": "firing"})
        if resolved_ago is not None:
            rows.append({**base, "time": now - timedelta(minutes=resolved_ago), "from_state": "firing",
                         "to_state": "resolved"})
    store = Store(db_path)
    try:
        store.writer.write(tables={
            "alert_history": pa.Table.from_pylist(rows),
            "alert_outbox": pa.table({"id": ["ob-1"], "receiver": ["slack"],
                                      "payload": [json.dumps({"alerts": [{"fingerprint": "fp-err"}]})]}),
            "alert_notifications": pa.table({"time": pa.array([now - timedelta(minutes=39)], pa.timestamp("us")),
                                             "outbox_id": ["ob-1"], "receiver": ["slack"], "outcome": ["delivered"],
                                             "http_status": pa.array([200], pa.int32())})})
    finally:
        store.close()
    return now - timedelta(minutes=40)
