"""Page data time of every dashboard page with N spans in the store (default 10M over 7 days).

Loads synthetic LLM spans straight into a fresh store through the single writer (Arrow batches),
optionally backfills the analyzers, starts the real server, and times the read-API calls each page
makes (uncached, as on a cold page load), `--repeat` times; prints the median and worst per page,
and the server's CPU seconds per page load (all its threads): on a machine shared with other work
the wall time says more about the neighbours, the CPU time about the queries.

    .venv/bin/python bench/dashboard.py --spans 10000000 [--analyze] [--data-dir DIR]

Figures, not timed assertions. Target: under 1 s of data time per page.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiwatch.config import Settings  # noqa: E402
from dashboard.client import ApiClient  # noqa: E402
from store.schema import SPAN_COLUMNS  # noqa: E402

SERVICES = np.array(["checkout", "support-bot", "search"])
ROUTES = np.array(["/summarize", "/classify", "/answer", "/extract", "/translate"])
MODELS = np.array(["gpt-4o-mini", "claude-haiku", "llama-3-70b"])
VERSIONS = np.array(["v1", "v2-canary"])
FALLBACK = np.array(["primary", "primary", "primary", "fallback", "rule_based", "human"])


def span_batch(n: int, start: datetime, span_s: float, rng: np.random.Generator, offset: int) -> pa.Table:
    """n spans starting in [start, start + span_s), in start order: spans arrive about as they
    start, so a store's row groups hold consecutive times (and zone maps prune by time)."""
    t0 = np.datetime64(start, "us")
    starts = t0 + np.sort((rng.random(n) * span_s * 1e6).astype("timedelta64[us]"))
    dur = rng.lognormal(6.0, 0.5, n)
    err = rng.random(n) < 0.03
    ids = np.arange(offset, offset + n)
    cols = {
        "trace_id": [f"{i:032x}" for i in ids], "span_id": [f"{i:016x}" for i in ids],
        "name": np.full(n, "chat"), "kind": np.full(n, "client"), "start_time": starts,
        "end_time": starts + (dur * 1000).astype("timedelta64[us]"), "duration_ms": dur,
        "status_code": np.where(err, "error", "ok"), "service_name": SERVICES[rng.integers(0, 3, n)],
        "is_llm": np.ones(n, bool), "operation": np.full(n, "chat"), "provider": np.full(n, "openai"),
        "request_model": MODELS[rng.integers(0, 3, n)], "input_tokens": rng.integers(50, 2000, n),
        "output_tokens": rng.integers(10, 500, n), "error_type": np.where(err, "InternalServerError", None),
        "http_status": np.where(err, 500, 200).astype("int32"), "request_id": [f"req-{i}" for i in ids],
        "model_version": VERSIONS[(rng.random(n) < 0.1).astype(int)], "route": ROUTES[rng.integers(0, 5, n)],
        "arm": np.where(rng.random(n) < 0.1, "canary", "baseline"), "confidence": rng.beta(8, 2, n),
        "quality_score": rng.random(n), "format_ok": rng.random(n) > 0.05, "fallback_level": FALLBACK[rng.integers(0, 6, n)],
        "retry_count": (rng.random(n) < 0.05).astype("int32"), "cost_usd": rng.random(n) * 0.02,
        "user_id": [f"user-{i % 5000}" for i in ids], "received_at": starts,
    }
    schema = pa.schema(SPAN_COLUMNS)
    return pa.table({f.name: pa.array(cols[f.name], f.type) if f.name in cols else pa.nulls(n, f.type)
                     for f in schema}, schema=schema)


def load(data_dir: Path, spans: int, days: float, batch: int = 500_000) -> float:
    from store.db import Store

    store = Store(Settings(data_dir=str(data_dir)).db_path, writer_max_rows=batch, queue_max_rows=batch * 4)
    rng = np.random.default_rng(1)
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=days)
    started = time.perf_counter()
    slice_s = days * 86400 * batch / spans   # each batch covers the next slice of the period
    try:
        for i, offset in enumerate(range(0, spans, batch)):
            n = min(batch, spans - offset)
            store.writer.write(tables={"spans": span_batch(n, start + timedelta(seconds=i * slice_s), slice_s, rng,
                                                           offset)}, timeout=600)
            print(f"\rloaded {offset + n:,} / {spans:,} spans", end="", flush=True)
    finally:
        store.close()
    print()
    return time.perf_counter() - started


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def page_calls(window: str) -> dict[str, list[tuple[str, dict]]]:
    """The read-API calls each page makes on a cold load (sidebar `dimensions` included)."""
    f = {"start": window, "end": "now"}
    m = {**f, "grain": "1h", "limit": 100000}
    side = [("dimensions", f)]
    return {
        "overview": side + [("calls", f), ("calls", {**f, "by": "service"}),
                            ("metrics", {**m, "metric": "slo_objective,slo_attainment_latency", "service": "*"}),
                            ("alerts", {}), ("metrics", {**m, "metric": "requests,latency_p95_ms,error_rate,cost_usd"}),
                            ("calls", {"start": "-24h", "end": "now", "by": "service_model"}),
                            ("calls", {"start": "-48h", "end": "-24h", "by": "service_model"})],
        "latency": side + [("calls", f), ("metrics", {**m, "metric": "latency_p50_ms,latency_p95_ms,latency_p99_ms"}),
                           ("latency_distribution", f), ("calls", {**f, "by": "service_model_version"})],
        "errors": side + [("calls", f), ("spans", {**f, "llm_only": "true", "limit": 5000}),
                          ("failures", {**f, "grain": "1h"}),
                          ("metrics", {**m, "metric": "timeouts,retries,breaker_opens,fallback_rate,"
                                                      "fallback_rule_based,fallback_human"})],
        "cost": side + [("calls", f), ("calls", {"start": datetime.now(UTC).strftime("%Y-%m-01T00:00:00"),
                                                 "end": "now"}), ("calls", {**f, "by": "service_model_version"}),
                        ("metrics", {**m, "metric": "cost_usd,cost_per_request_usd,input_tokens,output_tokens"}),
                        ("top_spenders", {**f, "by": "route"})],
        "resources": side + [("resource_metrics", {**f, "limit": 100000})],
        "quality": side + [("spans", {**f, "llm_only": "true", "limit": 5000}),
                           ("metrics", {**m, "metric": "confidence_ks_stat,confidence_ks_pvalue,confidence_psi,"
                                                       "confidence_wasserstein", "service": "*", "model": "*",
                                                       "version": "*"}),
                           ("metrics", {**m, "metric": "format_ok_rate,quality_mean,confidence_mean"}),
                           ("confidence_distribution", f), ("confidence_distribution", {"start": "-8d", "end": window, "quantiles": "false"})],
        "drift": side + [("metrics", {**m, "metric": "drift_share", "route": "*"}), ("drift", {**f, "limit": 5000}),
                         ("reports", {**f, "analyzer": "evidently", "limit": 50})],
        "review": side + [("overrides", {**f, "limit": 10000}), ("metrics", {**m, "metric": "override_rate", "route": "*"})],
        "canary": side + [("canary", {**f, "limit": 500}), ("spans", {**f, "llm_only": "true", "limit": 5000}),
                          ("metrics", {**m, "metric": "shadow_agreement_rate,canary_verdict", "version": "*"})],
        "alerts": side + [("alerts", {}), ("alert_history", {**f, "limit": 500}), ("silences", {}),
                          ("notifications", {**f, "limit": 500})],
        "traces": side + [("request", {"request_id": "req-123456"}), ("span_content", {"trace_id": f"{123456:032x}"}),
                          ("audit_events", {"request_id": "req-123456"})],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=10_000_000)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--window", default="-24h", help="dashboard time range (default -24h)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--analyze", action="store_true", help="backfill the analyzers over the last day first")
    ap.add_argument("--data-dir", help="reuse (or keep) this data folder")
    args = ap.parse_args()

    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="aiwatch-bench-dash-"))
    if not Settings(data_dir=str(data_dir)).db_path.exists():
        print(f"load: {args.spans / load(data_dir, args.spans, args.days):,.0f} spans/s into {data_dir}")
    if args.analyze:
        subprocess.run([sys.executable, "-m", "aiwatch", "analyze", "--since=-1d", "--until=now",
                        "--data-dir", str(data_dir)], cwd=ROOT, check=True)

    sys.path.insert(0, str(ROOT / "tests"))
    from server_harness import start_server, stop_server

    srv = start_server(data_dir, timeout=300)
    api = ApiClient(srv.url, timeout=120)
    try:
        available = set(api.catalog())
        print(f"\npage data time, {args.spans:,} spans over {args.days:g} days, window {args.window}, "
              f"{os.cpu_count()} CPUs, median / worst of {args.repeat} cold loads")
        print(f"{'page':<11}{'calls':>6}{'median s':>10}{'worst s':>9}{'CPU s':>7}   slowest call (CPU s)")
        for page, calls in page_calls(args.window).items():
            runs, cpus, slowest = [], [], ("", 0.0, 0.0)
            for _ in range(args.repeat):
                total = cpu_total = 0.0
                for name, params in calls:
                    if name not in available:
                        continue
                    t, c = time.perf_counter(), server_cpu(srv.process.pid)
                    res = api.query(name, **params)
                    dt, dc = time.perf_counter() - t, server_cpu(srv.process.pid) - c
                    total += dt
                    cpu_total += dc
                    if res.state == "error":
                        print(f"  {page}: {name} failed: {res.message}")
                    if dt > slowest[1]:
                        slowest = (name, dt, dc)
                runs.append(total)
                cpus.append(cpu_total)
            print(f"{page:<11}{len(calls):>6}{statistics.median(runs):>10.3f}{max(runs):>9.3f}"
                  f"{statistics.median(cpus):>7.2f}   {slowest[0]} {slowest[1]:.3f} ({slowest[2]:.2f})")
    finally:
        api.close()
        stop_server(srv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
