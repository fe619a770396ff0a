"""Incidents: overlapping alerts of one service become one object; an alert message's link (service +
moment) finds it; its notifications are found through the alerts' fingerprints."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import pyarrow as pa

import store.incidents  # noqa: F401 - registers the queries
from store.queries import store_queries

REGISTRY = store_queries()

T = datetime(2026, 11, 20, 10)
M = timedelta(minutes=1)


def _history(store, rows):
    cols = {"time": pa.timestamp("us"), "fingerprint": pa.string(), "rule": pa.string(), "severity": pa.string(),
            "labels": pa.string(), "from_state": pa.string(), "to_state": pa.string(), "value": pa.float64(),
            "threshold": pa.float64()}
    store.writer.write(tables={"alert_history": pa.table({c: pa.array([r.get(c) for r in rows], type=t)
                                                           for c, t in cols.items()})})


def _alert(fp, rule, sev, service, fired, resolved=None, route="/answer"):
    labels = json.dumps({"service": service, "route": route, "model": "gpt-4o", "alertname": rule})
    rows = [{"time": fired, "fingerprint": fp, "rule": rule, "severity": sev, "labels": labels,
             "from_state": "pending", "to_state": "firing", "value": 0.3, "threshold": 0.05}]
    if resolved:
        rows.append({**rows[0], "time": resolved, "from_state": "firing", "to_state": "resolved"})
    return rows


def test_overlapping_alerts_of_a_service_are_one_incident(store):
    _history(store, _alert("a1", "HighErrorRate", "P1", "checkout", T, T + 30 * M)
             + _alert("a2", "ErrorBudgetBurn", "P2", "checkout", T + 20 * M, T + 50 * M, route="/pay")
             + _alert("a3", "HighErrorRate", "P1", "checkout", T + 120 * M)
             + _alert("b1", "HighLatency", "P2", "search", T + 10 * M, T + 15 * M)
             + _alert("p3", "DriftTrend", "P3", "checkout", T + 5 * M, T + 6 * M))
    window = {"start": "2026-11-20T09:00:00", "end": "2026-11-20T13:00:00"}
    rows = REGISTRY["incidents"].execute(store, window).to_pylist()
    assert [(r["service"], r["started_at"], r["alerts"], r["state"]) for r in rows] == [
        ("checkout", T + 120 * M, 1, "open"), ("search", T + 10 * M, 1, "resolved"), ("checkout", T, 2, "resolved")]
    first = rows[-1]
    assert first["duration_min"] == 50.0 and first["severity"] == "P1"
    assert first["rules"] == "ErrorBudgetBurn, HighErrorRate" and first["routes"] == "/answer, /pay"
    assert first["incident_id"] == "checkout@2026-11-20T10:00:00" and first["fingerprints"] == "a1,a2"
    # the link an alert message carries: service + the moment it fired
    [found] = REGISTRY["incidents"].execute(store, {**window, "service": "checkout",
                                                    "at": "2026-11-20T10:20:00"}).to_pylist()
    assert found["incident_id"] == first["incident_id"]
    # P3 review items join when asked for
    with_p3 = REGISTRY["incidents"].execute(store, {**window, "severity": "P3", "service": "checkout"}).to_pylist()
    assert with_p3[-1]["alerts"] == 3


def test_notifications_of_an_incident(store):
    payload = json.dumps({"alerts": [{"fingerprint": "a1"}, {"fingerprint": "zz"}]})
    other = json.dumps({"alerts": [{"fingerprint": "b1"}]})
    store.writer.write(tables={
        "alert_outbox": pa.table({"id": ["o1", "o2"], "payload": [payload, other], "receiver": ["slack", "slack"]}),
        "alert_notifications": pa.table({"time": pa.array([T + M, T + 2 * M], pa.timestamp("us")),
                                         "outbox_id": ["o1", "o2"], "receiver": ["slack", "slack"],
                                         "outcome": ["delivered", "delivered"]})})
    rows = REGISTRY["incident_notifications"].execute(store, {"start": "2026-11-20T09:00:00", "end": "2026-11-20T11:00:00",
                                                             "fingerprints": "a1,a2"}).to_pylist()
    assert [r["receiver"] for r in rows] == ["slack"] and rows[0]["time"] == T + M
