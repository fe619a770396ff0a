"""Several instances (the `lease` setting): the scheduled jobs run only on the lease holder.

A thread renews or contends for the lease every `poll_s`. On acquiring it, the holder starts a
fresh scheduler with freshly built jobs (so nothing cached from an earlier tenure, such as the
alert engine's state, outlives a hand-over); on losing it, that scheduler is stopped. Sends and
notification-log writes are fenced by `lease.held()` itself, not by this loop, so they stop the
moment the holder's time is up even if this thread is stuck on an unreachable Keeper.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from aiwatch.jobs import Scheduler

log = logging.getLogger(__name__)


class Lease(Protocol):
    instance_id: str
    epoch: int
    acquired: int

    @property
    def poll_s(self) -> float: ...
    @property
    def holder(self) -> str | None: ...
    def held(self) -> bool: ...
    def step(self) -> bool: ...
    def release(self) -> None: ...
    def close(self) -> None: ...


class LeaseRunner:
    def __init__(self, lease: Lease, new_scheduler: Callable[[], Scheduler]) -> None:
        self.lease = lease
        self._new_scheduler = new_scheduler
        self.scheduler: Scheduler | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aiwatch-lease", daemon=True)
        self.errors = 0     # lease steps that failed (Keeper unreachable, ...)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.lease.step()
            except Exception:  # noqa: BLE001 - Keeper or the database away: held() runs out on its own
                self.errors += 1
                log.warning("lease step failed", exc_info=True)
            if self._stop.is_set():
                break
            self._follow()
            self._stop.wait(self.lease.poll_s)

    def _follow(self) -> None:
        if self.lease.held() and self.scheduler is None:
            scheduler = self._new_scheduler()
            scheduler.start()
            self.scheduler = scheduler
        elif not self.lease.held() and self.scheduler is not None:
            scheduler, self.scheduler = self.scheduler, None
            log.warning("lease lost: stopping the scheduled jobs on this instance")
            scheduler.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        self.lease.release()     # the next holder need not wait out the ttl
        self.lease.close()
