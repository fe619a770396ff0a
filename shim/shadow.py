"""Shadow mode: also send the request to a candidate model, record it, never let it touch the caller.

The shadow runs after the primary answered, in a small thread pool (sync) or a task (async), with
its own timeout and no retries. A full pool means the shadow is skipped (counted in `skipped`),
never queued: the caller's latency and errors are the primary's alone.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from core import semconv as sc
from shim.policy import SystemClock


class ShadowMode:
    def __init__(self, candidate: Any, *, timeout: float = 10.0, max_concurrency: int = 4) -> None:
        self.candidate = candidate
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._pool: ThreadPoolExecutor | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.skipped = 0
        self.completed = 0
        self.failed = 0

    def _take_slot(self) -> bool:
        if self._slots.acquire(blocking=False):
            return True
        self.skipped += 1
        return False

    def submit(self, run: Callable[[], Any]) -> bool:
        """Run `run` in the background if a slot is free. Returns whether it was started."""
        if not self._take_slot():
            return False
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="aiwatch-shadow")

        def job() -> None:
            try:
                run()
            finally:
                self._slots.release()

        self._pool.submit(job)
        return True

    def submit_async(self, make: Callable[[], Any]) -> bool:
        if not self._take_slot():
            return False

        async def job() -> None:
            try:
                await asyncio.wait_for(make(), self.timeout + 1)
            except BaseException:  # noqa: BLE001 - the shadow never propagates anything
                pass
            finally:
                self._slots.release()

        task = asyncio.get_running_loop().create_task(job())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def wait(self, timeout: float = 5.0) -> None:
        """Block until running sync shadows finish (tests and graceful shutdown)."""
        for _ in range(self.max_concurrency):
            self._slots.acquire(timeout=timeout)
        for _ in range(self.max_concurrency):
            self._slots.release()

    async def await_tasks(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def start_span(self, primary_span: Any, operation: str, request_id: str) -> Any:
        from shim.telemetry import tracer

        links = [Link(primary_span.get_span_context())] if primary_span is not None else []
        return tracer().start_span(
            f"{operation} {self.candidate.model}", kind=SpanKind.CLIENT, links=links,
            context=trace.set_span_in_context(primary_span) if primary_span is not None else None,
            attributes={
                sc.GEN_AI_OPERATION_NAME: operation,
                sc.GEN_AI_PROVIDER_NAME: self.candidate.provider,
                sc.GEN_AI_REQUEST_MODEL: self.candidate.model,
                sc.REQUEST_ID: request_id,
                sc.ARM: "shadow",
                sc.MODEL_VERSION: self.candidate.version or self.candidate.model,
            })

    def end_span(self, span: Any, response: Any = None, error: BaseException | None = None,
                 cost: float | None = None, latency_ms: float | None = None) -> None:
        if response is not None:
            span.set_attribute(sc.GEN_AI_RESPONSE_MODEL, response.model or self.candidate.model)
            span.set_attribute(sc.GEN_AI_USAGE_INPUT_TOKENS, response.usage.input_tokens)
            span.set_attribute(sc.GEN_AI_USAGE_OUTPUT_TOKENS, response.usage.output_tokens)
            if cost is not None:
                span.set_attribute(sc.COST_USD, cost)
            self.completed += 1
        if latency_ms is not None:
            span.set_attribute(sc.LATENCY_MS, latency_ms)
        if error is not None:
            from shim.errors import classify_exception

            err = classify_exception(error)
            span.set_attribute(sc.ERROR_TYPE, err.error_type)
            span.set_attribute(sc.ERROR_CLASS, err.error_class)
            span.set_status(Status(StatusCode.ERROR, str(error)[:200]))
            self.failed += 1
        span.end()


_clock = SystemClock()
