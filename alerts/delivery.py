"""The outbox deliverer: sends what the dispatcher decided, at least once.

Each receiver is worked by its own task with a total deadline per send (the receiver's `timeout`),
so one slow or unreachable receiver never holds back another's pages, and shutdown never waits on
a receiver: what was not sent stays in the outbox.

Rows are taken in order per (receiver, group), so a resolve never overtakes its trigger. A failed
attempt is retried with exponential backoff and jitter (or after the receiver's Retry-After) on
5xx, 429, 408, timeouts and connection errors; other 4xx fail for good and the receiver's error
body is logged. A row is marked delivered only after the receiver said 2xx: a crash in between
re-sends it, and PagerDuty's stable dedup_key folds the repeat into the same incident.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import httpx

from alerts import notifiers
from alerts.engine import Clock
from alerts.notifiers import SendResult
from alerts.rules import AlertsConfig, Receiver
from core.clock import utcnow
from store import alerting
from store.base import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryRetry:
    """Backoff of alert deliveries (the shim's own `RetryPolicy` retries model calls)."""
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
    """Sends due outbox rows, one receiver at a time; `DeliveryService` runs it continuously."""

    def __init__(self, store: Store, config: AlertsConfig, clock: Clock = utcnow, policy: DeliveryRetry | None = None,
                 rng: random.Random | None = None, fence: Callable[[], bool] | None = None) -> None:
        self.store = store
        # several instances: False once this one no longer holds the lease; what it has not sent
        # stays pending for the next holder
        self.fence = fence
        self.config = config
        self.clock = clock
        self.policy = policy or DeliveryRetry()
        self.rng = rng or random.Random()

    def run_once(self, now: datetime | None = None) -> list[Outcome]:
        """Attempt every due outbox row once, receivers concurrently (tests drive this on a fake clock)."""
        async def every_receiver() -> list[Outcome]:
            names = set(self.config.receivers) | {r["receiver"] for r in
                                                  await asyncio.to_thread(alerting.pending_outbox, self.store)}
            async with _client() as client:
                chunks = await asyncio.gather(*(self.deliver_receiver(client, n, now) for n in sorted(names)))
            return [o for chunk in chunks for o in chunk]
        return asyncio.run(every_receiver())

    async def deliver_receiver(self, client: httpx.AsyncClient, receiver: str,
                               now: datetime | None = None) -> list[Outcome]:
        """One pass over a receiver's due rows in decision order: a group's rows never overtake one
        that waits for its retry, so a resolve never arrives before its trigger."""
        rows = await asyncio.to_thread(alerting.pending_outbox, self.store, 500, receiver)
        outcomes: list[Outcome] = []
        blocked: set[str] = set()
        for row in rows:
            at = now or self.clock()
            if row["group_key"] in blocked:
                continue
            if self.fence is not None and not self.fence():
                break
            if row["next_attempt_at"] and row["next_attempt_at"] > at:
                blocked.add(row["group_key"])
                continue
            outcome = await self._deliver(client, row, at)
            outcomes.append(outcome)
            if outcome.outcome == "retry":
                blocked.add(row["group_key"])
        return outcomes

    async def _deliver(self, client: httpx.AsyncClient, row: dict[str, Any], now: datetime) -> Outcome:
        receiver = self.config.receivers.get(row["receiver"])
        message = json.loads(row["payload"])
        attempt = (row["attempts"] or 0) + 1
        review: list[dict[str, Any]] = []
        claim = "go"
        if receiver is not None and receiver.configured:
            # several instances: at most one send per row, even across a holder that died mid-send
            claim = await asyncio.to_thread(alerting.begin_send, self.store, row["id"], now)
        if receiver is None or not receiver.configured:
            result = SendResult(False, False, None, f"receiver {row['receiver']!r} is not configured")
        elif claim == "sent":
            result = SendResult(True)
        elif claim != "go":
            result = SendResult(False, False, None, "an earlier lease holder stopped while sending this, so it may "
                                                    "have arrived: not sent again (at most once across instances)")
        elif receiver.type == "review":
            review = review_rows(row, message, now)
            result = SendResult(True)
        else:
            body = notifiers.render(receiver, message, row["dedup_key"])
            result = await notifiers.send_async(client, receiver, body)
            # The error is logged, stored and served by /api and the dashboard: no credentials in it.
            result = replace(result, error=notifiers.mask_secrets(result.error, receiver))
        if claim == "go" and receiver is not None and receiver.configured:
            await asyncio.to_thread(alerting.end_send, self.store, row["id"],
                                    "sent" if result.ok else "retry" if result.retryable else "failed", now)
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
        await asyncio.to_thread(self.store.writer.write, fn=lambda con: alerting.record_attempt(
            con, row["id"], state=state, attempts=attempt, next_attempt_at=next_at, delivered_at=delivered,
            last_status=result.http_status, last_error=result.error, notification=notification, review=review))
        return Outcome(row["id"], row["receiver"], outcome, result.http_status, result.error)


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(follow_redirects=False)


class DeliveryService:
    """Delivers the outbox continuously: one asyncio task per receiver on a background thread, so a
    slow or down receiver only ever delays its own notifications. `stop` cancels sends in flight;
    their rows stay pending in the outbox and go out after the next start (at least once)."""

    def __init__(self, deliverer: Deliverer, interval_s: float = 2.0) -> None:
        self.deliverer = deliverer
        self.interval_s = interval_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="aiwatch-delivery", daemon=True)
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: dict[str, asyncio.Event] = {}

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start_workers(), self._loop).result(timeout=30)

    async def _start_workers(self) -> None:
        names = list(self.deliverer.config.receivers)
        self._wake = {n: asyncio.Event() for n in names}
        self._tasks = [asyncio.create_task(self._worker(n), name=f"deliver-{n}") for n in names]
        self._tasks.append(asyncio.create_task(self._orphans(set(names))))

    async def _worker(self, receiver: str) -> None:
        async with _client() as client:
            while True:
                try:
                    await self.deliverer.deliver_receiver(client, receiver)
                except Exception:  # noqa: BLE001 - e.g. the store is busy: try again next round
                    log.exception("delivery to %s failed", receiver)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake[receiver].wait(), self.interval_s)
                self._wake[receiver].clear()

    async def _orphans(self, known: set[str]) -> None:
        """Rows for receivers no longer in the rules file are marked failed once, at start."""
        rows = await asyncio.to_thread(alerting.pending_outbox, self.deliverer.store)
        async with _client() as client:
            for name in sorted({r["receiver"] for r in rows} - known):
                await self.deliverer.deliver_receiver(client, name)

    def wake(self) -> None:
        """New rows are in the outbox: look now rather than at the next poll."""
        def set_all() -> None:
            for event in self._wake.values():
                event.set()
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(set_all)

    def stop(self, timeout_s: float = 5.0) -> None:
        if not self._thread.is_alive():
            return

        async def cancel() -> None:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(cancel(), self._loop).result(timeout=timeout_s)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout_s)
        if not self._thread.is_alive():
            self._loop.close()
        log.info("alert delivery stopped; undelivered notifications stay in the outbox for the next start")


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


def send_test(config: AlertsConfig, receiver_name: str, now: datetime | None = None) -> SendResult:
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
    result = notifiers.send(receiver, notifiers.render(receiver, message, "aiwatch-test"))
    return replace(result, error=notifiers.mask_secrets(result.error, receiver))
