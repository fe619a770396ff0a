"""The read API's named queries on both backends: on the same calls (and the analyzers' rows from
them, and the alert stage's records) every query answers the same rows on DuckDB and on ClickHouse."""
from __future__ import annotations

import json
import math
from datetime import timedelta

import pyarrow as pa

from aiwatch.stages import stage_queries
from analysis import runner
from analysis.base import Window
from analysis.traffic import OverrideAnalyzer, TrafficAnalyzer
from tests.analysis.gen import T0, minute, spans, write
from tests.analysis.test_backends import _feedback
from tests.backends import opened

# Where the engines legitimately differ: attribute JSON (the Collector stores every value as a
# string), receive time (the Collector records none; ClickHouse reads a span's end), and the
# DuckDB file's folder (ClickHouse has none).
DIFFERENT = {"attributes", "received_at", "resource_id", "data_dir"}


def _calls() -> pa.Table:
    """Two models, errors, a canary (whose calls name no response model): durations in whole ns and
    end = start + duration, as OTLP has them."""
    canary = spans(T0, 6, 20, seed=4, model="gpt-4o", version="v2", arm="canary", ids="b", error_p=0.2)
    canary = canary.set_column(canary.schema.get_field_index("response_model"), "response_model",
                               pa.nulls(canary.num_rows, pa.string()))
    data = pa.concat_tables([spans(T0, 6, 40, seed=3, priced=True), canary])
    ns = [round(d * 1e6) for d in data.column("duration_ms").to_pylist()]
    ends = [s + timedelta(microseconds=n // 1000) for s, n in zip(data.column("start_time").to_pylist(), ns)]
    data = data.set_column(data.schema.get_field_index("duration_ms"), "duration_ms", pa.array([n / 1e6 for n in ns]))
    return data.set_column(data.schema.get_field_index("end_time"), "end_time", pa.array(ends, pa.timestamp("us")))


def _params(query) -> dict[str, str]:
    raw = {"start": "2025-03-03T00:00:00", "end": "2025-03-03T02:00:00"}
    samples = {"metric": "requests,error_rate,latency_p95_ms", "trace_id": "a" + "0" * 30 + "1", "grain": "1m",
               "request_id": "r1", "by": None, "fingerprints": "f1,f2"}
    for p in query.params:
        if p.required and p.name in samples:
            raw[p.name] = samples[p.name]
    return {k: v for k, v in raw.items() if v is not None and k in {p.name for p in query.params}}


def _canonical(table: pa.Table) -> list[tuple]:
    rows = [tuple((k, v) for k, v in sorted(r.items()) if k not in DIFFERENT) for r in table.to_pylist()]
    return sorted(rows, key=lambda r: repr([(k, "" if v is None else str(v)) for k, v in r]))


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9,
                                                                                              abs_tol=1e-12))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _alert_rows(store) -> None:
    """One firing alert with its history, a delivered notification and a silence, written through
    the alert stage's store functions (versioned rows on ClickHouse, updates in place on DuckDB)."""
    from store import alerting

    labels = '{"alertname": "HighErrorRate", "service": "checkout"}'
    state = {"fingerprint": "f1", "rule": "HighErrorRate", "severity": "P1", "labels": labels, "annotations": "{}",
             "state": "firing", "active_at": T0, "fired_at": minute(1), "last_true_at": minute(2),
             "last_eval_at": minute(2), "value": 0.3, "threshold": 0.05, "group_key": "g1", "resolve_flushed": False}
    def change(at: int, fp: str, to_state: str, service: str = "checkout", severity: str = "P1") -> dict:
        return {"time": minute(at), "fingerprint": fp, "rule": f"Rule{fp}", "severity": severity,
                "labels": json.dumps({"alertname": f"Rule{fp}", "service": service, "route": "chat"}),
                "from_state": "pending" if to_state == "firing" else "firing", "to_state": to_state, "value": 0.3,
                "threshold": 0.05}

    # two overlapping alerts of one service (one incident) and a third, still firing, of another
    history = [change(1, "f1", "firing"), change(2, "f2", "firing", severity="P2"), change(3, "f3", "firing", "search"),
               change(4, "f2", "resolved", severity="P2"), change(5, "f1", "resolved")]
    payload = json.dumps({"alerts": [{"fingerprint": "f1"}, {"fingerprint": "f2"}]})
    outbox = {"id": "o1", "created_at": minute(1), "receiver": "slack", "receiver_type": "slack", "group_key": "g1",
              "status": "firing", "dedup_key": "d1", "payload": payload, "state": "pending", "attempts": 0}

    def tick(con):
        alerting.save_tick(con, states=[state], deleted_states=[], history=history, groups=[], deleted_groups=[],
                           nflog=[], outbox=[outbox], now=minute(1))
        alerting.insert_silence(con, {"id": "s1", "matchers": [{"name": "service", "op": "=", "value": "checkout"}],
                                      "starts_at": T0, "ends_at": T0 + timedelta(days=36500), "created_by": "a", "comment": "c",
                                      "now": T0})

    store.writer.write(fn=tick)
    store.writer.write(fn=lambda con: alerting.record_attempt(
        con, "o1", state="delivered", attempts=1, next_attempt_at=None, delivered_at=minute(2), last_status=200,
        last_error=None, notification={"time": minute(2), "outbox_id": "o1", "receiver": "slack",
                                       "receiver_type": "slack", "group_key": "g1", "status": "firing", "attempt": 1,
                                       "outcome": "delivered", "http_status": 200, "duration_ms": 5.0}))


def test_every_read_query_answers_the_same_on_both_backends(tmp_path):
    registry = stage_queries()
    data, fb = _calls(), _feedback(120)
    answers: dict[str, dict[str, list]] = {}
    for backend in ("duckdb", "chdb"):
        for store in opened(backend, tmp_path / backend):
            write(store, data)
            write(store, fb, "feedback")
            _alert_rows(store)
            for analyzer in (TrafficAnalyzer(store), OverrideAnalyzer(store)):
                runner.analyze(store, analyzer, Window(T0, minute(6), T0))
            answers[backend] = {name: _canonical(q.execute(store, _params(q)))
                                for name, q in sorted(registry.items())}
    for name in ("alerts", "alert_history", "alert_outbox", "notifications", "silences", "incidents",
                 "incident_notifications"):
        assert answers["chdb"][name], name   # the alert stage's rows are there, not two empty answers
    assert [dict(r)["state"] for r in answers["chdb"]["alert_outbox"]] == ["delivered"]   # the newest version only
    assert sorted(dict(r)["alerts"] for r in answers["chdb"]["incidents"]) == [1, 2]   # f1+f2 overlap; f3 alone
    compared = 0
    for name, duck in answers["duckdb"].items():
        ch = answers["chdb"][name]
        assert len(ch) == len(duck), name
        for d, c in zip(duck, ch):
            assert [k for k, _ in d] == [k for k, _ in c], name
            for (key, dv), (_, cv) in zip(d, c):
                assert _same(dv, cv), (name, key, dv, cv)
        compared += bool(duck)
    assert compared >= 15   # most queries have rows on this data, not only empty answers
