"""Redaction at ingest, against the real server: every stored string, not only message content."""
from __future__ import annotations

import json
import uuid

import httpx
import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from otlp_builders import gauge_request, kvs, log_request, span_request
from server_harness import start_server, stop_server

PB = {"content-type": "application/x-protobuf"}
EMAIL, CARD, KEY = "jane.doe@example.com", "4111 1111 1111 1111", "sk-proj-" + "Ab3dEf6hIj" * 4


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("redact"), env={
        "AIWATCH_REDACT_DROP_KEYS": "db.password", "AIWATCH_REDACT_KEEP_KEYS": "support.email",
        "AIWATCH_REDACT_PATTERNS": "employee_id=EMP-\\d{6}"})
    yield srv
    stop_server(srv)


def _service() -> str:
    return f"svc-{uuid.uuid4().hex[:10]}"


def _post(server, path: str, req) -> None:
    r = httpx.post(f"{server.url}{path}", content=req.SerializeToString(), headers=PB, timeout=60)
    assert r.status_code == 200, r.text


def test_span_names_status_attributes_and_resource_are_redacted(server):
    service = _service()
    req = span_request([{"name": f"GET /users/{EMAIL}", "error": True,
                         "events": [("exception", {"exception.type": f"Err{EMAIL}", "exception.message": CARD})],
                         "attributes": {
        "http.url": f"https://api.example.com/v1/pay?card=4111111111111111&token={KEY}&page=2",
        "user.tags": ["vip", EMAIL],
        "client.address": "203.0.113.7", "net.peer.ip6": "[2001:db8::7]:443",
        "exception.stacktrace": f'Traceback:\n  File "x.py"\nValueError: bad card {CARD}',
        "db.password": "hunter2hunter2", "support.email": "help@example.com",
        "ticket": "filed by EMP-123456", "plain": "nothing to see", "count": 3,
    }}], service=service, resource={"host.owner": EMAIL, "k8s.pod.ip": "10.1.2.3"})
    span = req.resource_spans[0].scope_spans[0].spans[0]
    span.status.message = f"charge failed for {CARD}"
    span.attributes.append(KeyValue(key="request.body", value=AnyValue(kvlist_value=KeyValueList(
        values=kvs({"authorization": f"Bearer {KEY}", "ssn": "SSN: 123-45-6789"})))))
    _post(server, "/v1/traces", req)
    [row] = server.query("spans", service=service)
    stored = json.dumps(row)
    for secret in (EMAIL, "4111", KEY, "203.0.113.7", "2001:db8", "10.1.2.3", "123-45-6789", "hunter2", "EMP-123456"):
        assert secret not in stored, secret
    attrs = json.loads(row["attributes"])
    assert row["name"] == "GET /users/[REDACTED:email]"
    assert row["status_message"] == "charge failed for [REDACTED:card_number]"
    assert row["error_type"] == "[REDACTED:email]"         # from the exception event
    assert attrs["http.url"] == ("https://api.example.com/v1/pay?card=[REDACTED:card_number]"
                                 "&token=[REDACTED:openai_key]&page=2")
    assert attrs["user.tags"] == ["vip", "[REDACTED:email]"]
    assert attrs["net.peer.ip6"] == "[[REDACTED:ipv6]]:443"
    assert attrs["ticket"] == "filed by [REDACTED:employee_id]"
    assert "db.password" not in attrs                      # dropped outright
    assert attrs["support.email"] == "help@example.com"    # kept as sent
    assert attrs["plain"] == "nothing to see" and attrs["count"] == 3
    assert attrs["request.body"]["authorization"] == "Bearer [REDACTED:openai_key]"
    assert attrs["resource"] == {"host.owner": "[REDACTED:email]", "k8s.pod.ip": "[REDACTED:ipv4]"}


def test_log_bodies_attributes_and_feedback_reasons_are_redacted(server):
    service = _service()
    req = log_request([
        {"event.name": "aiwatch.feedback", "aiwatch.request.id": "r-1", "aiwatch.feedback.action": "rejected",
         "aiwatch.feedback.reviewer": "rita", "aiwatch.feedback.reason": f"it leaked {EMAIL}"},
        {"note": f"card {CARD}", "client.address": "198.51.100.23"},
    ], service=service)
    req.resource_logs[0].scope_logs[0].log_records[1].body.string_value = f"login from {EMAIL} with {KEY}"
    _post(server, "/v1/logs", req)
    [fb] = server.query("feedback", service=service)
    assert fb["reason"] == "it leaked [REDACTED:email]"
    [log] = server.query("logs", service=service)
    assert log["body"] == "login from [REDACTED:email] with [REDACTED:openai_key]"
    assert json.loads(log["attributes"]) == {"note": "card [REDACTED:card_number]", "client.address": "[REDACTED:ipv4]"}


def test_pathological_two_megabyte_prompt_is_cut_then_redacted(server):
    """`"AB12 " * 400000` in a prompt and an attribute used to hold ingest for 80 s per request."""
    service = _service()
    blob = "AB12 " * 400_000
    req = span_request([{"attributes": {"gen_ai.request.model": "m", "gen_ai.input.messages": blob,
                                        "note": blob}}], service=service)
    _post(server, "/v1/traces", req)
    [row] = server.query("spans", service=service)
    note = json.loads(row["attributes"])["note"]
    assert note.startswith("AB12 AB12") and note.endswith("…[truncated 1995904 chars]")
    [content] = server.query("span_content", trace_id=row["trace_id"])
    assert len(content["input_text"]) < 16_384 + 64 and content["truncated"]


def test_metric_point_attributes_are_redacted(server):
    service = _service()
    req = gauge_request("queue.depth", [1.0], service=service)
    point = req.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[0]
    point.attributes.extend(kvs({"owner": EMAIL}))
    _post(server, "/v1/metrics", req)
    rows = server.query("resource_metrics", service=service)
    assert rows and EMAIL not in json.dumps(rows) and "[REDACTED:email]" in json.dumps(rows)


def test_drop_key_is_removed_from_the_request_not_only_hidden():
    from collectors.content import RedactionConfig, build_policy
    from collectors.scrub import scrub_traces

    policy = build_policy(config=RedactionConfig(drop_keys=frozenset({"secret.thing"})))
    req = span_request([{"attributes": {"secret.thing": "x", "kept": "y"}}],
                       resource={"secret.thing": "z"})
    scrub_traces(req, policy)
    assert [kv.key for kv in req.resource_spans[0].resource.attributes] == ["service.name"]
    assert [kv.key for kv in req.resource_spans[0].scope_spans[0].spans[0].attributes] == ["kept"]


def test_jsonl_audit_lines_are_redacted_like_otlp(tmp_path):
    from collectors.content import default_policy
    from collectors.tailer import parse_line

    line = json.dumps({"event.name": "aiwatch.feedback", "aiwatch.request.id": "r-9", "service": "svc",
                       "aiwatch.feedback.action": "modified", "aiwatch.feedback.reason": f"sent to {EMAIL}",
                       "extra": {"ip": "192.0.2.44"}}).encode()
    table, row = parse_line(line, "file", default_policy())
    assert table == "feedback" and row["reason"] == "sent to [REDACTED:email]"
    assert json.loads(row["attributes"])["extra"] == {"ip": "[REDACTED:ipv4]"}
