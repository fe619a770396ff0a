"""Error classification, backoff arithmetic and the circuit breaker, without any network."""

from __future__ import annotations

import asyncio
import threading

import pytest

from core import semconv
from shim.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from shim.errors import classify_exception, classify_http
from shim.policy import RetryPolicy


@pytest.mark.parametrize("status,body,expected", [
    (429, {"error": {"code": "rate_limit_exceeded", "message": "slow down"}}, "rate_limit"),
    (500, {"error": {"message": "oops"}}, "server"),
    (503, "upstream down", "server"),
    (504, "", "timeout"),
    (401, {"error": {"code": "invalid_api_key"}}, "auth"),
    (403, {}, "auth"),
    (400, {"error": {"code": "context_length_exceeded", "message": "too long"}}, "token_limit"),
    (400, {"error": {"message": "This model's maximum context length is 8192 tokens"}}, "token_limit"),
    (400, {"error": {"code": "content_filter"}}, "content_filter"),
    (400, {"error": {"code": "invalid_value", "message": "bad temperature"}}, "validation"),
    (422, {}, "validation"),
])
def test_classify_http(status: int, body: object, expected: str) -> None:
    err = classify_http(status, body)
    assert err.error_class == expected
    assert err.error_class in semconv.ERROR_CLASSES
    assert err.transient == (expected in semconv.TRANSIENT_ERROR_CLASSES)


def test_classify_exceptions_by_shape() -> None:
    class RateLimitError(Exception):
        status_code = 429

    class APIConnectionError(Exception):
        pass

    assert classify_exception(TimeoutError()).error_class == "timeout"
    assert classify_exception(TimeoutError()).error_class == "timeout"
    assert classify_exception(ConnectionRefusedError()).error_class == "connection"
    assert classify_exception(RateLimitError("x")).error_class == "rate_limit"
    assert classify_exception(APIConnectionError("x")).error_class == "connection"
    assert classify_exception(ValueError("context length exceeded")).error_class == "token_limit"
    assert classify_exception(ValueError("bad")).error_class == "validation"


def test_a_providers_retry_after_reaches_the_error() -> None:
    assert classify_http(429, {}, {"retry-after-ms": "1500"}).retry_after == 1.5
    assert classify_http(429, {}, {"retry-after": "3"}).retry_after == 3.0


def test_full_jitter_backoff_bounds() -> None:
    top = RetryPolicy(base_delay=1.0, max_delay=5.0, random=lambda: 0.999999)
    assert [round(top.backoff(n), 3) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    zero = RetryPolicy(base_delay=1.0, random=lambda: 0.0)
    assert zero.backoff(3) == 0.0
    assert zero.backoff(1, retry_after=7.0) == 7.0          # Retry-After wins when longer
    assert zero.backoff(1, retry_after=120.0) is None       # beyond max_retry_after: give up


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s

    async def asleep(self, s: float) -> None:
        self.t += s


def test_breaker_opens_on_consecutive_failures_and_recovers() -> None:
    clock = Clock()
    seen: list[tuple[str, str]] = []
    b = CircuitBreaker("x", failure_threshold=3, cooldown=10, clock=clock)
    b.add_listener(lambda name, old, new: seen.append((old, new)))
    for _ in range(2):
        assert b.allow()
        b.record_failure()
    assert b.state == CLOSED
    b.record_failure()
    assert b.state == OPEN and not b.allow()
    clock.t += 9.9
    assert not b.allow()
    clock.t += 0.1
    assert b.state == HALF_OPEN
    assert b.allow()          # the single trial
    assert not b.allow()      # everyone else waits
    b.record_failure()
    assert b.state == OPEN
    clock.t += 10
    assert b.allow()
    b.record_success()
    assert b.state == CLOSED
    assert seen == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]


def test_breaker_opens_on_failure_rate_window() -> None:
    clock = Clock()
    b = CircuitBreaker("x", failure_threshold=100, failure_rate=0.5, min_calls=10, window=60, clock=clock)
    for i in range(10):   # 6 failures out of 10, never 100 in a row
        b.record_failure() if i % 5 in (0, 1, 3) or i == 9 else b.record_success()
    assert b.state == OPEN


def test_breaker_window_forgets_old_outcomes() -> None:
    clock = Clock()
    b = CircuitBreaker("x", failure_threshold=100, failure_rate=0.5, min_calls=4, window=10, clock=clock)
    for _ in range(3):
        b.record_success()
        b.record_success()
        b.record_failure()
    clock.t += 11
    for _ in range(3):
        b.record_failure()
    assert b.state == CLOSED   # 3 of 3 failed, but fewer than min_calls are inside the window
    b.record_failure()
    assert b.state == OPEN


def test_breaker_single_trial_under_threads_and_asyncio() -> None:
    clock = Clock()
    b = CircuitBreaker("x", failure_threshold=1, cooldown=1, clock=clock)
    b.record_failure()
    clock.t += 1
    allowed: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        ok = b.allow()
        with lock:
            allowed.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert allowed.count(True) == 1

    b.record_failure()
    clock.t += 1

    async def many() -> list[bool]:
        async def one() -> bool:
            await asyncio.sleep(0)
            return b.allow()
        return await asyncio.gather(*(one() for _ in range(50)))

    assert asyncio.run(many()).count(True) == 1
