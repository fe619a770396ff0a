"""Acknowledged means durable (kill -9 under load), and overload sheds with 503 + Retry-After."""
from __future__ import annotations

import os
import threading
import time

import httpx
from otlp_builders import span_request
from server_harness import start_server, stop_server

PB = {"content-type": "application/x-protobuf"}


def test_every_acknowledged_span_survives_kill_9_under_load(tmp_path):
    data = tmp_path / "data"
    srv = start_server(data)
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def sender() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                ids = [os.urandom(16) for _ in range(200)]
                body = span_request([{"trace_id": t, "attributes": {"gen_ai.request.model": "m"}} for t in ids],
                                    service="durable").SerializeToString()
                try:
                    r = client.post(f"{srv.url}/v1/traces", content=body, headers=PB)
                except httpx.HTTPError:
                    return  # the server died mid-request: that batch was never acknowledged
                if r.status_code == 200:
                    with lock:
                        acked.extend(t.hex() for t in ids)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 20_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    srv.kill()  # SIGKILL while senders are mid-flight
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 2_000
    srv = start_server(data, port=srv.port)
    try:
        rows = srv.query("spans", service="durable", start="-1h", limit=100_000)
        stored = {r["trace_id"] for r in rows}
        missing = set(acked) - stored
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged spans were lost"
    finally:
        stop_server(srv)


def test_a_full_write_queue_answers_503_with_retry_after_and_recovers(tmp_path):
    # A queue of 1 row with a slow group commit (flush delay 1.5 s) fills at once.
    srv = start_server(tmp_path / "data", env={"AIWATCH_QUEUE_MAX_ROWS": "1", "AIWATCH_WRITER_MAX_DELAY_MS": "1500",
                                               "AIWATCH_RETRY_AFTER_S": "3"})
    try:
        body = span_request([{}] * 50, service="shed").SerializeToString()
        results: list[httpx.Response] = []

        def post() -> None:
            results.append(httpx.post(f"{srv.url}/v1/traces", content=body, headers=PB, timeout=30))

        threads = [threading.Thread(target=post) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(r.status_code for r in results)
        assert 200 in codes and 503 in codes, codes
        shed = next(r for r in results if r.status_code == 503)
        assert shed.headers["retry-after"] == "3"
        accepted = codes.count(200)
        assert len(srv.query("spans", service="shed")) == 50 * accepted
        assert httpx.post(f"{srv.url}/v1/traces", content=body, headers=PB, timeout=30).status_code == 200
        metrics = httpx.get(f"{srv.url}/metrics").text
        assert 'aiwatch_shed_total{signal="traces"}' in metrics
    finally:
        stop_server(srv)


def test_conversion_workers_leave_when_the_server_is_killed(tmp_path):
    import subprocess

    srv = start_server(tmp_path / "data", env={"AIWATCH_INGEST_WORKERS": "2"})
    children = subprocess.run(["pgrep", "-P", str(srv.process.pid)], capture_output=True, text=True).stdout.split()
    assert len(children) >= 2
    srv.kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{pid}") and
                                              "zombie" not in open(f"/proc/{pid}/status").read() for pid in children):
        time.sleep(0.2)
    alive = [pid for pid in children if os.path.exists(f"/proc/{pid}")
             and "zombie" not in open(f"/proc/{pid}/status").read()]
    assert not alive
