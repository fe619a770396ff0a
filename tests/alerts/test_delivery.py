"""Delivery through the outbox to loopback Slack / PagerDuty / webhook receivers that record
payloads and fail on request: at-least-once, backoff with Retry-After, no retry on 4xx, and no
duplicate page across a restart."""
from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from fakes.receivers import FakeReceivers
from harness import MIN, SEC, T0, Script, make_config, series, write_metrics

from alerts.delivery import Deliverer, DeliveryRetry
from alerts.engine import AlertEngine, StoreBackend
from alerts.notifiers import SLACK_HEADER_MAX, SLACK_MAX_BLOCKS, SLACK_TEXT_MAX
from store.db import Store


@pytest.fixture
def rx():
    with FakeReceivers(retry_after=7, hang_s=5) as r:
        yield r


def routed_config(rx: FakeReceivers, **extra):
    return make_config(
        receivers={"pagerduty": {"type": "pagerduty", "url": rx.url("pagerduty"), "routing_key": "R0UT1NGKEY",
                                 "timeout": "2s"},
                   "slack": {"type": "slack", "url": rx.url("slack"), "timeout": "2s"},
                   "webhook": {"type": "webhook", "url": rx.url("webhook"), "timeout": "2s"}},
        routes=[{"match": {"severity": "P1"}, "receivers": ["pagerduty", "slack", "webhook"]},
                {"match": {}, "receivers": ["slack"]}], **extra)


def incident(store, start=5, end=300):
    write_metrics(store, series("error_rate", T0, 320, lambda i: 0.3 if start <= i < end else 0.0))


def deliverer(store, config, clock):
    return Deliverer(store, config, clock, rng=random.Random(7),
                     policy=DeliveryRetry(base_s=2, max_backoff_s=60, max_attempts=6))


def drive(script: Script, d: Deliverer, until, step=10 * SEC, quiet_until=None):
    """Evaluate and deliver on the fake clock, as the two scheduled jobs would; up to `quiet_until`
    (before the incident is visible: nothing to decide or deliver) once a minute."""
    if quiet_until is not None:
        drive(script, d, quiet_until - SEC, step=MIN)
    while script.clock.now <= until:
        result = script.engine.tick()
        script.notes.extend((result.now, n) for n in result.notifications)
        d.run_once()
        script.clock.advance(step)


def test_page_slack_and_webhook_then_resolve(store, script_for, clock, rx):
    incident(store, 5, 20)
    config = routed_config(rx)
    s, d = script_for(config), deliverer(store, config, clock)
    # fires at 8 min, first notification 8:30; resolved at 21 min, sent at the group's flush by 23:30
    drive(s, d, T0 + 26 * MIN, quiet_until=T0 + 6 * MIN)
    pd = rx.payloads("pagerduty")
    assert [p["event_action"] for p in pd] == ["trigger", "resolve"]
    assert pd[0]["dedup_key"] == pd[1]["dedup_key"] and pd[0]["routing_key"] == "R0UT1NGKEY"
    assert pd[0]["payload"]["severity"] == "critical" and pd[0]["payload"]["source"] == "checkout"
    assert "error rate" in pd[0]["payload"]["summary"] or "HighErrorRate" in pd[0]["payload"]["summary"]
    assert rx.pages() == 1
    hooks = rx.payloads("webhook")
    assert [h["status"] for h in hooks] == ["firing", "resolved"]
    assert hooks[0]["version"] == "4" and hooks[0]["groupLabels"] == {"alertname": "HighErrorRate",
                                                                       "service": "checkout"}
    assert set(hooks[0]["alerts"][0]) >= {"status", "labels", "annotations", "startsAt", "endsAt",
                                          "generatorURL", "fingerprint"}
    slack = rx.payloads("slack")
    assert len(slack) == 2
    blocks = slack[0]["blocks"]
    assert blocks[0]["type"] == "header" and "FIRING" in blocks[0]["text"]["text"]
    fields = " ".join(f["text"] for f in blocks[1]["fields"])
    for word in ("Severity", "What", "Where", "Since", "P1", "route=/answer", "Value vs threshold*\n30% &gt; 5%"):
        assert word in fields
    assert "checkout" in blocks[0]["text"]["text"] and "checkout" not in fields   # the service once, in the header
    buttons = {b["text"]["text"] for b in blocks[-1]["elements"]}
    assert buttons == {"Dashboard", "Runbook"} or buttons == {"Dashboard"}
    assert "RESOLVED" in slack[1]["blocks"][0]["text"]["text"]


def test_slack_message_stays_within_limits(store, script_for, clock, rx):
    many = [{"time": T0 + i * MIN, "grain": "1m", "metric": "error_rate", "service_name": "checkout",
             "model": "m", "model_version": "v1", "route": f"/r{j}-" + "x" * 400, "arm": None, "value": 0.5,
             "computed_at": T0} for i in range(10) for j in range(80)]
    write_metrics(store, many)
    config = routed_config(rx, rules=[{"name": "HighErrorRate", "severity": "P1", "summary": "S" * 5000,
                                       "condition": {"metric": "error_rate", "op": ">", "threshold": 0.05}}])
    s, d = script_for(config), deliverer(store, config, clock)
    drive(s, d, T0 + 3 * MIN)
    msg = rx.payloads("slack")[0]
    assert len(msg["blocks"]) <= SLACK_MAX_BLOCKS
    assert len(msg["blocks"][0]["text"]["text"]) <= SLACK_HEADER_MAX
    assert len(msg["text"]) <= SLACK_TEXT_MAX
    for b in msg["blocks"]:
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= SLACK_TEXT_MAX and len(b.get("fields", [])) <= 10
    assert "80" in msg["blocks"][0]["text"]["text"] and "more alerts" in json.dumps(msg)
    assert len(json.dumps(msg)) < 40_000


def test_retries_5xx_and_honours_retry_after(store, script_for, clock, rx):
    rx.script("pagerduty", "500", "503", "429", "ok")
    incident(store)
    config = routed_config(rx)
    s, d = script_for(config), deliverer(store, config, clock)
    # second by second from the firing (8 min; the first notification goes out at 8:30)
    drive(s, d, T0 + 8 * MIN - SEC)
    drive(s, d, T0 + 8 * MIN + 50 * SEC, step=SEC)
    rows = store.query("SELECT outcome, http_status, time FROM alert_notifications WHERE receiver = 'pagerduty' "
                       "ORDER BY time").to_pylist()
    assert [r["outcome"] for r in rows] == ["retry", "retry", "retry", "delivered"]
    gaps = [(b["time"] - a["time"]).total_seconds() for a, b in zip(rows, rows[1:])]
    assert 1 <= gaps[0] <= 3 and 2 <= gaps[1] <= 5      # 2s then 4s ceilings, equal jitter (+1s tick)
    assert 7 <= gaps[2] <= 8                            # Retry-After: 7 wins over backoff
    assert rx.pages() == 1


def test_4xx_is_not_retried_and_the_body_is_logged(store, script_for, clock, rx):
    rx.script("slack", "400_invalid_payload")
    incident(store)
    config = routed_config(rx)
    s, d = script_for(config), deliverer(store, config, clock)
    drive(s, d, T0 + 10 * MIN, quiet_until=T0 + 6 * MIN)
    row = store.query("SELECT outcome, http_status, error FROM alert_notifications WHERE receiver = 'slack'"
                      ).to_pylist()
    assert row == [{"outcome": "failed", "http_status": 400, "error": "invalid_payload"}]
    assert len(rx.received("slack")) == 1
    assert store.scalar("SELECT state FROM alert_outbox WHERE receiver = 'slack'") == "failed"


def test_hang_times_out_and_is_retried(store, script_for, clock, rx):
    rx.script("slack", "hang")
    incident(store)
    config = routed_config(rx)
    s, d = script_for(config), deliverer(store, config, clock)
    drive(s, d, T0 + 10 * MIN, quiet_until=T0 + 6 * MIN)
    outcomes = store.query("SELECT outcome, error FROM alert_notifications WHERE receiver = 'slack' ORDER BY time"
                           ).to_pylist()
    assert outcomes[0]["outcome"] == "retry" and "timeout" in outcomes[0]["error"]
    assert outcomes[-1]["outcome"] == "delivered"
    assert len(rx.payloads("slack")) == 1


def test_resolve_waits_for_its_trigger(store, script_for, clock, rx):
    rx.default["pagerduty"] = "503"
    incident(store, 5, 12)
    config = routed_config(rx)
    s = script_for(config)
    d = Deliverer(store, config, clock, rng=random.Random(1), policy=DeliveryRetry(base_s=2, max_backoff_s=60, max_attempts=100))
    drive(s, d, T0 + 20 * MIN, quiet_until=T0 + 6 * MIN)   # resolved at 13 min, its flush by 18:30
    assert rx.payloads("pagerduty") == []
    rx.default["pagerduty"] = "ok"
    clock.advance(2 * MIN)
    d.run_once()
    clock.advance(2 * MIN)
    d.run_once()
    assert [p["event_action"] for p in rx.payloads("pagerduty")] == ["trigger", "resolve"]


def test_undelivered_survives_restart_and_delivered_is_not_repeated(tmp_path, clock, rx):
    """At least once across a restart, and no second page: the outbox row is committed with the
    decision; after restart the pending row is delivered, the delivered one is not sent again."""
    path = tmp_path / "alerts.duckdb"
    store = Store(path, writer_max_delay_ms=1)
    incident(store)
    config = routed_config(rx)
    rx.default["slack"] = "500"                     # Slack down, PagerDuty up
    s = Script(AlertEngine(config, StoreBackend(store), store, clock), clock)
    d = deliverer(store, config, clock)
    drive(s, d, T0 + 9 * MIN, quiet_until=T0 + 6 * MIN)
    assert rx.pages() == 1 and rx.payloads("slack") == []
    store.close()                                   # "crash": the process goes away

    rx.default["slack"] = "ok"
    store = Store(path, writer_max_delay_ms=1)
    try:
        s2 = Script(AlertEngine(config, StoreBackend(store), store, clock), clock)
        d2 = deliverer(store, config, clock)
        drive(s2, d2, clock.now + 10 * MIN)
        assert rx.pages() == 1
        assert len([p for p in rx.payloads("pagerduty") if p["event_action"] == "trigger"]) == 1
        assert len(rx.payloads("slack")) == 1
        assert store.scalar("SELECT count(*) FROM alert_outbox WHERE state <> 'delivered'") == 0
    finally:
        store.close()


def test_crash_between_send_and_commit_resends_with_the_same_dedup_key(tmp_path, clock, rx):
    """The one window at-least-once allows: sent but not yet marked delivered. PagerDuty folds the
    repeat into the same incident because the dedup_key is stable."""
    path = tmp_path / "alerts.duckdb"
    store = Store(path, writer_max_delay_ms=1)
    incident(store)
    config = routed_config(rx)
    s = Script(AlertEngine(config, StoreBackend(store), store, clock), clock)
    s.quiet_until(T0 + 6 * MIN)
    s.run_until(T0 + 9 * MIN)
    from alerts import notifiers
    from store import alerting

    row = next(r for r in alerting.pending_outbox(store) if r["receiver"] == "pagerduty")
    body = notifiers.render(config.receivers["pagerduty"], json.loads(row["payload"]), row["dedup_key"])
    notifiers.send(config.receivers["pagerduty"], body)   # sent ... and the process dies
    store.close()
    store = Store(path, writer_max_delay_ms=1)
    try:
        deliverer(store, config, clock).run_once()
        triggers = [p for p in rx.payloads("pagerduty") if p["event_action"] == "trigger"]
        assert len(triggers) == 2 and triggers[0]["dedup_key"] == triggers[1]["dedup_key"]
        assert rx.pages() == 1
    finally:
        store.close()


def test_gives_up_after_max_attempts(store, script_for, clock, rx):
    rx.default["webhook"] = "502"
    incident(store)
    config = routed_config(rx)
    s, d = script_for(config), deliverer(store, config, clock)
    # first attempt at 8:30, then 5 retries with backoff ceilings 2, 4, 8, 16, 32 s: dead before 11 min
    drive(s, d, T0 + 15 * MIN, quiet_until=T0 + 6 * MIN)
    outcomes = store.query("SELECT outcome FROM alert_notifications WHERE receiver = 'webhook' ORDER BY time"
                           ).column("outcome").to_pylist()
    assert outcomes == ["retry"] * 5 + ["dead"]


def test_p3_is_recorded_for_review_and_digested_weekly(store, script_for, clock, rx):
    write_metrics(store, series("drift_share", T0, 3, 0.6, grain="1h", step=timedelta(hours=1)))
    config = make_config(
        receivers={"review": {"type": "review"}, "slack": {"type": "slack", "url": rx.url("slack")}},
        routes=[{"match": {"severity": "P3"}, "receivers": ["review"], "group_wait": "5m"}],
        weekly_digest={"receiver": "slack", "every": "7d"},
        rules=[{"name": "DriftTrend", "severity": "P3", "summary": "{service}: drift {value:.0%}",
                "condition": {"metric": "drift_share", "grain": "1h", "op": ">=", "threshold": 0.5}}])
    s, d = script_for(config), deliverer(store, config, clock)
    drive(s, d, T0 + 70 * MIN, step=MIN)
    review = store.query("SELECT rule, severity, status, summary FROM alert_review").to_pylist()
    assert review == [{"rule": "DriftTrend", "severity": "P3", "status": "firing", "summary": "checkout: drift 60%"}]
    assert rx.payloads("slack") == []                   # P3 does not go to Slack ...
    clock.now = T0 + timedelta(days=7, minutes=1)
    s.engine.tick()
    d.run_once()
    digest = rx.payloads("slack")                       # ... except in the weekly digest
    assert len(digest) == 1 and "weekly review" in digest[0]["text"]
    assert "DriftTrend" in json.dumps(digest[0]["blocks"])


def test_a_trickling_receiver_hits_its_total_deadline(store, script_for, clock):
    """Headers, then a byte every 0.2 s: no single read times out, the send's deadline does. The
    other receivers of the same pass are delivered."""
    with FakeReceivers(hang_s=60, trickle_s=0.2) as rx:
        rx.script("slack", "trickle")
        incident(store)
        config = routed_config(rx)
        s, d = script_for(config), deliverer(store, config, clock)
        s.quiet_until(T0 + 6 * MIN)
        s.run_until(T0 + 9 * MIN)
        outcomes = {o.receiver: o for o in d.run_once()}
        assert outcomes["slack"].outcome == "retry" and "deadline" in outcomes["slack"].error
        assert outcomes["pagerduty"].outcome == "delivered" and rx.pages() == 1
        assert outcomes["webhook"].outcome == "delivered"


def test_a_slow_receiver_never_delays_another(store, clock):
    """The delivery service works each receiver on its own: while Slack trickles its answer to the
    first notification, PagerDuty gets the pages of two incidents decided one after the other.
    On stop, the Slack rows stay pending in the outbox."""
    from alerts.delivery import DeliveryService

    with FakeReceivers(hang_s=120, trickle_s=0.5) as rx:
        rx.default["slack"] = "trickle"
        write_metrics(store, series("error_rate", T0, 40, 0.3, service="checkout")
                      + series("error_rate", T0 + 10 * MIN, 30, 0.3, service="search"))
        # P1 rule, for: 2m, group_wait 30s: checkout is decided by 3 min, search by 13 min
        config = make_config(
            receivers={"pagerduty": {"type": "pagerduty", "url": rx.url("pagerduty"), "routing_key": "K",
                                     "timeout": "60s"},
                       "slack": {"type": "slack", "url": rx.url("slack"), "timeout": "60s"}},
            routes=[{"match": {}, "receivers": ["slack", "pagerduty"]}])
        script = Script(AlertEngine(config, StoreBackend(store), store, clock), clock)
        service = DeliveryService(deliverer(store, config, clock), interval_s=0.2)
        service.start()
        try:
            script.run_until(T0 + 5 * MIN)
            service.wake()
            wait_for(lambda: rx.pages() == 1 and rx.received("slack"))
            script.run_until(T0 + 15 * MIN)           # a second incident, for another service
            service.wake()
            wait_for(lambda: rx.pages() == 2)
            assert len(rx.received("slack")) == 1     # Slack is still answering the first one
            assert store.scalar("SELECT count(*) FROM alert_notifications WHERE receiver = 'slack'") == 0
        finally:
            service.stop(timeout_s=5)
        assert not service._thread.is_alive()
        assert store.scalar("SELECT count(*) FROM alert_outbox WHERE receiver = 'slack' AND state = 'pending'") == 2


def wait_for(condition, limit_s: float = 30) -> None:
    """Poll a condition about the loopback receivers; a bound, not a timing assertion."""
    import time

    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_user_data_cannot_ping_or_link_in_slack(store, script_for, clock, rx):
    """Service and route names are user data: Slack's control sequences in them arrive escaped."""
    write_metrics(store, series("error_rate", T0, 30, 0.4, service="<!channel> & co",
                                route="<https://evil.example|click here>"))
    config = routed_config(rx, rules=[{"name": "HighErrorRate", "severity": "P1",
                                       "summary": "{service} failing on {route}",
                                       "condition": {"metric": "error_rate", "op": ">", "threshold": 0.05}}])
    s, d = script_for(config), deliverer(store, config, clock)
    drive(s, d, T0 + 3 * MIN)
    msg = rx.payloads("slack")[0]
    mrkdwn = [msg["text"]] + [t for b in msg["blocks"] for t in _mrkdwn_texts(b)]
    assert len(mrkdwn) > 3
    for text in mrkdwn:
        assert "<!channel>" not in text and "<https://evil" not in text, text
    joined = "\n".join(mrkdwn)
    assert "&lt;!channel&gt; &amp; co" in joined and "&lt;https://evil.example|click here&gt;" in joined
    assert "<!date^" in joined                      # aiwatch's own control sequences still work


def _mrkdwn_texts(block: dict) -> list[str]:
    out = []
    for part in [block.get("text")] + block.get("fields", []) + block.get("elements", []):
        if isinstance(part, dict) and part.get("type") == "mrkdwn":
            out.append(part["text"])
    return out


def test_watchdog_heartbeats_while_evaluating_and_stops_when_evaluation_stops(store, script_for, clock, rx):
    """Alertmanager's Watchdog: an always-firing alert every `every`, decided by the evaluator, so a
    dead man's switch at the receiver learns when aiwatch stops evaluating."""
    config = routed_config(rx, watchdog={"receiver": "webhook", "every": "1m"})
    s, d = script_for(config), deliverer(store, config, clock)
    drive(s, d, T0 + 5 * MIN)                         # evaluating: no incident, only heartbeats
    beats = rx.payloads("webhook")
    assert len(beats) == 6                            # at 0, 1, ..., 5 minutes
    assert {b["alerts"][0]["labels"]["alertname"] for b in beats} == {"Watchdog"}
    assert {b["status"] for b in beats} == {"firing"} and rx.payloads("pagerduty") == []
    for _ in range(60):                               # evaluation stops; delivery goes on for 10 min
        clock.advance(10 * SEC)
        d.run_once()
    assert len(rx.payloads("webhook")) == 6
    s.run_until(clock.now + 30 * SEC)                 # evaluation is back: so is the heartbeat
    d.run_once()
    assert len(rx.payloads("webhook")) == 7


def test_the_shipped_watchdog_is_off_without_its_url_and_on_with_it():
    from alerts.rules import load_config

    assert not load_config(env={}).receivers["deadmans_switch"].configured
    config = load_config(env={"AIWATCH_WATCHDOG_URL": "http://127.0.0.1:9/beat"})
    assert config.watchdog.receiver == "deadmans_switch" and config.watchdog.every == timedelta(minutes=1)
    assert config.receivers["deadmans_switch"].configured


def test_weekly_digest_escapes_user_data():
    from alerts.notifiers import slack_message

    msg = slack_message({"type": "digest", "since": "2026-11-16T00:00:00", "until": "2026-11-23T00:00:00",
                         "dashboard": "http://127.0.0.1:8501", "items": [
                             {"rule": "Drift<!here>", "labels": '{"service": "<https://evil|x>"}',
                              "summary": "a <!channel> b"}]})
    texts = [t for b in msg["blocks"] for t in _mrkdwn_texts(b)]
    assert texts and all("<!" not in t and "<https" not in t for t in texts)
    assert "Drift&lt;!here&gt;" in "\n".join(texts)
