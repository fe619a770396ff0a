"""A failing analyzer: it quarantines the minutes it cannot compute and moves on, never holds back the
others, retries machine failures, and is counted, reported by /readyz and paged on."""
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from starlette.testclient import TestClient

from alerts.conditions import evaluate
from alerts.rules import load_config
from analysis import runner
from analysis.base import Result, Window
from analysis.traffic import TrafficAnalyzer, refreshes_hours
from core.clock import utcnow
from core.grains import floor_time
from store import analytics
from store.queries import store_queries
from tests.analysis.gen import T0, minute, spans, write

REGISTRY = store_queries()


class ScaledConfidenceSum:
    """An analyzer with the SQL that once blinded the traffic analyzer: confidence summed as scaled
    BIGINTs over the raw spans, so one confidence of 1e5 overflows its minute."""

    name = "scaled_sum"
    source = "spans"
    owns = ("scaled_confidence_sum",)

    def __init__(self, store):
        self.store = store

    def replaces(self, window: Window) -> list:
        return [("1m", *window.aligned("1m"))]

    def run(self, window: Window) -> Result:
        t = self.store.query("""
            SELECT date_trunc('minute', start_time) AS time, '1m' AS grain, 'scaled_confidence_sum' AS metric,
                   sum((confidence * 1e15)::BIGINT)::DOUBLE / 1e15 AS value, $now AS computed_at
            FROM spans WHERE start_time >= $start AND start_time < $end GROUP BY 1 ORDER BY 1""",
                             {"start": window.start, "end": window.end, "now": window.computed_at})
        columns = [t.column(f.name) if f.name in t.column_names else pa.nulls(t.num_rows, f.type)
                   for f in analytics.METRICS_SCHEMA]
        return Result(pa.Table.from_arrays(columns, schema=analytics.METRICS_SCHEMA))


class DiskGone(ScaledConfidenceSum):
    name = "disk_gone"

    def run(self, window: Window) -> Result:
        raise OSError(28, "No space left on device")


def poisoned(store):
    data = spans(T0, 10, 20, seed=11)
    df = data.to_pandas()
    poison = df.index[(df.start_time >= minute(3)) & (df.start_time < minute(4))][0]
    df.loc[poison, "confidence"] = 1e5
    write(store, pa.Table.from_pandas(df, schema=data.schema, preserve_index=False))
    return df, poison


def test_a_minute_that_fails_is_quarantined_and_the_rest_is_computed(store, settings):
    df, poison = poisoned(store)
    health = runner.AnalyzerHealth()
    now = minute(10) + timedelta(seconds=30)
    done = runner.run_all_incremental(store, [ScaledConfidenceSum(store), TrafficAnalyzer(store)], settings,
                                      now=now, health=health)
    assert done == {"scaled_sum": 1, "traffic": 1}
    # the watermark moved past the poisoned minute; every other minute has its exact sum
    assert runner.load_watermark(store, ScaledConfidenceSum(store)).until == minute(10)
    got = store.query("SELECT time, value FROM analysis_metrics WHERE metric = 'scaled_confidence_sum' "
                      "ORDER BY time").to_pylist()
    assert [r["time"] for r in got] == [minute(i) for i in range(10) if i != 3]
    for r in got:
        expected = df.confidence[(df.start_time >= r["time"]) & (df.start_time < r["time"] + timedelta(minutes=1))]
        assert r["value"] == pytest.approx(np.sum(expected), rel=1e-12)
    [q] = REGISTRY["quarantined_windows"].execute(store, {"start": T0.isoformat(), "end": minute(60).isoformat()}
                                                  ).to_pylist()
    assert (q["analyzer"], q["window_start"], q["window_end"]) == ("scaled_sum", minute(3), minute(4))
    assert "out of range" in q["error"]
    # the other analyzer saw every minute, the poisoned span included
    requests = store.query("SELECT time, value FROM analysis_metrics WHERE metric = 'requests' AND grain = '1m' "
                           "AND service_name IS NULL ORDER BY time").to_pylist()
    per_minute = [((df.start_time >= minute(i)) & (df.start_time < minute(i + 1))).sum() for i in range(10)]
    assert [r["value"] for r in requests] == [float(n) for n in per_minute]
    # counted, reported, and the built-in rule fires for it
    assert health.failing == {"scaled_sum": "quarantined"} and health.quarantined["scaled_sum"] == 1
    samples, failed = evaluate(store, load_config(), now + timedelta(seconds=5))
    fired = [s for s in samples.values() if s.rule.name == "AiwatchAnalyzerFailing"]
    assert not failed and [(s.labels["service"], s.labels["route"], s.labels["severity"]) for s in fired] == \
        [("aiwatch", "scaled_sum", "P1")]
    # the next tick has nothing to redo: healthy again
    assert runner.run_all_incremental(store, [ScaledConfidenceSum(store)], settings,
                                      now=minute(10) + timedelta(seconds=50), health=health) == {"scaled_sum": 0}
    assert health.failing == {}


def test_a_machine_failure_quarantines_nothing_and_is_retried(store, settings):
    poisoned(store)
    health = runner.AnalyzerHealth()
    now = minute(10) + timedelta(seconds=30)
    done = runner.run_all_incremental(store, [DiskGone(store), TrafficAnalyzer(store)], settings, now=now,
                                      health=health)
    assert done == {"disk_gone": -1, "traffic": 1}
    assert runner.load_watermark(store, DiskGone(store)) is None
    assert REGISTRY["quarantined_windows"].execute(store, {"start": T0.isoformat()}).num_rows == 0
    assert health.failing == {"disk_gone": "OSError"} and health.failures["disk_gone"] == 1
    row = store.query("SELECT service_name, route, value FROM analysis_metrics WHERE metric = 'analyzer_failures'")
    assert row.to_pylist() == [{"service_name": "aiwatch", "route": "disk_gone", "value": 1.0}]


def test_readyz_says_degraded_and_metrics_count_while_an_analyzer_fails(tmp_path):
    from aiwatch.config import Settings
    from aiwatch.server import AiwatchServer
    from analysis.register import analysis_jobs

    settings = Settings(data_dir=str(tmp_path), scheduler_enabled=False, ingest_workers=0)
    server = AiwatchServer(settings)
    with TestClient(server.app()) as client:   # its lifespan closes the server
        assert client.get("/readyz").json()["status"] == "ready"
        write(server.store, spans(floor_time(utcnow(), "1m") - timedelta(minutes=3), 2, 5, seed=1))
        # a real fault: the traffic analyzer's output table is gone, so its write fails every tick
        server.store.writer.write(fn=lambda con: con.execute("DROP TABLE traffic_metrics CASCADE"))
        minute_job = next(j for j in analysis_jobs(settings) if j.name == "analysis-minute")
        done = minute_job.run(server)
        assert done["traffic"] == -1
        r = client.get("/readyz")
        assert r.status_code == 200 and r.json()["status"] == "degraded"
        assert r.json()["analyzers_failing"] == ["traffic"] and "traffic_metrics" not in r.text
        metrics = client.get("/metrics").text
        assert 'aiwatch_analyzer_failures_total{analyzer="traffic"} 1' in metrics
        assert "aiwatch_analyzers_failing 1" in metrics


def test_the_shipped_rule_pages_on_call_for_a_failing_analyzer(store, settings):
    from alerts.engine import AlertEngine, StoreBackend

    poisoned(store)
    now = minute(10) + timedelta(seconds=30)
    runner.run_all_incremental(store, [ScaledConfidenceSum(store)], settings, now=now)
    config = load_config(env={"AIWATCH_PAGERDUTY_ROUTING_KEY": "key",
                              "AIWATCH_SLACK_WEBHOOK_URL": "http://127.0.0.1:9/s"})
    clock = [now]
    engine = AlertEngine(config, StoreBackend(store), store, lambda: clock[0])
    sent = []
    while clock[0] < now + timedelta(minutes=2):
        sent += engine.tick().notifications
        clock[0] += timedelta(seconds=10)
    pages = [(n["receiver"], n["message"]["status"]) for n in sent
             if any(a["labels"]["alertname"] == "AiwatchAnalyzerFailing" for a in n["message"]["alerts"])]
    assert ("pagerduty", "firing") in pages and ("slack", "firing") in pages


def test_a_backfill_quarantines_the_failing_minute_and_finishes(store):
    df, _ = poisoned(store)
    rows = runner.backfill(store, [ScaledConfidenceSum(store), TrafficAnalyzer(store)], T0, minute(10),
                           timedelta(hours=1), now=minute(11))
    assert rows > 0
    got = store.query("SELECT time FROM analysis_metrics WHERE metric = 'scaled_confidence_sum' ORDER BY time")
    assert got.column("time").to_pylist() == [minute(i) for i in range(10) if i != 3]
    [q] = REGISTRY["quarantined_windows"].execute(store, {"start": T0.isoformat()}).to_pylist()
    assert (q["analyzer"], q["window_start"]) == ("scaled_sum", minute(3))
    assert runner.load_watermark(store, ScaledConfidenceSum(store)).until == minute(10)


def test_the_hostile_span_of_the_report_no_longer_blinds_the_analyzers(tmp_path):
    # The attack end to end: OTLP in, the scheduled minute job, /readyz and the figures out.
    from aiwatch.config import Settings
    from aiwatch.server import AiwatchServer
    from analysis.register import analysis_jobs
    from tests.otlp_builders import span_request

    settings = Settings(data_dir=str(tmp_path), scheduler_enabled=False, ingest_workers=0)
    server = AiwatchServer(settings)
    start = floor_time(utcnow(), "1m") - timedelta(minutes=2)
    start_ns = int((start - datetime(1970, 1, 1)).total_seconds()) * 10**9
    hostile = {"gen_ai.request.model": "m", "aiwatch.confidence": 1e5, "aiwatch.quality.score": 9224.0,
               "aiwatch.cost.usd": 9.2e6, "gen_ai.usage.input_tokens": 2**62}
    with TestClient(server.app()) as client:
        body = span_request([{"start_ns": start_ns, "attributes": hostile},
                             {"start_ns": start_ns, "attributes": {"gen_ai.request.model": "m",
                                                                   "aiwatch.confidence": 0.5}}],
                            service="victim").SerializeToString()
        assert client.post("/v1/traces", content=body,
                           headers={"content-type": "application/x-protobuf"}).status_code == 200
        minute_job = next(j for j in analysis_jobs(settings) if j.name == "analysis-minute")
        done = minute_job.run(server)
        assert done["traffic"] >= 1 and all(n >= 0 for n in done.values()), done
        assert client.get("/readyz").json()["status"] == "ready"
        rows = server.store.query("SELECT metric, value FROM analysis_metrics WHERE service_name = 'victim' "
                                  "AND route IS NULL AND model IS NULL AND grain = '1m'").to_pylist()
        figures = {r["metric"]: r["value"] for r in rows}
        assert figures["requests"] == 2 and figures["confidence_mean"] == 0.5


class HourPoisonedTraffic(TrafficAnalyzer):
    """The traffic analyzer, failing (as on an unforeseen bad row) whenever what it reads includes the
    poisoned minute: its open-hour refresh does, every five minutes."""

    poison = minute(3)

    def run(self, window: Window) -> Result:
        first, last = window.aligned("1h") if refreshes_hours(window) else window.aligned("1m")
        if first <= self.poison < last:
            raise ValueError("a row no check foresaw")
        return super().run(window)


def test_only_the_bad_minute_is_quarantined_not_the_minutes_whose_hour_refresh_reads_it(store, settings):
    df, _ = poisoned(store)
    analyzer = HourPoisonedTraffic(store)
    skipped: list[Window] = []
    for i in range(1, 11):   # one tick a minute, as scheduled
        runner.run_incremental(store, analyzer, settings, now=minute(i) + timedelta(seconds=30),
                               quarantined=skipped)
    assert [(w.start, w.end) for w in skipped] == [(minute(3), minute(4))]
    requests = store.query("SELECT time FROM analysis_metrics WHERE metric = 'requests' AND grain = '1m' "
                           "AND service_name IS NULL ORDER BY time").column("time").to_pylist()
    assert requests == [minute(i) for i in range(10) if i != 3]
