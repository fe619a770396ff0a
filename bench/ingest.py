"""Sustained OTLP/HTTP protobuf ingest through the real server, against a parse-only ceiling.

    python bench/ingest.py [--seconds 20] [--senders 4] [--batch 500] [--store duckdb,chdb]

Starts `aiwatch serve` on a free loopback port with a fresh database, drives it from sender
processes posting pre-encoded batches of realistic LLM spans (the sample generator's), and reports
acknowledged-and-durable spans/s, request latency percentiles and the server's peak RSS. In the same
run, a receiver that only parses the protobuf (no mapping, no store) gives the ceiling. `--store`
names the backends to run one after the other in the same run (`duckdb`, the default, and/or
`chdb`: ClickHouse's engine in-process, spans written as rows of the Collector's `otel_traces`).
"""
from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PARSE_ONLY_APP = '''
import sys
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
import uvicorn

OK = ExportTraceServiceResponse().SerializeToString()

async def traces(request):
    req = ExportTraceServiceRequest.FromString(await request.body())
    n = sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
    return Response(OK, media_type="application/x-protobuf")

async def ready(request):
    return Response("ok")

app = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"]), Route("/readyz", ready)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", loop="uvloop", http="httptools")
'''


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def batches(batch_size: int, count: int) -> list[bytes]:
    from sample_data.generate import draw, encode
    from sample_data.scenario import load_scenario

    scenario = load_scenario()
    req = draw(scenario, datetime(2026, 11, 1), seed=1)
    out = []
    for b in encode(req, chunk=batch_size // 2):
        if b.spans == batch_size:
            out.append(b.traces.SerializeToString())
        if len(out) == count:
            break
    return out


def sender(url: str, bodies: list[bytes], seconds: float, threads: int, queue: mp.Queue) -> None:
    import threading

    latencies: list[float] = []
    acked = [0]
    shed = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop(offset: int) -> None:
        # A raw keep-alive HTTP/1.1 connection: the load generator shares the 2 cores with the
        # server, so it should cost as little CPU as possible (httpx costs several times more).
        i = offset
        host, port = url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {"content-type": "application/x-protobuf"}
        while time.monotonic() < deadline:
            body = bodies[i % len(bodies)]
            i += 1
            t0 = time.perf_counter()
            conn.request("POST", "/v1/traces", body=body, headers=headers)
            r = conn.getresponse()
            r.read()
            dt = time.perf_counter() - t0
            with lock:
                if r.status == 200:
                    latencies.append(dt)
                    acked[0] += 1
                else:
                    shed[0] += 1
            if r.status != 200:
                time.sleep(float(r.getheader("retry-after", "0.1")) / 10)
        conn.close()

    ts = [threading.Thread(target=loop, args=(k * 7,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    queue.put((acked[0], shed[0], latencies))


def wait_ready(url: str, proc: subprocess.Popen) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server not ready")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def drive(url: str, bodies: list[bytes], seconds: float, senders: int, threads: int, batch: int) -> dict:
    queue: mp.Queue = mp.Queue()
    procs = [mp.Process(target=sender, args=(url, bodies, seconds, threads, queue)) for _ in range(senders)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - t0
    acked = sum(r[0] for r in results)
    lat = np.concatenate([np.array(r[2]) for r in results]) * 1000 if acked else np.array([np.nan])
    return {"spans_per_s": acked * batch / elapsed, "requests": acked, "shed": sum(r[1] for r in results),
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)), "elapsed": elapsed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--senders", type=int, default=2, help="sender processes")
    ap.add_argument("--threads", type=int, default=4, help="concurrent requests per sender process")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--store", default="duckdb",
                    help="comma-separated backends to run in turn: duckdb, chdb (ClickHouse in-process)")
    ap.add_argument("--compare-redaction", action="store_true",
                    help="also run the server with redact_strings=false (message content stays redacted)")
    args = ap.parse_args()
    bodies = batches(args.batch, 40)
    print(f"{len(bodies)} distinct batches of {args.batch} spans, {np.mean([len(b) for b in bodies]) / 1024:.0f} KiB each; "
          f"{args.senders} senders x {args.threads} concurrent requests, {args.seconds:.0f} s per run")

    # Ceiling: a receiver that only parses.
    port = free_port()
    ceiling = subprocess.Popen([sys.executable, "-c", PARSE_ONLY_APP, str(port)])
    try:
        wait_ready(f"http://127.0.0.1:{port}", ceiling)
        parse_only = drive(f"http://127.0.0.1:{port}", bodies, args.seconds, args.senders, args.threads, args.batch)
    finally:
        ceiling.terminate()
        ceiling.wait()

    # The real server, fresh database, on each backend asked for (and, to compare, without redacting
    # every stored string).
    backends = [b.strip() for b in args.store.split(",") if b.strip()]
    if not backends or set(backends) - {"duckdb", "chdb"}:
        ap.error("--store takes duckdb and/or chdb")
    runs = {f"aiwatch serve, {b} (durable)": (b, "true") for b in backends}
    if args.compare_redaction:
        runs.update({f"  same, {b}, redact_strings=false": (b, "false") for b in backends})
    results = {}
    for label, (backend, redact_strings) in runs.items():
        with tempfile.TemporaryDirectory() as data:
            port = free_port()
            env = {**os.environ, "AIWATCH_SCHEDULER_ENABLED": "false", "AIWATCH_REDACT_STRINGS": redact_strings,
                   "AIWATCH_STORE": "duckdb" if backend == "duckdb" else f"chdb://{data}/clickhouse?database=bench",
                   "AIWATCH_RETENTION_DAYS": "0"}   # the sample spans lie in the past: no TTL may drop them
            server = subprocess.Popen([sys.executable, "-m", "aiwatch", "--log-level", "WARNING", "serve", "--port",
                                       str(port), "--data-dir", data], cwd=ROOT, env=env)
            try:
                url = f"http://127.0.0.1:{port}"
                wait_ready(url, server)
                # warm-up: every worker has imported, the store has its first parts
                warm = drive(url, bodies, min(3.0, args.seconds), args.senders, args.threads, args.batch)
                results[label] = drive(url, bodies, args.seconds, args.senders, args.threads, args.batch)
                results[label]["rss"] = peak_rss_mb(server.pid)
                counts = httpx.get(f"{url}/v1/query/table_counts").json()["data"]
                results[label]["stored"] = next(r["rows"] for r in counts if r["table"] == "spans")
                results[label]["acked"] = warm["requests"] * args.batch + results[label]["requests"] * args.batch
            finally:
                server.terminate()
                server.wait()

    print(f"{'receiver':<36}{'spans/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'503s':>7}")
    print(f"{'parse only (ceiling)':<36}{parse_only['spans_per_s']:>10,.0f}{parse_only['p50_ms']:>9.1f}"
          f"{parse_only['p99_ms']:>9.1f}{parse_only['shed']:>7}")
    for label, run in results.items():
        print(f"{label:<36}{run['spans_per_s']:>10,.0f}{run['p50_ms']:>9.1f}{run['p99_ms']:>9.1f}{run['shed']:>7}")
    for label, run in results.items():
        print(f"{label}: ratio to ceiling {run['spans_per_s'] / parse_only['spans_per_s']:.2f}, server peak RSS "
              f"{run['rss']:.0f} MiB, spans in the store {run['stored']:,} "
              f"(acknowledged with the warm-up: {run['acked']:,})")
    if len(backends) == 2:
        duck, ch = (results[f"aiwatch serve, {b} (durable)"]["spans_per_s"] for b in ("duckdb", "chdb"))
        print(f"chdb / duckdb, same run: {ch / duck:.2f}")


if __name__ == "__main__":
    main()
