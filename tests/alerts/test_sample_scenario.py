"""End to end on generated sample data: telemetry -> analyzers -> alert rules -> loopback PagerDuty
and Slack. A half-day scenario with four injected incidents: each raises its severity in time
(P1 within 5 minutes of onset, P2 within 15) and the clean hours raise no P1 or P2.
(bench/alerts_detection.py reports the same on the full 3-day demo sample.)"""
from __future__ import annotations

import contextlib
import io
from datetime import datetime, timedelta

import pytest
from fakes.receivers import FakeReceivers
from harness import FakeClock

from alerts.backtest import run_backtest
from alerts.delivery import Deliverer
from alerts.engine import AlertEngine, StoreBackend
from alerts.rules import DEFAULT_RULES, load_config
from store.db import Store

END = datetime(2026, 3, 2, 12, 0)
START = END - timedelta(hours=12)
SCENARIO = """
name: alerts-e2e
days: 0.5
services:
  - name: shop-bot
    version: "1.0.0"
    requests_per_minute: 10
    routes:
      - name: answer
        weight: 1.0
        prompt_tokens_median: 800
        output_tokens_median: 200
        models:
          - {name: gpt-4o, provider: openai, version: "2024-11", input_per_1k: 0.0025, output_per_1k: 0.01, latency_median_ms: 900}
incidents:
  - {kind: error_burst, service: shop-bot, route: answer, start_min: 420, end_min: 450, magnitude: 0.3}
  - {kind: total_outage, service: shop-bot, start_min: 500, end_min: 530}
  - {kind: cost_spike, service: shop-bot, route: answer, start_min: 580, end_min: 640, magnitude: 5}
  - {kind: format_drop, service: shop-bot, route: answer, start_min: 670, end_min: 715, magnitude: 0.4}
"""
INCIDENTS = [("error_burst", 420, "P1", 5), ("total_outage", 500, "P1", 5), ("cost_spike", 580, "P2", 15),
             ("format_drop", 670, "P2", 15)]


def aiwatch(*args: str) -> None:
    from aiwatch.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(["--log-level", "WARNING", *args])
    assert code == 0, out.getvalue()


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    data = tmp_path_factory.mktemp("alerts-sample")
    scenario = data / "scenario.yaml"
    scenario.write_text(SCENARIO)
    aiwatch("sample", "generate", "--scenario", str(scenario), "--end", END.isoformat(), "--data-dir", str(data))
    aiwatch("analyze", "--since", START.isoformat(), "--until", END.isoformat(), "--data-dir", str(data))
    return data


def test_incidents_page_and_post_in_time(sample_dir):
    with FakeReceivers() as rx:
        env = {"AIWATCH_PAGERDUTY_URL": rx.url("pagerduty"), "AIWATCH_PAGERDUTY_ROUTING_KEY": "key",
               "AIWATCH_SLACK_WEBHOOK_URL": rx.url("slack")}
        config = load_config(DEFAULT_RULES, env=env)
        store = Store(sample_dir / "aiwatch.duckdb", writer_max_delay_ms=1)
        try:
            clock = FakeClock(START)
            engine = AlertEngine(config, StoreBackend(store), store, clock)
            deliverer = Deliverer(store, config, clock)
            fired: dict[str, datetime] = {}
            for kind, onset_min, severity, deadline in INCIDENTS:
                onset = START + timedelta(minutes=onset_min)
                clock.now = onset - timedelta(minutes=2)
                # Up to the deadline; once it fired, only until it has gone out (the first P1 or P2 of
                # a group waits group_wait, 30 s; one joining a group, up to group_interval, 5 min).
                until = onset + timedelta(minutes=deadline + 1)
                while clock.now <= until:
                    for t in engine.tick().transitions:
                        if t["to_state"] == "firing" and t["severity"] == severity and t["time"] >= onset:
                            fired.setdefault(kind, t["time"])
                            until = min(until, fired[kind] + timedelta(minutes=1 if severity == "P1" else 6))
                    deliverer.run_once()
                    clock.advance(timedelta(seconds=30))
                assert kind in fired, f"{kind}: no {severity} within {deadline} min"
                assert fired[kind] - onset <= timedelta(minutes=deadline), (kind, fired[kind] - onset)
            triggers = [p for p in rx.payloads("pagerduty") if p["event_action"] == "trigger"]
            assert triggers and all(p["payload"]["source"] == "shop-bot" for p in triggers)
            slack = rx.payloads("slack")
            assert any("P2" in m["blocks"][0]["text"]["text"] for m in slack)
            assert any("P1" in m["blocks"][0]["text"]["text"] for m in slack)
        finally:
            store.close()


def test_clean_hours_raise_no_p1_or_p2(sample_dir):
    from store import alerting

    db = alerting.open_read_only(str(sample_dir / "aiwatch.duckdb"))
    result = run_backtest(db, load_config(DEFAULT_RULES, env={}), START + timedelta(hours=2),
                          START + timedelta(minutes=415))
    loud = [(e["time"], e["rule"]) for e in result.events if e["to_state"] == "firing" and e["severity"] in ("P1", "P2")]
    assert loud == []
