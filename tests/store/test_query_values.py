"""Named queries checked value by value against an oracle computed with numpy / plain Python on
the same generated calls (test_queries.py only checks that every query runs)."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from aiwatch.stages import stage_queries
from tests.analysis.gen import T0, spans, write

REGISTRY = stage_queries()
WINDOW = {"start": T0.isoformat(), "end": (T0 + timedelta(hours=2)).isoformat()}


@pytest.fixture
def seeded(store):
    a = spans(T0, 60, 6, seed=11, service="checkout", error_p=0.1, ids="a")
    b = spans(T0 + timedelta(minutes=30), 60, 4, seed=12, service="search", model="gpt-4o", routes=("find",),
              error_p=0.2, ids="b")
    write(store, a)
    write(store, b)
    return store, pa.concat_tables([a, b.select(a.column_names)]).to_pylist()


def run(store, query, **params):
    q = REGISTRY[query]
    return q.execute(store, {**WINDOW, **params} if any(p.name == "start" for p in q.params)
                     else params).to_pylist()


def test_spans_filters_and_order(seeded):
    store, rows = seeded
    got = run(store, "spans", service="search", status="error", limit="1000")
    want = sorted((r for r in rows if r["service_name"] == "search" and r["status_code"] == "error"),
                  key=lambda r: r["start_time"], reverse=True)
    assert [g["span_id"] for g in got] == [w["span_id"] for w in want] and want
    assert len(run(store, "spans", limit="7")) == 7


def test_trace_and_request_return_exactly_their_spans(seeded):
    store, rows = seeded
    one = rows[17]
    assert [s["span_id"] for s in run(store, "trace", trace_id=one["trace_id"].upper())] == [one["span_id"]]
    if one.get("request_id"):
        assert {s["span_id"] for s in run(store, "request", request_id=one["request_id"])} == {
            r["span_id"] for r in rows if r["trace_id"] == one["trace_id"]}


def test_dimensions_are_the_distinct_label_sets(seeded):
    store, rows = seeded
    got = {(d["service_name"], d["model"], d["route"]) for d in run(store, "dimensions")}
    assert got == {(r["service_name"], r["request_model"], r["route"]) for r in rows}


def test_call_series_per_minute_against_numpy(seeded):
    store, rows = seeded
    got = run(store, "call_series", service="checkout", metric="requests,error_rate,latency_p95_ms,input_tokens")
    by = {(g["time"], g["metric"]): g["value"] for g in got}
    minutes = {}
    for r in rows:
        if r["service_name"] == "checkout":
            minutes.setdefault(r["start_time"].replace(second=0, microsecond=0), []).append(r)
    assert {t for t, _ in by} == set(minutes)
    for t, calls in minutes.items():
        ok = np.array([c["duration_ms"] for c in calls if c["status_code"] != "error"])
        assert by[(t, "requests")] == len(calls)
        assert by[(t, "error_rate")] == pytest.approx(np.mean([c["status_code"] == "error" for c in calls]))
        assert by[(t, "input_tokens")] == sum(c["input_tokens"] for c in calls)
        if len(ok):   # exact percentile: numpy's linear interpolation is quantile_cont
            assert by[(t, "latency_p95_ms")] == pytest.approx(np.percentile(ok, 95))


def test_call_series_split_by_service_sums_to_the_total(seeded):
    store, rows = seeded
    split = run(store, "call_series", metric="requests", grain="1h", by="service_name")
    total = run(store, "call_series", metric="requests", grain="1h")
    per_hour: dict = {}
    for s in split:
        per_hour[s["time"]] = per_hour.get(s["time"], 0) + s["value"]
    assert per_hour == {t["time"]: t["value"] for t in total}
    assert sum(per_hour.values()) == len(rows)


def test_data_range_and_table_counts(seeded):
    store, rows = seeded
    [r] = run(store, "data_range")
    assert r["first_span"] == min(x["start_time"] for x in rows)
    assert r["last_span"] == max(x["start_time"] for x in rows)
    counts = {c["table"]: c["rows"] for c in run(store, "table_counts")}
    assert counts["spans"] == len(rows) and counts["feedback"] == 0


def test_feedback_resource_metrics_and_logs_filter_by_window_and_service(store):
    inside, outside = T0 + timedelta(minutes=5), T0 - timedelta(days=1)
    store.writer.write(fn=lambda con: con.executemany(
        "INSERT INTO feedback (time, action, request_id, service_name) VALUES (?, ?, ?, ?)",
        [[inside, "accepted", "r1", "checkout"], [inside, "rejected", "r2", "search"],
         [outside, "accepted", "r3", "checkout"]]))
    store.writer.write(fn=lambda con: con.executemany(
        "INSERT INTO resource_metrics (time, service_name, name, value) VALUES (?, ?, ?, ?)",
        [[inside, "checkout", "cpu", 0.5], [inside + timedelta(minutes=1), "checkout", "cpu", 0.7],
         [inside, "checkout", "queue_depth", 3.0], [outside, "checkout", "cpu", 0.9]]))
    assert [f["request_id"] for f in run(store, "feedback", service="checkout")] == ["r1"]
    cpu = run(store, "resource_metrics", service="checkout", name="cpu")
    assert [c["value"] for c in cpu] == [0.5, 0.7]
    assert pc.sum(pa.array([c["value"] for c in cpu])).as_py() == pytest.approx(1.2)
