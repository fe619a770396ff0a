"""`calls` and `failures` against numpy/pandas on the same spans: rates are sums over sums, percentiles
exact over the filtered calls (never a mean of group figures), failure classes sum to the failures."""
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from store.queries import store_queries
from store.schema import arrow_schema

REGISTRY = store_queries()

T0 = datetime(2026, 11, 20, 12)
WINDOW = {"start": "2026-11-20T12:00:00", "end": "2026-11-20T13:00:00"}


def _spans(store, n: int = 6000) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    service = rng.choice(["a", "b"], n, p=[0.8, 0.2])
    model = rng.choice(["gpt-4o-mini-2024-07-18", "claude-sonnet-4-5-20250929", "local-llama"], n)
    version = rng.choice(["v1", "v2", None], n)
    # groups of very different sizes and speeds: a mean of group p95s is far from the overall p95
    durations = rng.lognormal(6, 0.5, n) * np.where(service == "b", 6.0, 1.0)
    errors = rng.random(n) < np.where(service == "b", 0.3, 0.02)
    http = np.where(errors, rng.choice([401, 429, 500, 503, 504, 400], n), 200)
    error_type = np.where(errors & (rng.random(n) < 0.1), "circuit_open", None)
    frame = pd.DataFrame({"service_name": service, "request_model": model, "model_version": version,
                          "duration_ms": durations, "error": errors, "http_status": http, "error_type": error_type})
    schema = arrow_schema("spans")
    cols = {f.name: pa.nulls(n, f.type) for f in schema}
    cols.update({
        "trace_id": pa.array([f"{i:032x}" for i in range(n)]), "service_name": pa.array(service),
        "request_model": pa.array(model), "model_version": pa.array(version), "is_llm": pa.array([True] * n),
        "start_time": pa.array([T0 + timedelta(seconds=i * 3600 / n) for i in range(n)], pa.timestamp("us")),
        "duration_ms": pa.array(durations), "status_code": pa.array(np.where(errors, "error", "ok")),
        "http_status": pa.array(np.where(errors, http, None), pa.int64()), "error_type": pa.array(error_type),
        "input_tokens": pa.array(np.full(n, 1000), pa.int64()), "output_tokens": pa.array(np.full(n, 100), pa.int64()),
        # a client that marks every failure format_ok = false, as the sample generator does
        "format_ok": pa.array(np.where(errors, False, rng.random(n) > 0.1)),
        "quality_score": pa.array(np.where(errors, np.nan, rng.uniform(0.5, 1.0, n)), from_pandas=True),
        "confidence": pa.array(np.where(errors, np.nan, rng.beta(8, 2, n)), from_pandas=True),
        "retry_count": pa.array(rng.poisson(0.2, n), pa.int32()),
        "fallback_level": pa.array(rng.choice(["primary", "fallback", "rule_based", "human", None], n,
                                              p=[0.85, 0.06, 0.03, 0.02, 0.04])),
    })
    frame["retry_count"] = cols["retry_count"].to_numpy()
    frame["fallback_level"] = cols["fallback_level"].to_pylist()
    frame["format_ok"] = np.where(errors, False, cols["format_ok"].to_numpy(zero_copy_only=False))
    frame["quality_score"] = cols["quality_score"].to_numpy(zero_copy_only=False)
    frame["confidence"] = cols["confidence"].to_numpy(zero_copy_only=False)
    store.writer.write({"spans": pa.table(cols, schema=schema)})
    return frame


def test_calls_totals_and_groups_match_numpy(store):
    f = _spans(store)
    [row] = REGISTRY["calls"].execute(store, WINDOW).to_pylist()
    ok = f.loc[~f["error"], "duration_ms"]
    assert row["requests"] == len(f) and row["errors"] == int(f["error"].sum())
    assert abs(row["error_rate"] - f["error"].sum() / len(f)) < 1e-12
    for key, q in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99)):
        assert abs(row[key] - np.percentile(ok, q)) < 1e-6, key
    # the Quality page's tiles, over all 6,000 calls (its old spans sample held the newest 5,000)
    assert abs(row["format_ok_rate"] - f.loc[~f["error"], "format_ok"].astype(float).mean()) < 1e-12
    assert abs(row["quality_mean"] - np.nanmean(f["quality_score"])) < 1e-12
    assert abs(row["confidence_mean"] - np.nanmean(f["confidence"])) < 1e-12
    # the Errors page's tiles, over every call too
    assert row["retried_calls"] == int((f["retry_count"] > 0).sum())
    assert abs(row["fallback_rate"] - f["fallback_level"].isin(["fallback", "rule_based", "human"]).mean()) < 1e-12
    groups = pd.DataFrame(REGISTRY["calls"].execute(store, {**WINDOW, "by": "service_model"}).to_pylist())
    assert groups["requests"].sum() == len(f)
    for (service, model), g in f.groupby(["service_name", "request_model"]):
        got = groups[(groups["service_name"] == service) & (groups["model"] == model)].iloc[0]
        assert abs(got["error_rate"] - g["error"].mean()) < 1e-12
        assert abs(got["p95_ms"] - np.percentile(g.loc[~g["error"], "duration_ms"], 95)) < 1e-6
    # a filter alone (model, no service) narrows the same way
    [only] = REGISTRY["calls"].execute(store, {**WINDOW, "model": "local-llama"}).to_pylist()
    assert only["requests"] == int((f["request_model"] == "local-llama").sum())


def test_calls_price_snapshot_names_and_say_what_is_unpriced(store):
    f = _spans(store)
    [row] = REGISTRY["calls"].execute(store, WINDOW).to_pylist()
    unpriced = int((f["request_model"] == "local-llama").sum())
    assert row["unpriced_calls"] == unpriced and row["unpriced_models"] == "local-llama"
    assert row["cost_usd"] > 0   # the dated snapshot names resolve to prices


def test_failure_classes_sum_to_the_error_rate(store):
    f = _spans(store)
    rows = pd.DataFrame(REGISTRY["failures"].execute(store, {**WINDOW, "grain": "1m"}).to_pylist())
    assert rows.drop_duplicates("time")["requests"].sum() == len(f)
    assert rows["count"].sum() == int(f["error"].sum())
    per_class = rows.groupby("failure_class")["count"].sum()
    err = f[f["error"]]
    assert per_class["circuit open"] == int((err["error_type"] == "circuit_open").sum())
    rest = err[err["error_type"] != "circuit_open"]
    assert per_class["auth"] == int((rest["http_status"] == 401).sum())
    assert per_class["timeout"] == int((rest["http_status"] == 504).sum())
    assert per_class["rate limited (429)"] == int((rest["http_status"] == 429).sum())
    assert per_class["HTTP 5xx"] == int(rest["http_status"].isin([500, 503]).sum())
    assert per_class["HTTP 4xx"] == int((rest["http_status"] == 400).sum())
    assert "format" not in per_class      # format_ok = false on a 500 does not make it a format failure
    # per bucket, the class rates add up to the bucket's error rate
    by_time = rows.groupby("time").agg(rate=("rate", "sum"), errors=("errors", "first"), requests=("requests", "first"))
    assert np.allclose(by_time["rate"], by_time["errors"] / by_time["requests"])


def test_call_series_for_a_model_alone_matches_pandas(store):
    f = _spans(store)
    t = REGISTRY["call_series"].execute(store, {**WINDOW, "grain": "1h", "model": "local-llama",
                                                "metric": "requests,error_rate,latency_p95_ms,format_ok_rate",
                                                "by": "service_name"})
    rows = pd.DataFrame(t.to_pylist())
    mine = f[f["request_model"] == "local-llama"]
    for service, g in mine.groupby("service_name"):
        got = rows[rows["service_name"] == service].set_index("metric")["value"]
        assert got["requests"] == len(g) and abs(got["error_rate"] - g["error"].mean()) < 1e-12
        # the format check over the outputs there are: successful calls only
        assert abs(got["format_ok_rate"] - g.loc[~g["error"], "format_ok"].astype(float).mean()) < 1e-12
        assert abs(got["latency_p95_ms"] - np.percentile(g.loc[~g["error"], "duration_ms"], 95)) < 1e-6


def test_calls_answered_by_a_snapshot_count_under_the_requested_model(store):
    """Successes carry the provider's snapshot name, failures only the requested one: one model, not
    a phantom 100%-error group beside a 0%-error one."""
    n = 200
    errors = np.arange(n) % 10 == 0
    schema = arrow_schema("spans")
    cols = {f.name: pa.nulls(n, f.type) for f in schema}
    cols.update({
        "trace_id": pa.array([f"{i:032x}" for i in range(n)]), "service_name": pa.array(["a"] * n),
        "request_model": pa.array(["gpt-4o-mini"] * n), "is_llm": pa.array([True] * n),
        "response_model": pa.array([None if e else "gpt-4o-mini-2024-07-18" for e in errors], pa.string()),
        "start_time": pa.array([T0 + timedelta(seconds=i) for i in range(n)], pa.timestamp("us")),
        "duration_ms": pa.array(np.full(n, 100.0)), "status_code": pa.array(np.where(errors, "error", "ok")),
    })
    store.writer.write({"spans": pa.table(cols, schema=schema)})
    [group] = REGISTRY["calls"].execute(store, {**WINDOW, "by": "model"}).to_pylist()
    assert group["model"] == "gpt-4o-mini" and group["requests"] == n and abs(group["error_rate"] - 0.1) < 1e-12
    models = {r["model"] for r in REGISTRY["exemplars"].execute(store, {**WINDOW, "service": "a"}).to_pylist()}
    assert models == {"gpt-4o-mini"}
