"""Several aiwatch instances on ClickHouse: the scheduler lease (a KeeperMap row, compare-and-set in a
real ZooKeeper) and the notification log shared through Keeper.

What these tests share is what production shares through Keeper: the lease and the notification log.
Each server process has its own chdb directory (two processes cannot open one), so its alert state and
outbox are its own here, while in production they sit in the one ClickHouse database too. The hand-over
test is therefore the harder case: the new holder re-evaluates the same incident from its own copy of
the analyzer rows, fires it afresh, and only the shared notification log keeps it from paging again.
"""
from __future__ import annotations

import contextlib
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fakes.receivers import FakeReceivers
from lease_harness import DATABASE, instance_env, lease_of, seed, wait_for, write_rules
from server_harness import start_server, stop_server
from zookeeper import missing, running_zookeeper

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")


@pytest.fixture(scope="module")
def keeper(tmp_path_factory):
    with running_zookeeper(tmp_path_factory.mktemp("zookeeper")) as hosts:
        yield hosts


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_holder_at_a_time_and_takeover_only_after_ttl_of_silence(tmp_path, keeper):
    """Two instances' leases on one Keeper row, on a fake monotonic clock: exactly one holds it; the
    holder's time runs out before the other may take over; a clean release hands over at once."""
    from aiwatch.config import Settings
    from aiwatch.storage import open_store
    from store.clickhouse_lease import KeeperLease

    settings = Settings.load(env={}, store=f"chdb://{tmp_path / 'ch'}?database={DATABASE}", lease=True, keeper=keeper,
                             retention_days=0, analysis_retention_days=0)
    store = open_store(settings)
    clock = Clock()
    a, b = (KeeperLease(store, name, ttl_s=10, clock=clock, name="unit") for name in ("a", "b"))
    try:
        assert a.step() and not b.step()
        assert (a.holder, b.holder, a.epoch) == ("a", "a", 1)
        twin = KeeperLease(store, "a", ttl_s=10, clock=clock, name="unit")   # a second process given a's id
        assert not twin.step() and not twin.held()
        twin.close()
        for _ in range(4):                       # a renews every poll: b never takes over
            clock.now += a.poll_s
            assert a.step() and not b.step() and a.held() and not b.held()
        # a dies (stops renewing): its own time runs out before b may take the lease
        expired_at = None
        while not b.step():
            clock.now += 1.0
            if not a.held() and expired_at is None:
                expired_at = clock.now
            assert not (a.held() and b.held())
        assert expired_at is not None and expired_at <= clock.now and b.epoch == 2 and b.holder == "b"
        assert not a.step() and a.holder == "b" and not a.held()     # a, back, sees b and stays out
        b.release()
        assert a.step() and a.epoch == 3           # released: no wait for the ttl
    finally:
        a.close()
        b.close()
        store.close()


def test_a_former_holder_can_neither_record_nor_send_a_notification(tmp_path, keeper):
    """The fence: once its time is up, an instance writes no notification-log entry (LeaseLost)."""
    from datetime import datetime

    from aiwatch.config import Settings
    from aiwatch.storage import open_store
    from store import alerting
    from store.clickhouse_alerts import LeaseLost

    settings = Settings.load(env={}, store=f"chdb://{tmp_path / 'ch'}?database={DATABASE}", lease=True, keeper=keeper,
                             retention_days=0, analysis_retention_days=0)
    store = open_store(settings)
    holding = [True]
    store.fence = lambda: holding[0]
    entry = {"group_key": "g", "receiver": "hook", "firing": '["fp"]', "resolved": "[]",
             "notified_at": datetime(2026, 1, 1)}
    try:
        def save(con):
            alerting.save_tick(con, states=[], deleted_states=[], history=[], groups=[], deleted_groups=[],
                               nflog=[entry], outbox=[])
        store.writer.write(fn=save)
        assert [r["receiver"] for r in alerting.load_nflog(store)] == ["hook"]
        holding[0] = False
        with pytest.raises(LeaseLost):
            store.writer.write(fn=save)
    finally:
        store.close()


def test_killed_holder_is_replaced_and_no_alert_is_paged_twice(tmp_path, keeper):
    """Two instances start; the one holding the lease pages; it is SIGKILLed; the other takes the
    lease over (well within the issue's two minutes), evaluates the same incident (firing in its own
    state) and pages no one again: the shared notification log says it was notified. /readyz and
    /metrics name the holder on both."""
    with FakeReceivers() as rx, ThreadPoolExecutor(2) as pool:
        rules = write_rules(tmp_path, rx.url("webhook"))
        envs = {n: instance_env(tmp_path, n, keeper, rules, ttl_s=3) for n in ("a", "b")}
        seed(list(envs.values()))
        starting = {n: pool.submit(start_server, tmp_path / f"data-{n}", env=envs[n], timeout=180) for n in envs}
        servers = {}
        try:
            for n, future in starting.items():
                servers[n] = future.result()
            holder = wait_for("one instance to hold the lease",
                           lambda: next((n for n, s in servers.items() if lease_of(s.url).get("held")), None))
            other = "b" if holder == "a" else "a"
            old, new = servers[holder], servers[other]
            wait_for("the other to see the holder", lambda: lease_of(new.url).get("holder") == holder)
            assert lease_of(new.url)["held"] is False
            wait_for("the holder's page", lambda: rx.payloads("webhook"))
            metrics = httpx.get(f"{new.url}/metrics", timeout=5).text
            assert f'aiwatch_lease_holder_info{{holder="{holder}"}} 1.0' in metrics
            assert "aiwatch_lease_held 0.0" in metrics

            old.kill(signal.SIGKILL)
            wait_for("the other to take the lease over", lambda: lease_of(new.url).get("held"), timeout_s=120)
            assert httpx.get(f"{new.url}/readyz", timeout=5).json()["instance"] == other
            # the new holder's own evaluation fires the alert again (its store has no state from the old) ...
            wait_for("the new holder to evaluate the incident", lambda: new.query("alerts", state="firing"))
            time.sleep(3)   # ... and several more evaluation and delivery rounds run on it (1 s each)
            pages = [p for p in rx.payloads("webhook") if p["status"] == "firing"]
            assert len(pages) == 1, f"paged {len(pages)} times: {pages}"
            assert new.query("alert_outbox") == []            # it decided no notification at all
            metrics = httpx.get(f"{new.url}/metrics", timeout=5).text
            assert f'aiwatch_lease_holder_info{{holder="{other}"}} 1.0' in metrics
            assert "aiwatch_lease_held 1.0" in metrics
        finally:
            for future in starting.values():
                with contextlib.suppress(Exception):
                    stop_server(future.result())


def test_each_outbox_row_is_sent_at_most_once_across_holders(tmp_path, keeper):
    """The send claim in Keeper: a row a holder was sending when it died is not sent again by the
    next one; a delivered row is known as delivered; a retryable failure may be tried again."""
    from datetime import datetime

    from aiwatch.config import Settings
    from aiwatch.storage import open_store
    from store import alerting

    settings = Settings.load(env={}, store=f"chdb://{tmp_path / 'ch'}?database={DATABASE}", lease=True, keeper=keeper,
                             retention_days=0, analysis_retention_days=0)
    store = open_store(settings)
    now = datetime(2026, 1, 1)
    try:
        assert alerting.begin_send(store, "row-1", now) == "go"
        assert alerting.begin_send(store, "row-1", now) == "unknown"     # the sender died mid-send: not again
        assert alerting.begin_send(store, "row-2", now) == "go"
        alerting.end_send(store, "row-2", "sent", now)
        assert alerting.begin_send(store, "row-2", now) == "sent"
        assert alerting.begin_send(store, "row-3", now) == "go"
        alerting.end_send(store, "row-3", "retry", now)                  # e.g. a 503: nothing arrived
        assert alerting.begin_send(store, "row-3", now) == "go"
        assert alerting.begin_send(store, "row-3", now) == "unknown"
    finally:
        store.close()
