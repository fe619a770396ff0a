"""The analysis pass on both backends, side by side, and reads of the Collector's table: figures,
not timed assertions.

N model-call spans (default 10M over one day) are generated as aiwatch span rows in Arrow (by
ClickHouse's engine from hashes of the row number, a million at a time) and written to both
stores: appended to a DuckDB store, and written into chdb (ClickHouse in-process) through
aiwatch's own ingest path, which stores them as rows of the OpenTelemetry Collector's
`otel_traces` schema (Map attributes, Duration in ns) and reads them back through the `spans` view
as a Collector fleet's rows would be. Then the traffic analyzer (rollups, exact percentiles, error
splits, cost) runs over the whole range on each and the two sets of rows are compared, and the
read API's span queries are timed on each (rows/s of the spans they cover). `--analyzers all` runs
every shipped analyzer in the pass instead (timed one by one, all their rows compared).

    nice -n 10 .venv/bin/python bench/clickhouse_analysis.py [--spans 10000000] [--hours 24] [--materialize]
                                                              [--analyzers traffic|all|a,b,...]

--materialize: then, in the same run, turn `clickhouse_materialize` on (its ALTER, then
`ALTER TABLE ... MATERIALIZE COLUMN` so the existing parts hold the columns, timed) and repeat
the chdb analysis pass and reads over the same rows.
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiwatch.config import Settings  # noqa: E402
from aiwatch.stages import stage_queries  # noqa: E402
from aiwatch.storage import open_store  # noqa: E402
from analysis import runner  # noqa: E402
from analysis.base import Window  # noqa: E402
from analysis.registry import ANALYZERS  # noqa: E402
from store.schema import SPAN_COLUMNS, arrow_schema  # noqa: E402

T0 = datetime(2025, 3, 1)
CHUNK = 1_000_000

# uniforms from hashes of the row number: the same spans on every run
_U = "(cityHash64(number, {k}) / 18446744073709551616.0)"
_DURATION_NS = (f"toUInt64(1e6 * exp(log(400) + 0.5 * sqrt(-2 * log(greatest({_U.format(k=5)}, 1e-12))) "
                f"* cos(2 * pi() * {_U.format(k=6)})))")
_START = "toDateTime64('2025-03-01 00:00:00', 6) + toIntervalMicrosecond(number * {step_us:UInt64})"
_ERROR = f"{_U.format(k=4)} < 0.02"
# aiwatch span rows: the values an LLM client's OTLP spans would carry (durations in whole ns, end =
# start + duration, as OTLP has them); every other span column NULL
GENERATE = f"""
SELECT lower(hex(toFixedString(toString(number), 16))) AS trace_id,
       lower(hex(toFixedString(toString(number), 8))) AS span_id, 'chat' AS name, 'client' AS kind,
       {_START} AS start_time,
       fromUnixTimestamp64Micro(toInt64(intDiv(toUnixTimestamp64Nano({_START}) + {_DURATION_NS}, 1000))) AS end_time,
       {_DURATION_NS} / 1e6 AS duration_ms, if({_ERROR}, 'error', 'ok') AS status_code,
       concat('svc-', toString(number % 4)) AS service_name, '1.0' AS service_version, true AS is_llm,
       'chat' AS operation, ['gpt-4o-mini', 'gpt-4o', 'claude-3-5-haiku'][1 + number % 3] AS request_model,
       toInt64(200 + toUInt32({_U.format(k=1)} * 600)) AS input_tokens,
       toInt64(50 + toUInt32({_U.format(k=2)} * 300)) AS output_tokens,
       if({_ERROR}, '_OTHER', NULL) AS error_type, toInt32(if({_ERROR}, 500, 200)) AS http_status,
       if(number % 20 = 0, 'v2', 'v1') AS model_version,
       ['chat', 'search', 'summarize', 'classify', 'extract'][1 + intDiv(number, 4) % 5] AS route,
       if(number % 20 = 0, 'canary', 'baseline') AS arm,
       toFloat64(toString(pow({_U.format(k=3)}, 0.3))) AS confidence
FROM numbers({{lo:UInt64}}, {{n:UInt64}})"""

# every span column both stores fill (the Collector records no receive time; attribute JSON differs)
SAME_SPANS = (f"SELECT {', '.join(c for c, _ in SPAN_COLUMNS if c not in ('attributes', 'received_at', 'resource_id'))} "
              "FROM spans WHERE start_time < $hi ORDER BY span_id")
# the read API's span queries timed on both backends (name -> parameters besides the window)
READS = {"summary": {}, "dimensions": {}, "failures": {}, "calls": {},
         "call_series": {"metric": "requests,error_rate,latency_p95_ms"}, "latency_distribution": {}}


def _generate(ch, n: int, step_us: int, duck, schema) -> None:
    """Spans in chunks: made by the engine as Arrow, written to both stores."""
    for lo in range(0, n, CHUNK):
        part = ch.transport.query(GENERATE, {"lo": lo, "n": min(CHUNK, n - lo), "step_us": step_us})
        table = pa.table({f.name: part.column(f.name).cast(f.type) if f.name in part.column_names
                          else pa.nulls(part.num_rows, f.type) for f in schema}, schema=schema)
        duck.append({"spans": table}, timeout=3600)
        ch.append({"spans": table}, timeout=3600)   # aiwatch's ingest path: rows of otel_traces


def _rows(store) -> list[tuple]:
    table = store.query("SELECT time, grain, metric, service_name, model, model_version, route, arm, value "
                        "FROM analysis_metrics")
    return sorted((tuple(r.values()) for r in table.to_pylist()),
                  key=lambda r: tuple("" if v is None else str(v) for v in r[:8]))


def _same(duck: list[tuple], ch: list[tuple]) -> bool:
    return len(duck) == len(ch) and all(
        d[:8] == c[:8] and (d[8] == c[8] or (d[8] is not None and c[8] is not None
                                             and math.isclose(d[8], c[8], rel_tol=1e-12, abs_tol=1e-15)))
        for d, c in zip(duck, ch))


def _differences(duck: list[tuple], ch: list[tuple]) -> None:
    """Which rows are not equal to 1e-12, per metric, and by how much (engines sum in their own
    order: a statistic built from large sums can differ in its last digits)."""
    theirs = {r[:8]: r[8] for r in ch}
    missing = [r for r in duck if r[:8] not in theirs]
    off: dict[str, list[float]] = {}
    for r in duck:
        c = theirs.get(r[:8])
        if r[:8] in theirs and r[8] != c:
            if r[8] is None or c is None:
                off.setdefault(r[2], []).append(math.inf)
            elif not math.isclose(r[8], c, rel_tol=1e-12, abs_tol=1e-15):
                off.setdefault(r[2], []).append(abs(r[8] - c) / max(abs(r[8]), abs(c)))
    print(f"  rows keyed differently: {len(missing) + abs(len(ch) - len(duck))}")
    for metric, rel in sorted(off.items()):
        print(f"  {metric}: {len(rel):,} rows differ beyond 1e-12, largest relative difference {max(rel):.1e}")


def _number(v: object) -> object:
    """DuckDB's HUGEINT sums (Decimal) as the integers they are."""
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    return v


def _equal_answers(duck: pa.Table, ch: pa.Table) -> bool:
    """The same rows, matched on their values other than floats, and floats equal to 1e-9 (the
    engines sum and interpolate in their own order: the last bits differ)."""
    def rows(table: pa.Table) -> list[dict]:
        out = [{k: _number(v) for k, v in r.items() if k not in ("attributes", "received_at")}
               for r in table.to_pylist()]
        return sorted(out, key=lambda r: repr([(k, v) for k, v in sorted(r.items()) if not isinstance(v, float)]))

    def same(a: object, b: object) -> bool:
        if isinstance(a, float) and isinstance(b, float):
            return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
        return a == b

    a, b = rows(duck), rows(ch)
    return len(a) == len(b) and all(x.keys() == y.keys() and all(same(x[k], y[k]) for k in x) for x, y in zip(a, b))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=10_000_000)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--materialize", action="store_true")
    ap.add_argument("--analyzers", default="traffic", help="comma-separated analyzers for the pass, or 'all'")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="aiwatch-ch-bench-"))
    base = dict(env={}, data_dir=str(tmp / "data"), retention_days=0, analysis_retention_days=0)
    ch = open_store(Settings.load(**base, store=f"chdb://{tmp / 'ch'}?database=bench"))
    duck = open_store(Settings.load(**base))
    end = T0 + timedelta(hours=args.hours)
    try:
        step_us = max(1, args.hours * 3600 * 10**6 // args.spans)
        t = time.perf_counter()
        _generate(ch, args.spans, step_us, duck, arrow_schema("spans"))
        print(f"generated {args.spans:,} spans into both stores (chdb: rows of otel_traces through aiwatch's "
              f"ingest path) in {time.perf_counter() - t:.1f} s")
        first = {name: store.query(SAME_SPANS, {"hi": T0 + timedelta(minutes=10)}).to_pylist()
                 for name, store in (("duckdb", duck), ("chdb", ch))}
        print(f"the first 10 minutes' {len(first['chdb']):,} spans read back equal: {first['duckdb'] == first['chdb']}")
        _passes(args, duck, ch, end, "chdb")
        if args.materialize:
            from collectors.otel_clickhouse import MATERIALIZED_PREFIX

            t = time.perf_counter()
            ch.materialize = True
            ch.migrate()
            added = [r["name"] for r in ch.query("SELECT name FROM system.columns WHERE database = currentDatabase() "
                                                 "AND table = 'otel_traces' AND default_kind = 'MATERIALIZED'").to_pylist()]
            ch.transport.command(f"ALTER TABLE {ch.traces_table} "
                                 + ", ".join(f"MATERIALIZE COLUMN {c}" for c in added)
                                 + " SETTINGS mutations_sync = 2")   # one mutation for them all
            print(f"clickhouse_materialize on: {len(added)} {MATERIALIZED_PREFIX}* columns added and materialized "
                  f"in the existing parts in {time.perf_counter() - t:.1f} s")
            _passes(args, duck, ch, end, "chdb+mat")
    finally:
        ch.close()
        duck.close()


def _passes(args: argparse.Namespace, duck, ch, end: datetime, label: str) -> None:
    """The analysis pass and the read API's span queries on both stores, compared."""
    names = None if args.analyzers == "all" else args.analyzers.split(",")
    what = "analysis pass (all analyzers)" if names is None else f"{args.analyzers} analysis pass"
    rows, took = {}, {}
    for name, store in (("duckdb", duck), ("chdb", ch)):
        each = []
        t = time.perf_counter()
        for analyzer in ANALYZERS.build(store, names=names):
            a = time.perf_counter()
            runner.analyze(store, analyzer, Window(T0, end, T0))
            each.append(f"{analyzer.name} {time.perf_counter() - a:.1f} s")
        took[name] = time.perf_counter() - t
        rows[name] = _rows(store)
        print(f"{name if name == 'duckdb' else label:>8}: {what} over {args.spans:,} spans: "
              f"{took[name]:.1f} s, {len(rows[name]):,} rows ({', '.join(each)})")
    same = _same(rows["duckdb"], rows["chdb"])
    print(f"rows equal on both backends (values to 1e-12): {same}; {label} / duckdb time: "
          f"{took['chdb'] / took['duckdb']:.2f}")
    if not same:
        _differences(rows["duckdb"], rows["chdb"])
    # reads of the spans (on chdb: the Collector's table through the spans view)
    registry = stage_queries()
    window = {"start": T0.isoformat(), "end": end.isoformat()}
    print(f"{'read API query (whole range)':<30}{'duckdb s':>10}{label + ' s':>12}{'chdb spans/s':>16}  equal")
    for query, extra in READS.items():
        answers, secs = {}, {}
        for name, store in (("duckdb", duck), ("chdb", ch)):
            t = time.perf_counter()
            answers[name] = registry[query].execute(store, {**window, **extra})
            secs[name] = time.perf_counter() - t
        equal = _equal_answers(answers["duckdb"], answers["chdb"])
        print(f"{query:<30}{secs['duckdb']:>10.2f}{secs['chdb']:>12.2f}{args.spans / secs['chdb']:>16,.0f}  "
              f"{equal} ({answers['chdb'].num_rows} rows)")


if __name__ == "__main__":
    main()
