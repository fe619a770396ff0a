"""`aiwatch serve --store chdb:///...`: a real server process ingests OTLP into the Collector's
ClickHouse tables and answers the read API from them (exact percentiles checked with numpy)."""
from __future__ import annotations

import time
from datetime import timedelta

import httpx
import numpy as np
import pytest

from tests.backends import opened
from tests.otlp_builders import span_request
from tests.server_harness import start_server, stop_server


def test_a_server_on_clickhouse_ingests_and_answers(tmp_path):
    store = f"chdb://{tmp_path / 'clickhouse'}?database=aiwatch_test"
    server = start_server(tmp_path / "data", env={"AIWATCH_STORE": store}, timeout=180)   # a loaded CI machine
    durations = [40.0 + 13.25 * i for i in range(20)]
    try:
        now = time.time_ns() - 60 * 10**9
        req = span_request([{"start_ns": now + i * 10**6, "duration_ms": d, "error": i == 3,
                             "attributes": {"gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 10 + i,
                                            "aiwatch.route": "chat"}} for i, d in enumerate(durations)],
                           service="checkout")
        r = httpx.post(f"{server.url}/v1/traces", content=req.SerializeToString(),
                       headers={"Content-Type": "application/x-protobuf"}, timeout=30)
        assert r.status_code == 200, r.text
        [calls] = server.query("calls", start="-1h")
        ok = [d for i, d in enumerate(durations) if i != 3]
        assert calls["requests"] == 20 and calls["errors"] == 1 and calls["input_tokens"] == sum(10 + i for i in range(20))
        assert calls["p95_ms"] == pytest.approx(np.percentile(ok, 95), rel=1e-12)
        ready = httpx.get(f"{server.url}/readyz", timeout=10).json()
        assert ready["status"] in ("ready", "degraded") and ready["store"] == "chdb"
    finally:
        stop_server(server)
    # the rows are the Collector's: another reader of otel_traces sees them in its shape
    for reader in opened("chdb", tmp_path):
        rows = reader.query("SELECT ServiceName, SpanKind, StatusCode, Duration FROM otel_traces ORDER BY Duration")
        assert rows.num_rows == 20 and set(rows.column("ServiceName").to_pylist()) == {"checkout"}
        assert rows.column("Duration").to_pylist()[0] == 40_000_000


def test_alert_jobs_are_scheduled_on_clickhouse(tmp_path):
    """Alert state, outbox and silences have ClickHouse tables: evaluation and delivery run there too,
    beside the analyzers and retention."""
    from aiwatch.server import AiwatchServer
    from tests.backends import settings_for

    server = AiwatchServer(settings_for("chdb", tmp_path))
    try:
        names = [job.name for job in server.jobs()]
    finally:
        server.close()
    assert "retention" in names and any(n.startswith("analysis-") for n in names)
    assert any(n.startswith("alerts-") for n in names)


def test_aiwatch_analyze_backfills_a_clickhouse_store(tmp_path, monkeypatch):
    from aiwatch.cli import main
    from tests.analysis.gen import T0, spans, write
    from tests.backends import settings_for

    settings = settings_for("chdb", tmp_path)
    for store in opened("chdb", tmp_path):
        write(store, spans(T0, 30, 10, seed=5))
    monkeypatch.setenv("AIWATCH_RETENTION_DAYS", "0")   # the 2025 test data would be past a TTL
    monkeypatch.setenv("AIWATCH_ANALYSIS_RETENTION_DAYS", "0")
    assert main(["analyze", "--store", settings.store, "--data-dir", str(tmp_path / "data"), "--analyzers", "traffic",
                 "--since", T0.isoformat(), "--until", (T0 + timedelta(hours=1)).isoformat()]) == 0
    for store in opened("chdb", tmp_path):
        assert store.scalar("SELECT value FROM analysis_metrics WHERE metric = 'requests' AND grain = '1h' "
                            "AND service_name IS NULL AND route IS NULL AND model IS NULL") == 300
