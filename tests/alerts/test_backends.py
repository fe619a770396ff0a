"""The alert stage on both store backends (DuckDB, and ClickHouse's engine in-process with chdb),
with the `store` fixture opened the way the server opens each backend: evaluation -> firing ->
delivery to loopback receivers -> resolve, silences, and the outbox's newest version only."""
from __future__ import annotations

import pytest
from harness import MIN, SEC, T0
from test_delivery import deliverer, drive, incident, routed_config, rx  # noqa: F401 - rx: the receivers fixture
from test_timing import test_silence_window_in_the_future_does_not_mute  # noqa: F401 - run here on both backends

from store import alerting
from tests.backends import BACKENDS, opened


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    yield from opened(request.param, tmp_path)


def test_fires_delivers_once_and_resolves(store, script_for, clock, rx):  # noqa: F811
    incident(store, 5, 12)
    config = routed_config(rx)
    s, d = script_for(config), deliverer(store, config, clock)
    drive(s, d, T0 + 25 * MIN, step=30 * SEC)
    pd = rx.payloads("pagerduty")
    assert [p["event_action"] for p in pd] == ["trigger", "resolve"] and rx.pages() == 1
    assert pd[0]["dedup_key"] == pd[1]["dedup_key"]
    assert [h["status"] for h in rx.payloads("webhook")] == ["firing", "resolved"]
    outbox = store.query("SELECT id, state, attempts FROM alert_outbox").to_pylist()
    assert len(outbox) == 6 and {r["state"] for r in outbox} == {"delivered"}   # one row per id: the newest version
    assert alerting.pending_outbox(store) == []
    history = store.query("SELECT to_state FROM alert_history WHERE rule = 'HighErrorRate' ORDER BY time")
    assert history.column("to_state").to_pylist()[-2:] == ["firing", "resolved"]


def test_silence_is_added_and_expired_by_prefix(store):
    from alerts.silences import add_silence, expire_silence

    sid = add_silence(store, ["service=checkout"], starts_at=T0, ends_at=T0 + 60 * MIN, created_by="a",
                      comment="deploy", now=T0)
    assert [r["id"] for r in alerting.active_silences(store, T0 + MIN)] == [sid]
    assert expire_silence(store, sid[:8], now=T0 + 2 * MIN)
    assert alerting.active_silences(store, T0 + 3 * MIN) == []
    assert not expire_silence(store, sid[:8], now=T0 + 4 * MIN)   # already over
    assert store.query("SELECT count(*) AS n FROM alert_silences").column("n")[0].as_py() == 1
