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
from lease_harness import DATABASE, instance_env, lease_of, seeded_server, wait_for, write_rules
from server_harness import free_port, start_server, stop_server
from zookeeper import missing, running_zookeeper

from tests.otlp_builders import span_request

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


class SlowReads:
    """The lease's connection, with a read that takes `read_s` (on the fake clock) and during which
    `meanwhile` runs: Keeper answering late while the holder renews."""

    def __init__(self, inner, clock: Clock) -> None:
        self.inner, self.clock = inner, clock
        self.read_s, self.meanwhile = 0.0, None

    def query(self, sql, params=None):   # the next read only
        (read_s, self.read_s), (meanwhile, self.meanwhile) = (self.read_s, 0.0), (self.meanwhile, None)
        self.clock.now += read_s / 2
        if meanwhile:
            meanwhile()
        result = self.inner.query(sql, params)
        self.clock.now += read_s / 2
        return result

    def command(self, sql, params=None):
        self.inner.command(sql, params)

    def close(self):
        self.inner.close()


def test_a_slow_read_does_not_start_the_silence_early(tmp_path, keeper):
    """An observer's read that Keeper answers late (6 s of a 10 s ttl) returns a renewal the holder
    began during it: the silence is counted from when the read returned, not from when it began, so
    the observer never holds the lease while the holder still may (counted from the start, it took
    the lease at 10 s while the holder, renewed at 3 s, acted until 11 s)."""
    from aiwatch.config import Settings
    from aiwatch.storage import open_store
    from store.clickhouse_lease import KeeperLease

    settings = Settings.load(env={}, store=f"chdb://{tmp_path / 'ch'}?database={DATABASE}", lease=True, keeper=keeper,
                             retention_days=0, analysis_retention_days=0)
    store = open_store(settings)
    clock = Clock()
    a = KeeperLease(store, "a", ttl_s=10, clock=clock, name="slow")
    slow = SlowReads(store.new_transport(), clock)
    b = KeeperLease(store, "b", ttl_s=10, clock=clock, name="slow", transport=slow)
    try:
        assert a.step() and not b.step()
        slow.read_s, slow.meanwhile = 6.0, a.step      # a renews 3 s into b's 6 s read (a acts until 3 + 8)
        assert not b.step() and a.held()
        for _ in range(60):                             # a dies: b waits out the ttl on fast reads
            clock.now += 0.5
            took = b.step()
            assert not (a.held() and b.held()), f"both hold the lease at {clock.now}"
            if took:
                break
        assert b.held() and clock.now >= 6.0 + 10
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


def test_killed_holder_is_replaced_and_nothing_is_sent_twice(tmp_path, keeper):
    """Two server processes start (ttl 3 s); the one holding the lease pages the incident, delivers the
    first of two outbox rows both instances have, and is SIGKILLed while the receiver holds its
    request for the second unanswered. The other takes the lease over (well within the issue's two
    minutes), evaluates the same incident (firing in its own state) and pages no one again: the
    shared notification log says it was notified. Its deliverer finds both rows pending in its own
    copy and sends neither: the Keeper send claims the dead process wrote say the first was sent
    (recorded delivered) and the second may have arrived (recorded failed, not sent again). Each
    receiver sees exactly one request per notification. /readyz and /metrics name the holder on both.

    What this proves: the lease hands over between real processes through a real ZooKeeper; the
    notification log and the send claims are shared through Keeper, outlive the process (and Keeper
    session) that wrote them, and are consulted before a new holder pages or sends.
    What it cannot show here: no ClickHouse server can be installed on this machine, so each process
    has its own chdb directory (two processes cannot open one) and only Keeper is shared. In
    production the outbox and alert state are rows of the one shared database: the new holder would
    also see the old holder's `delivered` and the old outbox rows directly. The test imitates that
    shared outbox by seeding the same rows (same ids) into both stores; the claim is what covers the
    window it opens: a holder that died after sending (or while sending) but before recording it.
    A decided row the old holder never began to send reaches the receiver in production through the
    shared outbox; here it would stay in the dead process's store, so that case is not shown."""
    shared = [{"id": f"shared-row-{i}", "receiver": "shared", "receiver_type": "webhook", "group_key": f"group-{i}",
               "status": "firing", "dedup_key": f"dedup-{i}",
               "payload": {"status": "firing", "groupKey": f"group-{i}", "alerts": []}} for i in (1, 2)]
    with FakeReceivers(hang_s=120) as rx, ThreadPoolExecutor(2) as pool:
        rx.script("slack", "ok", "hang")      # the `shared` receiver's path: the second request gets no answer
        rules = write_rules(tmp_path, rx.url("webhook"), shared_url=rx.url("slack"))
        envs = {n: instance_env(tmp_path, n, keeper, rules, ttl_s=3) for n in ("a", "b")}
        starting = {n: pool.submit(seeded_server, tmp_path / f"data-{n}", envs[n], outbox=shared) for n in envs}
        try:
            servers = {n: future.result() for n, future in starting.items()}
            holder = wait_for("one instance to hold the lease",
                              lambda: next((n for n, s in servers.items() if lease_of(s.url).get("held")), None))
            other = "b" if holder == "a" else "a"
            old, new = servers[holder], servers[other]
            wait_for("the other to see the holder", lambda: lease_of(new.url).get("holder") == holder)
            assert lease_of(new.url)["held"] is False
            wait_for("the holder's page", lambda: rx.payloads("webhook"))
            wait_for("the holder's two sends of the shared rows", lambda: len(rx.received("slack")) == 2)
            assert lease_of(old.url).get("held")
            metrics = httpx.get(f"{new.url}/metrics", timeout=5).text
            assert f'aiwatch_lease_holder_info{{holder="{holder}"}} 1.0' in metrics
            assert "aiwatch_lease_held 0.0" in metrics

            old.kill(signal.SIGKILL)          # mid-send: its request for shared-row-2 is still unanswered
            wait_for("the other to take the lease over", lambda: lease_of(new.url).get("held"), timeout_s=120)
            assert httpx.get(f"{new.url}/readyz", timeout=5).json()["instance"] == other
            # The new holder fires the incident in its own state and, in that tick, flushes its group
            # (group_wait 0s) and decides no notification: a tick's state and outbox rows are written in
            # one transaction, so once the state is visible its outbox holds only the seeded rows.
            wait_for("the new holder to evaluate the incident", lambda: new.query("alerts", state="firing"))
            wait_for("the new holder to settle the shared rows", lambda: not new.query("alert_outbox", state="pending"))
            outbox = {r["id"]: r for r in new.query("alert_outbox")}
            assert set(outbox) == {"shared-row-1", "shared-row-2"}
            assert outbox["shared-row-1"]["state"] == "delivered"
            assert outbox["shared-row-2"]["state"] == "failed"
            assert "not sent again" in outbox["shared-row-2"]["last_error"]
            pages = [p for p in rx.payloads("webhook") if p["status"] == "firing"]
            assert len(pages) == 1, f"paged {len(pages)} times: {pages}"
            sent = sorted(r.body["groupKey"] for r in rx.received("slack"))
            assert sent == ["group-1", "group-2"], f"shared rows sent: {sent}"
            metrics = httpx.get(f"{new.url}/metrics", timeout=5).text
            assert f'aiwatch_lease_holder_info{{holder="{other}"}} 1.0' in metrics
            assert "aiwatch_lease_held 1.0" in metrics
        finally:
            rx.release()
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


def _ingests_and_serves(server) -> None:
    """Five OTLP spans in (one failed), and the read API counts them."""
    now = time.time_ns() - 60 * 10**9
    req = span_request([{"start_ns": now + i * 10**6, "duration_ms": 50.0, "error": i == 0,
                         "attributes": {"gen_ai.request.model": "gpt-4o-mini", "aiwatch.route": "chat"}}
                        for i in range(5)], service="checkout")
    r = httpx.post(f"{server.url}/v1/traces", content=req.SerializeToString(),
                   headers={"Content-Type": "application/x-protobuf"}, timeout=60)
    assert r.status_code == 200, r.text
    [calls] = server.query("calls", start="-1h")
    assert (calls["requests"], calls["errors"]) == (5, 1)


def test_an_instance_ingests_and_serves_reads_while_keeper_is_away(tmp_path):
    """Keeper unreachable at start-up (nothing listens on its port): the server still starts, takes
    OTLP spans and answers the read API; it holds no lease, so it runs no scheduled job and sends
    nothing. Once a ZooKeeper answers on that port, it creates its tables there and takes the lease."""
    port = free_port()
    rules = write_rules(tmp_path, "http://127.0.0.1:9/never")
    server = start_server(tmp_path / "data", env=instance_env(tmp_path, "solo", f"127.0.0.1:{port}", rules, ttl_s=3),
                          timeout=180)
    try:
        _ingests_and_serves(server)
        assert lease_of(server.url) == {"holder": None, "held": False}
        with running_zookeeper(tmp_path / "zookeeper", port=port):
            wait_for("the instance to join the lease", lambda: lease_of(server.url).get("held"))
            stop_server(server)   # while Keeper is up: its release then need not wait out Keeper's connection tries
    finally:
        stop_server(server)


def test_a_keeper_that_accepts_but_never_answers_blocks_nothing(tmp_path):
    """Keeper's port accepts connections and never answers (a hung node): the server starts, takes
    spans, answers reads and /readyz (no lease held, so no scheduled job and no send), and stops on
    SIGTERM within its deadline instead of hanging on the lease thread."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_hold() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(listener.accept()[0])    # read nothing, answer nothing

    thread = threading.Thread(target=accept_and_hold, daemon=True)
    thread.start()
    rules = write_rules(tmp_path, "http://127.0.0.1:9/never")
    server = start_server(tmp_path / "data", env=instance_env(tmp_path, "hung", f"127.0.0.1:{port}", rules, ttl_s=3),
                          timeout=180)
    try:
        _ingests_and_serves(server)
        time.sleep(5)                                      # past the ttl: still answering, still no holder
        assert lease_of(server.url) == {"holder": None, "held": False}
        assert accepted, "the server never tried the hung Keeper"
        began = time.monotonic()
        server.process.terminate()
        server.process.wait(45)
        assert time.monotonic() - began < 45
    finally:
        stop_server(server)
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()
