"""The summary query's percentiles and rates against numpy on the same spans."""
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa

from store.queries import store_queries
from store.schema import arrow_schema

REGISTRY = store_queries()


def test_summary_matches_numpy(store):
    rng = np.random.default_rng(3)
    n = 5000
    durations = rng.lognormal(6, 0.5, n)
    errors = rng.random(n) < 0.07
    t0 = datetime(2026, 11, 20, 12)
    schema = arrow_schema("spans")
    cols = {f.name: pa.nulls(n, f.type) for f in schema}
    cols.update({
        "trace_id": pa.array([f"{i:032x}" for i in range(n)]), "service_name": pa.array(["svc"] * n),
        "request_model": pa.array(["m"] * n), "is_llm": pa.array([True] * n),
        "start_time": pa.array([t0 + timedelta(seconds=i % 3600) for i in range(n)], pa.timestamp("us")),
        "duration_ms": pa.array(durations), "status_code": pa.array(np.where(errors, "error", "ok")),
        "cost_usd": pa.array(np.full(n, 0.001)), "input_tokens": pa.array(np.full(n, 10), pa.int64()),
    })
    store.writer.write({"spans": pa.table(cols, schema=schema)})
    [row] = REGISTRY["summary"].execute(store, {"start": "2026-11-20T12:00:00", "end": "2026-11-20T13:00:00"}).to_pylist()
    ok = durations[~errors]
    assert row["requests"] == n and row["errors"] == int(errors.sum())
    assert abs(row["error_rate"] - errors.mean()) < 1e-12
    for key, q in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99)):
        assert abs(row[key] - np.percentile(ok, q)) < 1e-6, key
    assert abs(row["cost_usd"] - 5.0) < 1e-9 and row["input_tokens"] == 10 * n
