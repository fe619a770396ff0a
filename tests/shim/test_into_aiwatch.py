"""End to end: a shimmed service's spans, audit events and feedback arrive in a running aiwatch server."""
from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

SCRIPT = Path(__file__).with_name("shimmed_service.py")


def test_shim_calls_land_in_the_server_with_audit_and_feedback(aiwatch_server):
    service = f"shimmed-{uuid.uuid4().hex[:8]}"
    proc = subprocess.run([sys.executable, str(SCRIPT), aiwatch_server.url, service], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    request_id = proc.stdout.strip().splitlines()[-1]
    [call] = aiwatch_server.query("spans", service=service, llm_only="true")
    assert (call["request_id"], call["route"], call["model_version"]) == (request_id, "answer", "2025-03")
    assert (call["input_tokens"], call["output_tokens"], call["retry_count"]) == (40, 9, 1)
    assert call["fallback_level"] == "primary" and call["cost_usd"] > 0
    assert (call["service_version"], call["deployment_environment"]) == ("3.1.0", "test")
    trace = aiwatch_server.query("trace", trace_id=call["trace_id"])
    assert len(trace) == 3  # the call and its two attempts; only the call counts as a model call
    [audit] = aiwatch_server.query("audit_events", request_id=request_id)
    assert audit["route"] == "answer" and "jane@example.com" not in (audit["input_text"] or "")
    [feedback] = aiwatch_server.query("feedback", service=service)
    assert (feedback["request_id"], feedback["action"], feedback["reviewer"], feedback["reason"]) == \
        (request_id, "rejected", "rita", "tone")
