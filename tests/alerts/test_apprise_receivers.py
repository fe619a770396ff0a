"""Receivers reached through apprise, against real loopback servers: a Teams Power Automate workflow
(HTTPS, self-signed), a generic JSON webhook standing in for Discord/Opsgenie-style webhooks, and
email over SMTP (aiosmtpd). Same outbox semantics as the native Slack and PagerDuty senders:
at-least-once, Retry-After honoured, 4xx not retried, one bad receiver never stops the others,
and the credentials in receiver URLs never reach logs, stored errors or `alerts check` output."""
from __future__ import annotations

import logging
import random
import socket
import threading
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from fakes.receivers import FakeReceivers
from fakes.tls import loopback_tls_context
from harness import MIN, SEC, T0, Script, make_config, series, write_metrics

from alerts.delivery import Deliverer, DeliveryRetry, send_test
from alerts.notifiers import apprise_message, describe_destination, mask_secrets
from alerts.rules import Receiver, RulesError

SECRET = "S3cr3tT0ken42"


class Mailbox:
    """SMTP handler: records messages; answers `451` to the next `fail` deliveries."""

    def __init__(self) -> None:
        self.messages: list = []
        self.fail = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        with self.lock:
            if self.fail:
                self.fail -= 1
                return "451 4.3.0 try again later"
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def rx():
    with FakeReceivers(retry_after=7, hang_s=5) as r:
        yield r


@pytest.fixture
def rx_tls():
    with FakeReceivers(tls=loopback_tls_context()) as r:
        yield r


@pytest.fixture
def smtp():
    box = Mailbox()
    box.port = closed_port()       # aiosmtpd's readiness check needs the port up front
    controller = Controller(box, hostname="127.0.0.1", port=box.port, ready_timeout=10)
    controller.start()
    yield box
    controller.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def incident(store, start=0, end=3):
    write_metrics(store, series("error_rate", T0, 30, lambda i: 0.3 if start <= i < end else 0.0))


def drive(script: Script, d: Deliverer, until, step=20 * SEC, attempts: int | None = None):
    """Evaluate and deliver on the fake clock until `until`, or until `attempts` sends were recorded."""
    while script.clock.now <= until:
        script.engine.tick()
        d.run_once()
        if attempts is not None and d.store.scalar("SELECT count(*) FROM alert_notifications") >= attempts:
            return
        script.clock.advance(step)


def config_for(receivers: dict, **extra):
    return make_config(receivers=receivers, routes=[{"match": {}, "receivers": list(receivers)}], **extra)


def deliverer(store, config, clock):
    return Deliverer(store, config, clock, rng=random.Random(7),
                     policy=DeliveryRetry(base_s=2, max_backoff_s=60, max_attempts=6))


def json_url(rx: FakeReceivers, kind: str) -> str:
    return f"json://127.0.0.1:{rx.port}/{kind}"


def test_teams_webhook_and_email_get_firing_then_resolved(store, script_for, clock, rx, rx_tls, smtp):
    config = config_for({
        "teams": {"apprise": f"workflows://127.0.0.1:{rx_tls.port}/wf1/{SECRET}?verify=no", "timeout": "3s"},
        "hook": {"type": "apprise", "url": json_url(rx, "hook"), "timeout": "3s"},
        "email": {"apprise": f"mailto://127.0.0.1:{smtp.port}?from=aiwatch@example.com&to=oncall@example.com",
                  "timeout": "3s"}})
    incident(store)
    s, d = script_for(config), deliverer(store, config, clock)
    drive(s, d, T0 + 10 * MIN)

    hooks = rx.payloads("hook")
    assert [h["title"].split("]")[0] for h in hooks] == ["[FIRING", "[RESOLVED"]
    assert "HighErrorRate" in hooks[0]["title"] and "checkout" in hooks[0]["title"]
    assert "30% > 5%" in hooks[0]["message"] and "route=/answer" in hooks[0]["message"]
    assert [h["type"] for h in hooks] == ["failure", "success"]

    cards = rx_tls.received("workflows")
    assert len(cards) == 2 and all(c.status == 202 or c.status == 200 for c in cards)
    assert "HighErrorRate" in str(cards[0].body) and "RESOLVED" in str(cards[1].body)

    subjects = [m["Subject"] for m in smtp.messages]
    assert len(subjects) == 2 and subjects[0].startswith("[FIRING") and subjects[1].startswith("[RESOLVED")
    assert all(m["To"] == "oncall@example.com" for m in smtp.messages)
    rows = store.query("SELECT receiver, outcome FROM alert_notifications ORDER BY receiver, time").to_pylist()
    assert {(r["receiver"], r["outcome"]) for r in rows} == {(n, "delivered") for n in ("teams", "hook", "email")}


def test_429_goes_back_to_the_outbox_with_its_retry_after(store, script_for, clock, rx):
    rx.script("hook", "429", "ok")
    config = config_for({"hook": {"apprise": json_url(rx, "hook"), "timeout": "3s"}})
    incident(store)
    s, d = script_for(config), deliverer(store, config, clock)
    drive(s, d, T0 + 5 * MIN, attempts=1)
    first = store.query("SELECT outcome, http_status, time FROM alert_notifications").to_pylist()
    assert [(r["outcome"], r["http_status"]) for r in first] == [("retry", 429)]
    retry_at = store.scalar("SELECT next_attempt_at FROM alert_outbox")
    assert (retry_at - first[0]["time"]).total_seconds() == 7                # Retry-After: 7 wins over backoff
    assert [r.behavior for r in rx.received("hook")] == ["429"]             # apprise did not retry on its own
    clock.advance(6 * SEC)
    d.run_once()
    assert len(rx.received("hook")) == 1                                     # not before Retry-After
    clock.advance(1 * SEC)
    d.run_once()
    assert store.scalar("SELECT state FROM alert_outbox") == "delivered" and len(rx.payloads("hook")) == 1


def test_4xx_fails_for_good_and_5xx_is_retried(store, script_for, clock, rx):
    rx.script("bad", "404_no_such_webhook")
    rx.script("flaky", "503", "ok")
    config = config_for({"bad": {"apprise": json_url(rx, "bad"), "timeout": "3s"},
                         "flaky": {"apprise": json_url(rx, "flaky"), "timeout": "3s"}})
    incident(store)
    s, d = script_for(config), deliverer(store, config, clock)
    drive(s, d, T0 + 5 * MIN, attempts=2)
    clock.advance(10 * SEC)       # past the first backoff (at most 2 s)
    d.run_once()
    rows = store.query("SELECT receiver, outcome, http_status, error FROM alert_notifications ORDER BY time"
                       ).to_pylist()
    bad = [r for r in rows if r["receiver"] == "bad"]
    assert bad == [{"receiver": "bad", "outcome": "failed", "http_status": 404, "error": "no_such_webhook"}]
    assert [r["outcome"] for r in rows if r["receiver"] == "flaky"] == ["retry", "delivered"]


def test_one_dead_receiver_does_not_stop_the_others(store, script_for, clock, rx, smtp):
    dead = closed_port()
    config = config_for({
        "gone": {"apprise": f"json://127.0.0.1:{dead}/hook", "timeout": "2s"},
        "hang": {"apprise": json_url(rx, "hang"), "timeout": "1s"},
        "email_down": {"apprise": f"mailto://127.0.0.1:{dead}?from=a@example.com&to=b@example.com",
                       "timeout": "2s"},
        "hook": {"apprise": json_url(rx, "hook"), "timeout": "2s"},
        "email": {"apprise": f"mailto://127.0.0.1:{smtp.port}?from=a@example.com&to=b@example.com",
                  "timeout": "2s"}})
    rx.default["hang"] = "hang"
    incident(store)
    s, d = script_for(config), deliverer(store, config, clock)
    drive(s, d, T0 + 5 * MIN, attempts=5)
    outcome = {r["receiver"]: r for r in store.query(
        "SELECT receiver, outcome, error FROM alert_notifications ORDER BY time").to_pylist()}
    assert outcome["hook"]["outcome"] == "delivered" and outcome["email"]["outcome"] == "delivered"
    assert outcome["gone"]["outcome"] == "retry" and "ConnectError" in outcome["gone"]["error"]
    assert outcome["hang"]["outcome"] == "retry" and "timeout" in outcome["hang"]["error"]
    assert outcome["email_down"]["outcome"] == "retry" and outcome["email_down"]["error"]
    assert len(rx.payloads("hook")) == 1 and len(smtp.messages) == 1


def test_smtp_temporary_failure_is_retried(store, script_for, clock, smtp):
    smtp.fail = 1
    config = config_for({"email": {"apprise": f"mailto://127.0.0.1:{smtp.port}?from=a@example.com"
                                              "&to=b@example.com", "timeout": "3s"}})
    incident(store)
    s, d = script_for(config), deliverer(store, config, clock)
    drive(s, d, T0 + 5 * MIN, attempts=1)
    clock.advance(10 * SEC)
    d.run_once()
    outcomes = store.query("SELECT outcome FROM alert_notifications ORDER BY time").to_pylist()
    assert [o["outcome"] for o in outcomes[:2]] == ["retry", "delivered"]
    assert len(smtp.messages) == 1


def test_secrets_in_receiver_urls_are_masked_everywhere(store, script_for, clock, rx, caplog):
    dead = closed_port()
    url = f"json://admin:{SECRET}@127.0.0.1:{dead}/hooks/{SECRET}x?token={SECRET}y"
    config = config_for({"leaky": {"apprise": url, "timeout": "2s"},
                         "slack": {"type": "slack", "url": f"http://127.0.0.1:{dead}/services/T0/B0/{SECRET}"}})
    incident(store)
    s, d = script_for(config), deliverer(store, config, clock)
    with caplog.at_level(logging.DEBUG):
        drive(s, d, T0 + 5 * MIN, attempts=2)
        result = send_test(config, "leaky")
    stored = store.query("SELECT error FROM alert_notifications").to_pylist()
    stored += store.query("SELECT last_error AS error FROM alert_outbox").to_pylist()
    assert stored and all(r["error"] for r in stored)
    everything = " ".join(r["error"] for r in stored) + caplog.text + (result.error or "")
    assert SECRET not in everything
    assert SECRET not in repr(config.receivers["leaky"]) and SECRET not in describe_destination(
        config.receivers["leaky"])
    assert SECRET not in describe_destination(config.receivers["slack"])


@pytest.mark.parametrize("url", ["discord://1234567890/" + SECRET, "opsgenie://" + SECRET,
                                 f"workflows://prod-1.westeurope.logic.azure.com/abc/{SECRET}",
                                 f"mailtos://user:{SECRET}@smtp.example.com?to=oncall@example.com"])
def test_discord_opsgenie_teams_email_urls_parse_and_print_masked(url):
    config = config_for({"r": {"apprise": url}})
    receiver = config.receivers["r"]
    assert receiver.type == "apprise" and receiver.configured
    assert SECRET not in describe_destination(receiver)
    assert mask_secrets(f"POST {url} failed", receiver).count(SECRET) == 0


def test_bad_apprise_urls_are_rejected_without_echoing_them():
    with pytest.raises(RulesError) as exc:
        config_for({"a": {"apprise": f"nosuchservice://{SECRET}"}, "b": {"apprise": SECRET},
                    "c": {"type": "slack", "url": f"hooks.slack.com/{SECRET}"},
                    "d": {"apprise": "json://127.0.0.1/", "url": "http://x"}})
    text = "\n".join(exc.value.problems)
    assert "receiver 'a': key 'apprise'" in text and "receiver 'b': key 'apprise'" in text
    assert "receiver 'c': key 'url'" in text and "receiver 'd': key 'apprise'" in text
    assert SECRET not in text


def test_user_data_cannot_mention_everyone():
    message = {"status": "firing", "groupKey": "g", "alerts": [{
        "status": "firing", "startsAt": "2026-03-02T12:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "labels": {"alertname": "X", "severity": "P1", "service": "@everyone", "route": "<@123456>"},
        "annotations": {"summary": "@here look", "metric": "error_rate", "value": 0.3, "threshold": 0.05}}]}
    from apprise.plugins.discord import USER_ROLE_DETECTION_RE
    out = apprise_message(message, "k")
    assert not USER_ROLE_DETECTION_RE.search(out["title"]) and not USER_ROLE_DETECTION_RE.search(out["body"])
    assert "everyone" in out["title"] and out["type"] == "failure"


def test_unconfigured_apprise_receiver_is_skipped_like_slack():
    config = make_config(receivers={"teams": {"apprise": "${AIWATCH_TEST_UNSET_TEAMS_URL}"}},
                         routes=[{"match": {}, "receivers": ["teams"]}])
    assert not config.receivers["teams"].configured
    assert Receiver("x", "apprise", url="json://127.0.0.1/").configured
