"""A small seeded generator of model-call spans (Arrow, the store's schema) with injectable shifts."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa

from store.schema import arrow_schema

T0 = datetime(2025, 3, 3, 0, 0)


@dataclass(frozen=True)
class Shift:
    """From `start` to `end` (optionally one route): field is confidence (add), input_tokens /
    output_tokens / duration_ms (multiply), error_p (set), language (set the categorical attribute)."""

    start: datetime
    end: datetime
    field: str
    amount: float | str
    route: str | None = None


def spans(start: datetime, minutes: int, per_minute: int, seed: int = 0, *, service: str = "svc",
          routes: tuple[str, ...] = ("chat", "search"), model: str = "gpt-4o-mini", version: str = "v1",
          arm: str | None = "baseline", error_p: float = 0.02, latency_ms: float = 400.0,
          shifts: tuple[Shift, ...] = (), priced: bool = False, late_s: float = 0.0, ids: str = "a") -> pa.Table:
    rng = np.random.default_rng(seed)
    n = minutes * per_minute
    offsets = np.sort(rng.uniform(0, minutes * 60, n))
    start_time = np.datetime64(start, "us") + (offsets * 1e6).astype("timedelta64[us]")
    route = np.array(routes)[rng.integers(0, len(routes), n)]
    duration = rng.lognormal(np.log(latency_ms), 0.5, n)
    err_p = np.full(n, error_p)
    conf = rng.beta(8, 2, n)
    tokens_in = rng.poisson(500, n).astype(np.int64)
    tokens_out = rng.poisson(200, n).astype(np.int64)
    chars = tokens_in * 4 + rng.integers(0, 40, n)
    lang = np.array(["en", "de", "fr"])[rng.choice(3, n, p=[0.7, 0.2, 0.1])].astype(object)
    for s in shifts:
        m = (start_time >= np.datetime64(s.start, "us")) & (start_time < np.datetime64(s.end, "us"))
        if s.route:
            m &= route == s.route
        if s.field == "confidence":
            conf[m] = np.clip(conf[m] + s.amount, 0, 1)
        elif s.field == "input_tokens":
            tokens_in[m] = (tokens_in[m] * s.amount).astype(np.int64)
            chars[m] = tokens_in[m] * 4
        elif s.field == "duration_ms":
            duration[m] *= s.amount
        elif s.field == "output_tokens":
            tokens_out[m] = (tokens_out[m] * s.amount).astype(np.int64)
        elif s.field == "error_p":
            err_p[m] = s.amount
        elif s.field == "language":
            lang[m] = s.amount
    is_err = rng.uniform(size=n) < err_p
    http = np.where(is_err, rng.choice([429, 500, 503], n), 200).astype(np.int32)
    end_time = start_time + (duration * 1000).astype("timedelta64[us]")
    received = end_time + np.timedelta64(int(late_s * 1e6), "us")
    cost = None if priced else (tokens_in * 0.15 + tokens_out * 0.6) / 1e6
    fallback = np.array(["primary", "fallback", "rule_based", "human"])[rng.choice(4, n, p=[0.9, 0.05, 0.03, 0.02])]
    cols = {
        "trace_id": [f"{ids}{i:031x}"[-32:] for i in range(n)],
        "span_id": [f"{ids}{i:015x}"[-16:] for i in range(n)],
        "name": ["chat " + model] * n, "kind": ["client"] * n,
        "start_time": pa.array(start_time), "end_time": pa.array(end_time), "duration_ms": duration,
        "status_code": np.where(is_err, "error", "ok"),
        "service_name": [service] * n, "is_llm": [True] * n, "operation": ["chat"] * n,
        "request_model": [model] * n, "response_model": [model] * n,
        "input_tokens": tokens_in, "output_tokens": tokens_out,
        "error_type": [("timeout" if h == 503 else str(h)) if e else None for e, h in zip(is_err, http)],
        "http_status": http, "model_version": [version] * n, "route": route, "arm": [arm] * n,
        "confidence": conf, "quality_score": rng.uniform(0.6, 1.0, n), "format_ok": rng.uniform(size=n) > 0.03,
        "fallback_level": fallback, "retry_count": rng.poisson(0.2, n).astype(np.int32),
        "breaker_state": np.where(rng.uniform(size=n) < 0.01, "open", "closed"),
        "cost_usd": [None] * n if cost is None else cost, "user_id": [f"u{i % 7}" for i in range(n)],
        "attributes": [json.dumps({"aiwatch.input.chars": int(c), "aiwatch.input.language": str(lg)})
                       for c, lg in zip(chars, lang)],
        "received_at": pa.array(received),
    }
    schema = arrow_schema("spans")
    arrays = [(cols[f.name] if isinstance(cols[f.name], pa.Array) else pa.array(cols[f.name], type=f.type)) if f.name in cols else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def write(store, table: pa.Table, name: str = "spans") -> None:
    store.writer.write(tables={name: table})


def minute(i: int) -> datetime:
    return T0 + timedelta(minutes=i)
