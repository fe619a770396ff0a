"""The server's jobs and read queries are collected from the stage modules on purpose
(aiwatch.stages), not from whatever registered itself at import time."""
from __future__ import annotations

from aiwatch.config import Settings
from aiwatch.stages import STAGE_MODULES, stage_jobs, stage_queries


def test_every_stage_contributes_its_jobs(tmp_path):
    names = [job.name for job in stage_jobs(Settings(data_dir=str(tmp_path)))]
    assert {"analysis-minute", "analysis-hourly", "alerts-evaluate", "alerts-deliver", "weekly_review"} <= set(names)
    assert len(names) == len(set(names))
    # asked twice, the same jobs: nothing accumulates across calls
    assert [job.name for job in stage_jobs(Settings(data_dir=str(tmp_path)))] == names


def test_every_stage_contributes_its_queries():
    registry = stage_queries()
    assert {"spans", "metrics", "incidents", "alerts", "silences"} <= set(registry)
    assert "alerts.register" in STAGE_MODULES
