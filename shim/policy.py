"""Retry and timeout policies, and the clock they run on.

Backoff is exponential with full jitter (sleep = uniform(0, min(cap, base * 2**n))), which spreads
retries of many clients instead of synchronising them; a Retry-After from the server wins when it
is longer. Everything that waits goes through a `Clock`, so tests run backoff without sleeping.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...
    async def asleep(self, seconds: float) -> None: ...


class SystemClock:
    """Monotonic time and real sleeps."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)


@dataclass(frozen=True)
class Timeouts:
    """connect: TCP+TLS; response: wait for the first byte / between bytes; total: the whole logical
    call including retries and fallbacks; stream_heartbeat: no chunk for this long is a stall."""

    connect: float = 5.0
    response: float = 60.0
    total: float = 120.0
    stream_heartbeat: float = 10.0


@dataclass(frozen=True)
class RetryPolicy:
    """Retries on transient classes only; bounded by max_attempts and by the caller's total cap."""

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 20.0
    respect_retry_after: bool = True
    max_retry_after: float = 60.0   # a server asking for longer than this is treated as a failure
    random: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def backoff(self, retry_number: int, retry_after: float | None = None) -> float | None:
        """Delay before retry `retry_number` (1-based), or None if Retry-After is beyond reason."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (retry_number - 1)))
        delay = self.random() * ceiling
        if retry_after is not None and self.respect_retry_after:
            if retry_after > self.max_retry_after:
                return None
            delay = max(delay, retry_after)
        return delay


NO_RETRY = RetryPolicy(max_attempts=1)
