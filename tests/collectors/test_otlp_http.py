"""OTLP/HTTP ingest against the real server: exporters, encodings, partial success, bad input."""
from __future__ import annotations

import gzip
import json
import os
import time
import uuid

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from otlp_builders import gauge_request, log_request, span_request
from server_harness import start_server, stop_server

PB = {"content-type": "application/x-protobuf"}


def unique_service() -> str:
    return f"svc-{uuid.uuid4().hex[:10]}"


def test_spans_from_the_real_otlp_exporter_come_back_through_the_read_api(server):
    service = unique_service()
    provider = TracerProvider(resource=Resource.create({"service.name": service, "service.version": "1.2.3",
                                                        "deployment.environment.name": "staging"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{server.url}/v1/traces")))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /answer") as parent:
        with tracer.start_as_current_span("chat gpt-4o-mini") as span:
            span.set_attributes({
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 33,
                "gen_ai.usage.cache_read.input_tokens": 64, "gen_ai.usage.reasoning.output_tokens": 5,
                "gen_ai.response.finish_reasons": ["stop"], "gen_ai.response.id": "chatcmpl-1",
                "aiwatch.route": "answer", "aiwatch.model.version": "2025-03", "aiwatch.arm": "canary",
                "aiwatch.confidence": 0.82, "aiwatch.format_ok": True, "aiwatch.cost.usd": 0.00042,
                "aiwatch.fallback.level": "primary", "aiwatch.retry.count": 1, "custom.flag": "yes"})
        parent_id = parent.get_span_context().span_id
    provider.shutdown()
    rows = server.query("spans", service=service, start="-1h")
    assert len(rows) == 2
    llm = next(r for r in rows if r["is_llm"])
    http_span = next(r for r in rows if not r["is_llm"])
    assert llm["parent_span_id"] == f"{parent_id:016x}" and http_span["parent_span_id"] is None
    assert (llm["operation"], llm["provider"], llm["request_model"], llm["response_model"]) == \
        ("chat", "openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert (llm["input_tokens"], llm["output_tokens"], llm["cache_read_tokens"], llm["reasoning_tokens"]) == \
        (120, 33, 64, 5)
    assert llm["finish_reasons"] == "stop" and llm["response_id"] == "chatcmpl-1"
    assert (llm["route"], llm["model_version"], llm["arm"], llm["fallback_level"], llm["retry_count"]) == \
        ("answer", "2025-03", "canary", "primary", 1)
    assert llm["confidence"] == pytest.approx(0.82) and llm["cost_usd"] == pytest.approx(0.00042)
    assert llm["format_ok"] is True and llm["status_code"] == "unset"
    assert (llm["service_version"], llm["deployment_environment"]) == ("1.2.3", "staging")
    attrs = json.loads(llm["attributes"])
    assert attrs["custom.flag"] == "yes" and "gen_ai.request.model" not in attrs
    assert set(attrs) == {"custom.flag", "resource"}  # unmapped resource attributes are kept too
    assert llm["duration_ms"] >= 0


def test_error_span_gets_error_type_from_its_exception_event(server):
    service = unique_service()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{server.url}/v1/traces")))
    with pytest.raises(TimeoutError):
        with provider.get_tracer("t").start_as_current_span("chat m") as span:
            span.set_attribute("gen_ai.request.model", "m")
            raise TimeoutError("upstream")
    provider.shutdown()
    [row] = server.query("spans", service=service)
    assert row["status_code"] == "error" and row["error_type"] == "TimeoutError"


def test_json_gzip_body_with_hex_ids_is_accepted(server):
    service = unique_service()
    body = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                               "scopeSpans": [{"spans": [{
                                   "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
                                   "name": "chat llama", "kind": 3,
                                   "startTimeUnixNano": str(1_700_000_000 * 10**9),
                                   "endTimeUnixNano": str(1_700_000_000 * 10**9 + 250_000_000),
                                   "status": {"code": 2, "message": "boom"},
                                   "attributes": [
                                       {"key": "gen_ai.system", "value": {"stringValue": "vllm"}},
                                       {"key": "gen_ai.request.model", "value": {"stringValue": "llama"}},
                                       {"key": "gen_ai.usage.prompt_tokens", "value": {"intValue": "10"}},
                                       {"key": "gen_ai.usage.completion_tokens", "value": {"intValue": 4}},
                                       {"key": "error.type", "value": {"stringValue": "500"}}]}]}]}]}
    r = httpx.post(f"{server.url}/v1/traces", content=gzip.compress(json.dumps(body).encode()),
                   headers={"content-type": "application/json", "content-encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    [row] = server.query("trace", trace_id="5b8efff798038103d269b633813fc60c")
    assert row["span_id"] == "eee19b7ec3c1b174" and row["provider"] == "vllm"
    assert (row["input_tokens"], row["output_tokens"]) == (10, 4)
    assert row["duration_ms"] == pytest.approx(250.0)
    assert (row["status_code"], row["status_message"], row["error_type"]) == ("error", "boom", "500")


def test_invalid_ids_are_rejected_alone_with_partial_success(server):
    service = unique_service()
    req = span_request([{"name": "good", "attributes": {"gen_ai.request.model": "m"}},
                        {"name": "short-trace", "trace_id": b"\x01\x02\x03"},
                        {"name": "zero-span", "span_id": bytes(8)}], service=service)
    r = httpx.post(f"{server.url}/v1/traces", content=req.SerializeToString(), headers=PB)
    assert r.status_code == 200
    resp = ExportTraceServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_spans == 2
    assert "trace_id must be 16" in resp.partial_success.error_message
    assert "span_id must be 8" in resp.partial_success.error_message
    assert [row["name"] for row in server.query("spans", service=service)] == ["good"]


def test_every_member_of_a_multi_member_gzip_body_is_read(server):
    service = unique_service()
    # Concatenated protobuf messages merge, and concatenated gzip members are one gzip body (RFC 1952).
    parts = [span_request([{"name": f"part-{i}"}], service=service).SerializeToString() for i in range(3)]
    body = b"".join(gzip.compress(p) for p in parts)
    r = httpx.post(f"{server.url}/v1/traces", content=body, headers={**PB, "content-encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert sorted(row["name"] for row in server.query("spans", service=service)) == ["part-0", "part-1", "part-2"]


def test_invalid_utf8_rejects_only_its_own_item(server):
    service = unique_service()
    req = span_request([{"name": "good-1"}, {"name": "BAD-NAME"}, {"name": "good-2"}], service=service)
    body = req.SerializeToString().replace(b"BAD-NAME", b"BAD\xffNAME")
    r = httpx.post(f"{server.url}/v1/traces", content=body, headers=PB)
    assert r.status_code == 200, r.text
    resp = ExportTraceServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_spans == 1 and "UTF-8" in resp.partial_success.error_message
    assert sorted(row["name"] for row in server.query("spans", service=service)) == ["good-1", "good-2"]
    # The same over OTLP/JSON, where the bad byte sits inside a JSON string.
    service = unique_service()
    now_ns = time.time_ns()
    spans = [{"traceId": os.urandom(16).hex(), "spanId": os.urandom(8).hex(), "name": name,
              "startTimeUnixNano": str(now_ns), "endTimeUnixNano": str(now_ns + 10**6)}
             for name in ("good-1", "BAD-NAME", "good-2")]
    body = json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": spans}]}]}).encode().replace(b"BAD-NAME", b"BAD\xffNAME")
    r = httpx.post(f"{server.url}/v1/traces", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert sorted(row["name"] for row in server.query("spans", service=service)) == ["good-1", "good-2"]
    # A log record too: the batch's other record is kept.
    service = unique_service()
    body = log_request([{"note": "kept"}, {"note": "BAD-NOTE"}], service=service).SerializeToString()
    r = httpx.post(f"{server.url}/v1/logs", content=body.replace(b"BAD-NOTE", b"BAD\xffNOTE"), headers=PB)
    assert r.status_code == 200, r.text
    assert [json.loads(row["attributes"]) for row in server.query("logs", service=service)] == [{"note": "kept"}]


def test_wrong_typed_and_huge_attributes_are_kept_with_a_warning(server):
    service = unique_service()
    req = span_request([{"attributes": {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": "twelve",
                                        "gen_ai.usage.output_tokens": "7", "aiwatch.confidence": True,
                                        "big": "x" * 100_000}}], service=service)
    r = httpx.post(f"{server.url}/v1/traces", content=req.SerializeToString(), headers=PB)
    resp = ExportTraceServiceResponse.FromString(r.content)
    assert r.status_code == 200 and resp.partial_success.rejected_spans == 0
    assert "gen_ai.usage.input_tokens" in resp.partial_success.error_message
    [row] = server.query("spans", service=service)
    attrs = json.loads(row["attributes"])
    assert row["input_tokens"] is None and attrs["gen_ai.usage.input_tokens"] == "twelve"
    assert row["output_tokens"] == 7  # a numeric string is coerced
    assert row["confidence"] is None and attrs["aiwatch.confidence"] is True
    assert len(attrs["big"]) < 5_000 and attrs["big"].endswith("[truncated 95904 chars]")


def test_out_of_range_numbers_are_kept_in_attributes_with_a_warning(server):
    # Each of these once blinded the traffic analyzer (its scaled sums overflowed) for every service.
    service = unique_service()
    year_ns = 365 * 86_400 * 10**9
    req = span_request([
        {"name": "hostile", "duration_ms": 292 * year_ns / 1e6, "attributes": {
            "gen_ai.request.model": "m", "aiwatch.confidence": 1e5, "aiwatch.quality.score": "9224",
            "aiwatch.cost.usd": 9.3e6, "gen_ai.usage.input_tokens": 2**62, "aiwatch.retry.count": -1,
            "gen_ai.usage.output_tokens": 12}},
        {"name": "fine", "attributes": {"gen_ai.request.model": "m", "aiwatch.confidence": 1.0,
                                        "aiwatch.quality.score": 0.0}}], service=service)
    r = httpx.post(f"{server.url}/v1/traces", content=req.SerializeToString(), headers=PB)
    resp = ExportTraceServiceResponse.FromString(r.content)
    # both spans are stored, so none is rejected; the message names what was not put in its column
    assert r.status_code == 200 and resp.partial_success.rejected_spans == 0
    message = resp.partial_success.error_message
    assert "6 value(s) out of range" in message and "aiwatch.confidence=100000.0 is outside [0.0, 1.0]" in message
    rows = {row["name"]: row for row in server.query("spans", service=service)}
    hostile, fine = rows["hostile"], rows["fine"]
    for col in ("confidence", "quality_score", "cost_usd", "input_tokens", "retry_count", "duration_ms"):
        assert hostile[col] is None, col
    assert hostile["output_tokens"] == 12 and hostile["end_time"] > hostile["start_time"]
    attrs = json.loads(hostile["attributes"])
    assert attrs["aiwatch.confidence"] == 1e5 and attrs["aiwatch.quality.score"] == "9224"
    assert attrs["aiwatch.cost.usd"] == 9.3e6 and attrs["gen_ai.usage.input_tokens"] == 2**62
    assert attrs["aiwatch.retry.count"] == -1
    assert (fine["confidence"], fine["quality_score"]) == (1.0, 0.0) and fine["attributes"] is None


def test_message_content_is_redacted_and_kept_apart_from_attributes(server):
    service = unique_service()
    trace_id = os.urandom(16)
    req = span_request([{"trace_id": trace_id, "attributes": {
        "gen_ai.request.model": "m",
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [
            {"type": "text", "content": "mail me at jane.doe@example.com, key sk-proj-abcdefghijklmnopqrstuvwxyz012345"}]}]),
        "gen_ai.output.messages": "call +1 415 555 0100"}}], service=service)
    assert httpx.post(f"{server.url}/v1/traces", content=req.SerializeToString(), headers=PB).status_code == 200
    [span] = server.query("spans", service=service)
    assert span["attributes"] is None  # content never lands in the attributes column
    [content] = server.query("span_content", trace_id=trace_id.hex())
    assert "jane.doe@example.com" not in content["input_text"] and "sk-proj-abc" not in content["input_text"]
    assert "[REDACTED:email]" in content["input_text"]
    assert "415 555 0100" not in content["output_text"]


def test_logs_route_audit_feedback_and_plain_records(server):
    service = unique_service()
    req = log_request([
        {"event.name": "aiwatch.audit", "aiwatch.request.id": "r-1", "aiwatch.route": "answer",
         "aiwatch.latency_ms": 812.5, "aiwatch.input": "my email is a.b@example.org", "aiwatch.output": "ok"},
        {"event.name": "aiwatch.feedback", "aiwatch.request.id": "r-1", "aiwatch.feedback.action": "rejected",
         "aiwatch.feedback.reviewer": "rita", "aiwatch.feedback.reason": "wrong facts"},
        {"event.name": "aiwatch.feedback", "aiwatch.request.id": "r-2", "aiwatch.feedback.action": "maybe"},
        {"note": "plain"},
    ], service=service)
    r = httpx.post(f"{server.url}/v1/logs", content=req.SerializeToString(), headers=PB)
    assert r.status_code == 200
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
    resp = ExportLogsServiceResponse.FromString(r.content)
    assert resp.partial_success.rejected_log_records == 1 and "maybe" in resp.partial_success.error_message
    [audit] = server.query("audit_events", service=service)
    assert audit["latency_ms"] == 812.5 and "a.b@example.org" not in audit["input_text"]
    [fb] = server.query("feedback", service=service)
    assert (fb["action"], fb["reviewer"], fb["reason"]) == ("rejected", "rita", "wrong facts")
    [plain] = server.query("logs", service=service)
    assert json.loads(plain["attributes"]) == {"note": "plain"}


def test_metrics_land_in_resource_metrics(server):
    service = unique_service()
    r = httpx.post(f"{server.url}/v1/metrics", content=gauge_request("gpu.utilization", [0.5, 0.75],
                                                                     service).SerializeToString(), headers=PB)
    assert r.status_code == 200
    rows = server.query("resource_metrics", service=service, start="-1h")
    assert [row["value"] for row in rows] == [0.5, 0.75]


def test_non_finite_metric_points_are_rejected_alone(server):
    service = unique_service()
    r = httpx.post(f"{server.url}/v1/metrics", content=gauge_request(
        "gpu.utilization", [float("nan"), 0.5, float("inf")], service).SerializeToString(), headers=PB)
    resp = ExportMetricsServiceResponse.FromString(r.content)
    assert r.status_code == 200 and resp.partial_success.rejected_data_points == 2
    assert "not a finite number" in resp.partial_success.error_message
    assert [row["value"] for row in server.query("resource_metrics", service=service, start="-1h")] == [0.5]


@pytest.mark.parametrize("headers,body,status,reason", [
    (PB, b"\xff\xff\xff\xff", 400, "malformed protobuf"),
    ({"content-type": "application/json"}, b"{not json", 400, "malformed JSON"),
    ({"content-type": "application/json"}, b"[1,2]", 400, "must be an object"),
    ({"content-type": "application/json"}, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
     400, "not hex"),
    ({"content-type": "application/json"}, b'{"resourceSpans": 5}', 400, "does not match"),
    ({"content-type": "text/plain"}, b"hello", 415, "unsupported content type"),
    ({**PB, "content-encoding": "gzip"}, b"not gzip", 400, "not valid gzip"),
    ({**PB, "content-encoding": "br"}, b"x", 415, "content encoding"),
])
def test_bad_payloads_get_a_4xx_with_a_reason(server, headers, body, status, reason):
    r = httpx.post(f"{server.url}/v1/traces", content=body, headers=headers)
    assert r.status_code == status
    assert reason in r.text
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_read_api_errors_are_structured_and_every_response_has_a_request_id(server):
    r = httpx.get(f"{server.url}/v1/query/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_query"
    r = httpx.get(f"{server.url}/v1/query/spans", params={"start": "yesterday-ish"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_parameter"
    assert r.json()["error"]["request_id"] == r.headers["x-request-id"]
    r = httpx.get(f"{server.url}/v1/query/spans", params={"sql": "DROP TABLE spans"})
    assert r.status_code == 400 and "unknown parameter" in r.json()["error"]["message"]
    r = httpx.get(f"{server.url}/v1/query/table_counts", headers={"x-request-id": "abc"})
    assert r.headers["x-request-id"] == "abc" and r.json()["request_id"] == "abc"


def test_arrow_ipc_format(server):
    import pyarrow as pa

    r = httpx.get(f"{server.url}/v1/query/table_counts", params={"format": "arrow"})
    assert r.headers["content-type"] == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(r.content).read_all()
    assert set(table.column("table").to_pylist()) >= {"spans", "feedback"}


def test_openapi_describes_every_named_query(server):
    spec = httpx.get(f"{server.url}/v1/openapi.json").json()
    names = {q["name"] for q in httpx.get(f"{server.url}/v1/queries").json()["queries"]}
    assert spec["openapi"].startswith("3.") and names
    assert {p.rsplit("/", 1)[1] for p in spec["paths"]} == names


def test_prometheus_metrics_count_ingest(server):
    text = httpx.get(f"{server.url}/metrics").text
    assert "# TYPE aiwatch_accepted_total counter" in text
    assert 'aiwatch_requests_total{code="200",signal="traces"}' in text
    assert "aiwatch_queue_rows " in text and "aiwatch_database_bytes " in text


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("guarded"), env={
        "AIWATCH_INGEST_TOKEN": "in-secret", "AIWATCH_API_TOKEN": "read-secret",
        "AIWATCH_METRICS_TOKEN": "scrape-secret", "AIWATCH_MAX_BODY_BYTES": "65536"})
    yield srv
    stop_server(srv)


def test_bearer_tokens_guard_ingest_and_read_api(guarded_server):
    url = guarded_server.url
    body = span_request([{}]).SerializeToString()
    assert httpx.post(f"{url}/v1/traces", content=body, headers=PB).status_code == 401
    assert httpx.post(f"{url}/v1/traces", content=body,
                      headers={**PB, "authorization": "Bearer wrong"}).status_code == 401
    assert httpx.post(f"{url}/v1/traces", content=body,
                      headers={**PB, "authorization": "Bearer in-secret"}).status_code == 200
    assert httpx.get(f"{url}/v1/query/table_counts").status_code == 401
    r = httpx.get(f"{url}/v1/query/table_counts", headers={"authorization": "Bearer read-secret"})
    assert r.status_code == 200
    assert httpx.get(f"{url}/healthz").status_code == 200


def test_metrics_need_a_token_and_probes_stay_open(guarded_server):
    url = guarded_server.url
    for headers in ({}, {"authorization": "Bearer in-secret"}, {"authorization": "Bearer wrong"}):
        r = httpx.get(f"{url}/metrics", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    for token in ("scrape-secret", "read-secret"):
        r = httpx.get(f"{url}/metrics", headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 200 and "aiwatch_requests_in_progress" in r.text
    assert httpx.get(f"{url}/healthz").status_code == 200
    r = httpx.get(f"{url}/readyz")
    assert r.status_code == 200 and set(r.json()) <= {"status", "queue_rows", "analyzers_failing", "store", "instance"} and r.json()["store"] == "duckdb"


def test_oversized_bodies_and_gzip_bombs_get_413(guarded_server):
    auth = {**PB, "authorization": "Bearer in-secret"}
    r = httpx.post(f"{guarded_server.url}/v1/traces", content=b"\0" * 70_000, headers=auth)
    assert r.status_code == 413 and "limit" in r.text
    bomb = gzip.compress(b"\0" * 5_000_000)
    assert len(bomb) < 65536
    r = httpx.post(f"{guarded_server.url}/v1/traces", content=bomb, headers={**auth, "content-encoding": "gzip"})
    assert r.status_code == 413
    assert httpx.get(f"{guarded_server.url}/healthz").status_code == 200
