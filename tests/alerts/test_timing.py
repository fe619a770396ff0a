"""Alertmanager-style timed scripts on a fake clock: push a condition at t, expect a notification
within [t+a, t+b]. Analyzer rows are written up front; the evaluator only sees a 1m bucket once it
is complete, exactly as it would live."""
from __future__ import annotations

from harness import MIN, SEC, T0, expect_between, make_config, series, write_metrics


def bad_errors(store, onset_min: int, end_min: int, service: str = "checkout", total: int = 300) -> None:
    write_metrics(store, series("error_rate", T0, total,
                                lambda i: 0.2 if onset_min <= i < end_min else 0.01, service=service))


def test_for_then_group_wait(store, script_for):
    bad_errors(store, 10, 300)
    s = script_for(make_config())
    onset = T0 + 10 * MIN
    s.quiet_until(onset + MIN)   # the first bad bucket is visible from then
    s.run_until(onset + 6 * MIN)
    # visible at onset+1m (bucket complete), pending, firing 2m later (for), then group_wait 30s
    pending = [t["time"] for t in s.transitions if t["to_state"] == "pending"]
    firing = [t["time"] for t in s.transitions if t["to_state"] == "firing"]
    expect_between(pending, onset + MIN, onset + MIN + 10 * SEC)
    expect_between(firing, onset + 3 * MIN, onset + 3 * MIN + 10 * SEC)
    notes = s.notified("firing")
    expect_between([t for t, _ in notes], onset + 3 * MIN + 30 * SEC, onset + 3 * MIN + 40 * SEC)
    assert len(notes) == 1
    alert = notes[0][1]["alerts"][0]
    assert alert["labels"] == {"alertname": "HighErrorRate", "severity": "P1", "service": "checkout",
                               "model": "gpt-4o", "model_version": "v1", "route": "/answer"}


def test_short_blip_never_fires(store, script_for):
    bad_errors(store, 10, 11)  # one bad minute: pending, then back to inactive before `for` elapses
    s = script_for(make_config())
    s.quiet_until(T0 + 11 * MIN)
    s.run_until(T0 + 20 * MIN)
    assert [t["to_state"] for t in s.transitions] == ["pending", "inactive"]
    assert s.notes == []


def test_group_interval_batches_a_second_alert(store, script_for):
    bad_errors(store, 10, 300, service="checkout")
    bad_errors(store, 12, 300, service="search")
    config = make_config(defaults={"group_by": ["alertname"], "group_wait": "30s", "group_interval": "5m",
                                   "repeat_interval": "4h"})
    s = script_for(config)
    s.quiet_until(T0 + 11 * MIN)
    s.run_until(T0 + 25 * MIN)
    notes = s.notified("firing")
    first = T0 + 13 * MIN + 30 * SEC          # checkout fires at 13m, group_wait 30s
    expect_between([t for t, _ in notes], first, first + 10 * SEC)
    assert len(notes[0][1]["alerts"]) == 1
    # search fires at 15m, joins the group, goes out at the next group_interval tick (first + 5m)
    expect_between([t for t, _ in notes[1:]], first + 5 * MIN, first + 5 * MIN + 10 * SEC)
    assert {a["labels"]["service"] for a in notes[1][1]["alerts"]} == {"checkout", "search"}
    assert len(notes) == 2


def test_repeat_interval(store, script_for):
    bad_errors(store, 0, 600)
    s = script_for(make_config(defaults={"repeat_interval": "1h"}))
    s.run_until(T0 + 2 * 60 * MIN + 10 * MIN, step=MIN)   # the flushes fall on the minutes: first + k * 5m
    times = [t for t, _ in s.notified("firing")]
    assert len(times) == 3
    first = times[0]
    # repeats on the first group_interval flush at or after first + 1h
    expect_between(times[1:], first + 60 * MIN, first + 65 * MIN)
    expect_between(times[2:], times[1] + 60 * MIN, times[1] + 65 * MIN)


def test_resolved_notification(store, script_for):
    bad_errors(store, 10, 20)
    s = script_for(make_config())
    s.quiet_until(T0 + 11 * MIN)
    s.run_until(T0 + 30 * MIN)   # fires at 13 min (sent 13:30), resolves at 21, sent by the 23:30 flush
    firing, resolved = s.notified("firing"), s.notified("resolved")
    assert len(firing) == 1 and len(resolved) == 1
    # last bad bucket is 19m; bucket 20m becomes visible at 21m -> resolved; next group_interval flush
    resolved_at = next(t["time"] for t in s.transitions if t["to_state"] == "resolved")
    expect_between([resolved_at], T0 + 21 * MIN, T0 + 21 * MIN + 10 * SEC)
    expect_between([resolved[0][0]], resolved_at, firing[0][0] + 5 * MIN * 2 + 10 * SEC)
    alert = resolved[0][1]["alerts"][0]
    assert alert["status"] == "resolved" and alert["endsAt"].startswith("2026-03-02T12:21")


def test_keep_firing_for_bridges_a_gap(store, script_for):
    write_metrics(store, series("error_rate", T0, 60, lambda i: 0.01 if i in (15, 16) or i < 5 or i >= 30 else 0.2))
    rules = [{"name": "HighErrorRate", "severity": "P1", "for": "1m", "keep_firing_for": "5m",
              "condition": {"metric": "error_rate", "op": ">", "threshold": 0.05}}]
    s = script_for(make_config(rules=rules))
    s.quiet_until(T0 + 6 * MIN)
    s.run_until(T0 + 50 * MIN)
    states = [t["to_state"] for t in s.transitions]
    assert states == ["pending", "firing", "resolved"]      # the 2-minute dip did not resolve it
    resolved_at = s.transitions[-1]["time"]
    # last true at 30:50 (bucket 29 is the newest until 31:00), so resolved 5m later
    expect_between([resolved_at], T0 + 35 * MIN + 50 * SEC, T0 + 36 * MIN)


# The P2 needs longer than the P1 to fire, so the P1 is firing when the P2's group flushes.
SLOW_P2_RULES = [
    {"name": "HighErrorRate", "severity": "P1", "for": "2m",
     "condition": {"metric": "error_rate", "op": ">", "threshold": 0.05}},
    {"name": "QualityLow", "severity": "P2", "for": "5m",
     "condition": {"metric": "quality_mean", "op": "<", "threshold": 0.5}},
]


def test_inhibition_p1_mutes_p2_of_the_same_service(store, script_for):
    bad_errors(store, 5, 300, service="checkout")
    write_metrics(store, series("quality_mean", T0, 300, lambda i: 0.3 if i >= 5 else 0.9, service="checkout"))
    write_metrics(store, series("quality_mean", T0, 300, lambda i: 0.3 if i >= 5 else 0.9, service="search"))
    s = script_for(make_config(rules=SLOW_P2_RULES))
    s.quiet_until(T0 + 6 * MIN)
    s.run_until(T0 + 20 * MIN)
    p2 = s.notified(alertname="QualityLow")
    # checkout's P2 is muted by its P1 once that fires; search's P2 (no P1) still goes out
    services = {a["labels"]["service"] for _, m in p2 for a in m["alerts"]}
    assert services == {"search"}
    assert s.notified(alertname="HighErrorRate")


def test_inhibition_lifts_when_the_p1_resolves(store, script_for):
    bad_errors(store, 5, 15, service="checkout")
    write_metrics(store, series("quality_mean", T0, 300, lambda i: 0.3 if i >= 5 else 0.9, service="checkout"))
    s = script_for(make_config(rules=SLOW_P2_RULES))
    s.quiet_until(T0 + 6 * MIN)
    s.run_until(T0 + 40 * MIN)
    p2 = s.notified("firing", alertname="QualityLow")
    assert p2, "the P2 goes out once the P1 resolved"
    p1_resolved = next(t["time"] for t in s.transitions if t["rule"] == "HighErrorRate" and t["to_state"] == "resolved")
    assert p2[0][0] >= p1_resolved


def test_silence_mutes_until_it_expires(store, script_for, clock):
    from alerts.silences import add_silence, expire_silence

    bad_errors(store, 5, 300)
    add_silence(store, ["service=checkout", "alertname=~High.*"], starts_at=T0, ends_at=T0 + 60 * MIN,
                created_by="oncall@example.com", comment="deploy in progress", now=T0)
    s = script_for(make_config())
    s.quiet_until(T0 + 6 * MIN)
    s.run_until(T0 + 30 * MIN)
    assert s.notes == []
    sid = store.query("SELECT id FROM alert_silences").column("id")[0].as_py()
    assert expire_silence(store, sid[:8], now=clock.now)
    expired_at = clock.now
    s.run_until(expired_at + 6 * MIN)
    expect_between([t for t, _ in s.notified("firing")], expired_at, expired_at + 5 * MIN + 10 * SEC)


def test_silence_window_in_the_future_does_not_mute(store, script_for):
    from alerts.silences import add_silence

    bad_errors(store, 5, 300)
    add_silence(store, ["service=checkout"], starts_at=T0 + 60 * MIN, ends_at=T0 + 120 * MIN,
                created_by="a", comment="later", now=T0)
    s = script_for(make_config())
    s.run_until(T0 + 10 * MIN)
    assert s.notified("firing")


def test_state_survives_a_restart(store, clock, tmp_path):
    from harness import Script

    from alerts.engine import AlertEngine, StoreBackend
    from store.db import Store

    bad_errors(store, 5, 300)
    config = make_config()
    s = Script(AlertEngine(config, StoreBackend(store), store, clock), clock)
    s.quiet_until(T0 + 6 * MIN)
    s.run_until(T0 + 9 * MIN)
    assert len(s.notified("firing")) == 1
    store.close()
    reopened = Store(tmp_path / "test.duckdb", writer_max_delay_ms=1)
    try:
        s2 = Script(AlertEngine(config, StoreBackend(reopened), reopened, clock), clock)
        s2.run_until(T0 + 60 * MIN, step=30 * SEC)   # nothing may come: the first ticks after the restart matter
        assert s2.notes == [] and s2.transitions == []    # still firing, already notified: nothing new
        assert reopened.scalar("SELECT count(*) FROM alert_outbox") == 1
    finally:
        reopened.close()
