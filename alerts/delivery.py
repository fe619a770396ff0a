"""The outbox deliverer: sends what the dispatcher decided, at least once.

Rows are taken in order per (receiver, group), so a resolve never overtakes its trigger. A failed
attempt is retried with exponential backoff and jitter (or after the receiver's Retry-After) on
5xx, 429, 408, timeouts and connection errors; other 4xx fail for good and the receiver's error
body is logged. A row is marked delivered only after the receiver said 2xx: a crash in between
re-sends it, and PagerDuty's stable dedup_key folds the repeat into the same incident.
"""
from __future__ import annotations

import json
import logging
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from alerts import notifiers
from alerts.engine import Clock, utcnow
from alerts.notifiers import SendResult
from alerts.rules import AlertsConfig, Receiver
from store import alerting

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 2.0
    max_backoff_s: float = 300.0
    max_retry_after_s: float = 3600.0
    max_attempts: int = 15
    max_age: timedelta = timedelta(hours=24)

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None) -> float:
        """Equal-jitter exponential backoff; a receiver's Retry-After wins when it gives one."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after_s)
        ceiling = min(self.max_backoff_s, self.base_s * 2 ** (attempt - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class Outcome:
    outbox_id: str
    receiver: str
    outcome: str              # delivered | retry | failed | dead | skipped
    http_status: int | None = None
    error: str | None = None


class Deliverer:
    def __init__(self, store: Any, config: AlertsConfig, clock: Clock = utcnow, client: httpx.Client | None = None,
                 policy: RetryPolicy | None = None, rng: random.Random | None = None) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.client = client or httpx.Client(follow_redirects=False)
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()

    def close(self) -> None:
        self.client.close()

    def run_once(self, now: datetime | None = None) -> list[Outcome]:
        """Attempt every due outbox row once; receivers in parallel, each receiver's rows in order."""
        now = now or self.clock()
        by_receiver: dict[str, list[dict[str, Any]]] = {}
        blocked: set[tuple[str, str]] = set()
        for row in alerting.pending_outbox(self.store):
            key = (row["receiver"], row["group_key"])
            if key in blocked:
                continue
            if row["next_attempt_at"] and row["next_attempt_at"] > now:
                blocked.add(key)          # keep order: nothing of this group overtakes a waiting row
                continue
            by_receiver.setdefault(row["receiver"], []).append(row)
        if not by_receiver:
            return []
        if len(by_receiver) == 1:
            return self._deliver_receiver(next(iter(by_receiver.values())), now)
        with ThreadPoolExecutor(max_workers=min(8, len(by_receiver)), thread_name_prefix="aiwatch-notify") as pool:
            results = pool.map(lambda rows: self._deliver_receiver(rows, now), by_receiver.values())
            return [o for chunk in results for o in chunk]

    def _deliver_receiver(self, rows: list[dict[str, Any]], now: datetime) -> list[Outcome]:
        outcomes: list[Outcome] = []
        failed_groups: set[str] = set()
        for row in rows:
            if row["group_key"] in failed_groups:
                continue
            outcome = self._deliver(row, now)
            outcomes.append(outcome)
            if outcome.outcome == "retry":
                failed_groups.add(row["group_key"])
        return outcomes

    def _deliver(self, row: dict[str, Any], now: datetime) -> Outcome:
        receiver = self.config.receivers.get(row["receiver"])
        message = json.loads(row["payload"])
        attempt = (row["attempts"] or 0) + 1
        review: list[dict[str, Any]] = []
        if receiver is None or not receiver.configured:
            result = SendResult(False, True, None, f"receiver {row['receiver']!r} is not configured")
        elif receiver.type == "review":
            review = review_rows(row, message, now)
            result = SendResult(True)
        else:
            body = notifiers.render(receiver, message, row["dedup_key"])
            result = notifiers.send(self.client, receiver, body)
        if result.ok:
            state, outcome, next_at, delivered = "delivered", "delivered", None, now
        elif not result.retryable:
            state, outcome, next_at, delivered = "failed", "failed", None, None
            log.error("alert notification to %s failed with HTTP %s, not retried: %s", row["receiver"],
                      result.http_status, result.error)
        elif attempt >= self.policy.max_attempts or now - row["created_at"] > self.policy.max_age:
            state, outcome, next_at, delivered = "dead", "dead", None, None
            log.error("alert notification to %s given up after %d attempts: %s", row["receiver"], attempt,
                      result.error)
        else:
            state, outcome, delivered = "pending", "retry", None
            next_at = now + timedelta(seconds=self.policy.delay(attempt, self.rng, result.retry_after_s))
            log.warning("alert notification to %s failed (HTTP %s: %s); retry %d at %s", row["receiver"],
                        result.http_status, (result.error or "")[:200], attempt, next_at)
        notification = {"time": now, "outbox_id": row["id"], "receiver": row["receiver"],
                        "receiver_type": row["receiver_type"], "group_key": row["group_key"],
                        "status": row["status"], "attempt": attempt, "outcome": outcome,
                        "http_status": result.http_status, "error": result.error, "duration_ms": result.duration_ms}
        self.store.writer.write(fn=lambda con: alerting.record_attempt(
            con, row["id"], state=state, attempts=attempt, next_attempt_at=next_at, delivered_at=delivered,
            last_status=result.http_status, last_error=result.error, notification=notification, review=review))
        return Outcome(row["id"], row["receiver"], outcome, result.http_status, result.error)


def review_rows(row: dict[str, Any], message: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """A P3 notification recorded for the weekly review: one row per alert."""
    out = []
    for a in message.get("alerts", []):
        notes = a["annotations"]
        out.append({"time": now, "fingerprint": a["fingerprint"], "rule": a["labels"].get("alertname"),
                    "severity": a["labels"].get("severity"), "status": a["status"],
                    "labels": json.dumps(a["labels"], sort_keys=True), "summary": notes.get("summary"),
                    "description": notes.get("description"), "value": notes.get("value"),
                    "threshold": notes.get("threshold"), "starts_at": _parse(a["startsAt"]),
                    "ends_at": _parse(a["endsAt"]), "outbox_id": row["id"]})
    return out


def _parse(iso: str) -> datetime | None:
    if not iso or iso.startswith("0001"):
        return None
    return datetime.fromisoformat(iso.rstrip("Z"))


def send_test(config: AlertsConfig, receiver_name: str, client: httpx.Client | None = None,
              now: datetime | None = None) -> SendResult:
    """Send one synthetic alert straight to a receiver (not through the outbox): `aiwatch alerts test`."""
    receiver: Receiver | None = config.receivers.get(receiver_name)
    if receiver is None:
        return SendResult(False, False, None, f"no receiver named {receiver_name!r} "
                                              f"(known: {', '.join(sorted(config.receivers))})")
    if not receiver.configured:
        return SendResult(False, False, None, f"receiver {receiver_name!r} has no URL"
                                              + (" or routing key" if receiver.type == "pagerduty" else ""))
    if receiver.type == "review":
        return SendResult(True)
    now = now or utcnow()
    labels = {"alertname": "AiwatchTestAlert", "severity": "P3", "service": "aiwatch"}
    notes = {"summary": "aiwatch test notification: delivery works", "description": "Sent by `aiwatch alerts test`.",
             "metric": "error_rate", "grain": "1m", "op": ">", "value": 0.0, "threshold": 0.05,
             "dashboard": config.dashboard_url, "runbook": ""}
    message = {"version": "4", "groupKey": "test", "truncatedAlerts": 0, "status": "firing",
               "receiver": receiver_name, "groupLabels": {"alertname": "AiwatchTestAlert"}, "commonLabels": labels,
               "commonAnnotations": {}, "externalURL": config.dashboard_url,
               "alerts": [{"status": "firing", "labels": labels, "annotations": notes,
                           "startsAt": now.isoformat() + "Z", "endsAt": "0001-01-01T00:00:00Z",
                           "generatorURL": config.dashboard_url, "fingerprint": "test"}]}
    own = client is None
    client = client or httpx.Client()
    try:
        return notifiers.send(client, receiver, notifiers.render(receiver, message, "aiwatch-test"))
    finally:
        if own:
            client.close()
