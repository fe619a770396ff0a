"""The README's first command works: `aiwatch demo` loads, analyzes, serves, sends live traffic, and
Ctrl-C stops it clean."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import duckdb
from server_harness import ROOT, free_port


def test_demo_runs_end_to_end_and_ctrl_c_leaves_nothing_running(tmp_path):
    data = tmp_path / "demo"
    port, dash_port = free_port(), free_port()
    # No fixed run time: the demo runs until what the test reads is there, then gets Ctrl-C (SIGINT),
    # as a user would stop it. --duration only bounds it should the test hang.
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiwatch", "--log-level", "WARNING", "demo", "--fresh", "--data-dir", str(data),
         "--port", str(port), "--dashboard-port", str(dash_port), "--provider-port", str(free_port()),
         "--duration", "280", "--rate", "6", "--incident-after", "5", "--incident-for", "600"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out_lines: list[str] = []
    err_lines: list[str] = []
    readers = [threading.Thread(target=lambda f=f, into=into: into.extend(f), daemon=True)
               for f, into in ((proc.stdout, out_lines), (proc.stderr, err_lines))]
    for r in readers:
        r.start()
    try:
        deadline = time.monotonic() + 240
        # The first status line (15 s into the live traffic) shows the incident, and the server has
        # analyzed the sample's first day (its progress line).
        while time.monotonic() < deadline and proc.poll() is None and not (
                any("INCIDENT" in line for line in out_lines)
                and any("analyzer backfill: 1/" in line for line in err_lines)):
            time.sleep(0.5)
        assert proc.poll() is None, "".join(out_lines)[-3000:] + "".join(err_lines)[-3000:]
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)      # and a SIGTERM during the clean-up, as a supervisor or uv's forwarding sends
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    for r in readers:
        r.join(30)
    out, err = "".join(out_lines), "".join(err_lines)
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    assert "stopping the demo" in out and "Traceback" not in err
    assert f"dashboard: http://127.0.0.1:{dash_port}" in out and f"server:    http://127.0.0.1:{port}" in out
    assert out.count(f"127.0.0.1:{port}") == 1   # the address once
    assert "INCIDENT" in out  # the live incident was on when the status line printed
    con = duckdb.connect(str(data / "aiwatch.duckdb"), read_only=True)
    sample = con.execute("SELECT count(DISTINCT service_name) FROM spans WHERE is_llm").fetchone()[0]
    live = con.execute("SELECT count(*), count(*) FILTER (WHERE status_code = 'error') FROM spans "
                       "WHERE is_llm AND deployment_environment = 'demo'").fetchone()
    metrics = con.execute("SELECT count(*) FROM analysis_metrics").fetchone()[0]
    # the live calls continue the sample (sample_data.generate.draw_one), so they are no drift of their
    # own: they carry the input categories, and their input sizes sit where the sample's end has them
    live_inputs = dict(con.execute("""
        SELECT route, [count(*) FILTER (WHERE json_extract_string(attributes, '$."aiwatch.input.language"')
                                         IN ('en', 'es', 'de', 'fr', 'pt', 'ja')) / count(*), median(input_tokens)]
        FROM spans WHERE is_llm AND service_name = 'support-bot' AND status_code <> 'error'
          AND deployment_environment = 'demo' GROUP BY route""").fetchall())
    sample_inputs = dict(con.execute("""
        SELECT route, median(input_tokens) FROM spans
        WHERE is_llm AND service_name = 'support-bot' AND deployment_environment IS DISTINCT FROM 'demo'
          AND start_time > (SELECT max(start_time) - INTERVAL 4 HOUR FROM spans
                            WHERE is_llm AND deployment_environment IS DISTINCT FROM 'demo')
        GROUP BY route""").fetchall())
    # The server analyzed the sample from its first day (the scheduled runs alone look back one day).
    first_span, first_bucket = con.execute(
        "SELECT (SELECT min(start_time) FROM spans WHERE is_llm), (SELECT min(time) FROM traffic_metrics)").fetchone()
    # The other sample services keep sending while the demo runs (no false "service silent" pages).
    background = con.execute("SELECT count(DISTINCT service_name) FROM spans WHERE is_llm AND service_name <> "
                             "'support-bot' AND received_at > (SELECT max(received_at) - INTERVAL 40 SECOND "
                             "FROM spans)").fetchone()[0]
    con.close()
    assert sample == 3 and metrics > 0 and background == 2
    assert set(live_inputs) == {"answer", "summarize"}, live_inputs
    for route, (with_language, median_tokens) in live_inputs.items():
        assert with_language == 1.0 and 0.6 < median_tokens / sample_inputs[route] < 1.6, (route, live_inputs,
                                                                                           sample_inputs)
    assert first_bucket is not None and (first_bucket - first_span).total_seconds() < 3600, (first_span, first_bucket)
    assert live[0] > 20 and live[1] > 0  # live calls arrived through the shim, some failed in the incident
    leftovers = subprocess.run(["pgrep", "-f", f"--server.port {dash_port}|--port {port}"], capture_output=True,
                               text=True).stdout.split()
    assert not leftovers, "demo left processes running"


def test_a_port_another_process_holds_stops_the_demo_at_once_naming_the_flag(tmp_path):
    """A second demo (or one still stopping) used to die with a traceback after loading the sample."""
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "aiwatch", "demo", "--data-dir", str(tmp_path), "--port",
                              str(free_port()), "--dashboard-port", str(free_port()), "--provider-port",
                              str(free_port()), "--inbox-port", str(port)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert f"port {port} (--inbox-port) is in use" in out.stderr and "Traceback" not in out.stderr
    assert not list(tmp_path.iterdir())     # nothing was loaded or started
