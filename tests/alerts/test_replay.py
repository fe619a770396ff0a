"""Alert history replay: chunked (written as it goes, with progress) equals one pass; the server-side
replay the demo asks for (AIWATCH_ALERTS_REPLAY) fills an empty history once."""
from __future__ import annotations

from datetime import timedelta

from harness import MIN, T0, make_config, series, write_metrics

from alerts.backtest import backfill_history
from store.db import Store


def _history(store) -> list[tuple]:
    return [tuple(r.values()) for r in store.query(
        "SELECT time, fingerprint, rule, from_state, to_state FROM alert_history ORDER BY ALL").to_pylist()]


def _bad_errors(store) -> None:
    write_metrics(store, series("error_rate", T0, 180, lambda i: 0.3 if 40 <= i < 70 or 120 <= i < 150 else 0.01))


def test_chunked_replay_equals_one_pass(store, tmp_path):
    _bad_errors(store)
    config = make_config()
    backfill_history(store, config, T0, T0 + 180 * MIN, timedelta(minutes=1))
    whole = _history(store)
    other = Store(tmp_path / "other.duckdb", writer_max_delay_ms=1)
    try:
        _bad_errors(other)
        seen = []
        backfill_history(other, config, T0, T0 + 180 * MIN, timedelta(minutes=1), chunk=timedelta(minutes=50),
                         progress=seen.append)
        assert _history(other) == whole and len([e for e in whole if e[4] == "firing"]) == 2
        assert seen == [T0 + 50 * MIN, T0 + 100 * MIN, T0 + 150 * MIN, T0 + 180 * MIN]
    finally:
        other.close()


def test_server_replays_an_empty_history_then_evaluates_live(store, monkeypatch, caplog):
    import alerts.register as reg

    _bad_errors(store)
    monkeypatch.setattr("alerts.engine.utcnow", lambda: T0 + 180 * MIN)
    monkeypatch.setattr(reg, "load_config", lambda *a: make_config())
    runtime = reg.AlertsRuntime(replay="4h")
    ctx = type("Ctx", (), {"store": store})()
    with caplog.at_level("INFO", logger="aiwatch.alerts.replay"):
        runs = 0
        while runtime.engine is None and runs < 10:
            runtime.evaluate(ctx)
            runs += 1
    assert runs == 2   # the replay (well under its 10 s budget), then the live engine
    first = _history(store)
    assert len([e for e in first if e[4] == "firing"]) == 2
    assert any("alert history replay: 100%" in r.getMessage() for r in caplog.records)
    assert reg._history_replay(store, make_config()) is False   # history exists: never replayed again
