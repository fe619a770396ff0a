"""The README's first command works: `aiwatch demo` loads, analyzes, serves, sends live traffic, stops clean."""
from __future__ import annotations

import subprocess
import sys

import duckdb
from server_harness import ROOT, free_port


def test_demo_runs_end_to_end_and_leaves_nothing_running(tmp_path):
    data = tmp_path / "demo"
    port, dash_port = free_port(), free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "aiwatch", "--log-level", "WARNING", "demo", "--fresh", "--data-dir", str(data),
         "--port", str(port), "--dashboard-port", str(dash_port), "--provider-port", str(free_port()),
         "--duration", "25", "--rate", "6",
         "--incident-after", "5", "--incident-for", "600"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    assert f"dashboard: http://127.0.0.1:{dash_port}" in out and f"server:    http://127.0.0.1:{port}" in out
    assert out.count(f"127.0.0.1:{port}") == 1 and "Traceback" not in proc.stderr   # the address once
    assert "INCIDENT" in out  # the live incident was on when the status line printed
    con = duckdb.connect(str(data / "aiwatch.duckdb"), read_only=True)
    sample = con.execute("SELECT count(DISTINCT service_name) FROM spans WHERE is_llm").fetchone()[0]
    live = con.execute("SELECT count(*), count(*) FILTER (WHERE status_code = 'error') FROM spans "
                       "WHERE is_llm AND deployment_environment = 'demo'").fetchone()
    metrics = con.execute("SELECT count(*) FROM analysis_metrics").fetchone()[0]
    # The server analyzed the sample from its first day (the scheduled runs alone look back one day).
    first_span, first_bucket = con.execute(
        "SELECT (SELECT min(start_time) FROM spans WHERE is_llm), (SELECT min(time) FROM traffic_metrics)").fetchone()
    # The other sample services keep sending while the demo runs (no false "service silent" pages).
    background = con.execute("SELECT count(DISTINCT service_name) FROM spans WHERE is_llm AND service_name <> "
                             "'support-bot' AND received_at > (SELECT max(received_at) - INTERVAL 40 SECOND "
                             "FROM spans)").fetchone()[0]
    con.close()
    assert sample == 3 and metrics > 0 and background == 2
    assert first_bucket is not None and (first_bucket - first_span).total_seconds() < 3600, (first_span, first_bucket)
    assert live[0] > 20 and live[1] > 0  # live calls arrived through the shim, some failed in the incident
    leftovers = subprocess.run(["pgrep", "-f", f"--server.port {dash_port}|--port {port}"], capture_output=True,
                               text=True).stdout.split()
    assert not leftovers, "demo left processes running"
