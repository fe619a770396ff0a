"""The benchmarks' fast path (generate.store_tables) stores what the OTLP path stores."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pyarrow.compute as pc

from aiwatch.config import Settings
from sample_data.commands import generated_messages
from sample_data.generate import draw, store_tables
from sample_data.loader import StoreSink, deliver
from sample_data.realistic import realistic_scenario

START = datetime(2026, 11, 1)
SPAN_COLUMNS = ("trace_id", "span_id", "parent_span_id", "name", "start_time", "end_time", "duration_ms",
                "status_code", "service_name", "provider", "request_model", "response_model", "input_tokens",
                "output_tokens", "error_type", "http_status", "request_id", "model_version", "route", "arm",
                "confidence", "quality_score", "format_ok", "fallback_level", "retry_count", "cost_usd", "user_id")
FEEDBACK_COLUMNS = ("time", "service_name", "request_id", "trace_id", "action", "reason", "route", "model",
                    "model_version")


def test_fast_path_rows_equal_the_collected_rows(tmp_path):
    scenario = replace(realistic_scenario(3, level=0.2), days=0.1)
    sink = StoreSink(Settings(data_dir=str(tmp_path / "otlp")).db_path)
    try:
        deliver(generated_messages(scenario, START, 3), sink)
        collected = {t: sink.store.query(f"SELECT * FROM {t} {w} ORDER BY {o}")
                     for t, w, o in (("spans", "WHERE is_llm", "span_id"), ("feedback", "", "request_id"))}
    finally:
        sink.close()
    fast = store_tables(draw(scenario, START, 3), seed=3)
    spans = fast["spans"].sort_by("span_id")
    assert spans.num_rows == collected["spans"].num_rows > 100
    assert pc.sum(pc.equal(spans.column("status_code"), "error")).as_py() > 0
    for c in SPAN_COLUMNS:
        assert spans.column(c).to_pylist() == collected["spans"].column(c).to_pylist(), c
    feedback = fast["feedback"].sort_by("request_id")
    assert feedback.num_rows == collected["feedback"].num_rows > 10
    for c in FEEDBACK_COLUMNS:
        assert feedback.column(c).to_pylist() == collected["feedback"].column(c).to_pylist(), c
