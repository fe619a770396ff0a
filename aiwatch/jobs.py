"""Scheduled jobs: one shape, one registry, one scheduler that starts and stops them cleanly.

Analyzers, alert evaluation, the notifier outbox and retention are all `Job`s. Each runs on
APScheduler with coalescing, at most one instance at a time and a misfire grace period: every
`interval_s` seconds, or on a cron schedule (UTC) such as the weekly review's.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from store.base import Store

log = logging.getLogger(__name__)


class JobContext(Protocol):
    """What a job may use: the store (reads + single writer) and the settings."""

    store: Store
    settings: Any


@dataclass(frozen=True)
class Job:
    name: str
    interval_s: float
    run: Callable[[JobContext], Any]
    description: str = ""
    stop: Callable[[], None] | None = None   # for a job that keeps work running between runs (delivery)
    # instead of interval_s: CronTrigger fields (UTC), e.g. {"day_of_week": "mon", "hour": 6}; such a job
    # also runs once at start, so a run missed while the server was down is made up (it must be idempotent)
    cron: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.interval_s <= 0):
            raise ValueError(f"job {self.name}: give a positive interval_s or a cron schedule, not both")

    def trigger(self) -> CronTrigger | None:
        return CronTrigger(timezone="UTC", **self.cron) if self.cron is not None else None


# A stage module lists its `settings -> list[Job]` functions as `JOB_FACTORIES`; the server collects
# them with aiwatch.stages.stage_jobs.


class Scheduler:
    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx
        self._scheduler = BackgroundScheduler(timezone="UTC", job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 30})
        self.jobs: list[Job] = []
        self.failures: dict[str, int] = {}

    def add(self, job: Job) -> None:
        self.jobs.append(job)
        cron = job.trigger()
        if cron is None:
            self._scheduler.add_job(self._wrap(job), "interval", seconds=job.interval_s, id=job.name, name=job.name)
        else:   # a late weekly run is still wanted: an hour of grace, not the interval jobs' 30 s
            self._scheduler.add_job(self._wrap(job), cron, id=job.name, name=job.name, misfire_grace_time=3600,
                                    next_run_time=datetime.now(UTC))

    def _wrap(self, job: Job) -> Callable[[], None]:
        def run() -> None:
            try:
                job.run(self._ctx)
            except Exception:  # noqa: BLE001 - one failing run must not stop the schedule
                self.failures[job.name] = self.failures.get(job.name, 0) + 1
                log.exception("job %s failed", job.name)
        return run

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        for job in self.jobs:       # first, so no run in progress waits on what they hold
            if job.stop:
                try:
                    job.stop()
                except Exception:  # noqa: BLE001 - the other jobs still stop
                    log.exception("stopping job %s failed", job.name)
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
