"""collectors.decode.parse keeps every item that parses alone: a bad resource or scope rejects only the
items under it, a bad item only itself (protobuf and JSON bodies alike), in process."""
from __future__ import annotations

import json
import os

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collectors.decode import JSON, PROTOBUF, BadPayload, parse

BAD = b"\xff\xfe\xfd\xfc"   # invalid UTF-8 in a string field


def _request() -> ExportTraceServiceRequest:
    """Resource 0 (2 spans) with a marked resource attribute; resource 1 with a marked scope (3 spans),
    a clean scope (2 spans, one with a marked name) and a clean scope (1 span)."""
    req = ExportTraceServiceRequest()

    def resource(service: str, scopes: list[tuple[str, list[str]]]) -> None:
        rs = req.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = service
        for scope_name, names in scopes:
            ss = rs.scope_spans.add()
            ss.scope.name = scope_name
            for name in names:
                ss.spans.add(trace_id=os.urandom(16), span_id=os.urandom(8), name=name)

    resource("RRRR", [("ok", ["a", "b"])])
    resource("svc", [("SSSS", ["c", "d", "e"]), ("ok", ["f", "NNNN"]), ("ok", ["g"])])
    return req


def _protobuf() -> bytes:
    body = _request().SerializeToString()
    for mark in (b"RRRR", b"SSSS", b"NNNN"):
        assert body.count(mark) == 1
        body = body.replace(mark, BAD)
    return body


def _json() -> bytes:
    data = json.loads(json.dumps(_as_json(_request())))
    rs0, rs1 = data["resourceSpans"]
    rs0["resource"]["attributes"][0]["value"] = {"stringValue": ["not", "a", "string"]}
    rs1["scopeSpans"][0]["scope"]["name"] = {"bad": 1}
    rs1["scopeSpans"][1]["spans"][1]["name"] = ["bad"]
    return json.dumps(data).encode()


def _as_json(req: ExportTraceServiceRequest) -> dict:
    from google.protobuf import json_format
    data = json_format.MessageToDict(req)
    for rs in data["resourceSpans"]:   # OTLP/JSON ids are hex
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                span["traceId"], span["spanId"] = os.urandom(16).hex(), os.urandom(8).hex()
    return data


@pytest.mark.parametrize("kind,body", [(PROTOBUF, _protobuf()), (JSON, _json())])
def test_a_bad_resource_scope_or_item_rejects_only_what_is_under_it(kind, body):
    parsed = parse(body, kind, ExportTraceServiceRequest)
    kept = [s.name for rs in parsed.message.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert kept == ["f", "g"]
    assert parsed.rejected == 2 + 3 + 1
    reasons = " | ".join(parsed.reasons)
    assert "2 Span(s) in resource 0 (its resource is bad)" in reasons
    assert "3 Span(s) in resource 1 scope 0 (its scope is bad)" in reasons
    assert "1 Span(s) #1 of resource 1 scope 1" in reasons
    # the emptied resource and scope are gone, not left behind empty
    assert len(parsed.message.resource_spans) == 1 and len(parsed.message.resource_spans[0].scope_spans) == 2


def test_a_body_where_nothing_survives_is_a_400():
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "RRRR"
    rs.scope_spans.add().spans.add(name="x")
    with pytest.raises(BadPayload) as info:
        parse(req.SerializeToString().replace(b"RRRR", BAD), PROTOBUF, ExportTraceServiceRequest)
    assert info.value.status == 400
