"""[analysis] backfill (AIWATCH_ANALYSIS_BACKFILL): the server analyzes a never-analyzed store's history itself (what the demo
uses so its URL does not wait for `aiwatch analyze`); the scheduled analyzers and the alert history
replay wait for it, and a store analyzed before is left alone."""
from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from aiwatch.config import Settings
from analysis import register
from core.clock import utcnow
from core.grains import floor_time
from store import analytics
from store.db import Store
from tests.analysis.gen import spans, write


@pytest.fixture
def store(tmp_path):
    db = Store(tmp_path / "aiwatch.duckdb")
    yield db
    db.close()


def _backfill(store, settings, window="2d") -> register.StartupBackfill:
    job = register.StartupBackfill(settings, window)
    job.run(SimpleNamespace(store=store))
    job._thread.join(300)
    return job


def test_backfill_analyzes_the_whole_window_then_lets_the_schedule_and_the_replay_go(store, settings, monkeypatch):
    start = floor_time(utcnow(), "1h") - timedelta(hours=40)   # older than one day: past initial lookback
    write(store, spans(start, minutes=40 * 60, per_minute=1, seed=3))
    assert register.backfill_waiting(store, "2d")          # nothing ran yet: the replay must wait
    job = _backfill(store, settings)
    assert job.done and analytics.job_state(store, register.BACKFILL_STATE) == "done"
    assert not register.backfill_waiting(store, "2d")
    hours = store.scalar("SELECT count(DISTINCT time) FROM traffic_metrics WHERE grain = '1h' AND requests > 0")
    assert hours >= 40   # every hour of the 40, the first day included
    requests = store.scalar("SELECT sum(requests) FROM traffic_metrics WHERE grain = '1h' AND service_name = 'svc' "
                            "AND model IS NULL AND route IS NULL AND model_version IS NULL AND arm IS NULL")
    assert requests == 40 * 60
    marks = [analytics.job_state(store, f"analysis.{name}") for name in register.registry.ANALYZERS]
    assert all(marks)   # the scheduled runs go on from here


def test_scheduled_runs_wait_while_it_runs_and_an_analyzed_store_is_left_alone(store, settings, monkeypatch):
    write(store, spans(floor_time(utcnow(), "1h") - timedelta(hours=3), minutes=120, per_minute=2, seed=4))
    configured = Settings(data_dir=str(store.path.parent), analysis=settings.model_copy(update={"backfill": "1d"}))
    jobs = {j.name: j for j in register.analysis_jobs(configured)}
    ctx = SimpleNamespace(store=store)
    assert jobs["analysis-minute"].run(ctx) == {}   # backfill not done: the incremental run waits
    jobs["analysis-backfill"].run(ctx)
    jobs["analysis-backfill"].run.__self__._thread.join(300)
    before = store.scalar("SELECT count(*) FROM traffic_metrics")
    assert analytics.job_state(store, register.BACKFILL_STATE) == "done" and before > 0
    assert jobs["analysis-minute"].run(ctx) != {}
    # A later start with the variable still set: the store was analyzed, nothing is recomputed.
    store.writer.write(fn=lambda con: con.execute("DELETE FROM job_state WHERE job = ?", [register.BACKFILL_STATE]))
    computed = store.scalar("SELECT max(computed_at) FROM traffic_metrics")
    again = _backfill(store, settings, "1d")
    assert again.done and store.scalar("SELECT max(computed_at) FROM traffic_metrics") == computed


def test_bad_window_names_the_setting(settings):
    with pytest.raises(ValueError, match=r"\[analysis\] backfill"):
        register.StartupBackfill(settings, "3 days")
    with pytest.raises(ValueError, match=r"AIWATCH_ANALYSIS_BACKFILL: \[analysis\] backfill: '3 days'"):
        Settings.load(env={"AIWATCH_ANALYSIS_BACKFILL": "3 days"})
