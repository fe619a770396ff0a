"""guard(): the same protections around any callable, sync or async."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from core import semconv as sc
from shim import AllLevelsFailed, Backend, RetryPolicy, Timeouts, guard


class RateLimitError(Exception):
    """Shaped like an SDK error: a status code and a response with headers."""

    status_code = 429

    class response:  # noqa: N801 - mimics the SDK attribute
        status_code = 429
        headers = {"retry-after": "3"}

        @staticmethod
        def json() -> dict[str, Any]:
            return {"error": {"code": "rate_limit_exceeded"}}


def test_guard_retries_sdk_rate_limit_and_extracts_usage(clock: Any, spans: Any) -> None:
    calls: list[str] = []

    @guard(model="claude-sonnet-4", provider="anthropic", clock=clock, audit=False,
           retry=RetryPolicy(max_attempts=3, random=lambda: 0))
    def ask(prompt: str) -> dict[str, Any]:
        calls.append(prompt)
        if len(calls) == 1:
            raise RateLimitError("slow down")
        return {"id": "msg_1", "model": "claude-sonnet-4-20250514", "content": [{"type": "text", "text": "Paris"}],
                "usage": {"input_tokens": 1000, "output_tokens": 100}, "stop_reason": "end_turn"}

    result = ask("capital of France?", user="u-1", attributes={sc.INPUT_LANGUAGE: "fr"})
    assert result.content == "Paris" and result.retries == 1 and clock.sleeps == [3.0]
    assert result.output["id"] == "msg_1" and calls == ["capital of France?"] * 2
    assert result.cost == pytest.approx((1000 * 3 + 100 * 15) / 1e6)
    parent = next(s for s in spans.get_finished_spans() if sc.ATTEMPT not in s.attributes)
    assert parent.name == "chat claude-sonnet-4" and parent.attributes[sc.GEN_AI_PROVIDER_NAME] == "anthropic"
    assert parent.attributes[sc.USER_ID] == "u-1" and parent.attributes[sc.INPUT_LANGUAGE] == "fr"


def test_guard_enforces_timeout_on_a_hung_sync_call(clock: Any) -> None:
    @guard(model="m", clock=clock, audit=False, timeouts=Timeouts(response=0.2),
           retry=RetryPolicy(max_attempts=2, random=lambda: 0), rule_based=lambda q: f"canned: {q}")
    def slow(q: str) -> str:
        release.wait(30)           # hangs until the test is done with it
        return "late"

    release = threading.Event()
    try:
        result = slow("hi")        # the call hangs until `release`: only the timeout can answer "canned"
    finally:
        release.set()
    assert result.content == "canned: hi" and result.fallback_level == "rule_based"
    assert result.decision_path == "primary:timeout>rule_based:ok"


def test_guard_fallback_backend_callable(clock: Any) -> None:
    def backup(q: str) -> str:
        return f"backup says {q}"

    @guard(model="m", clock=clock, audit=False, retry=RetryPolicy(max_attempts=1),
           fallbacks=[Backend("backup", "m2", call=backup)])
    def primary(q: str) -> str:
        raise ValueError("context length exceeded")

    result = primary("hi")
    assert result.content == "backup says hi" and result.fallback_level == "fallback"
    assert result.decision_path == "primary:ValueError>fallback:ok"


def test_guard_async(clock: Any) -> None:
    attempts = 0

    @guard(model="m", clock=clock, audit=False, timeouts=Timeouts(response=0.2),
           retry=RetryPolicy(max_attempts=3, random=lambda: 0))
    async def ask(q: str) -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await asyncio.sleep(1)      # times out
        if attempts == 2:
            raise ConnectionResetError()
        return "ok"

    result = asyncio.run(ask("x"))
    assert result.content == "ok" and result.retries == 2 and attempts == 3


def test_guard_all_levels_failed_lists_errors(clock: Any) -> None:
    @guard(model="m", clock=clock, audit=False, retry=RetryPolicy(max_attempts=2, random=lambda: 0))
    def broken() -> str:
        raise RuntimeError("boom")

    with pytest.raises(AllLevelsFailed) as info:
        broken()
    assert [(lvl, type(e).__name__) for lvl, _, e in info.value.errors] == [("primary", "ShimError")]
