"""A real server process with a Slack receiver that trickles its answer: PagerDuty still pages,
SIGTERM ends the process promptly (the database lock is released), the Slack notification stays in
the outbox and is delivered after the restart."""
from __future__ import annotations

import signal
import subprocess
import time
from datetime import timedelta

import yaml
from fakes.receivers import FakeReceivers
from harness import BASE_CONFIG, MIN, FakeClock, Script, series, write_metrics
from server_harness import start_server, stop_server

from alerts.delivery import Deliverer
from alerts.engine import AlertEngine, StoreBackend, utcnow
from alerts.rules import load_config
from store.db import Store


def wait_for(condition, limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


def outbox(data_dir) -> dict[str, str]:
    store = Store(data_dir / "aiwatch.duckdb")
    try:
        return {r["receiver"]: r["state"] for r in store.query("SELECT receiver, state FROM alert_outbox").to_pylist()}
    finally:
        store.close()


def test_sigterm_with_a_trickling_receiver(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with FakeReceivers(hang_s=300, trickle_s=1) as rx:
        rx.default["slack"] = "trickle"
        rules = tmp_path / "rules.yaml"
        rules.write_text(yaml.safe_dump({**BASE_CONFIG, "receivers": {
            "pagerduty": {"type": "pagerduty", "url": rx.url("pagerduty"), "routing_key": "K", "timeout": "60s"},
            "slack": {"type": "slack", "url": rx.url("slack"), "timeout": "60s"}},
            "routes": [{"match": {}, "receivers": ["slack", "pagerduty"]}]}))
        # Decide one notification per receiver into the server's outbox, as its evaluator would.
        start = utcnow().replace(microsecond=0) - 10 * MIN
        store = Store(data / "aiwatch.duckdb", writer_max_delay_ms=1)
        write_metrics(store, series("error_rate", start, 10, 0.4))
        clock = FakeClock(start)
        Script(AlertEngine(load_config(rules), StoreBackend(store), store, clock), clock).run_until(
            start + 9 * MIN, step=timedelta(seconds=30))
        store.close()
        assert outbox(data) == {"pagerduty": "pending", "slack": "pending"}

        env = {"AIWATCH_SCHEDULER_ENABLED": "true", "AIWATCH_ALERTS_RULES": str(rules),
               "AIWATCH_ALERTS_EVAL_INTERVAL_S": "3600", "AIWATCH_ALERTS_DELIVER_INTERVAL_S": "0.5"}
        server = start_server(data, env=env)
        try:
            wait_for(lambda: rx.pages() == 1 and rx.received("slack"))
            server.process.send_signal(signal.SIGTERM)
            try:
                server.process.wait(20)      # a bound, far under the trickle's 300 s
            except subprocess.TimeoutExpired:
                raise AssertionError("the server did not stop on SIGTERM while Slack trickled") from None
        finally:
            stop_server(server)
        # uvicorn exits by re-raising the signal once its graceful shutdown is done
        assert server.process.returncode in (0, -signal.SIGTERM), server.log()
        assert "Traceback" not in server.log()
        assert outbox(data) == {"pagerduty": "delivered", "slack": "pending"}

        # The next start delivers what was left (here the deliverer alone, on the same database).
        rx.default["slack"] = "ok"
        rx.release()
        store = Store(data / "aiwatch.duckdb", writer_max_delay_ms=1)
        try:
            outcomes = Deliverer(store, load_config(rules)).run_once()
        finally:
            store.close()
        assert [(o.receiver, o.outcome) for o in outcomes] == [("slack", "delivered")]
        assert outbox(data) == {"pagerduty": "delivered", "slack": "delivered"}
        assert len(rx.payloads("slack")) == 1 and rx.pages() == 1
