"""Spans from the real openai client, instrumented by OpenLLMetry and by OpenInference, land right."""
from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("instrumented_openai.py")


@pytest.mark.parametrize("instrumentation", ["openllmetry", "openinference"])
def test_instrumented_openai_calls_land_in_typed_columns(server, instrumentation):
    service = f"{instrumentation}-{uuid.uuid4().hex[:8]}"
    proc = subprocess.run([sys.executable, str(SCRIPT), instrumentation, f"{server.url}/v1/traces", service],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = sorted(server.query("spans", service=service, llm_only="true"), key=lambda r: r["start_time"])
    assert len(rows) == 4, rows
    plain, streamed, limited, failed = rows
    for row in rows:
        assert row["provider"] == "openai" and row["request_model"] == "gpt-4o-mini"
        assert row["operation"] == "chat" and row["duration_ms"] > 0
    assert (plain["input_tokens"], plain["output_tokens"]) == (21, 3)
    assert plain["response_model"] == "gpt-4o-mini" and plain["status_code"] != "error"
    assert (streamed["input_tokens"], streamed["output_tokens"]) == (30, 5)
    assert limited["status_code"] == "error" and failed["status_code"] == "error"
    assert limited["error_type"] and failed["error_type"]
    assert plain["error_type"] is None
