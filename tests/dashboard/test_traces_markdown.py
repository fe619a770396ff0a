"""Backticks and Markdown in telemetry (service, span name, request id, route) stay text on the
Traces page: every Markdown string the page renders is checked with a CommonMark renderer."""
from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from markdown_it import MarkdownIt
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from otlp_data import PROTOBUF, _kv
from streamlit.testing.v1 import AppTest

from dashboard import client

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
LINK = "[click](https://evil.example)"
REQUEST_ID = f"req`{LINK}`x"
SERVICE = f"svc` {LINK} `"
TRACE_ID = "5e0c7a1b2c3d4e5f60718293a4b5c6d7"


def send(url: str) -> None:
    now = time.time_ns()
    traces = ExportTraceServiceRequest()
    rs = traces.resource_spans.add()
    rs.resource.attributes.append(_kv("service.name", SERVICE))
    span = rs.scope_spans.add().spans.add(
        trace_id=bytes.fromhex(TRACE_ID), span_id=bytes.fromhex("0102030405060708"), name=f"chat `{LINK}`",
        kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=now - 10**9, end_time_unix_nano=now)
    span.attributes.extend([_kv("gen_ai.operation.name", "chat"), _kv("gen_ai.request.model", "m"),
                            _kv("aiwatch.request.id", REQUEST_ID), _kv("aiwatch.route", f"/r`{LINK}`"),
                            _kv("error.type", f"E`{LINK}`")])
    logs = ExportLogsServiceRequest()
    rl = logs.resource_logs.add()
    rl.resource.attributes.append(_kv("service.name", SERVICE))
    audit = rl.scope_logs.add().log_records.add(time_unix_nano=now, trace_id=bytes.fromhex(TRACE_ID))
    audit.attributes.extend([_kv(k, v) for k, v in {
        "event.name": "aiwatch.audit", "aiwatch.request.id": REQUEST_ID, "aiwatch.user.id": f"u`{LINK}`",
        "gen_ai.request.model": f"m`{LINK}`", "aiwatch.route": f"/r``{LINK}``",
        "aiwatch.decision_path": f"p`{LINK}`", "aiwatch.input": "hi", "aiwatch.output": "yo"}.items()])
    for path, msg in (("/v1/traces", traces), ("/v1/logs", logs)):
        httpx.post(f"{url}{path}", content=msg.SerializeToString(), headers=PROTOBUF, timeout=30).raise_for_status()


@pytest.fixture(scope="module")
def traced_server(server):
    """The session's server with this module's trace (its ids and service are this module's own)."""
    send(server.url)
    deadline = time.monotonic() + 30   # ingest is asynchronous: wait until the trace can be read
    while not server.query("spans", service=SERVICE) and time.monotonic() < deadline:
        time.sleep(0.1)
    return server


def test_backticks_in_telemetry_never_make_links(traced_server, monkeypatch):
    monkeypatch.setenv("AIWATCH_SERVER_URL", traced_server.url)
    client.clear_cache()
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["id"] = REQUEST_ID
    at.run()
    at.switch_page("views/traces.py").run()
    assert not at.exception, [e.value for e in at.exception]
    rendered = [e.value for kind in (at.markdown, at.caption, at.warning) for e in kind]
    rendered += [e.label for e in at.expander]
    md = MarkdownIt("commonmark")
    page = "\n".join(md.render(text) for text in rendered)
    assert "href" not in page and "<img" not in page, page
    assert "https://evil.example" in page           # the text is shown, as text
    assert any("audit" in t.lower() or "u`" in t or "user" in t for t in rendered)
