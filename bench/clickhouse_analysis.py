"""The analysis pass on both backends, side by side: figures, not timed assertions.

N model-call spans (default 1M over one day) are generated in the OpenTelemetry Collector's
`otel_traces` shape inside ClickHouse's engine in-process (chdb), the way a Collector fleet would
have written them; the same spans, read back through aiwatch's `spans` view, are loaded into a
DuckDB store. Then the traffic analyzer (rollups, exact percentiles, error splits, cost) runs over
the whole range on each, and the two sets of rows are compared.

    .venv/bin/python bench/clickhouse_analysis.py [--spans 1000000] [--hours 24]
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiwatch.config import Settings  # noqa: E402
from aiwatch.storage import open_store  # noqa: E402
from analysis import runner  # noqa: E402
from analysis.base import Window  # noqa: E402
from analysis.traffic import TrafficAnalyzer  # noqa: E402

T0 = datetime(2025, 3, 1)

# uniforms from hashes of the row number: the same spans on every run
_U = "(cityHash64(number, {k}) / 18446744073709551616.0)"
GENERATE = f"""
INSERT INTO otel_traces (Timestamp, TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName,
                         ResourceAttributes, SpanAttributes, Duration, StatusCode)
SELECT toDateTime64('2025-03-01 00:00:00', 9) + toIntervalMicrosecond(number * {{step_us:UInt64}}),
       lower(hex(toFixedString(toString(number), 16))), lower(hex(toFixedString(toString(number), 8))), '',
       'chat', 'Client', concat('svc-', toString(number % 4)), map('service.version', '1.0'),
       map('gen_ai.operation.name', 'chat',
           'gen_ai.request.model', ['gpt-4o-mini', 'gpt-4o', 'claude-3-5-haiku'][1 + number % 3],
           'gen_ai.usage.input_tokens', toString(200 + toUInt32({_U.format(k=1)} * 600)),
           'gen_ai.usage.output_tokens', toString(50 + toUInt32({_U.format(k=2)} * 300)),
           'aiwatch.route', ['chat', 'search', 'summarize', 'classify', 'extract'][1 + intDiv(number, 4) % 5],
           'aiwatch.model.version', if(number % 20 = 0, 'v2', 'v1'),
           'aiwatch.arm', if(number % 20 = 0, 'canary', 'baseline'),
           'aiwatch.confidence', toString(pow({_U.format(k=3)}, 0.3)),
           'http.response.status_code', if({_U.format(k=4)} < 0.02, '500', '200')),
       toUInt64(1e6 * exp(log(400) + 0.5 * sqrt(-2 * log(greatest({_U.format(k=5)}, 1e-12)))
                              * cos(2 * pi() * {_U.format(k=6)}))),
       if({_U.format(k=4)} < 0.02, 'Error', 'Ok')
FROM numbers({{n:UInt64}})"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=1_000_000)
    ap.add_argument("--hours", type=int, default=24)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aiwatch-ch-bench-"))
    base = dict(env={}, data_dir=str(tmp / "data"), retention_days=0, analysis_retention_days=0)
    ch = open_store(Settings.load(**base, store=f"chdb://{tmp / 'ch'}?database=bench"))
    duck = open_store(Settings.load(**base))
    try:
        step_us = max(1, args.hours * 3600 * 10**6 // args.spans)
        t = time.perf_counter()
        ch.transport.command(GENERATE, {"n": args.spans, "step_us": step_us})  # type: ignore[attr-defined]
        print(f"generated {args.spans:,} Collector-shaped spans in ClickHouse in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        for h in range(args.hours):   # an hour at a time: Arrow from the spans view into DuckDB
            lo = T0 + timedelta(hours=h)
            part = ch.query("SELECT * FROM spans WHERE start_time >= $lo AND start_time < $hi",
                            {"lo": lo, "hi": lo + timedelta(hours=1)})
            duck.append({"spans": part}, timeout=600)
        print(f"copied into DuckDB in {time.perf_counter() - t:.1f} s")
        end = T0 + timedelta(hours=args.hours)
        rows = {}
        for name, store in (("duckdb", duck), ("chdb", ch)):
            t = time.perf_counter()
            runner.analyze(store, TrafficAnalyzer(store), Window(T0, end, T0))
            took = time.perf_counter() - t
            table = store.query("SELECT time, grain, metric, service_name, model, model_version, route, arm, value "
                                "FROM analysis_metrics")
            rows[name] = sorted((tuple(r.values()) for r in table.to_pylist()),
                                key=lambda r: tuple("" if v is None else str(v) for v in r[:8]))
            print(f"{name:>6}: traffic analysis pass over {args.spans:,} spans: {took:.2f} s, {len(rows[name]):,} rows")
        same = len(rows["duckdb"]) == len(rows["chdb"]) and all(
            d[:8] == c[:8] and (d[8] == c[8] or (d[8] is not None and c[8] is not None
                                                 and math.isclose(d[8], c[8], rel_tol=1e-12, abs_tol=1e-15)))
            for d, c in zip(rows["duckdb"], rows["chdb"]))
        print(f"rows equal on both backends (values to 1e-12): {same}")
        if not same:
            diffs = [(d, c) for d, c in zip(rows["duckdb"], rows["chdb"]) if d != c][:5]
            for d, c in diffs:
                print("  duckdb", d, "\n  chdb  ", c)
    finally:
        ch.close()
        duck.close()


if __name__ == "__main__":
    main()
