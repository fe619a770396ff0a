"""Audit events (OTLP logs and JSONL), feedback events, redaction before export, setup_telemetry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fakes.openai_server import Behavior, FakeOpenAI

from core import semconv as sc
from core.pricing import ModelPrice, Usage
from shim import AuditLog, Backend, ChatClient, PriceTable, Redactor, ShimError, record_feedback, setup_telemetry

PII_MSG = [{"role": "user", "content": "I am jane@example.com, card 4111 1111 1111 1111"}]


def test_audit_event_jsonl_and_otlp_are_redacted(server: FakeOpenAI, clock: Any, logs: Any, tmp_path: Path) -> None:
    server.default = Behavior("ok", content="Noted, jane@example.com.")
    audit = AuditLog(service="support-bot", otlp=True, jsonl_path=tmp_path / "audit.jsonl")
    c = ChatClient(Backend("p", "gpt-4o-mini", base_url=server.base_url, version="v7"), audit=audit, clock=clock)
    result = c.chat(PII_MSG, user="u-1", tenant="acme", route="support")
    audit.close()

    line = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[0])
    assert line["service"] == "support-bot" and "time" in line
    assert line[sc.EVENT_NAME] == sc.EVENT_AUDIT
    assert line[sc.REQUEST_ID] == result.request_id
    assert line[sc.AUDIT_INPUT] == "I am [REDACTED:email], card [REDACTED:card_number]"
    assert line[sc.AUDIT_OUTPUT] == "Noted, [REDACTED:email]."
    assert line[sc.MODEL_VERSION] == "v7" and line[sc.USER_ID] == "u-1" and line[sc.ROUTE] == "support"
    assert line[sc.DECISION_PATH] == "primary:ok" and line[sc.LATENCY_MS] > 0

    records = [r.log_record if hasattr(r, "log_record") else r for r in logs.get_finished_logs()]
    assert len(records) == 1
    rec = records[0]
    assert rec.event_name == sc.EVENT_AUDIT
    assert rec.attributes[sc.AUDIT_INPUT] == line[sc.AUDIT_INPUT]
    assert "jane@example.com" not in json.dumps(dict(rec.attributes))
    assert rec.trace_id == 0 or isinstance(rec.trace_id, int)


def test_failed_call_is_audited_too(server: FakeOpenAI, clock: Any, tmp_path: Path) -> None:
    server.default = Behavior("context_length")
    audit = AuditLog(otlp=False, jsonl_path=tmp_path / "a.jsonl")
    c = ChatClient(Backend("p", "gpt-4o-mini", base_url=server.base_url), audit=audit, clock=clock)
    with pytest.raises(ShimError, match="token_limit|context"):
        c.chat(PII_MSG)
    line = json.loads((tmp_path / "a.jsonl").read_text())
    assert line[sc.ERROR_TYPE] == "context_length_exceeded" and line[sc.DECISION_PATH] == "primary:context_length_exceeded"


def test_record_feedback(logs: Any, tmp_path: Path) -> None:
    audit = AuditLog(service="svc", otlp=True, jsonl_path=tmp_path / "fb.jsonl", redactor=Redactor("hash", salt="x"))
    sent = record_feedback("req-1", "modified", reviewer="ana", reason="wrong email bob@example.com", audit_log=audit)
    audit.close()
    assert sent[sc.EVENT_NAME] == sc.EVENT_FEEDBACK and sent[sc.FEEDBACK_ACTION] == "modified"
    assert sent[sc.FEEDBACK_REVIEWER] == "ana" and "bob@example.com" not in sent[sc.FEEDBACK_REASON]
    line = json.loads((tmp_path / "fb.jsonl").read_text())
    assert line[sc.REQUEST_ID] == "req-1" and line["service"] == "svc"
    records = [r.log_record if hasattr(r, "log_record") else r for r in logs.get_finished_logs()]
    assert records[0].event_name == sc.EVENT_FEEDBACK
    with pytest.raises(ValueError):
        record_feedback("req-1", "liked", audit_log=audit)


def test_price_table_override_and_unknown_model() -> None:
    table = PriceTable.default()
    assert table.version.startswith("genai-prices ")
    # provider snapshot names resolve through genai-prices (the old prefix table priced Sonnet 4.5 as 4)
    assert table.cost("gpt-4o-2024-08-06", Usage(1_000_000, 0)) == pytest.approx(2.50)
    assert table.cost("gpt-4o-mini-2024-07-18", Usage(0, 1_000_000, 0, 400_000)) == pytest.approx(0.60)
    assert table.cost("claude-sonnet-4-5-20250929", Usage(1_000_000, 1_000_000)) == pytest.approx(18.0)
    assert table.source("claude-sonnet-4-5-20250929").endswith("anthropic/claude-sonnet-4-5")
    assert table.cost("my-llama", Usage(10, 10)) is None          # unknown is not free
    assert table.source("my-llama") is None
    custom = table.with_overrides({"my-llama": ModelPrice(input=0.1, output=0.2),
                                   "gpt-4o-mini": ModelPrice(input=1.0, output=1.0)})
    assert custom.cost("my-llama", Usage(1_000_000, 1_000_000)) == pytest.approx(0.3)
    assert custom.cost("gpt-4o-mini-2024-07-18", Usage(1_000_000, 0)) == pytest.approx(1.0)  # overrides win
    assert custom.source("gpt-4o-mini-2024-07-18") == "override gpt-4o-mini"
    assert custom.version.endswith("+overrides")


def test_price_table_used_by_client(server: FakeOpenAI, clock: Any) -> None:
    prices = PriceTable({"gpt-4o-mini": ModelPrice(input=1.0, output=2.0)}, version="test")
    c = ChatClient(Backend("p", "gpt-4o-mini", base_url=server.base_url), prices=prices, audit=False, clock=clock)
    assert c.chat(PII_MSG).cost == pytest.approx((12 * 1.0 + 7 * 2.0) / 1e6)


def test_setup_telemetry_with_given_exporters() -> None:
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    span_exp, log_exp = InMemorySpanExporter(), InMemoryLogRecordExporter()
    tp, lp = setup_telemetry(service_name="svc", service_version="1.2.3", environment="prod",
                             span_exporter=span_exp, log_exporter=log_exp, batch=False, set_global=False)
    with tp.get_tracer("t").start_as_current_span("x"):
        pass
    span = span_exp.get_finished_spans()[0]
    assert span.resource.attributes["service.name"] == "svc"
    assert span.resource.attributes["service.version"] == "1.2.3"
    assert span.resource.attributes["deployment.environment.name"] == "prod"
    assert lp is not None


def test_setup_telemetry_exports_otlp_http_to_a_collector(tmp_path: Path) -> None:
    """End to end in a fresh process: spans and audit logs reach an OTLP/HTTP receiver on loopback."""
    script = tmp_path / "run.py"
    script.write_text(f"""
import sys, threading, json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
sys.path[:0] = [{str(Path(__file__).parents[2])!r}, {str(Path(__file__).parents[1])!r}]  # repo first: tests/shim must not shadow shim
from fakes.openai_server import FakeOpenAI
got = []
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        got.append((self.path, self.headers.get('Content-Type'), len(body), b'aiwatch.audit' in body, b'jane@' in body))
        self.send_response(200); self.send_header('Content-Length', '0'); self.end_headers()
otlp = ThreadingHTTPServer(('127.0.0.1', 0), H)
threading.Thread(target=otlp.serve_forever, daemon=True).start()
import shim
tp, lp = shim.setup_telemetry(endpoint=f'http://127.0.0.1:{{otlp.server_address[1]}}', service_name='svc')
with FakeOpenAI() as fake:
    c = shim.ChatClient(shim.Backend('p', 'gpt-4o-mini', base_url=fake.base_url))
    c.chat([{{'role': 'user', 'content': 'mail jane@example.com'}}])
tp.force_flush(); lp.force_flush()
print(json.dumps(sorted(set(got))))
""")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    paths = {g[0] for g in got}
    assert paths == {"/v1/traces", "/v1/logs"}
    assert all(g[1] == "application/x-protobuf" for g in got)
    assert any(g[0] == "/v1/logs" and g[3] for g in got)     # the audit event arrived
    assert not any(g[4] for g in got)                         # and the email did not


def test_import_shim_stays_light() -> None:
    code = ("import sys, shim; heavy = [m for m in ('streamlit', 'duckdb', 'polars', 'pandas', 'evidently', "
            "'numpy', 'pyarrow', 'opentelemetry.sdk') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
