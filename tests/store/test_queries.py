"""Named queries: parameter parsing and the OpenAPI description."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from aiwatch.stages import stage_queries
from store.queries import BadParameter, QueryRegistry, parse_time, store_queries
from store.retention import delete_older_than

NOW = datetime(2026, 11, 25, 12, 0, 0)
REGISTRY = stage_queries()   # what the server answers: the store's queries and every stage's


@pytest.mark.parametrize("text,expected", [
    ("now", NOW), ("-15m", NOW - timedelta(minutes=15)), ("now-2h", NOW - timedelta(hours=2)),
    ("-7d", NOW - timedelta(days=7)), ("2026-11-20T10:00:00Z", datetime(2026, 11, 20, 10)),
    ("2026-11-20T12:00:00+02:00", datetime(2026, 11, 20, 10)), ("1764000000", datetime(2025, 11, 24, 16, 0)),
])
def test_parse_time(text, expected):
    assert parse_time(text, now=NOW) == expected


def test_bad_parameters_name_the_parameter():
    q = REGISTRY["spans"]
    with pytest.raises(BadParameter, match="'limit'"):
        q.coerce({"limit": "-1"})
    with pytest.raises(BadParameter, match="'status'"):
        q.coerce({"status": "weird"})
    with pytest.raises(BadParameter, match="'trace_id' is required"):
        REGISTRY["trace"].coerce({})


def test_every_query_runs_on_an_empty_store(store):
    samples = {"time": "-1h", "integer": "1", "boolean": "false", "string": "x"}
    valid = {("call_series", "metric"): "requests,error_rate"}
    assert {"calls", "incidents", "metrics", "alert_history"} <= set(REGISTRY)
    for name, q in list(REGISTRY.items()):
        params = {p.name: (p.choices[0] if p.choices else valid.get((name, p.name), samples[p.type]))
                  for p in q.params if p.required}
        table = q.execute(store, params)
        assert table.num_columns > 0, name


def test_openapi_lists_every_query_with_its_parameters():
    spec = REGISTRY.openapi("test")
    for name, q in REGISTRY.items():
        op = spec["paths"][f"/v1/query/{name}"]["get"]
        assert {p["name"] for p in op["parameters"]} == {p.name for p in q.params} | {"format"}


def test_retention_deletes_only_old_rows(store):
    store.writer.write(fn=lambda con: con.execute(
        "INSERT INTO feedback (time, action, request_id) VALUES (?, 'accepted', 'old'), (?, 'accepted', 'new')",
        [NOW - timedelta(days=40), NOW - timedelta(days=1)]))
    deleted = store.writer.write(fn=lambda con: delete_older_than(con, NOW - timedelta(days=30)))
    assert deleted["feedback"] == 1
    assert store.query("SELECT request_id FROM feedback").column(0).to_pylist() == ["new"]


def test_retention_keeps_hourly_analyzer_rows_longer_than_minute_rows(store):
    old, older = NOW - timedelta(days=40), NOW - timedelta(days=500)

    def seed(con):
        for t in (NOW, old, older):
            for grain in ("1m", "5m", "1h"):
                con.execute("INSERT INTO analysis_metric_rows (time, grain, metric, value) VALUES (?, ?, 'slo_attainment', 1)",
                            [t, grain])
                con.execute("INSERT INTO traffic_metrics (time, grain, requests) VALUES (?, ?, 1)", [t, grain])
            con.execute("INSERT INTO analysis_reports (time, analyzer, body) VALUES (?, 'drift', '{}')", [t])

    store.writer.write(fn=seed)
    deleted = store.writer.write(fn=lambda con: delete_older_than(con, NOW - timedelta(days=30),
                                                                  NOW - timedelta(days=400)))
    # minute-resolution rows (1m, burn windows) past 30 days go; hourly rows stay until 400 days
    assert deleted["traffic_metrics"] == deleted["analysis_metric_rows"] == 2 * 2 + 1
    assert deleted["analysis_reports"] == 1
    for table in ("traffic_metrics", "analysis_metric_rows"):
        kept = store.query(f"SELECT time, grain FROM {table} ORDER BY time, grain").to_pylist()
        assert kept == [{"time": old, "grain": "1h"}] + [{"time": NOW, "grain": g} for g in ("1h", "1m", "5m")]
    # through the view the readers use, too
    assert store.scalar("SELECT count(*) FROM analysis_metrics WHERE time < $t", {"t": NOW}) == 2
    # no cutoffs: nothing goes
    assert store.writer.write(fn=lambda con: delete_older_than(con, None, None)) == {}


def test_the_registry_is_built_not_filled_by_imports():
    # store.queries alone, in a fresh interpreter: the store's registry holds the analysis and incident
    # queries without anyone importing store.analytics first (they were registered by import side effect)
    code = ("import json, sys, store.queries as q; r = q.store_queries(); "
            "print(json.dumps([sorted(r), sorted(m for m in sys.modules if m.startswith('alerts'))]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    names, alerts_loaded = json.loads(done.stdout)
    assert {"spans", "metrics", "incidents"} <= set(names) and "alert_history" not in names and not alerts_loaded
    assert {"alerts", "alert_history", "silences"} <= set(REGISTRY)
    assert set(store_queries()) < set(REGISTRY)


def test_a_name_registered_twice_is_refused():
    first = store_queries()
    with pytest.raises(ValueError, match="'spans' is registered twice"):
        QueryRegistry(first.values(), [first["spans"]])
