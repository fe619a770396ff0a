"""Circuit breaker per backend: stop calling a backend that is failing, probe it after a cooldown.

closed -> open after `failure_threshold` consecutive failures, or when the failure rate over the
last `window` seconds exceeds `failure_rate` (with at least `min_calls` calls); open -> half_open
after `cooldown`; half_open lets exactly one trial call through: success closes, failure reopens.
A plain lock guards the state and is never held across I/O or an await, so the same breaker is
safe from threads and from asyncio tasks.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from shim.policy import Clock, SystemClock

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
TransitionListener = Callable[[str, str, str], None]   # (breaker name, old state, new state)


class CircuitBreaker:
    def __init__(
        self,
        name: str = "default",
        *,
        failure_threshold: int = 5,
        failure_rate: float = 0.5,
        window: float = 60.0,
        min_calls: int = 10,
        cooldown: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.failure_rate = failure_rate
        self.window = window
        self.min_calls = min_calls
        self.cooldown = cooldown
        self.clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._state = CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self._outcomes: deque[tuple[float, bool]] = deque()   # (time, failed)
        self._listeners: list[TransitionListener] = []
        self.transitions: list[tuple[str, str]] = []           # (old, new), for tests and debugging

    def add_listener(self, listener: TransitionListener) -> None:
        self._listeners.append(listener)

    @property
    def state(self) -> str:
        with self._lock:
            return self._current_state()

    def allow(self) -> bool:
        """May a call go out now? In half_open only the first caller gets the trial."""
        with self._lock:
            state = self._current_state()
            if state == CLOSED:
                return True
            if state == HALF_OPEN and not self._trial_in_flight:
                self._trial_in_flight = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._consecutive = 0
            self._push(False)
            if self._state == HALF_OPEN:
                self._trial_in_flight = False
                self._outcomes.clear()
                self._move(CLOSED)

    def record_failure(self) -> None:
        with self._lock:
            self._consecutive += 1
            self._push(True)
            if self._state == HALF_OPEN:
                self._trial_in_flight = False
                self._open()
            elif self._state == CLOSED and self._should_open():
                self._open()

    def release(self) -> None:
        """The call ended without a verdict on the backend (e.g. a caller error): free the trial."""
        with self._lock:
            self._trial_in_flight = False

    # --- internals; the caller holds the lock ---
    def _current_state(self) -> str:
        if self._state == OPEN and self.clock.now() - self._opened_at >= self.cooldown:
            self._move(HALF_OPEN)
        return self._state

    def _push(self, failed: bool) -> None:
        now = self.clock.now()
        self._outcomes.append((now, failed))
        cutoff = now - self.window
        while self._outcomes and self._outcomes[0][0] < cutoff:
            self._outcomes.popleft()

    def _should_open(self) -> bool:
        if self._consecutive >= self.failure_threshold:
            return True
        n = len(self._outcomes)
        if n >= self.min_calls:
            failures = sum(1 for _, f in self._outcomes if f)
            return failures / n > self.failure_rate
        return False

    def _open(self) -> None:
        self._opened_at = self.clock.now()
        self._move(OPEN)

    def _move(self, new: str) -> None:
        old = self._state
        if old == new:
            return
        self._state = new
        if new == HALF_OPEN:
            self._trial_in_flight = False
        self.transitions.append((old, new))
        for listener in self._listeners:
            try:
                listener(self.name, old, new)
            except Exception:  # noqa: BLE001 - telemetry must never break the breaker
                pass
