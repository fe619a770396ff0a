"""The backtest's in-memory index (store/replay_index.py) answers every alert read as the SQL does,
and a backtest over it fires exactly what minute-by-minute evaluation over the store fires, on a
small recording with incidents (drawn, stored and analyzed by the real analyzers)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from harness import series, write_metrics

from alerts.backtest import run_backtest
from alerts.rules import DEFAULT_RULES, load_config
from store import alerting
from store.replay_index import AnalysisIndex

START = datetime(2026, 3, 2, 12)     # midday: a few calls a minute on the quieter routes
HOURS = 5
SCENARIO = {
    "name": "replay-index", "days": HOURS / 24,
    "services": [
        {"name": "shop-bot", "version": "1", "requests_per_minute": 12, "background_errors": 0.01, "routes": [
            {"name": "answer", "weight": 0.6, "prompt_tokens_median": 600, "output_tokens_median": 150,
             "models": [{"name": "gpt-4o-mini", "snapshot": "gpt-4o-mini-2024-07-18", "provider": "openai",
                         "version": "1", "input_per_1k": 0.00015, "output_per_1k": 0.0006,
                         "latency_median_ms": 900, "latency_sigma": 0.45}]},
            {"name": "summarize", "weight": 0.4, "prompt_tokens_median": 1800, "output_tokens_median": 800,
             "models": [{"name": "gpt-4o", "provider": "openai", "version": "1", "input_per_1k": 0.0025,
                         "output_per_1k": 0.01, "latency_median_ms": 6000, "latency_sigma": 0.5}]}]},
        {"name": "claims", "version": "1", "requests_per_minute": 3, "routes": [
            {"name": "classify", "weight": 1.0, "prompt_tokens_median": 1400, "output_tokens_median": 60,
             "models": [{"name": "claude-3-5-haiku", "provider": "anthropic", "version": "1",
                         "input_per_1k": 0.0008, "output_per_1k": 0.004, "latency_median_ms": 1300}]}]}],
    "incidents": [
        {"kind": "error_burst", "service": "shop-bot", "route": "answer", "magnitude": 0.3,
         "start_min": 200, "end_min": 225},
        {"kind": "total_outage", "service": "claims", "start_min": 215, "end_min": 230},
        {"kind": "latency_spike", "service": "shop-bot", "route": "summarize", "model": "gpt-4o", "magnitude": 5,
         "start_min": 205, "end_min": 230}],
}


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    from analysis import registry, runner
    from analysis.settings import AnalysisSettings
    from sample_data.generate import draw, store_tables
    from sample_data.scenario import scenario_from_dict
    from store.db import Store

    path = tmp_path_factory.mktemp("replay-index") / "aiwatch.duckdb"
    store = Store(path, writer_max_delay_ms=1)
    try:
        store.writer.write(tables=store_tables(draw(scenario_from_dict(SCENARIO), START, 3), 3))
        end = START + timedelta(hours=HOURS)
        # computed "live" half-way: the first half's rows look computed on time (the computed_at
        # visibility branch), the second half's computed later (bucket completion)
        runner.backfill(store, registry.build(store, AnalysisSettings()), START, end, timedelta(hours=1),
                        now=START + timedelta(hours=2, minutes=30))
        # rows the analyzers would write on a rerun or from a broken input: a bucket computed twice,
        # with no computation time, with no value
        late = START + timedelta(hours=4)
        extra = series("route_calls", START + timedelta(minutes=100), 5, 999.0, service="shop-bot",
                       route="answer", model="gpt-4o-mini")
        extra += [{**r, "computed_at": None, "value": 5.0} for r in series(
            "route_errors", START + timedelta(minutes=110), 3, 0, service="shop-bot", route="answer",
            model="gpt-4o-mini")]
        extra += [{**r, "value": None, "computed_at": late} for r in series(
            "requests", START + timedelta(minutes=120), 4, 0, service="claims", model=None, route=None)]
        for r in extra:
            r["model_version"] = None
        write_metrics(store, extra)
    finally:
        store.close()
    return alerting.open_read_only(str(path))


def _canon(rows) -> list[tuple]:
    out = []
    for r in rows.to_pylist():
        out.append(tuple(sorted((k, round(v, 9) if isinstance(v, float) else v) for k, v in r.items())))
    return sorted(out, key=repr)


def test_index_answers_every_read_like_the_sql(recording):
    config = load_config(DEFAULT_RULES, env={})
    rows = alerting.analysis_window(recording, START - timedelta(days=1), START + timedelta(hours=HOURS + 1))
    sql, index = alerting.memory_copy(rows), AnalysisIndex(rows)
    windows = {"route_calls": 300.0, "route_errors": 300.0, "overrides": 3600.0, "reviewed": 3600.0,
               "requests": 900.0, "confidence_mean": 600.0}
    keys = sorted({f"{m}|{g}" for m in config.metrics for g in ("1m", "1h", "5m", "1h", "6h", "30m")})
    checked = 0
    for minute in range(0, HOURS * 60 + 30, 13):
        now = START + timedelta(minutes=minute, seconds=30 * (minute % 2))
        pairs = [
            (alerting.latest_values(sql, now, keys), alerting.latest_values(index, now, keys)),
            (alerting.baseline_means(sql, now, "confidence_mean", "1m", 86400.0),
             alerting.baseline_means(index, now, "confidence_mean", "1m", 86400.0)),
            (alerting.baseline_means(sql, now, "route_calls", "1m", 7200.0),
             alerting.baseline_means(index, now, "route_calls", "1m", 7200.0)),
            (alerting.trailing_sums(sql, now, ["route_errors", "route_calls"], 86400.0, 3660.0),
             alerting.trailing_sums(index, now, ["route_errors", "route_calls"], 86400.0, 3660.0)),
            (alerting.traffic_last_seen(sql, now, 3600.0), alerting.traffic_last_seen(index, now, 3600.0)),
        ]
        points = alerting.minute_points(index, now, windows)
        assert points == alerting.minute_points(sql, now, windows), now
        checked += sum(map(len, points.values()))
        for i, (a, b) in enumerate(pairs):
            assert _canon(a) == _canon(b), (now, i)
            checked += len(b)
    assert checked > 10_000


def test_backtest_over_the_index_fires_as_evaluation_over_the_store(recording):
    config = load_config(DEFAULT_RULES, env={})
    since, until = START + timedelta(minutes=198), START + timedelta(minutes=226)
    live = run_backtest(recording, config, since, until, copy=False)
    fast = run_backtest(recording, config, since, until)

    def events(result):      # in a tick, alerts change state in the order rows come (SQL: any order)
        return sorted((e["time"], e["rule"], e["fingerprint"], e["to_state"], round(e["value"] or 0, 9))
                      for e in result.events)
    assert events(fast) == events(live)
    fired = {(e["rule"], e["labels"].get("route")) for e in fast.events if e["to_state"] == "firing"}
    assert {("RouteErrorBurst", "answer"), ("RouteSlowCalls", "summarize")} <= fired
