"""Probe latency and server memory under the network attacks of issue 10, default settings (all caps on).

    python bench/attacks.py

Starts `aiwatch serve` on a free loopback port with a fresh database and, for each attack, times
`GET /healthz` and a one-span `POST /v1/traces` while the attack is on, and reads the server's peak
RSS (main process; conversion workers are listed apart). Attacks: 300 idle connections plus 20 that
stall inside their headers; 20 uploads stalled mid-body; the 0.5 MB request of 20,000 resource
attributes x 500 spans (3 at once); `spans?limit=100000` over ~60k stored spans (3 at once).
"""
from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from otlp_builders import span_request  # noqa: E402
from server_harness import start_server, stop_server  # noqa: E402

from aiwatch.config import Settings  # noqa: E402

PB = {"content-type": "application/x-protobuf"}


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def probe(url: str, rounds: int = 10) -> dict[str, float]:
    """Median and worst latency (ms) of /healthz and of a one-span ingest."""
    health, ingest = [], []
    body = span_request([{"name": "probe"}], service="probe").SerializeToString()
    with httpx.Client(timeout=120) as client:
        for _ in range(rounds):
            t = time.perf_counter()
            assert client.get(f"{url}/healthz").status_code == 200
            health.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            r = client.post(f"{url}/v1/traces", content=body, headers=PB)
            assert r.status_code == 200, r.text
            ingest.append((time.perf_counter() - t) * 1000)
            time.sleep(0.05)
    return {"healthz_p50": float(np.median(health)), "healthz_max": max(health),
            "ingest_p50": float(np.median(ingest)), "ingest_max": max(ingest)}


def report(label: str, figures: dict[str, float], pid: int) -> None:
    workers = sum(rss_mb(c, "VmRSS") for c in children(pid))
    print(f"{label:<46}{figures['healthz_p50']:>9.1f}{figures['healthz_max']:>9.1f}{figures['ingest_p50']:>9.1f}"
          f"{figures['ingest_max']:>9.1f}{rss_mb(pid):>10.0f}{workers:>10.0f}", flush=True)


def in_background(fn, count: int) -> list[threading.Thread]:
    threads = [threading.Thread(target=fn, daemon=True) for _ in range(count)]
    for t in threads:
        t.start()
    return threads


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        srv = start_server(Path(tmp) / "data", env={"AIWATCH_INGEST_WORKERS": "-1"})
        pid = srv.process.pid
        try:
            print(f"{'attack':<46}{'hz p50':>9}{'hz max':>9}{'ing p50':>9}{'ing max':>9}{'peak MB':>10}"
                  f"{'wrk MB':>10}")
            report("none", probe(srv.url), pid)

            socks = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(320)]
            for s in socks[300:]:
                s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")
            report("300 idle + 20 header-stalled connections", probe(srv.url, 5), pid)
            for s in socks:
                s.close()

            socks = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(20)]
            for s in socks:
                s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\ncontent-type: application/x-protobuf\r\n"
                          b"content-length: 100000\r\n\r\n" + b"\x0a" * 100)
            report("20 uploads stalled mid-body", probe(srv.url, 5), pid)
            for s in socks:
                s.close()

            bomb = span_request([{"name": f"s{i}"} for i in range(500)], service="bomb",
                                resource={f"attr.{i}": f"value-{i}" for i in range(20_000)}).SerializeToString()
            stop = threading.Event()

            def send_bombs() -> None:
                with httpx.Client(timeout=120) as client:
                    while not stop.is_set():
                        client.post(f"{srv.url}/v1/traces", content=bomb, headers=PB)

            threads = in_background(send_bombs, 3)
            time.sleep(1)
            report(f"resource bombs ({len(bomb) // 1024} KiB, 3 senders)", probe(srv.url, 5), pid)
            stop.set()
            for t in threads:
                t.join(120)
            print(f"  database after the bombs: {Settings(data_dir=str(srv.data_dir)).db_path.stat().st_size / 1e6:.1f} MB"
                  f" (+WAL {sum(f.stat().st_size for f in srv.data_dir.glob('*.wal')) / 1e6:.1f} MB)")

            now = time.time_ns()
            with httpx.Client(timeout=120) as client:
                for b in range(60):
                    spans = [{"name": f"w{b}-{i}", "start_ns": now - (b * 1000 + i) * 10**6,
                              "attributes": {"gen_ai.request.model": "m", "note": "x" * 1000}} for i in range(1000)]
                    client.post(f"{srv.url}/v1/traces", content=span_request(spans, service="wide")
                                .SerializeToString(), headers=PB)
            stop.clear()
            sizes: list[tuple[int, str]] = []

            def read_spans() -> None:
                with httpx.Client(timeout=300) as client:
                    while not stop.is_set():
                        r = client.get(f"{srv.url}/v1/query/spans", params={"limit": "100000", "start": "-1d"})
                        sizes.append((len(r.content), r.headers.get("x-truncated", "?")))

            threads = in_background(read_spans, 3)
            time.sleep(2)
            report("spans?limit=100000 (3 readers, ~60k spans)", probe(srv.url, 5), pid)
            stop.set()
            for t in threads:
                t.join(300)
            print(f"  answers: {len(sizes)}, {max(s for s, _ in sizes) / 1e6:.1f} MB largest, truncated: "
                  f"{sorted({t for _, t in sizes})}")
        finally:
            stop_server(srv)


if __name__ == "__main__":
    main()
