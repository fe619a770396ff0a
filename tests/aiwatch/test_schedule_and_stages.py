"""The weekly review runs on a cron trigger from settings (and once at start), not an hourly poll; a
stage module that cannot be imported stops start-up naming it; the database path is Settings.db_path."""
from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from apscheduler.triggers.cron import CronTrigger

from aiwatch import stages
from aiwatch.config import ConfigError, Settings
from aiwatch.jobs import Job, Scheduler
from dashboard.commands import weekly_export_jobs

ROOT = Path(__file__).resolve().parents[2]


def test_weekly_review_fires_on_the_configured_weekday_and_hour(tmp_path):
    settings = Settings.load(env={"AIWATCH_WEEKLY_EXPORT_WEEKDAY": "wed", "AIWATCH_WEEKLY_EXPORT_HOUR": "7"},
                             data_dir=str(tmp_path))
    [job] = weekly_export_jobs(settings)
    trigger = job.trigger()
    assert isinstance(trigger, CronTrigger)
    monday = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    first = trigger.get_next_fire_time(None, monday)
    assert first == datetime(2026, 12, 2, 7, 0, tzinfo=UTC)                     # Wednesday 07:00 UTC
    assert trigger.get_next_fire_time(first, first.replace(minute=1)) == datetime(2026, 12, 9, 7, 0, tzinfo=UTC)


def test_the_scheduler_adds_it_as_a_cron_job_that_also_runs_at_start(tmp_path):
    scheduler = Scheduler(SimpleNamespace(store=None, settings=Settings(data_dir=str(tmp_path))))
    for job in weekly_export_jobs(Settings(data_dir=str(tmp_path))):
        scheduler.add(job)
    added = scheduler._scheduler.get_job("weekly_review")
    assert isinstance(added.trigger, CronTrigger) and "day_of_week='mon'" in str(added.trigger)
    assert "hour='6'" in str(added.trigger)
    assert added.next_run_time <= datetime.now(UTC)    # the start-up run: a week missed while down is written
    assert added.misfire_grace_time == 3600


@pytest.mark.parametrize("env,message", [
    ({"AIWATCH_WEEKLY_EXPORT_HOUR": "24"},
     "environment AIWATCH_WEEKLY_EXPORT_HOUR: [aiwatch] weekly_export_hour: 24 is above the maximum 23"),
    ({"AIWATCH_WEEKLY_EXPORT_HOUR": "true"}, "[aiwatch] weekly_export_hour: bad value 'true': expected an integer"),
    ({"AIWATCH_WEEKLY_EXPORT_WEEKDAY": "funday"},
     "[aiwatch] weekly_export_weekday: 'funday' is not one of mon, tue, wed, thu, fri, sat, sun"),
])
def test_bad_schedules_are_rejected_naming_the_key(env, message):
    with pytest.raises(ConfigError) as err:
        Settings.load(env=env)
    assert message in str(err.value)


def test_a_job_has_an_interval_or_a_cron_schedule():
    with pytest.raises(ValueError, match="not both"):
        Job("x", 5, lambda ctx: None, cron={"hour": 1})
    with pytest.raises(ValueError, match="x: give"):
        Job("x", 0, lambda ctx: None)


def test_a_missing_stage_module_stops_start_up_naming_it(monkeypatch, tmp_path):
    monkeypatch.setattr(stages, "STAGE_MODULES", (*stages.STAGE_MODULES, "analysis.no_such_stage"))
    for collect in (stages.load_stages, stages.stage_queries, lambda: stages.stage_jobs(Settings(data_dir=str(tmp_path)))):
        with pytest.raises(ModuleNotFoundError, match="'analysis.no_such_stage' .*aiwatch/stages.py"):
            collect()


def test_the_cli_refuses_a_missing_stage_module():
    code = ("import sys; import aiwatch.stages as s; s.STAGE_MODULES = (*s.STAGE_MODULES, 'alerts.gone'); "
            "from aiwatch.cli import main; sys.exit(main(['--help']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "'alerts.gone'" in done.stderr


def test_no_code_builds_the_database_path_by_hand():
    """Settings.db_path is the one place the database file is named."""
    name = Settings().db_path.name
    offenders = [str(p.relative_to(ROOT)) for pkg in ("aiwatch", "core", "shim", "collectors", "store", "analysis",
                                                      "alerts", "dashboard", "sample_data")
                 for p in (ROOT / pkg).rglob("*.py") if name in p.read_text() and p.name != "config.py"]
    assert offenders == []
